"""Sending speed against an aiosmtpd sink on loopback (a benchmark script, not a test).

    python tests/benchmarks/bench_send.py [--count 2000] [--runs 5] [--pool 8]

Each run measures, against the same sink (its own process, so the sender and
the sink do not share a core):

* ``mailer``   — ``send_campaign`` end to end: preflight, journal, render +
  MIME build of every message, SMTP over ``--pool`` reused connections; throttle off;
* ``bare``     — a bare aiosmtplib client pushing the same pre-built messages
  over the same number of connections (the ceiling for this sink);
* ``mailmerge`` — the mailmerge 2.3 CLI sending the same HTML to the same
  contacts (it opens one connection per message).

Then a throttled run at 50 messages/s for 20 s, timed at a fresh sink: the
achieved rate and the busiest one-second window. Prints medians and ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from mailer.audience.store import connect  # noqa: E402
from mailer.campaign.prepared import PreparedCampaign, prepare_campaign  # noqa: E402
from mailer.core.settings import Throttle, load_settings  # noqa: E402
from mailer.delivery.relay import parse_smtp_url  # noqa: E402
from mailer.delivery.report import SendOptions  # noqa: E402
from mailer.delivery.send import send_campaign  # noqa: E402
from mailer.delivery.smtp import SmtpTransport  # noqa: E402
from tests.send_workspace import make_send_workspace  # noqa: E402


class Sink:
    """The counting aiosmtpd sink of tests/smtp_server.py, in its own process."""

    def __init__(self, times: Path):
        self.times = times
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "smtp_server.py"), "--times", str(times)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.port = int(self.process.stdout.readline())

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the sink process has used so far."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> list[float]:
        """Stop the sink; return the arrival time of every message it accepted."""
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)
        text = self.times.read_text().strip()
        return [float(t) for t in text.splitlines()] if text else []


def prepare(root: Path, count: int) -> PreparedCampaign:
    path = make_send_workspace(root, count)
    return prepare_campaign(path, load_settings(root, env={}))


def run_mailer(prepared: PreparedCampaign, db: Path, port: int, pool: int) -> float:
    """Seconds for send_campaign to deliver the whole audience (fresh journal)."""
    from dataclasses import replace

    transport = SmtpTransport(replace(parse_smtp_url(f"smtp://127.0.0.1:{port}"), pool=pool))
    conn = connect(db)
    start = time.perf_counter()
    report = send_campaign(
        prepared,
        conn=conn,
        transport=transport,
        options=SendOptions(unthrottled=True, concurrency=pool),
    )
    elapsed = time.perf_counter() - start
    assert report.sent == report.audience, report.to_dict()
    conn.close()
    return elapsed


def run_bare(envelopes: list[tuple[str, str, bytes]], port: int, pool: int) -> float:
    """Seconds for bare aiosmtplib clients (``pool`` connections) to push pre-built messages."""
    import aiosmtplib

    async def worker(queue: list[tuple[str, str, bytes]]) -> None:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
        await client.connect()
        while queue:
            sender, rcpt, data = queue.pop()
            await client.sendmail(sender, [rcpt], data)
        await client.quit()

    async def main() -> None:
        queue = list(envelopes)
        await asyncio.gather(*(worker(queue) for _ in range(pool)))

    start = time.perf_counter()
    asyncio.run(main())
    return time.perf_counter() - start


def mailmerge_files(prepared: PreparedCampaign, folder: Path, port: int) -> list[str]:
    """Template, database and config for mailmerge: the same HTML and contacts."""
    people = list(prepared.recipients())
    sample = prepared.render(people[0])
    html = sample.html.replace(people[0].fields["first_name"], "{{first_name}}")
    sender = prepared.campaign.sender
    (folder / "template.txt").write_text(
        f"TO: {{{{email}}}}\nFROM: {sender.name} <{sender.email}>\n"
        f"SUBJECT: {sample.subject}\nMIME-Version: 1.0\n"
        'Content-Type: text/html; charset="utf-8"\n\n' + html,
        encoding="utf-8",
    )
    rows = "".join(f"{p.email},{p.fields['first_name']}\n" for p in people)
    (folder / "database.csv").write_text("email,first_name\n" + rows, encoding="utf-8")
    (folder / "server.conf").write_text(
        f"[smtp_server]\nhost = 127.0.0.1\nport = {port}\nratelimit = 0\n", encoding="utf-8"
    )
    return [
        "mailmerge",
        "--no-dry-run",
        "--no-limit",
        "--output-format",
        "raw",
        "--template",
        str(folder / "template.txt"),
        "--database",
        str(folder / "database.csv"),
        "--config",
        str(folder / "server.conf"),
    ]


def run_mailmerge(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def busiest_second(times: list[float]) -> int:
    best, start = 0, 0
    for end, t in enumerate(times):
        while times[start] <= t - 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


def run_throttled(prepared: PreparedCampaign, work: Path, rate: float, seconds: float) -> tuple:
    """Send rate*seconds messages at ``rate``/s; return (achieved rate, busiest 1-s window)."""
    from dataclasses import replace

    sink = Sink(work / "throttled-times.txt")
    people = list(prepared.recipients())[: int(rate * seconds)]
    transport = SmtpTransport(replace(parse_smtp_url(f"smtp://127.0.0.1:{sink.port}"), pool=4))
    send_campaign(
        prepared,
        conn=connect(work / "throttled.db"),
        transport=transport,
        options=SendOptions(throttle=Throttle(per_second=rate, concurrency=4)),
        recipients=people,
    )
    times = sorted(sink.stop())
    achieved = (len(times) - 1) / (times[-1] - times[0])
    return achieved, busiest_second(times), len(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--pool", type=int, default=8)
    parser.add_argument("--skip-throttled", action="store_true")
    parser.add_argument("--skip-mailmerge", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-send-"))
    try:
        prepared = prepare(work, args.count)
        envelopes = [
            (o.envelope.sender, o.envelope.recipient, o.envelope.data)
            for o in map(prepared.build, prepared.recipients())
        ]
        sink = Sink(work / "times.txt")
        n = args.count
        command = None
        if not args.skip_mailmerge:
            folder = work / "mailmerge"
            folder.mkdir()
            command = mailmerge_files(prepared, folder, sink.port)
        rates: dict[str, list[float]] = {"mailer": [], "bare": [], "mailmerge": []}
        sink_busy: list[float] = []  # share of a core the sink used during the bare runs
        # Interleaved, so that all three see the same machine load in each round.
        for i in range(args.runs):
            rates["mailer"].append(
                n / run_mailer(prepared, work / f"run{i}.db", sink.port, args.pool)
            )
            cpu_before = sink.cpu_seconds()
            seconds = run_bare(envelopes, sink.port, args.pool)
            sink_busy.append((sink.cpu_seconds() - cpu_before) / seconds)
            rates["bare"].append(n / seconds)
            if command is not None:
                rates["mailmerge"].append(n / run_mailmerge(command))
        ours, bare = statistics.median(rates["mailer"]), statistics.median(rates["bare"])
        print(f"messages: {n}, pool: {args.pool} connections, runs: {args.runs} (medians)")
        print(f"mailer send_campaign : {ours:8.0f} msg/s  {[round(v) for v in rates['mailer']]}")
        print(f"bare aiosmtplib      : {bare:8.0f} msg/s  {[round(v) for v in rates['bare']]}")
        paired = statistics.median(
            m / b for m, b in zip(rates["mailer"], rates["bare"], strict=True)
        )
        print(
            f"  mailer / bare      : {ours / bare:8.2f}   (target >= 0.90; per-round median {paired:.2f})"
        )
        if command is not None:
            merge = statistics.median(rates["mailmerge"])
            print(
                f"mailmerge 2.3        : {merge:8.0f} msg/s  {[round(v) for v in rates['mailmerge']]}"
            )
            print(f"  mailer / mailmerge : {ours / merge:8.1f}x  (target >= 8x)")
            # The bare client is the ceiling any sender can reach on this sink: when the
            # sink is saturated, bare / mailmerge bounds what mailer / mailmerge can be.
            print(
                f"  ceiling: bare / mailmerge {bare / merge:.1f}x; the sink used "
                f"{statistics.median(sink_busy):.0%} of a core during the bare runs"
            )
        received = len(sink.stop())
        print(f"sink accepted {received} messages in all")
        if not args.skip_throttled:
            achieved, busiest, sent = run_throttled(prepared, work, 50.0, 20.0)
            print(
                f"throttled at 50/s for 20 s: {sent} messages, achieved {achieved:.2f} msg/s "
                f"({(achieved / 50 - 1) * 100:+.2f} %, target within ±2 %), "
                f"busiest 1-s window {busiest} (target <= 51)"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
