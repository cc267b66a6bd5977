"""``mailer bounces fetch``: apply the bounce mailbox's reports to this workspace."""

from __future__ import annotations

import os
import ssl

from mailer.core.clock import utc_now
from mailer.core.errors import ConfigError
from mailer.feedback.mailbox import PASSWORD_ENV, Fetched, Mailbox, fetch_bounces
from mailer.services.workspace import open_database, workspace_settings

__all__ = ["Fetched", "fetch"]


def fetch(
    imap: str | None = None,
    done_folder: str | None = None,
    *,
    context: ssl.SSLContext | None = None,
) -> Fetched:
    """Read the mailbox (``imap`` or ``[feedback] imap``), apply bounces and complaints."""
    settings = workspace_settings()
    rules = settings.feedback
    url = imap or rules.imap
    if not url:
        raise ConfigError(
            "no bounce mailbox is configured",
            hint='add imap = "imaps://USER@HOST/INBOX" under [feedback] in mailer.toml, '
            "or pass --imap",
        )
    password = os.environ.get(PASSWORD_ENV, "")
    if not password:
        raise ConfigError(
            f"{PASSWORD_ENV} is not set: the bounce mailbox's password comes from the "
            "environment, never from a file",
            hint=f"export {PASSWORD_ENV}=...",
        )
    conn = open_database(settings)
    try:
        return fetch_bounces(
            conn,
            Mailbox.from_url(url),
            password,
            rules,
            done_folder=done_folder or rules.done_folder,
            now=utc_now,
            context=context,
        )
    finally:
        conn.close()
