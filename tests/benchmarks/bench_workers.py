"""Several ``mailer worker`` processes on one queued job vs one ``mailer send`` (a benchmark).

    python tests/benchmarks/bench_workers.py [--count 20000] [--runs 3] [--pool 8]
                                             [--skip-throttled | --throttled-only]
                                             [--postgres]

Each round, on a fresh copy of one workspace (``--count`` contacts in a CSV):

* ``send``       — ``mailer send --live --yes`` in one process (the baseline);
* ``workers xN`` — ``mailer send --live --enqueue-only`` (not timed), then N
  ``mailer worker --until-idle`` processes started together; timed until the last exits.

Every run must leave the journal with each recipient ``sent`` exactly once. The
receiver is Postfix's ``smtp-sink``. Ratios are per round against ``send``.

With ``--postgres`` the workers (and a ``send`` on PostgreSQL) use the PostgreSQL
store (a Debian server started for the run, fsync on; see tests/pg_server.py), each
round in a fresh database, and the ratios stay against the SQLite ``send`` of the
same round.

Then the limits across workers: 3 workers on a job throttled at 50 messages/s
for 20 s, into the aiosmtpd sink that notes each arrival: the achieved rate
(target within ±5 %) and the busiest one-second window.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from mailer.audience.store import connect, open_store  # noqa: E402
from tests.benchmarks.bench_send import SMTP_SINK, Receiver, busiest_second  # noqa: E402
from tests.pg_server import PgServer  # noqa: E402
from tests.send_workspace import make_send_workspace  # noqa: E402

ENV = {
    k: v
    for k, v in os.environ.items()
    if not k.startswith("MAILER_") or k == "MAILER_UNSUBSCRIBE_KEY"
}
# Workspace folder -> its PostgreSQL database (a workspace not listed uses SQLite).
STORES: dict[Path, str] = {}


def mailer(root: Path, *args: str) -> subprocess.Popen[bytes]:
    env = {**ENV, "MAILER_STORE_URL": STORES[root]} if root in STORES else ENV
    return subprocess.Popen(
        [sys.executable, "-m", "mailer", *args],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def fresh(template: Path, work: Path, name: str) -> Path:
    root = work / name
    shutil.copytree(template, root)
    return root


def check_journal(root: Path, count: int) -> None:
    conn = open_store(root / "mailer.db", STORES.get(root))
    rows = dict(conn.execute("SELECT status, count(*) FROM journal GROUP BY status").fetchall())
    conn.close()
    assert rows == {"sent": count}, rows


def timed_send(root: Path, url: str, pool: int) -> float:
    start = time.perf_counter()
    process = mailer(root, "send", "campaigns/spring.toml", "--live", "--yes", "--no-browser",
                     "--smtp", url, "--concurrency", str(pool))  # fmt: skip
    _, err = process.communicate()
    assert process.returncode == 0, err.decode()
    return time.perf_counter() - start


def enqueue(root: Path, url: str) -> None:
    process = mailer(root, "send", "campaigns/spring.toml", "--live", "--yes", "--no-browser",
                     "--enqueue-only", "--smtp", url)  # fmt: skip
    _, err = process.communicate()
    assert process.returncode == 0, err.decode()


def timed_workers(root: Path, url: str, pool: int, count: int) -> float:
    enqueue(root, url)
    start = time.perf_counter()
    workers = [
        mailer(
            root,
            "worker",
            "--until-idle",
            "--poll",
            "0.2",
            "--smtp",
            url,
            "--concurrency",
            str(pool),
        )
        for _ in range(count)
    ]
    for worker in workers:
        _, err = worker.communicate()
        assert worker.returncode == 0, err.decode()
    return time.perf_counter() - start


def rounds(args: argparse.Namespace, template: Path, work: Path, pg: PgServer | None) -> None:
    sink = Receiver("smtp-sink", work)
    url = f"smtp://127.0.0.1:{sink.port}"
    names = ["send", "workers x1", "workers x2", "workers x3"]
    if pg is not None:
        names = ["send", "pg send", "pg workers x1", "pg workers x2", "pg workers x3"]
    times: dict[str, list[float]] = {name: [] for name in names}
    try:
        for i in range(args.runs):
            for name in times:
                root = fresh(template, work, f"{name.replace(' ', '')}-{i}")
                if name.startswith("pg") and pg is not None:
                    STORES[root] = pg.database()
                if name.endswith("send"):
                    elapsed = timed_send(root, url, args.pool)
                else:
                    elapsed = timed_workers(root, url, args.pool, int(name[-1]))
                check_journal(root, args.count)
                times[name].append(elapsed)
                shutil.rmtree(root)
    finally:
        sink.stop()
    print(f"\nsmtp-sink: {args.count} messages, {args.pool} connections per process, "
          f"{args.runs} rounds (medians; CLI wall time incl. start-up and the check pass)")  # fmt: skip
    for name, values in times.items():
        rate = args.count / statistics.median(values)
        line = f"  {name:<11} {rate:7.0f} msg/s  {[round(args.count / v) for v in values]}"
        if name != "send":  # against the SQLite send of the same round
            ratio = statistics.median(b / v for v, b in zip(values, times["send"], strict=True))
            line += f"   = {ratio:.2f}x one mailer send (median of per-round ratios)"
        print(line)


def throttled(template: Path, work: Path, rate: float, seconds: float, pg: PgServer | None) -> None:
    count = int(rate * seconds)
    root = work / "throttled"
    make_send_workspace(root, count, throttle=f"per_second = {rate}")
    if pg is not None:
        STORES[root] = pg.database()
    sink = Receiver("aiosmtpd", work)
    url = f"smtp://127.0.0.1:{sink.port}"
    try:
        enqueue(root, url)
        workers = [mailer(root, "worker", "--until-idle", "--poll", "0.2", "--smtp", url)
                   for _ in range(3)]  # fmt: skip
        for worker in workers:
            _, err = worker.communicate()
            assert worker.returncode == 0, err.decode()
    finally:
        arrivals = sorted(sink.stop())
    check_journal(root, count)
    achieved = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])
    print(
        f"\n3 workers ({'PostgreSQL' if pg else 'SQLite'}), one job throttled at {rate:.0f}/s,"
        f" {count} messages: achieved "
        f"{achieved:.2f} msg/s ({(achieved / rate - 1) * 100:+.2f} %, target within ±5 %), "
        f"busiest 1-s window {busiest_second(arrivals)}"
    )


def lease_costs(work: Path, batches: int = 10_000, runs: int = 3) -> None:
    """Leasing every batch of a 1,000,000-recipient job (10,000 batches) in one run, and
    another run's pass over them, against a bare loop of as many one-row transactions."""
    from datetime import UTC, datetime

    from mailer.delivery.jobs import BatchShare
    from mailer.delivery.jobs import enqueue as enqueue_job
    from mailer.delivery.runs import start_run
    from mailer.delivery.throttle import Limits, Throttler

    now = datetime.now(UTC)
    results: dict[str, list[float]] = {"bare": [], "lease": [], "pass": []}
    for i in range(runs):
        conn = connect(work / f"leases-{i}.db")
        conn.execute("CREATE TABLE bare (n INTEGER PRIMARY KEY)")
        start = time.perf_counter()
        for n in range(batches):
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO bare VALUES (?)", (n,))
            conn.execute("COMMIT")
        results["bare"].append(time.perf_counter() - start)
        job = enqueue_job(conn, "c.toml", "k", "f", {}, now)
        shares = []
        for _ in range(2):
            share = BatchShare(conn, job.id, lambda: now, throttle=Throttler(Limits(per_second=50)))
            share.run_id = start_run(conn, "k", now=now, transport="t", forced=False, subject="",
                                     body_text="", audience="", job_id=job.id)  # fmt: skip
            shares.append(share)
        for name, share in zip(("lease", "pass"), shares, strict=True):
            start = time.perf_counter()
            for n in range(batches):
                share.take(n)
            results[name].append(time.perf_counter() - start)
        conn.close()
    bare = statistics.median(results["bare"])
    print(f"\n{batches:,} batches (a 1,000,000-recipient job), {runs} runs (medians):")
    print(f"  bare one-row transactions {bare:.2f} s")
    for name, label in (("lease", "one run leasing them all"), ("pass", "another run's pass")):
        value = statistics.median(results[name])
        print(f"  {label:<25} {value:.2f} s = {value / bare:.2f}x bare")


def main() -> None:
    """Rounds of sends (SQLite, and PostgreSQL with --postgres), lease costs, the shared rate."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pool", type=int, default=8)
    parser.add_argument("--skip-throttled", action="store_true")
    parser.add_argument("--throttled-only", action="store_true")
    parser.add_argument("--postgres", action="store_true", help="workers on the PostgreSQL store")
    args = parser.parse_args()
    if not Path(SMTP_SINK).exists():
        sys.exit("smtp-sink is not installed (apt-get install postfix)")
    work = Path(tempfile.mkdtemp(prefix="bench-workers-"))
    pg = PgServer(durable=True).start() if args.postgres else None
    try:
        template = work / "template"
        make_send_workspace(template, args.count)
        store = "SQLite (WAL)" + (" and PostgreSQL (fsync on)" if pg else "")
        print(f"cores: {os.cpu_count()}; store: {store} shared by the processes")
        if not args.throttled_only:
            rounds(args, template, work, pg)
            if pg is None:
                lease_costs(work)
        if not args.skip_throttled:
            throttled(template, work, 50.0, 20.0, pg)
    finally:
        if pg is not None:
            pg.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
