"""Delivery under faults, against a real aiosmtpd relay on loopback (a benchmark, not a test).

    python tests/benchmarks/bench_delivery.py [--runs 3] [--count 1000] [--rate 100]

For each run, in the same process and against the same kind of relay:

* ``clean``      — ``--count`` recipients at ``--rate`` per second, no faults;
* ``greylisted`` — the same, with 20 % of recipients answered ``451 4.7.1`` on their
  first attempt (greylisting). The retry schedule starts at ``--retry`` seconds (a
  relay whose greylisting window is shorter than that accepts the retry);
* ``after DATA`` — 500 recipients, the relay keeps every 50th message and drops the
  connection before its ``250``: duplicates and unknown recipients are counted;
* ``MAIL FROM``  — the relay answers ``530 5.7.0 Authentication required`` to MAIL FROM:
  the run must pause with no recipient failed.

Prints medians of the wall times and the greylisted/clean ratio (goal ≤ 2×).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from mailer.audience.store import connect  # noqa: E402
from mailer.delivery.relay import parse_smtp_url  # noqa: E402
from mailer.delivery.report import SendOptions, SendReport  # noqa: E402
from mailer.delivery.send import send_campaign  # noqa: E402
from mailer.delivery.smtp import SmtpTransport  # noqa: E402
from tests.send_workspace import prepared_campaign  # noqa: E402
from tests.smtp_server import Faults, RecordingHandler, SmtpServer  # noqa: E402


def send(
    count: int, faults: Faults, *, rate: float | None, retry: float
) -> tuple[float, SendReport, RecordingHandler]:
    """One send to a fresh relay with ``faults``; wall time, report, the relay's record."""
    handler = RecordingHandler(faults)
    server = SmtpServer(handler).start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            throttle = f"per_second = {rate}\nconcurrency = 8" if rate else "concurrency = 8"
            prepared = prepared_campaign(root, count, throttle=throttle)
            transport = SmtpTransport(replace(parse_smtp_url(server.url), pool=8, timeout=10))
            options = SendOptions(retry_base=retry, retry_max=retry * 4)
            started = time.perf_counter()
            report = send_campaign(
                prepared, conn=connect(root / "mailer.db"), transport=transport, options=options
            )
            return time.perf_counter() - started, report, handler
    finally:
        server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--retry", type=float, default=2.0)
    args = parser.parse_args()
    clean, grey = [], []
    for _ in range(args.runs):
        seconds, report, _ = send(args.count, Faults(), rate=args.rate, retry=args.retry)
        assert report.sent == args.count
        clean.append(seconds)
        faults = Faults(greylist_fraction=0.2)
        seconds, report, handler = send(args.count, faults, rate=args.rate, retry=args.retry)
        assert report.sent == args.count, report
        grey.append(seconds)
        greylisted = len(handler.greylisted)
    print(f"clean       {statistics.median(clean):6.2f} s  ({args.count} at {args.rate:g}/s)")
    print(
        f"greylisted  {statistics.median(grey):6.2f} s  ({greylisted} of {args.count} "
        f"greylisted once, first retry after {args.retry:g} s)"
    )
    ratio = statistics.median(grey) / statistics.median(clean)
    print(f"ratio       {ratio:6.2f}x  (goal <= 2x)")

    _, report, handler = send(500, Faults(keep_then_drop_every=50), rate=None, retry=args.retry)
    delivered = Counter(handler.delivered_to())
    twice = sum(1 for n in delivered.values() if n > 1)
    print(
        f"after DATA  500 recipients, {len(handler.kept_then_dropped)} kept then dropped: "
        f"{twice} delivered twice, {len(report.unknown)} unknown, {report.sent} sent"
    )
    refusal = Faults(mail_reply="530 5.7.0 Authentication required")
    _, report, _ = send(100, refusal, rate=None, retry=args.retry)
    print(
        f"MAIL FROM   530: failed {report.failed}, sent {report.sent}, pending "
        f"{report.pending}; paused: {report.paused}"
    )


if __name__ == "__main__":
    main()
