"""Delivery under hostile relays and store limits (a benchmark script, not a test).

    python tests/benchmarks/bench_faults.py [--runs 3] [--count 500] [--rate 50]
        [--wal-count 20000] [--before PATH] [--before-seconds 60] [--skip-wal]

Against the aiosmtpd sink in its own process (``tests/smtp_server.py``), in
interleaved rounds (every round sees the same machine load):

* ``uncapped`` — ``send_campaign`` of ``--count`` messages at ``--rate``/s, 4 connections;
* ``cap 5``    — the same, the sink answering ``421`` to the sixth ``MAIL FROM`` on every
  connection (a relay that caps messages per connection);

and prints, per round and as medians of 3: the time, the ratio capped/uncapped (the
issue's figure: within 1.10), reconnects, connections opened, the cap learnt, the
achieved rate and the busiest one-second window *at the receiver* (its stamps).

``--before PATH``: also one round of the capped send with the code found at PATH (an
extracted older tree, e.g. ``git archive <commit> mailer | tar -x -C PATH``), stopped after
``--before-seconds``: its achieved rate is the "before" row.

Then the journal on disk: ``--wal-count`` messages sent unthrottled, the WAL file's size
sampled every 20 ms, with the WAL checkpointed every 1,000 (SQLite's default; now), 4,000
and 20,000 pages (before); the rate of each against the last
(the price of the bound); and the database's bytes per journalled message (for the
free-disk pre-flight).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _code_path() -> None:
    """Import ``mailer`` from --before's tree when asked (a child process), else this one."""
    if "--as-before" in sys.argv:
        sys.path.insert(0, sys.argv[sys.argv.index("--as-before") + 1])
    sys.path.insert(1 if "--as-before" in sys.argv else 0, str(ROOT))


_code_path()

from mailer.audience.store import connect  # noqa: E402
from mailer.campaign.prepared import prepare_campaign  # noqa: E402
from mailer.core.settings import Throttle, load_settings  # noqa: E402
from mailer.delivery.relay import parse_smtp_url  # noqa: E402
from mailer.delivery.report import SendOptions  # noqa: E402
from mailer.delivery.send import send_campaign  # noqa: E402
from mailer.delivery.smtp import SmtpTransport  # noqa: E402
from tests.send_workspace import make_send_workspace  # noqa: E402


class Sink:
    """The aiosmtpd counting sink in its own process; ``stop`` returns arrival stamps."""

    def __init__(self, work: Path, name: str, per_connection: int = 0):
        self.times = work / f"{name}-times.txt"
        command = [sys.executable, str(ROOT / "tests" / "smtp_server.py"), "--times"]
        command += [str(self.times), "--per-connection", str(per_connection)]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        self.port = int(self.process.stdout.readline())

    def stop(self) -> list[float]:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)
        text = self.times.read_text().strip()
        return sorted(float(t) for t in text.splitlines()) if text else []


def busiest_second(times: list[float]) -> int:
    best, start = 0, 0
    for end, t in enumerate(times):
        while times[start] <= t - 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


def one_send(root: Path, db: Path, port: int, rate: float, stop_after: float | None = None):
    """Send the workspace's audience at ``rate``/s over 4 connections; return the report."""
    prepared = prepare_campaign(root / "campaigns" / "spring.toml", load_settings(root, env={}))
    transport = SmtpTransport(
        replace(parse_smtp_url(f"smtp://127.0.0.1:{port}"), pool=4, timeout=10)
    )
    stop = threading.Event()
    if stop_after is not None:
        threading.Timer(stop_after, stop.set).start()
    options = SendOptions(throttle=Throttle(per_second=rate, concurrency=4), stop=stop)
    conn = connect(db)
    try:
        return send_campaign(prepared, conn=conn, transport=transport, options=options)
    finally:
        conn.close()


def cap_round(root: Path, work: Path, i: int, rate: float, cap: int) -> dict[str, float]:
    name = f"cap{cap}-{i}" if cap else f"uncapped-{i}"
    sink = Sink(work, name, cap)
    try:
        report = one_send(root, work / f"{name}.db", sink.port, rate)
    finally:
        stamps = sink.stop()
    assert report.sent == report.audience == len(stamps), report.to_dict()
    stats = report.connections
    return {
        "elapsed": report.elapsed,
        "rate": (len(stamps) - 1) / (stamps[-1] - stamps[0]),
        "busiest": busiest_second(stamps),
        "reconnects": stats.get("reconnects") or 0,
        "opened": stats.get("opened") or 0,
        "cap": stats.get("cap") or 0,
        "retries": report.retries,
    }


def before_round(args: argparse.Namespace, root: Path, work: Path) -> None:
    """The capped send with the older code, in a child process importing it first."""
    command = [sys.executable, __file__, "--as-before", args.before, "--child", str(root)]
    command += ["--rate", str(args.rate), "--before-seconds", str(args.before_seconds)]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    print(f"  before (code at {args.before}), cap 5: {out.strip()}")


def child(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-before-"))
    sink = Sink(work, "before", 5)
    try:
        report = one_send(
            Path(args.child), work / "before.db", sink.port, args.rate, args.before_seconds
        )
    finally:
        stamps = sink.stop()
    rate = (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 else 0.0
    conn = connect(work / "before.db")
    attempts = conn.execute("SELECT max(attempts) FROM journal").fetchone()[0]
    print(
        f"{len(stamps)} sent in {report.elapsed:.0f} s = {rate:.1f} msg/s, "
        f"busiest second {busiest_second(stamps)}, retries {report.retries}, "
        f"most attempts on a row {attempts}"
    )


def caps(args: argparse.Namespace, work: Path) -> None:
    root = work / "ws"
    root.mkdir()
    make_send_workspace(root, args.count)
    rows: dict[str, list[dict[str, float]]] = {"uncapped": [], "cap 5": []}
    for i in range(args.runs):
        rows["uncapped"].append(cap_round(root, work, i, args.rate, 0))
        rows["cap 5"].append(cap_round(root, work, i, args.rate, 5))
    print(f"\n{args.count} messages at {args.rate:g}/s, 4 connections, {args.runs} rounds")
    print(
        "  relay      time (s) per round      median  msg/s  busiest 1 s  reconnects  opened  cap"
    )
    for name, results in rows.items():
        times = [r["elapsed"] for r in results]
        print(
            f"  {name:<9}  {[round(t, 2) for t in times]!s:<22}  {statistics.median(times):6.2f}"
            f"  {statistics.median(r['rate'] for r in results):5.1f}"
            f"  {max(r['busiest'] for r in results):11d}"
            f"  {statistics.median(r['reconnects'] for r in results):10.0f}"
            f"  {statistics.median(r['opened'] for r in results):6.0f}"
            f"  {max(r['cap'] for r in results):3.0f}"
        )
    ratios = [
        c["elapsed"] / u["elapsed"] for c, u in zip(rows["cap 5"], rows["uncapped"], strict=True)
    ]
    print(
        f"  capped / uncapped time: {statistics.median(ratios):.3f} (median of per-round "
        f"ratios {[round(r, 3) for r in ratios]}); achieved / configured rate (uncapped): "
        f"{statistics.median(r['rate'] for r in rows['uncapped']) / args.rate:.3f}"
    )
    if args.before:
        before_round(args, root, work)


def wal_round(root: Path, work: Path, name: str, pages: int) -> tuple[float, int, int]:
    """(rate, largest WAL in bytes, database bytes) of an unthrottled send."""
    import mailer.delivery.send as send_module

    send_module.WAL_CHECKPOINT_PAGES = pages  # type: ignore[attr-defined]
    db = work / f"{name}.db"
    wal = Path(f"{db}-wal")
    largest = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal largest
        while not done.wait(0.02):
            if wal.exists():
                largest = max(largest, wal.stat().st_size)

    sink = Sink(work, name)
    watcher = threading.Thread(target=sample)
    watcher.start()
    try:
        prepared = prepare_campaign(root / "campaigns" / "spring.toml", load_settings(root, env={}))
        transport = SmtpTransport(replace(parse_smtp_url(f"smtp://127.0.0.1:{sink.port}"), pool=8))
        conn = connect(db)
        start = time.perf_counter()
        report = send_campaign(
            prepared,
            conn=conn,
            transport=transport,
            options=SendOptions(unthrottled=True, concurrency=8),
        )
        elapsed = time.perf_counter() - start
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
    finally:
        done.set()
        watcher.join()
        sink.stop()
    assert report.sent == report.audience
    return report.sent / elapsed, largest, os.path.getsize(db)


def wal(args: argparse.Namespace, work: Path) -> None:
    root = work / "wal-ws"
    root.mkdir()
    make_send_workspace(root, args.wal_count)
    empty = work / "empty.db"
    connect(empty).close()
    base = os.path.getsize(empty)
    pages = [int(p) for p in args.wal_pages.split(",")]
    found: dict[int, list[tuple[float, int, int]]] = {p: [] for p in pages}
    for i in range(args.runs):
        for count in pages:
            found[count].append(wal_round(root, work, f"wal-{count}-{i}", count))
    print(f"\njournal of {args.wal_count} messages, unthrottled, {args.runs} rounds (medians)")
    reference = found[pages[-1]]
    for count, results in found.items():
        rate = statistics.median(r[0] for r in results)
        largest = max(r[1] for r in results)
        per_row = statistics.median((r[2] - base) / args.wal_count for r in results)
        ratio = statistics.median(r[0] / b[0] for r, b in zip(results, reference, strict=True))
        print(
            f"  checkpoint every {count:>5} pages: {rate:6.0f} msg/s ({ratio:.3f}x the "
            f"{pages[-1]}-page rate), largest WAL {largest / 2**20:5.1f} MiB, database "
            f"{per_row:.0f} bytes per message"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--wal-count", type=int, default=20_000)
    parser.add_argument("--before")
    parser.add_argument("--before-seconds", type=float, default=60)
    parser.add_argument("--skip-wal", action="store_true")
    parser.add_argument(
        "--wal-pages",
        default="1000,4000,20000",
        help="checkpoint intervals to compare (last: base)",
    )
    parser.add_argument("--skip-caps", action="store_true")
    parser.add_argument("--as-before", help=argparse.SUPPRESS)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    work = Path(tempfile.mkdtemp(prefix="bench-faults-"))
    if not args.skip_caps:
        caps(args, work)
    if not args.skip_wal:
        wal(args, work)


if __name__ == "__main__":
    main()
