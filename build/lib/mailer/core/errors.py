"""One exception root for every user-facing failure.

Every ``MailerError`` says what was wrong, where (file:line, contact row,
host:port, SMTP code) and what to do about it. The CLI prints ``str(error)``
and exits 1; it never shows a traceback for a ``MailerError``.

Library code states facts and remedies in ``hint`` but never names a CLI
command or flag: the same error reaches ``send``, ``run-due`` and the
preview, and each words the next step differently. Where the remedy is a
flag or a command, the error carries an ``advice`` key (``"db-path"``,
``"check-details"`` ...) and the CLI adds its own wording for it.
"""

from __future__ import annotations


class MailerError(Exception):
    """Root of all errors a user can cause or fix.

    ``where`` names the place (``campaigns/x.toml:12``, ``contacts.csv row 7``,
    ``127.0.0.1:25``); ``hint`` says what to do next; ``advice`` names a remedy
    that the caller (the CLI) words in its own terms.
    """

    def __init__(
        self,
        message: str,
        *,
        where: str | None = None,
        hint: str | None = None,
        advice: str | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.where = where
        self.hint = hint
        self.advice = advice

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class ConfigError(MailerError):
    """Workspace settings (mailer.toml, environment, flags) are wrong."""


class CampaignError(MailerError):
    """A campaign file is invalid."""


class TemplateError(MailerError):
    """A template cannot be found, compiled or rendered."""


class AudienceError(MailerError):
    """Contacts, lists or segment expressions are wrong."""


class StoreError(MailerError):
    """The embedded database cannot be opened or migrated."""


class TransportError(MailerError):
    """A transport (SMTP relay, outbox) is misconfigured or unreachable."""


class SendError(MailerError):
    """A send run cannot start or had to stop."""


class CheckError(MailerError):
    """A pre-send check could not run (for example, no browser)."""


class ScheduleError(MailerError):
    """A schedule block is invalid."""
