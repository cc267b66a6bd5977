"""Benchmark: planning scheduled waves for a large audience, one core.

Compares, in the same run, on N synthetic contacts spread over ten time zones:
  baseline        group the recipients by their ``timezone`` field (the least any
                  wave planner must do: touch every recipient once)
  plan holiday    ``mailer.schedule.plan`` for a yearly Christmas greeting
  plan birthday   ``plan`` for each contact's birthday (about 11,000 waves)
  run-due pass    a whole ``run_due`` pass over a birthday campaign (CSV audience,
                  N / 10 contacts) after the waves due now were sent: what cron pays
                  every few minutes (plan + lease + journal look-up per open wave)
Prints the median of several runs and ratios against the baseline.

    python tests/benchmarks/bench_schedule.py [--n 100000] [--runs 5]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from mailer.core.recipient import Recipient
from mailer.schedule.parse import parse_schedule
from mailer.schedule.plan import plan_waves as plan

# The day a schedule is parsed on (it picks the year a holiday name is checked in).
TODAY = date(2026, 11, 22)

ZONES = [
    "Asia/Shanghai",
    "Asia/Tokyo",
    "America/New_York",
    "America/Los_Angeles",
    "Europe/London",
    "Europe/Berlin",
    "Australia/Sydney",
    "Asia/Taipei",
    "America/Chicago",
    "",
]
NOW = datetime(2027, 3, 14, 13, tzinfo=UTC)


def recipients(n: int) -> list[Recipient]:
    """Synthetic contacts with a time zone (or none) and a birthday."""
    rng = random.Random(1)
    people = []
    for i in range(n):
        born = date(1960, 1, 1) + timedelta(days=rng.randrange(365 * 40))
        fields = {"email": f"p{i}@x.test", "timezone": rng.choice(ZONES), "birthday": str(born)}
        people.append(Recipient(fields["email"], fields=fields))
    return people


def baseline(people: list[Recipient]) -> None:
    groups: dict[str, list[Recipient]] = {}
    for person in people:
        groups.setdefault(str(person.fields.get("timezone") or "UTC"), []).append(person)


def idle_pass(n: int) -> Callable[[], None]:
    """A workspace whose due waves were sent; the callable runs one more ``run_due`` pass."""
    from mailer.audience.store import connect
    from mailer.core.settings import load_settings
    from mailer.delivery.report import SendOptions
    from mailer.delivery.transport import NullTransport
    from mailer.services.run_due import run_due
    from mailer.services.scheduled import load_scheduled

    root = Path(tempfile.mkdtemp(prefix="bench-schedule-"))
    (root / "campaigns").mkdir()
    (root / "templates").mkdir()
    (root / "templates" / "t.mjml").write_text(
        "<mjml><mj-body><mj-section><mj-column><mj-text>{{ headline }} {{ offer }}"
        "</mj-text></mj-column></mj-section></mj-body></mjml>",
        encoding="utf-8",
    )
    rows = ["email,timezone,birthday"] + [
        f"{p.email},{p.fields['timezone']},{p.fields['birthday']}" for p in recipients(n)
    ]
    (root / "campaigns" / "c.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (root / "campaigns" / "bd.toml").write_text(
        'template = "t"\nsubject = "Happy birthday"\npreheader = "A gift for you"\n'
        '[content]\nheadline = "Hi"\noffer = "Tea"\ncta_text = "Go"\n'
        'cta_url = "https://x.test/"\n[audience]\ncsv = "c.csv"\n'
        "[schedule]\nbirthday = true\ngrace_hours = 48\n",
        encoding="utf-8",
    )
    settings = load_settings(root)
    found, errors = load_scheduled(root / "campaigns", settings, TODAY)
    assert not errors, errors
    conn = connect(settings.db_path)
    options = SendOptions(forced=True)

    def one_pass() -> object:
        return run_due(
            found,
            conn=conn,
            now=NOW,
            transport_for=lambda item, key: NullTransport(),
            options=options,
            checks=False,
        )

    first = one_pass()  # sends the waves due now and records recent misses
    assert any(r.outcome == "sent" for r in first.results), first  # type: ignore[attr-defined]
    return one_pass


def median_time(action: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    people = recipients(args.n)
    holiday = parse_schedule(
        {"holiday": "Christmas", "country": "US", "recurring": "yearly"}, today=TODAY
    )
    birthday = parse_schedule({"birthday": True}, today=TODAY)
    plan(holiday, people[:10], NOW)  # warm the holiday calendar cache
    results = {
        "baseline": median_time(lambda: baseline(people), args.runs),
        "plan holiday": median_time(lambda: plan(holiday, people, NOW), args.runs),
        "plan birthday": median_time(lambda: plan(birthday, people, NOW), args.runs),
    }
    idle = idle_pass(args.n // 10)
    results[f"run-due pass ({args.n // 10} contacts)"] = median_time(idle, args.runs)
    base = results["baseline"]
    print(f"{args.n} recipients, median of {args.runs} runs")
    for name, seconds in results.items():
        per = seconds / (args.n // 10 if name.startswith("run-due") else args.n) * 1e6
        print(
            f"  {name:<32} {seconds * 1000:8.1f} ms  {per:6.2f} µs/recipient  "
            f"{seconds / base:6.1f}× baseline"
        )


if __name__ == "__main__":
    main()
