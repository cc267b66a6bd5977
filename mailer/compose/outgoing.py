"""One recipient's finished message: render, check the header values, build the MIME bytes.

``build_outgoing`` is the only build path: send, render, check, preview and
test sends all call it (through ``PreparedCampaign.build``). ``preflight``
checks a whole audience before anything is built, so a contact that cannot be
rendered stops a run before its first message, naming every such contact.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from mailer.compose.compile import CompiledCampaign, environment
from mailer.compose.message import (
    Headers,
    ascii_address,
    build_bytes,
    check_ascii_address,
    check_header_value,
    date_header,
    list_unsubscribe,
    message_id_for,
)
from mailer.compose.render import Rendered, render_for, render_subject
from mailer.compose.variables import find_missing
from mailer.core.errors import TemplateError
from mailer.core.recipient import Recipient


@dataclass(frozen=True, slots=True)
class Envelope:
    """One message ready for the wire: SMTP envelope plus the RFC 5322 bytes (CRLF line ends)."""

    sender: str
    recipient: str
    data: bytes
    message_id: str


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One recipient's finished message and how it was made."""

    envelope: Envelope
    variant: int
    subject: str
    recipient: Recipient
    rendered: Rendered


def build_outgoing(
    compiled: CompiledCampaign,
    recipient: Recipient,
    *,
    now: float,
    salt: str = "",
    subject_prefix: str = "",
    variant: int | None = None,
    key: str | None = None,
) -> Outgoing:
    """Render and build one recipient's MIME message, dated ``now`` (Unix time).

    ``variant`` overrides the A/B assignment (preview only); ``send`` never sets it.
    The Message-ID is made from ``key`` (the journal key: ``xmas@2027`` for a
    yearly greeting, default the campaign id), the address and ``salt`` (a
    [TEST] copy's own): the same message re-sent after a crash keeps its ID, so
    receivers can drop the duplicate, and a different message never shares one.
    """
    campaign = compiled.campaign
    rendered = render_for(compiled, recipient, variant=variant)
    subject = subject_prefix + rendered.subject
    sender = campaign.sender
    check_header_value(subject, "the subject", recipient)
    check_header_value(recipient.name, "the contact's name", recipient)
    check_header_value(recipient.email, "the contact's address", recipient)
    unsub, one_click = list_unsubscribe(
        rendered.unsubscribe_url, campaign.settings.unsubscribe_mailto
    )
    check_ascii_address(recipient.email, recipient)
    domain = ascii_address(sender.email).rpartition("@")[2]
    headers = Headers(
        sender=sender,
        to_name=recipient.name,
        to_email=recipient.email,
        subject=subject,
        message_id=message_id_for(key or campaign.id, recipient.email, domain, salt),
        date=date_header(now),
        list_unsubscribe=unsub,
        one_click=one_click,
    )
    data = build_bytes(headers, rendered.text, rendered.html)
    envelope = Envelope(sender.email, recipient.email, data, headers.message_id)
    return Outgoing(envelope, rendered.variant, subject, recipient, rendered)


def test_salt() -> str:
    """A fresh salt for a [TEST] copy: each test send gets a Message-ID of its own."""
    return "test-" + uuid.uuid4().hex


def preflight(compiled: CompiledCampaign, people: Sequence[Recipient]) -> int:
    """Check every recipient before anything is sent; return how many were checked.

    Raises ``TemplateError`` naming every contact that lacks a template
    variable, has an address mail cannot be sent to, or has a line break in
    a value that reaches a header (its name, or its rendered subject).
    """
    missing = find_missing(environment(False), compiled.sources, people)
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
    header_problems = _header_problems(compiled, people, subjects=not missing)
    if header_problems and not problems:
        hint = "fix these contacts' data (or leave them out); nothing was sent"
    problems += header_problems
    if problems:
        raise TemplateError(
            "some contacts cannot be rendered:\n  " + "\n  ".join(problems),
            where=str(compiled.campaign.path),
            hint=hint,
        )
    return len(people)


def _header_problems(
    compiled: CompiledCampaign, people: Sequence[Recipient], *, subjects: bool
) -> list[str]:
    """Line breaks in header values, and addresses that need SMTPUTF8, for every person."""
    personal_subject = subjects and any("{" in s for s in compiled.campaign.subjects)
    problems = []
    for person in people:
        where = person.source or person.email
        if not person.email.rpartition("@")[0].isascii():
            problems.append(
                f"{where}: the address {person.email!r} has non-ASCII characters "
                "before the @ (SMTPUTF8), which mailer cannot send to"
            )
        values = [("the contact's name", person.name), ("the contact's address", person.email)]
        if personal_subject:
            values.append(("the subject", render_subject(compiled, person)))
        for label, value in values:
            if "\r" in value or "\n" in value:
                problems.append(f"{where}: {label} has a line break")
    return problems


def _sample(items: tuple[str, ...], limit: int = 10) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")
