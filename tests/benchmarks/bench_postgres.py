"""Benchmark: contacts import and segment counts on PostgreSQL vs SQLite (1,000,000 contacts).

    python tests/benchmarks/bench_postgres.py [--n 1000000] [--runs 3] [--dir /tmp/bench-pg]

Each run imports the same synthetic CSV (tests/benchmarks/bench_contacts.generate)
into a fresh SQLite file and a fresh PostgreSQL database (a Debian server started
for the benchmark: fsync on, shared_buffers 1 GB; see tests/pg_server.py), each
import in its own process. Then, on each engine, the compound segments of
bench_contacts are counted against that engine's ``SELECT count(*)``. Prints medians
and ratios (PostgreSQL / SQLite, measured in the same run). Targets from the issue:
import <= 60 s, count <= 5 s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.benchmarks.bench_contacts import COMPOUND, generate  # noqa: E402
from tests.pg_server import PgServer  # noqa: E402

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


def phase_import(db: str, url: str, source: str) -> dict[str, float]:
    """Import ``source`` into a store (SQLite file ``db``, or PostgreSQL ``url``)."""
    from mailer.audience.importer import import_contacts
    from mailer.audience.store import open_store

    conn = open_store(Path(db), url or None)
    start = time.perf_counter()
    result = import_contacts(conn, Path(source), now=NOW, list_name="everyone")
    seconds = time.perf_counter() - start
    assert result.inserted > 0 and not result.rejected
    return {"seconds": seconds}


def in_subprocess(*args: str) -> dict[str, float]:
    """Run one phase of this script in a fresh Python and return its figures."""
    out = subprocess.run(
        [sys.executable, __file__, "--phase", *args], check=True, capture_output=True, text=True
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def timed(action: object) -> float:
    """Seconds one call of ``action`` takes."""
    start = time.perf_counter()
    action()  # type: ignore[operator]
    return time.perf_counter() - start


def counts(db: Path, url: str | None, runs: int) -> dict[str, tuple[float, int]]:
    """Median seconds (and the answer) of count(*) and of each compound segment."""
    from mailer.audience.selection import count_segment
    from mailer.audience.store import open_store

    conn = open_store(db, url)
    found: dict[str, tuple[float, int]] = {}
    total = conn.execute("SELECT count(*) FROM contacts").fetchone()[0]
    found["count(*)"] = (
        statistics.median(
            timed(lambda: conn.execute("SELECT count(*) FROM contacts").fetchone())
            for _ in range(runs)
        ),
        total,
    )
    for expression in COMPOUND:
        answer = count_segment(conn, expression, "everyone", now=NOW)
        seconds = statistics.median(
            timed(lambda e=expression: count_segment(conn, e, "everyone", now=NOW))
            for _ in range(runs)
        )
        found[expression] = (seconds, answer)
    conn.close()
    return found


def main() -> None:
    """Generate, import on both engines, count on both, print medians and ratios."""
    if len(sys.argv) > 1 and sys.argv[1] == "--phase":
        print(json.dumps(phase_import(*sys.argv[3:])))
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/bench-pg"))
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    source = args.dir / f"contacts-{args.n}.csv"
    if not source.exists():
        generate(source, args.n)
    print(f"{args.n:,} contacts, {source.stat().st_size / 1e6:.0f} MB CSV, {args.runs} runs")
    server = PgServer(durable=True).start()
    try:
        sqlite_times, pg_times = [], []
        for run in range(args.runs):
            db = args.dir / f"run{run}.db"
            for suffix in ("", "-wal", "-shm"):
                Path(f"{db}{suffix}").unlink(missing_ok=True)
            url = server.database()
            sqlite_times.append(in_subprocess("import", str(db), "", str(source))["seconds"])
            pg_times.append(in_subprocess("import", "unused", url, str(source))["seconds"])
        lite, pg = statistics.median(sqlite_times), statistics.median(pg_times)
        ratio = statistics.median(p / s for p, s in zip(pg_times, sqlite_times, strict=True))
        print(f"import  SQLite {lite:6.1f} s  PostgreSQL {pg:6.1f} s (target <= 60 s)  "
              f"ratio {ratio:.2f}x  runs {[round(t, 1) for t in pg_times]}")  # fmt: skip
        on_sqlite = counts(db, None, args.runs)
        on_pg = counts(Path("unused"), url, args.runs)
        for name, (seconds, answer) in on_pg.items():
            base, same = on_sqlite[name]
            assert answer == same, f"{name}: PostgreSQL {answer} vs SQLite {same}"
            print(f"count   SQLite {base:6.3f} s  PostgreSQL {seconds:6.3f} s (target <= 5 s)  "
                  f"ratio {seconds / base:5.2f}x  = {answer:,}  {name}")  # fmt: skip
    finally:
        server.stop()


if __name__ == "__main__":
    main()
