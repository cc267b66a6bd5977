"""``mailer report``'s cost on a large campaign (a benchmark, not a test).

    python tests/benchmarks/bench_report.py [--runs 5] [--count 100000]

Builds a SQLite journal of ``--count`` recipients over 40 receiving domains and two
languages, an A/B test (a 20 % test share, then the winner), 25 % of them clicking
(1.3 clicks each, over four days), 0.4 % unsubscribing, 1 % hard bounces and 0.1 %
complaints; then, per run, in the same process:

* ``baseline`` — one pass over the campaign's journal rows (``count(*)`` by status):
  the least any report must do;
* ``json``     — the whole report (``campaign_report`` + ``to_dict`` + ``json.dumps``);
* ``html``     — the same, written as the HTML page;
* ``all``      — ``report --all`` over the campaign and 200 small ones.

Prints the medians and each one's ratio to the baseline of the same run.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from mailer.audience.store import connect  # noqa: E402
from mailer.core.clock import stamp  # noqa: E402
from mailer.report.data import campaign_report, index_rows  # noqa: E402
from mailer.report.page import report_html  # noqa: E402

START = datetime(2027, 2, 1, 1, 0, tzinfo=UTC)


def build(db: Path, count: int) -> None:
    """The journal, clicks, feedback events and the A/B test row."""
    rng = random.Random(7)
    conn = connect(db)
    journal, clicks, events = [], [], []
    for i in range(count):
        email = f"r{i}@d{i % 40}.test"
        test = i % 5 == 0
        variant = ("en " if i % 3 == 0 else "zh-CN ") + ("AB"[i % 2] if test else "B")
        when = START + timedelta(seconds=i // 50 + (0 if test else 5 * 3600))
        bounce = rng.random() < 0.01
        status = "failed" if bounce else "sent"
        journal.append(("big", email, variant, status, 1, int(bounce), stamp(when),
                        stamp(when), None if bounce else stamp(when), 1 if test else 2))  # fmt: skip
        if bounce:
            continue
        if rng.random() < 0.25:
            for _ in range(1 + (rng.random() < 0.3)):
                at = when + timedelta(minutes=int(rng.random() ** 2 * 96 * 60))
                clicks.append(("big", email, variant, f"https://tea.test/l{rng.randrange(6)}",
                               stamp(at)))  # fmt: skip
        for kind, share in (("unsubscribe", 0.004), ("complaint", 0.001)):
            if rng.random() < share:
                events.append((kind, email, "big", "bench", f"{kind}:{i}", stamp(when)))
    for small in range(200):
        for i in range(20):
            journal.append((f"c{small}", f"r{i}@d{i % 7}.test", "A", "sent", 1, 0, stamp(START),
                            stamp(START), stamp(START), None))  # fmt: skip
    conn.executemany(
        "INSERT INTO journal (campaign_id, email, variant, status, attempts, bounce, queued_at,"
        " updated_at, sent_at, run_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        journal,
    )
    conn.executemany(
        "INSERT INTO clicks (campaign_id, email, variant, url, clicked_at) VALUES (?, ?, ?, ?, ?)",
        clicks,
    )
    conn.executemany(
        "INSERT INTO feedback_events (kind, email, campaign_id, source, event_id, received_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        events,
    )
    conn.execute(
        "INSERT INTO ab_tests (campaign_id, started_at, decide_after, winner, reason, figures,"
        " decided_at, test_runs_upto, rule) VALUES ('big', ?, ?, 'B', 'B wins', ?, ?, 1, ?)",
        (stamp(START), stamp(START + timedelta(hours=4)),
         json.dumps([{"variant": "A", "sent": count // 10, "hits": count // 60},
                     {"variant": "B", "sent": count // 10, "hits": count // 30}]),
         stamp(START + timedelta(hours=4)),
         json.dumps({"test_share": 0.2, "wait_minutes": 240, "pick_by": "clicks",
                     "default": "A", "min_per_variant": 100})),
    )  # fmt: skip
    conn.commit()
    conn.close()


def timed(work: object) -> float:
    """Wall seconds of one call."""
    started = time.perf_counter()
    work()  # type: ignore[operator]
    return time.perf_counter() - started


def main() -> None:
    """Build once, time each step ``--runs`` times, print medians and ratios."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--count", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "bench.db"
        build(db, args.count)
        conn = connect(db)
        steps = {
            "baseline": lambda: conn.execute(
                "SELECT status, count(*) FROM journal WHERE campaign_id = 'big' GROUP BY status"
            ).fetchall(),
            "json": lambda: json.dumps(campaign_report(conn, "big").to_dict()),
            "html": lambda: report_html(campaign_report(conn, "big"), stamp(START)),
            "all": lambda: [r.to_dict() for r in index_rows(conn)],
        }
        report = campaign_report(conn, "big")
        assert report.ab is not None and report.ab.winner_send is not None
        assert report.overview.sent == args.count
        times: dict[str, list[float]] = {name: [] for name in steps}
        ratios: dict[str, list[float]] = {name: [] for name in steps}
        for _ in range(args.runs):
            run = {name: timed(step) for name, step in steps.items()}
            for name, seconds in run.items():
                times[name].append(seconds)
                ratios[name].append(seconds / run["baseline"])
        conn.close()
    print(f"report of {args.count:,} recipients, median of {args.runs} runs")
    for name in steps:
        print(f"  {name:9} {statistics.median(times[name]):8.3f} s"
              f"   × {statistics.median(ratios[name]):7.1f} the baseline")  # fmt: skip


if __name__ == "__main__":
    main()
