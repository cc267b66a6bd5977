"""Before and beside a send: who a run would send to, dry runs, and [TEST] sends.

``plan_run`` reads the journal and the suppression list and decides, without
writing anything, who a run sends to; ``send_campaign`` and ``dry_run`` share
it, so a dry run shows exactly what a real run would do. ``send_tests`` sends
one message per subject variant to the marketer, outside the journal.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from mailer.compose.outgoing import Envelope
from mailer.core.errors import SendError
from mailer.core.recipient import Recipient
from mailer.delivery import journal as jr
from mailer.delivery.transport import ConnectionLost, OutboxTransport, Transport

if TYPE_CHECKING:
    from mailer.compose.dkim import DkimSigner
    from mailer.core.settings import FrequencyCapSetting
    from mailer.delivery.report import SendOptions


def _label(variant: int) -> str:
    from mailer.compose.render import variant_label

    return variant_label(variant)


@dataclass
class Plan:
    """Who a run would send to, decided from the audience, the journal and suppressions."""

    todo: list[Recipient]
    audience: int
    skipped_sent: int = 0
    skipped_failed: int = 0
    suppressed: list[Recipient] = field(default_factory=list)
    capped: list[Recipient] = field(default_factory=list)  # held back by the frequency cap
    unknown: list[str] = field(default_factory=list)


def plan_run(
    conn: sqlite3.Connection,
    campaign_id: str,
    people: Iterable[Recipient],
    *,
    resend_unknown: bool = False,
    retry_failed: bool = False,
    cap: FrequencyCapSetting | None = None,
    now: datetime | None = None,
) -> Plan:
    """Decide, without writing anything, who this run sends to.

    ``cap`` (the workspace's frequency cap) holds back anyone this run would
    send to who already got ``cap.max_messages`` campaign emails in the last
    ``cap.days`` days, counted from the journal (this campaign's own rows
    excepted, so a resumed run does not cap itself).
    """
    entries = jr.Journal(conn, campaign_id).entries()
    suppressed = jr.suppressed_set(conn)
    capped: set[str] = set()
    if cap is not None:
        capped = jr.capped_addresses(
            conn,
            max_messages=cap.max_messages,
            days=cap.days,
            exclude=campaign_id,
            now=now or datetime.now(UTC),
        )
    seen: set[str] = set()
    plan = Plan([], 0)
    for person in people:
        key = person.email.lower()
        if key in seen:  # the same address twice in an audience gets one message
            continue
        seen.add(key)
        plan.audience += 1
        entry = entries.get(key)
        status = entry.status if entry else "queued"
        if status == "sent":
            plan.skipped_sent += 1
        elif status == "failed" and (not retry_failed or (entry and entry.bounce)):
            plan.skipped_failed += 1  # its row keeps the SMTP reply that failed it
        elif key in suppressed:
            plan.suppressed.append(person)
        elif status == "sending" and not resend_unknown:
            plan.unknown.append(person.email)
        elif key in capped:
            plan.capped.append(person)
        else:
            plan.todo.append(person)
    return plan


@dataclass
class DryRun:
    """What a real send would do now: nothing is written or sent."""

    campaign_id: str
    plan: Plan
    variants: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)
    total_bytes: int = 0
    largest: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "campaign": self.campaign_id,
            "dry_run": True,
            "audience": self.plan.audience,
            "would_send": len(self.plan.todo),
            "skipped": {
                "already_sent": self.plan.skipped_sent,
                "failed_before": self.plan.skipped_failed,
                "suppressed": len(self.plan.suppressed),
                "frequency_capped": len(self.plan.capped),
            },
            "unknown": self.plan.unknown,
            "variants": dict(sorted(self.variants.items())),
            "examples": dict(sorted(self.examples.items())),
            "total_bytes": self.total_bytes,
            "largest_bytes": self.largest,
        }


def dry_run(
    prepared: Any,
    conn: sqlite3.Connection,
    *,
    options: SendOptions | None = None,
    recipients: Iterable[Recipient] | None = None,
    campaign_id: str | None = None,
    build: bool = True,
) -> DryRun:
    """Check and (with ``build``) render every message a real send would send; send nothing."""
    resend_unknown = options.resend_unknown if options else False
    retry_failed = options.retry_failed if options else False
    people = list(prepared.recipients() if recipients is None else recipients)
    prepared.preflight(people)
    key = campaign_id or prepared.campaign.id
    plan = plan_run(
        conn,
        key,
        people,
        resend_unknown=resend_unknown,
        retry_failed=retry_failed,
        cap=prepared.settings.frequency_cap,
    )
    result = DryRun(key, plan)
    if build:
        for person in plan.todo:
            out = prepared.build(person)
            label = _label(out.variant)
            result.variants[label] += 1
            result.examples.setdefault(label, out.subject)
            result.total_bytes += len(out.envelope.data)
            result.largest = max(result.largest, len(out.envelope.data))
        return result
    from mailer.compose.render import assign_variant

    count = len(prepared.campaign.subjects)
    for person in plan.todo:
        label = _label(assign_variant(prepared.campaign.id, person.email, count))
        result.variants[label] += 1
        if label not in result.examples:
            # One real render per variant, so the summary shows a subject as sent.
            result.examples[label] = prepared.build(person).subject
    return result


@dataclass(frozen=True)
class TestSend:
    """One [TEST] message: which variant, its subject, and the relay's answer."""

    variant: str
    subject: str
    code: int
    reply: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "variant": self.variant,
            "subject": self.subject,
            "code": self.code,
            "reply": self.reply,
        }


def send_tests(
    prepared: Any, address: str, transport: Transport, *, dkim: DkimSigner | None = None
) -> list[TestSend]:
    """Send each subject variant once to ``address``, marked [TEST]; the journal is not touched."""
    return asyncio.run(_send_tests(prepared, address, transport, dkim))


async def _send_tests(
    prepared: Any, address: str, transport: Transport, dkim: DkimSigner | None
) -> list[TestSend]:
    from mailer.compose.message import ascii_address

    samples = [
        prepared.build(person, salt="test", subject_prefix="[TEST] ")
        for person in variant_samples(prepared)
    ]
    results: list[TestSend] = []
    await transport.start()
    try:
        for out in samples:
            data = readdress(out.envelope.data, ascii_address(address))
            if dkim is not None:
                data = dkim.sign(data)
            envelope = Envelope(out.envelope.sender, address, data, out.envelope.message_id)
            target = transport
            if isinstance(transport, OutboxTransport):
                # One file per variant: the outbox names files by recipient.
                target = OutboxTransport(transport.folder / f"test-{_label(out.variant)}")
                await target.start()
            try:
                delivery = await target.deliver(envelope)
            except ConnectionLost as exc:
                raise SendError(f"test send failed: {exc.message}", where=exc.where) from None
            results.append(
                TestSend(_label(out.variant), out.subject, delivery.code, delivery.reply)
            )
    finally:
        await transport.close()
    return results


def variant_samples(prepared: Any) -> list[Recipient]:
    """One audience member's data per subject variant, under a stand-in address.

    The data shows how the message really renders; the address (which the
    unsubscribe link's token and the Message-ID are made from) belongs to
    nobody, so unsubscribing from a [TEST] message cannot unsubscribe a contact.
    """
    from mailer.compose.render import assign_variant

    campaign = prepared.campaign
    count = len(campaign.subjects)
    found: dict[int, Recipient] = {}
    first: Recipient | None = None
    for person in prepared.recipients():
        first = first or person
        found.setdefault(assign_variant(campaign.id, person.email, count), person)
        if len(found) == count:
            break
    if first is None:
        raise SendError("the audience is empty: there is nobody to base a test message on")
    samples = [
        _stand_in(found.get(variant, first), campaign.id, variant, count)
        for variant in range(count)
    ]
    prepared.preflight(samples)
    return samples


def _stand_in(base: Recipient, campaign_id: str, variant: int, count: int) -> Recipient:
    from mailer.compose.render import assign_variant

    for number in range(100_000):
        email = f"variant-{number}@test-send.invalid"
        if assign_variant(campaign_id, email, count) == variant:
            return replace(base, email=email, fields={**base.fields, "email": email})
    raise SendError(f"no stand-in address found for variant {variant}")  # pragma: no cover


def readdress(data: bytes, address: str) -> bytes:
    """The message with its To header (and folded continuation lines) replaced by ``address``."""
    head, sep, body = data.partition(b"\r\n\r\n")
    lines: list[bytes] = []
    skipping = False
    for line in head.split(b"\r\n"):
        if skipping and line[:1] in (b" ", b"\t"):
            continue
        skipping = line.lower().startswith(b"to:")
        lines.append(b"To: " + address.encode("ascii") if skipping else line)
    return b"\r\n".join(lines) + sep + body
