"""[TEST] sends: one message per subject variant to the marketer, outside the journal."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from mailer.compose.dkim import DkimSigner
from mailer.compose.message import ascii_address
from mailer.compose.outgoing import Envelope, test_salt
from mailer.compose.render import assign_variant, stand_in, variant_label
from mailer.core.errors import SendError
from mailer.core.recipient import Recipient
from mailer.delivery.source import CampaignSource
from mailer.delivery.transport import ConnectionLost, OutboxTransport, Transport, hand_over

# A [TEST] copy goes out under an address nobody has (see ``stand_in``).
_TEST_ADDRESS = "variant-{}@test-send.invalid"


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
    prepared: CampaignSource,
    address: str,
    transport: Transport,
    *,
    now: float,
    dkim: DkimSigner | None = None,
) -> list[TestSend]:
    """Send each subject variant once to ``address``, marked [TEST]; the journal is not touched.

    ``now`` (Unix time) is the DKIM signature's timestamp.
    """
    return asyncio.run(_send_tests(prepared, address, transport, dkim, now))


async def _send_tests(
    prepared: CampaignSource,
    address: str,
    transport: Transport,
    dkim: DkimSigner | None,
    now: float,
) -> list[TestSend]:
    samples = [
        prepared.build(person, salt=test_salt(), subject_prefix="[TEST] ")
        for person in variant_samples(prepared)
    ]
    results: list[TestSend] = []
    await transport.start()
    try:
        for out in samples:
            data = readdress(out.envelope.data, ascii_address(address))
            if dkim is not None:
                data = dkim.sign(data, timestamp=int(now))
            envelope = Envelope(out.envelope.sender, address, data, out.envelope.message_id)
            target = transport
            if isinstance(transport, OutboxTransport):
                # One file per variant: the outbox names files by recipient.
                target = OutboxTransport(transport.folder / f"test-{variant_label(out.variant)}")
                await target.start()
            try:
                delivery = await hand_over(target, envelope)
            except ConnectionLost as exc:
                raise SendError(f"test send failed: {exc.message}", where=exc.where) from None
            results.append(
                TestSend(variant_label(out.variant), out.subject, delivery.code, delivery.reply)
            )
    finally:
        await transport.close()
    return results


def variant_samples(prepared: CampaignSource) -> list[Recipient]:
    """One audience member's data per subject variant, under a stand-in address.

    The data shows how the message really renders; the address (which the
    unsubscribe link's token and the Message-ID are made from) belongs to
    nobody, so unsubscribing from a [TEST] message cannot unsubscribe a contact.
    """
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
        stand_in(found.get(variant, first), campaign.id, variant, count, _TEST_ADDRESS)
        for variant in range(count)
    ]
    prepared.preflight(samples)
    return samples


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
