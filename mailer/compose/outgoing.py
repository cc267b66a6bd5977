"""One recipient's finished message: render, check the header values, build the MIME bytes.

``build_outgoing`` is the only build path: send, render, check, preview and
test sends all call it (through ``PreparedCampaign.build``). ``preflight``
checks a whole audience before anything is built, so a contact that cannot be
rendered stops a run before its first message, naming every such contact.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from mailer.compose.compile import CompiledCampaign, environment
from mailer.compose.locales import locale_key, pick_locale, version_label
from mailer.compose.message import (
    CONTROL,
    Headers,
    ascii_address,
    build_bytes,
    check_ascii_address,
    check_header_value,
    date_header,
    list_unsubscribe,
    message_id_for,
)
from mailer.compose.render import Rendered, render_for, render_subject, variant_label
from mailer.compose.tracking import opted_out, track_links
from mailer.compose.variables import needed_fields, printed_fields
from mailer.core.errors import TemplateError
from mailer.core.recipient import Recipient

_SAMPLE = 10  # recipients named per kind of problem


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
    label: str = ""  # "A", or "en A" when the campaign has several languages

    @property
    def variant_name(self) -> str:
        """The A/B variant as reported and journaled ("A"; "en A" in a multilingual campaign)."""
        return self.label or variant_label(self.variant)


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

    ``variant`` overrides the A/B assignment (the preview; the winner of an A/B test,
    for the rest of the audience); a language version with fewer subjects keeps its own.
    The Message-ID is made from ``key`` (the journal key: ``xmas@2027`` for a
    yearly greeting, default the campaign id), the address and ``salt`` (a
    [TEST] copy's own): the same message re-sent after a crash keeps its ID, so
    receivers can drop the duplicate, and a different message never shares one.
    """
    campaign = compiled.campaign
    version = pick_locale(compiled, recipient)  # the recipient's language version
    if variant is not None and variant >= len(version.subjects):
        variant = None
    rendered = render_for(version, recipient, variant=variant, issued=now, key=key)
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
        feedback_id=f"{key or campaign.id}:{domain}",
    )
    label = version_label(compiled, version, rendered.variant)
    tracking = campaign.settings.track_clicks_url
    if tracking and not opted_out(recipient):
        rendered = track_links(rendered, tracking, recipient, key or campaign.id, label)
    data = build_bytes(headers, rendered.text, rendered.html)
    envelope = Envelope(sender.email, recipient.email, data, headers.message_id)
    return Outgoing(envelope, rendered.variant, subject, recipient, rendered, label)


def test_salt() -> str:
    """A fresh salt for a [TEST] copy: each test send gets a Message-ID of its own."""
    return "test-" + uuid.uuid4().hex


class Preflight:
    """Checks recipients before anything is sent, batch by batch, in constant memory.

    A recipient fails when they lack a variable the templates need unguarded,
    have an empty value where a template prints it as it is (``{{ contact.city
    }}的朋友`` would read "的朋友"), have an address mail cannot be sent to
    (non-ASCII before the @), or have a line break or another control character
    (NUL ...) in a value that reaches a header (their name, their rendered
    subject). ``raise_problems`` then names the first few of each kind and
    counts them all.
    """

    def __init__(self, compiled: CompiledCampaign):
        self.compiled = compiled
        env = environment(False)
        # Each language version needs its own fields: a person is checked against theirs.
        self._versions = {
            key: (needed_fields(env, c.sources), printed_fields(env, c.sources))
            for key, c in [(None, compiled), *compiled.locales.items()]
        }
        self.needed: dict[str, list[str]] = {}
        self.printed: dict[str, list[str]] = {}
        for needed, printed in self._versions.values():
            _merge_uses(self.needed, needed)
            _merge_uses(self.printed, printed)
        self.missing: dict[str, list[str]] = {field: [] for field in self.needed}
        self.missing_counts: Counter[str] = Counter()
        self.empty: dict[str, list[str]] = {field: [] for field in self.printed}
        self.empty_counts: Counter[str] = Counter()
        self.header: list[str] = []
        self.header_count = 0
        self.checked = 0
        self._personal_subject = any(
            "{" in s for c in [compiled, *compiled.locales.values()] for s in c.campaign.subjects
        )

    def check(self, people: Iterable[Recipient]) -> int:
        """Check ``people``; return how many."""
        count = 0
        for person in people:
            count += 1
            lacks = False
            needed, printed = self._versions[locale_key(self.compiled.locales, person.fields)]
            for field in needed:
                if person.fields.get(field) is None:
                    lacks = True
                    self.missing_counts[field] += 1
                    if len(self.missing[field]) < _SAMPLE:
                        self.missing[field].append(person.source or person.email)
            for field in printed:
                value = person.fields.get(field)
                if isinstance(value, str) and not value.strip():
                    self.empty_counts[field] += 1
                    if len(self.empty[field]) < _SAMPLE:
                        self.empty[field].append(person.source or person.email)
            for problem in self._header_problems(person, subject=not lacks):
                self.header_count += 1
                if len(self.header) < _SAMPLE * 5:
                    self.header.append(problem)
        self.checked += count
        return count

    def _header_problems(self, person: Recipient, *, subject: bool) -> list[str]:
        where = person.source or person.email
        problems = []
        if not person.email.rpartition("@")[0].isascii():
            problems.append(
                f"{where}: the address {person.email!r} has non-ASCII characters "
                "before the @ (SMTPUTF8), which mailer cannot send to"
            )
        values = [("the contact's name", person.name), ("the contact's address", person.email)]
        if subject and self._personal_subject:
            values.append(("the subject", render_subject(self.compiled, person)))
        for label, value in values:
            found = CONTROL.search(value)
            if found is None:
                continue
            what = (
                "a line break"
                if found.group(0) in "\r\n"
                else f"a control character (U+{ord(found.group(0)):04X})"
            )
            problems.append(f"{where}: {label} has {what}")
        return problems

    @property
    def failed(self) -> bool:
        """True once some recipient has a problem."""
        return bool(self.missing_counts or self.empty_counts) or self.header_count > 0

    def raise_problems(self) -> None:
        """Raise ``TemplateError`` naming the recipients that cannot be rendered, if any."""
        problems = [
            f"contact.{field} (used in {', '.join(self.needed[field])}) is missing for "
            f"{self.missing_counts[field]} contact(s): "
            + _sample(self.missing[field], self.missing_counts[field])
            for field in sorted(self.missing_counts)
        ]
        problems += [
            f"contact.{field} (printed in {', '.join(self.printed[field])}) is empty for "
            f"{self.empty_counts[field]} contact(s): "
            + _sample(self.empty[field], self.empty_counts[field])
            for field in sorted(self.empty_counts)
        ]
        hint = (
            "add the missing values, or give the variable a default in the template: "
            "`| default('...', true)` (true: empty values get it too); nothing was sent"
        )
        if self.header_count and not problems:
            hint = "fix these contacts' data (or leave them out); nothing was sent"
        problems += self.header
        if self.header_count > len(self.header):
            problems.append(f"... and {self.header_count - len(self.header)} more like these")
        if problems:
            raise TemplateError(
                "some contacts cannot be rendered:\n  " + "\n  ".join(problems),
                where=str(self.compiled.campaign.path),
                hint=hint,
            )


def _merge_uses(into: dict[str, list[str]], more: Mapping[str, list[str]]) -> None:
    """Add ``more``'s fields and where they are used to ``into`` (no repeats)."""
    for field, uses in more.items():
        known = into.setdefault(field, [])
        known.extend(u for u in dict.fromkeys(uses) if u not in known)


def preflight(compiled: CompiledCampaign, people: Iterable[Recipient]) -> int:
    """Check every recipient before anything is sent (see ``Preflight``); return the count."""
    check = Preflight(compiled)
    check.check(people)
    check.raise_problems()
    return check.checked


def _sample(items: list[str], total: int) -> str:
    shown = ", ".join(items)
    return shown + (f" and {total - len(items)} more" if total > len(items) else "")
