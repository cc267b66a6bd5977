"""Adaptive back-off against a real aiosmtpd relay that asks us to slow down (451 rate limit).

The send loop runs on a virtual clock: waits take no real time, and each attempt
is noted at the virtual moment the loop handed it to the relay. So the gaps
asserted here are the throttle's decisions, whatever the machine's load.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from dataclasses import replace
from pathlib import Path

from aiosmtpd.smtp import SMTP, Envelope, Session

from mailer.audience.store import connect
from mailer.compose.outgoing import Envelope as Message
from mailer.delivery.relay import parse_smtp_url
from mailer.delivery.send import send_campaign
from mailer.delivery.smtp import SmtpTransport
from mailer.delivery.transport import Delivery
from tests.clock import VirtualClock
from tests.send_workspace import addresses, fast_options, prepared_campaign
from tests.smtp_server import RecordingHandler, SmtpServer


class SlowDownHandler(RecordingHandler):
    """Answers the first ``refuse`` DATA commands with 451 "rate limit" (after ``delay`` real
    seconds, so that several can be in flight at once), then accepts."""

    def __init__(self, refuse: int, delay: float = 0.0):
        super().__init__()
        self.refuse = refuse
        self.delay = delay
        self.count = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Refuse the first few."""
        self.count += 1
        if self.count <= self.refuse:
            await asyncio.sleep(self.delay)
            return "451 4.7.0 Rate limit exceeded, slow down"
        return await super().handle_DATA(server, session, envelope)


class Noting(SmtpTransport):
    """The real SMTP transport, noting the virtual time of every attempt."""

    def __init__(self, url: str, clock: VirtualClock):
        super().__init__(replace(parse_smtp_url(url), pool=4, timeout=5))
        self.clock = clock
        self.tries: list[float] = []

    async def deliver(self, envelope: Message, go=None) -> Delivery | None:
        self.tries.append(self.clock.now)
        return await super().deliver(envelope, go=go)


def run(tmp_path: Path, handler: SlowDownHandler, count: int, **options: object) -> list[float]:
    server = SmtpServer(handler).start()
    clock = VirtualClock()
    try:
        prepared = prepared_campaign(tmp_path, count, throttle="per_second = 50")
        transport = Noting(server.url, clock)
        report = send_campaign(
            prepared,
            conn=connect(tmp_path / "mailer.db"),
            transport=transport,
            options=fast_options(retry_base=0.01, retry_max=0.02, **options),
            clock=clock,
        )
    finally:
        server.close()
    assert report.sent == count and report.complete
    assert Counter(handler.delivered_to()) == Counter(addresses(count))
    return transport.tries


def test_repeated_slow_down_replies_pause_longer_then_send_slower(tmp_path: Path) -> None:
    handler = SlowDownHandler(refuse=4)
    tries = run(tmp_path, handler, 5, concurrency=1, backoff_base=0.05, backoff_max=1.0)
    gaps = [b - a for a, b in itertools.pairwise(tries)]
    # Nothing got through between the refusals: each pause doubles (0.05, 0.1, 0.2, 0.4 s).
    for number, gap in enumerate(gaps[:4]):
        assert gap >= 0.05 * 2**number - 1e-9, gaps
    # Afterwards the rate is 50/s halved four times (about 3/s), not 50/s again:
    # four more messages take about a second, not 0.08 s.
    assert sum(gaps[4:]) >= 0.8, gaps


def test_complaints_from_messages_in_flight_together_count_once(tmp_path: Path) -> None:
    handler = SlowDownHandler(refuse=4, delay=0.3)
    tries = run(tmp_path, handler, 8, concurrency=4, backoff_base=0.2, backoff_max=5.0)
    first_four, later = tries[:4], tries[4:]
    assert first_four[-1] - first_four[0] < 0.1  # in flight together (50/s: 0.02 s apart)
    wait = later[0] - first_four[-1]
    # One pause of 0.2 s; four compounding complaints would have paused for 1.6 s.
    assert 0.2 - 1e-9 <= wait < 0.8, wait
