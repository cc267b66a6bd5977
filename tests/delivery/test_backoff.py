"""Adaptive back-off against a real aiosmtpd relay that asks us to slow down (451)."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

from aiosmtpd.smtp import SMTP, Envelope, Session

from mailer.audience.store import connect
from mailer.delivery.relay import parse_smtp_url
from mailer.delivery.send import send_campaign
from mailer.delivery.smtp import SmtpTransport
from tests.send_workspace import addresses, fast_options, prepared_campaign
from tests.smtp_server import RecordingHandler, SmtpServer


class SlowDownHandler(RecordingHandler):
    """Answers the first ``refuse`` DATA commands with 451 "rate limit" (after ``delay``
    seconds, so that several can be in flight at once), then accepts."""

    def __init__(self, refuse: int, delay: float = 0.0):
        super().__init__()
        self.refuse = refuse
        self.delay = delay
        self.tries: list[float] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Record when each attempt arrived; refuse the first few."""
        self.tries.append(time.monotonic())
        if len(self.tries) <= self.refuse:
            await asyncio.sleep(self.delay)
            return "451 4.7.0 Rate limit exceeded, slow down"
        return await super().handle_DATA(server, session, envelope)


def run(tmp_path: Path, handler: SlowDownHandler, count: int, **options: object) -> None:
    server = SmtpServer(handler).start()
    try:
        prepared = prepared_campaign(tmp_path, count, throttle="per_second = 50")
        transport = SmtpTransport(replace(parse_smtp_url(server.url), pool=4, timeout=5))
        report = send_campaign(
            prepared,
            conn=connect(tmp_path / "mailer.db"),
            transport=transport,
            options=fast_options(retry_base=0.01, retry_max=0.02, **options),
        )
    finally:
        server.close()
    assert report.sent == count and report.complete
    assert Counter(handler.delivered_to()) == Counter(addresses(count))


def test_repeated_slow_down_replies_pause_longer_then_send_slower(tmp_path: Path) -> None:
    handler = SlowDownHandler(refuse=4)
    run(tmp_path, handler, 5, concurrency=1, backoff_base=0.05, backoff_max=1.0)
    gaps = [b - a for a, b in itertools.pairwise(handler.tries)]
    # Nothing got through between the refusals: each pause doubles (0.05, 0.1, 0.2, 0.4 s).
    for number, gap in enumerate(gaps[:4]):
        assert gap >= 0.05 * 2**number - 0.005, gaps
    # Afterwards the rate is 50/s halved four times (about 3/s), not 50/s again:
    # four more messages take about a second, not 0.08 s.
    assert sum(gaps[4:]) >= 0.8, gaps


def test_complaints_from_messages_in_flight_together_count_once(tmp_path: Path) -> None:
    handler = SlowDownHandler(refuse=4, delay=0.3)
    run(tmp_path, handler, 8, concurrency=4, backoff_base=0.2, backoff_max=5.0)
    first_four, later = handler.tries[:4], handler.tries[4:]
    assert first_four[-1] - first_four[0] < 0.15  # they were in flight together
    wait = later[0] - (first_four[0] + handler.delay)
    # One pause of 0.2 s; four compounding complaints would have paused for 1.6 s.
    assert 0.19 <= wait < 0.8, wait
