"""One call that turns a campaign file into everything send, check and preview need.

``prepare_campaign`` loads and validates the campaign, compiles its templates
once, and knows how to list its recipients and build each one's message.
Render, send, check and preview all go through ``PreparedCampaign.build``:
there is no second render path.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from mailer.core.campaign import Campaign, load_campaign
from mailer.core.settings import Settings
from mailer.core.errors import AudienceError, TemplateError
from mailer.compose.message import (
    Headers,
    ascii_address,
    build_bytes,
    check_ascii_address,
    check_header_value,
    list_unsubscribe,
    message_id_for,
    now_header,
)
from mailer.core.recipient import Recipient
from mailer.compose.render import (
    CompiledCampaign,
    Rendered,
    compile_campaign,
    environment,
    render_for,
    render_subject,
)
from mailer.delivery.transport import Envelope
from mailer.compose.variables import find_missing


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One recipient's finished message and how it was made."""

    envelope: Envelope
    variant: int
    subject: str
    recipient: Recipient
    rendered: Rendered


@dataclass
class PreparedCampaign:
    """A compiled campaign plus its audience; build messages with ``build``."""

    campaign: Campaign
    compiled: CompiledCampaign
    settings: Settings
    conn: sqlite3.Connection | None = None
    _csv_cache: list[Recipient] | None = field(default=None, repr=False)

    def recipients(self) -> Iterator[Recipient]:
        """A fresh iterator over the audience (suppressed addresses already left out)."""
        spec = self.campaign.audience
        if spec.csv is not None:
            if self._csv_cache is None:
                from mailer.audience.csv_source import read_csv_recipients

                self._csv_cache = read_csv_recipients(spec.csv)
            return iter(self._csv_cache)
        return self._database_recipients()

    def _database_recipients(self) -> Iterator[Recipient]:
        try:
            from mailer.audience import selection as audience
        except ImportError as exc:  # pragma: no cover - present once the contacts module lands
            raise AudienceError("database audiences are not available in this build") from exc
        selection = audience.select_recipients(
            self.database(),
            list_name=self.campaign.audience.list,
            segment=self.campaign.audience.segment,
        )
        return iter(selection.recipients)

    def database(self) -> sqlite3.Connection:
        """The workspace database, opened on first use."""
        if self.conn is None:
            from mailer.audience.store import connect

            self.conn = connect(self.settings.db_path)
        return self.conn

    def render(self, recipient: Recipient, *, variant: int | None = None) -> Rendered:
        """Render every part of the email for one recipient (``variant``: see render_for)."""
        return render_for(self.compiled, recipient, variant=variant)

    def build(
        self,
        recipient: Recipient,
        *,
        salt: str = "",
        subject_prefix: str = "",
        variant: int | None = None,
    ) -> Outgoing:
        """Render and build one recipient's MIME message (the only build path).

        ``variant`` overrides the A/B assignment (preview only); ``send`` never sets it.
        """
        rendered = self.render(recipient, variant=variant)
        subject = subject_prefix + rendered.subject
        sender = self.campaign.sender
        check_header_value(subject, "the subject", recipient)
        check_header_value(recipient.name, "the contact's name", recipient)
        check_header_value(recipient.email, "the contact's address", recipient)
        unsub, one_click = list_unsubscribe(
            rendered.unsubscribe_url, self.settings.unsubscribe_mailto
        )
        check_ascii_address(recipient.email, recipient)
        domain = ascii_address(sender.email).rpartition("@")[2]
        headers = Headers(
            sender=sender,
            to_name=recipient.name,
            to_email=recipient.email,
            subject=subject,
            message_id=message_id_for(self.campaign.id, recipient.email, domain, salt),
            date=now_header(),
            list_unsubscribe=unsub,
            one_click=one_click,
        )
        data = build_bytes(headers, rendered.text, rendered.html)
        envelope = Envelope(sender.email, recipient.email, data, headers.message_id)
        return Outgoing(envelope, rendered.variant, subject, recipient, rendered)

    def preflight(self, recipients: Iterable[Recipient] | None = None) -> int:
        """Check every recipient before anything is sent; return how many were checked.

        Raises ``TemplateError`` naming every contact that lacks a template
        variable, has an address mail cannot be sent to, or has a line break in
        a value that reaches a header (its name, or its rendered subject).
        """
        people = list(self.recipients() if recipients is None else recipients)
        missing = find_missing(environment(False), self.compiled.sources, people)
        problems = [
            f"contact.{m.field} (used in {', '.join(m.parts)}) is missing for "
            f"{len(m.recipients)} contact(s): {_sample(m.recipients)}"
            for m in missing
        ]
        hint = (
            "add the missing values, or guard the variable in the template with "
            "`| default('...')`; nothing was sent"
        )
        # Subjects can only be rendered once no variable is missing.
        header_problems = self._header_problems(people, subjects=not missing)
        if header_problems and not problems:
            hint = "fix these contacts' data (or leave them out); nothing was sent"
        problems += header_problems
        if problems:
            raise TemplateError(
                "some contacts cannot be rendered:\n  " + "\n  ".join(problems),
                where=str(self.campaign.path),
                hint=hint,
            )
        return len(people)

    def _header_problems(self, people: list[Recipient], *, subjects: bool) -> list[str]:
        """Line breaks in header values, and addresses that need SMTPUTF8, for every person."""
        problems = []
        for person in people:
            where = person.source or person.email
            if not person.email.rpartition("@")[0].isascii():
                problems.append(
                    f"{where}: the address {person.email!r} has non-ASCII characters "
                    "before the @ (SMTPUTF8), which mailer cannot send to"
                )
            values = [("the contact's name", person.name), ("the contact's address", person.email)]
            if subjects and any("{" in s for s in self.campaign.subjects):
                values.append(("the subject", render_subject(self.compiled, person)))
            for label, value in values:
                if "\r" in value or "\n" in value:
                    problems.append(f"{where}: {label} has a line break")
        return problems


def _sample(items: tuple[str, ...], limit: int = 10) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def prepare_campaign(path: Path | str, settings: Settings) -> PreparedCampaign:
    """Load, validate and compile a campaign file."""
    campaign = load_campaign(path, settings)
    compiled = compile_campaign(campaign)
    return PreparedCampaign(campaign, compiled, campaign.settings)
