"""Benchmark: contacts at scale (issue targets for 1,000,000 contacts).

Measured in the same run, each against a plain-SQLite baseline:
  import     `import_contacts` of a synthetic CSV (validate, dedupe, upsert, list, RFM)
             vs  plain load: csv.reader -> executemany INSERT of the raw cells, same schema
  count      `count_segment` of compound expressions (SQL path; one sandbox-path figure)
             vs  SELECT count(*) FROM contacts
  stream     iterating `select_recipients(...).recipients` over everyone (Recipient objects
             with every template field) vs  iterating SELECT * FROM contacts
Import and stream run in fresh subprocesses so their peak RSS (ru_maxrss) is their own.
Prints the median of --runs runs (seconds) and ratios to the baselines.

    python tests/benchmarks/bench_contacts.py [--n 1000000] [--runs 3] [--dir /tmp/bench-contacts]
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

TARGETS = {"import": 60.0, "count": 5.0, "rss_mb": 300.0}
NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
COMPOUND = [
    "city == 'Shanghai' and orders >= 3 and rfm.recency >= 4",
    "('vip' in tags or tier == 'vip') and not birthday_today and last_order_days > 90",
]
SANDBOX = "city|lower == 'shanghai' and orders >= 3"  # no SQL translation: row by row
CITIES = ["Shanghai", "Beijing", "Shenzhen", "Guangzhou", "Hangzhou", "Chengdu", "Wuhan", "Suzhou"]
ZONES = ["Asia/Shanghai", "Asia/Hong_Kong", "Asia/Taipei", "Europe/London", "America/New_York"]
HEADER = [
    "email", "first_name", "last_name", "locale", "timezone", "birthday", "tags", "orders",
    "total_spent", "last_order_at", "city", "tier",
]  # fmt: skip


def generate(path: Path, n: int) -> None:
    """A synthetic contact file: n rows, seeded, with a realistic spread of values."""
    rnd = random.Random(42)
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(HEADER)
        for i in range(n):
            orders = rnd.choice([0, 0, 0, 1, 1, 2, 3, 4, 5, 8, 13])
            birthday = f"19{rnd.randint(50, 99)}-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}"
            last = f"202{rnd.randint(3, 6)}-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}"
            writer.writerow([
                f"user{i}@shop{i % 500}.example.com", f"First{i}", f"Last{i % 1000}",
                rnd.choice(["zh-CN", "zh-TW", "en-GB"]), rnd.choice(ZONES),
                birthday if rnd.random() < 0.7 else "",
                ";".join(rnd.sample(["vip", "tea", "coffee", "new", "lapsed"], rnd.randint(0, 2))),
                orders, f"{orders * rnd.uniform(10, 200):.2f}" if orders else "",
                last if orders else "", rnd.choice(CITIES),
                rnd.choice(["market", "member", "vip"]),
            ])  # fmt: skip


def peak_mb() -> float:
    """This process's peak resident set size in MB (Linux reports KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- phases, each run in its own process -----------------------------------------------
def phase_import(db: Path, source: Path) -> dict[str, float]:
    from mailer.audience import store
    from mailer.audience.importer import import_contacts

    conn = store.connect(db)
    start = time.perf_counter()
    result = import_contacts(conn, source, list_name="everyone", now=NOW)
    seconds = time.perf_counter() - start
    assert result.inserted > 0 and not result.rejected
    return {"seconds": seconds, "rss_mb": peak_mb()}


def phase_plain_load(db: Path, source: Path) -> dict[str, float]:
    from mailer.audience import store

    conn = store.connect(db)
    sql = (
        "INSERT INTO contacts (email, first_name, last_name, locale, timezone, birthday, tags,"
        " attributes, orders, total_spent, last_order_at, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, '{}', ?, ?, ?, 'now', 'now')"
    )
    start = time.perf_counter()
    with source.open(encoding="utf-8", newline="") as handle, store.transaction(conn):
        reader = csv.reader(handle)
        next(reader)
        batch: list[list[str]] = []
        for row in reader:
            batch.append(row[:10])
            if len(batch) == 5000:
                conn.executemany(sql, batch)
                batch = []
        conn.executemany(sql, batch)
    return {"seconds": time.perf_counter() - start, "rss_mb": peak_mb()}


def phase_stream(db: Path, segment: str | None) -> dict[str, float]:
    from mailer.audience import store
    from mailer.audience.selection import select_recipients

    conn = store.connect(db)
    start = time.perf_counter()
    selection = select_recipients(conn, list_name="everyone", segment=segment or None, now=NOW)
    count = sum(1 for _ in selection.recipients)
    assert count == selection.selected
    return {"seconds": time.perf_counter() - start, "rss_mb": peak_mb(), "count": count}


def phase_plain_stream(db: Path) -> dict[str, float]:
    from mailer.audience import store

    conn = store.connect(db)
    start = time.perf_counter()
    count = sum(1 for _ in conn.execute("SELECT * FROM contacts"))
    return {"seconds": time.perf_counter() - start, "rss_mb": peak_mb(), "count": count}


def in_subprocess(*args: str) -> dict[str, float]:
    """Run one phase of this script in a fresh Python and return its figures."""
    out = subprocess.run(
        [sys.executable, __file__, "--phase", *args], check=True, capture_output=True, text=True
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def median_of(runs: int, measure: Callable[[], float]) -> float:
    """Median seconds of several calls."""
    return statistics.median(measure() for _ in range(runs))


def timed(action: Callable[[], object]) -> float:
    """Seconds one call takes."""
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main() -> None:
    """Generate, then measure import, count and stream against their baselines."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/bench-contacts"))
    parser.add_argument("--sandbox", action="store_true", help="also time a row-by-row segment")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    source = args.dir / f"contacts-{args.n}.csv"
    if not source.exists():
        print(f"generating {args.n:,} contacts ...", flush=True)
        generate(source, args.n)
    print(f"{args.n:,} contacts, {source.stat().st_size / 1e6:.0f} MB CSV, {args.runs} runs")

    def fresh(name: str) -> Path:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{args.dir / name}{suffix}").unlink(missing_ok=True)
        return args.dir / name

    imports, loads = [], []
    for _ in range(args.runs):
        loads.append(in_subprocess("plain_load", str(fresh("plain.db")), str(source)))
        imports.append(in_subprocess("import", str(fresh("mailer.db")), str(source)))
    imp = statistics.median(r["seconds"] for r in imports)
    base = statistics.median(r["seconds"] for r in loads)
    print(f"import    {imp:7.2f} s  (target <= {TARGETS['import']:.0f} s)  "
          f"plain load {base:6.2f} s  ratio {imp / base:5.2f}x  "
          f"peak RSS {max(r['rss_mb'] for r in imports):.0f} MB")  # fmt: skip

    from mailer.audience import store
    from mailer.audience.selection import count_segment

    conn = store.connect(args.dir / "mailer.db")
    base = median_of(args.runs, lambda: timed(lambda: conn.execute(
        "SELECT count(*) FROM contacts").fetchone()))  # fmt: skip
    print(f"count(*)  {base:7.3f} s  (baseline)")
    for expression in COMPOUND:

        def count(e: str = expression) -> float:
            return timed(lambda: count_segment(conn, e, now=NOW))

        seconds = median_of(args.runs, count)
        print(f"segment   {seconds:7.3f} s  (target <= {TARGETS['count']:.0f} s)  ratio "
              f"{seconds / base:6.1f}x  = {count_segment(conn, expression, now=NOW):,}  {expression}")  # fmt: skip
    if args.sandbox:
        seconds = timed(lambda: count_segment(conn, SANDBOX, now=NOW))
        print(f"sandbox   {seconds:7.3f} s  (row by row, 1 run)  {SANDBOX}")

    db = str(args.dir / "mailer.db")
    streams = [in_subprocess("stream", db, "") for _ in range(args.runs)]
    plain = [in_subprocess("plain_stream", db) for _ in range(args.runs)]
    seconds = statistics.median(r["seconds"] for r in streams)
    base = statistics.median(r["seconds"] for r in plain)
    print(f"stream    {seconds:7.2f} s  {int(streams[0]['count']):,} recipients  ratio "
          f"{seconds / base:5.2f}x to plain SELECT ({base:.2f} s)  peak RSS "
          f"{max(r['rss_mb'] for r in streams):.0f} MB (target <= {TARGETS['rss_mb']:.0f}; "
          f"plain SELECT {max(r['rss_mb'] for r in plain):.0f} MB)")  # fmt: skip
    seg = in_subprocess("stream", db, COMPOUND[0])
    print(f"stream    {seg['seconds']:7.2f} s  {int(seg['count']):,} recipients of "
          f"{COMPOUND[0]!r}  peak RSS {seg['rss_mb']:.0f} MB (1 run)")  # fmt: skip


def run_phase(argv: list[str]) -> None:
    """Entry point of a subprocess: ``--phase NAME ARGS...``; prints one JSON line."""
    name, *rest = argv
    if name == "import":
        result = phase_import(Path(rest[0]), Path(rest[1]))
    elif name == "plain_load":
        result = phase_plain_load(Path(rest[0]), Path(rest[1]))
    elif name == "stream":
        result = phase_stream(Path(rest[0]), rest[1] or None)
    else:
        result = phase_plain_stream(Path(rest[0]))
    print(json.dumps(result))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--phase":
        run_phase(sys.argv[2:])
    else:
        main()
