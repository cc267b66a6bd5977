"""Sending speed against real SMTP receivers on loopback (a benchmark script, not a test).

    python tests/benchmarks/bench_send.py [--count 20000] [--runs 3] [--pool 8]
                                          [--mailmerge-count 1000] [--skip-throttled]

Receivers, each in its own process so that the sender keeps its cores:

* Postfix's ``smtp-sink`` (C: it is never the bottleneck; ``apt-get install postfix``);
* aiosmtpd (Python, as a second row: it saturates a core before a good sender does).

Against each, in interleaved rounds (every round sees the same machine load):

* ``mailer``      — ``send_campaign`` end to end: the check pass over every recipient,
  planning, building in worker processes, the journal, SMTP over ``--pool``
  connections; throttle off;
* ``mailer+dkim`` — the same, every message signed (RSA 2048, as Gmail recommends);
* ``bare``        — a bare aiosmtplib client pushing the same pre-built messages over
  the same number of connections: the ceiling for a Python sender on this receiver;
* ``mailmerge``   — the mailmerge 2.3 CLI sending the same HTML to ``--mailmerge-count``
  contacts (it opens one connection per message).

Then a throttled run at 50 messages/s for 20 s: the achieved rate and the busiest
one-second window. Prints medians and, per round, ratios against ``bare``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from mailer.audience.store import connect  # noqa: E402
from mailer.campaign.prepared import PreparedCampaign, prepare_campaign  # noqa: E402
from mailer.compose.dkim import signer_from_settings  # noqa: E402
from mailer.core.settings import Throttle, load_settings  # noqa: E402
from mailer.delivery.relay import parse_smtp_url  # noqa: E402
from mailer.delivery.report import SendOptions  # noqa: E402
from mailer.delivery.send import send_campaign  # noqa: E402
from mailer.delivery.smtp import SmtpTransport  # noqa: E402
from tests.send_workspace import make_send_workspace  # noqa: E402

SMTP_SINK = "/usr/sbin/smtp-sink"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Receiver:
    """An SMTP receiver in its own process: Postfix's smtp-sink, or the aiosmtpd sink."""

    def __init__(self, kind: str, work: Path):
        self.kind = kind
        self.times = work / f"{kind}-times.txt"
        if kind == "smtp-sink":
            self.port = free_port()
            self.process = subprocess.Popen(
                [SMTP_SINK, "-u", "nobody", f"127.0.0.1:{self.port}", "512"],
                stderr=subprocess.DEVNULL,
            )
            time.sleep(0.3)
        else:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    str(ROOT / "tests" / "smtp_server.py"),
                    "--times",
                    str(self.times),
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
            assert self.process.stdout is not None
            self.port = int(self.process.stdout.readline())

    def stop(self) -> list[float]:
        """Stop it; the aiosmtpd sink reports every message's arrival time."""
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)
        if self.kind != "aiosmtpd":
            return []
        text = self.times.read_text().strip()
        return [float(t) for t in text.splitlines()] if text else []


def prepare(root: Path, count: int, *, dkim: bool) -> PreparedCampaign:
    path = make_send_workspace(root, count)
    settings = load_settings(root, env={})
    if dkim:
        key = root / "dkim.pem"
        subprocess.run(
            ["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True
        )
        settings = replace(settings, dkim_key=key, dkim_selector="mail")
    return prepare_campaign(path, settings)


def run_mailer(prepared: PreparedCampaign, db: Path, port: int, pool: int) -> float:
    """Messages per second for send_campaign to deliver the whole audience (fresh journal)."""
    transport = SmtpTransport(replace(parse_smtp_url(f"smtp://127.0.0.1:{port}"), pool=pool))
    conn = connect(db)
    options = SendOptions(
        unthrottled=True, concurrency=pool, dkim=signer_from_settings(prepared.settings)
    )
    start = time.perf_counter()
    report = send_campaign(prepared, conn=conn, transport=transport, options=options)
    elapsed = time.perf_counter() - start
    assert report.sent == report.audience, report.to_dict()
    conn.close()
    return report.sent / elapsed


def run_bare(envelopes: list[tuple[str, str, bytes]], port: int, pool: int) -> float:
    """Messages per second for bare aiosmtplib clients (``pool`` connections)."""
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
    return len(envelopes) / (time.perf_counter() - start)


def mailmerge_command(prepared: PreparedCampaign, folder: Path, port: int, count: int) -> list[str]:
    """Template, database and config for mailmerge: the same HTML and contacts."""
    people = list(prepared.recipients())[:count]
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
        "mailmerge", "--no-dry-run", "--no-limit", "--output-format", "raw",
        "--template", str(folder / "template.txt"), "--database", str(folder / "database.csv"),
        "--config", str(folder / "server.conf"),
    ]  # fmt: skip


def run_mailmerge(command: list[str], count: int) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return count / (time.perf_counter() - start)


def busiest_second(times: list[float]) -> int:
    best, start = 0, 0
    for end, t in enumerate(times):
        while times[start] <= t - 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


def run_throttled(prepared: PreparedCampaign, work: Path, rate: float, seconds: float) -> tuple:
    """Send rate*seconds messages at ``rate``/s; return (achieved rate, busiest 1-s window)."""
    sink = Receiver("aiosmtpd", work)
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


def rounds(args: argparse.Namespace, work: Path, kind: str) -> None:
    """Interleaved rounds against one kind of receiver; print medians and ratios."""
    plain, signed = args.prepared
    envelopes = args.envelopes
    receiver = Receiver(kind, work)
    rates: dict[str, list[float]] = {"mailer": [], "mailer+dkim": [], "bare": [], "mailmerge": []}
    command = None
    if not args.skip_mailmerge and shutil.which("mailmerge"):
        folder = work / f"mailmerge-{kind}"
        folder.mkdir()
        command = mailmerge_command(plain, folder, receiver.port, args.mailmerge_count)
    try:
        for i in range(args.runs):
            db = work / f"{kind}-{i}"
            rates["bare"].append(run_bare(envelopes, receiver.port, args.pool))
            rates["mailer"].append(
                run_mailer(plain, db.with_suffix(".db"), receiver.port, args.pool)
            )
            rates["mailer+dkim"].append(
                run_mailer(signed, db.with_suffix(".dkim.db"), receiver.port, args.pool)
            )
            if command is not None:
                rates["mailmerge"].append(run_mailmerge(command, args.mailmerge_count))
    finally:
        receiver.stop()
    bare = statistics.median(rates["bare"])
    print(f"\n{kind}: {args.count} messages, {args.pool} connections, {args.runs} rounds (medians)")
    for name, values in rates.items():
        if not values:
            continue
        ours = statistics.median(values)
        line = f"  {name:<12} {ours:7.0f} msg/s  {[round(v) for v in values]}"
        if name != "bare":
            paired = statistics.median(v / b for v, b in zip(values, rates["bare"], strict=True))
            line += f"   = {paired:.2f}x bare (median of per-round ratios)"
        print(line)
    if rates["mailmerge"]:
        merge = statistics.median(rates["mailmerge"])
        print(f"  mailer / mailmerge: {statistics.median(rates['mailer']) / merge:.1f}x")
    print(
        f"  DKIM costs {1 - statistics.median(rates['mailer+dkim']) / statistics.median(rates['mailer']):.0%} of the rate"
    )
    del bare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pool", type=int, default=8)
    parser.add_argument("--mailmerge-count", type=int, default=1000)
    parser.add_argument("--receivers", default="smtp-sink,aiosmtpd")
    parser.add_argument("--skip-throttled", action="store_true")
    parser.add_argument("--skip-mailmerge", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-send-"))
    try:
        plain = prepare(work / "plain", args.count, dkim=False)
        signed = prepare(work / "signed", args.count, dkim=True)
        args.prepared = (plain, signed)
        args.envelopes = [
            (o.envelope.sender, o.envelope.recipient, o.envelope.data)
            for o in map(plain.build, plain.recipients())
        ]
        print(f"cores: {os.cpu_count()}; messages of {len(args.envelopes[0][2]) / 1024:.1f} KB")
        for kind in args.receivers.split(","):
            if kind == "smtp-sink" and not Path(SMTP_SINK).exists():
                print("\nsmtp-sink: not installed (apt-get install postfix); skipped")
                continue
            rounds(args, work, kind)
        if not args.skip_throttled:
            achieved, busiest, sent = run_throttled(plain, work, 50.0, 20.0)
            print(
                f"\nthrottled at 50/s for 20 s: {sent} messages, achieved {achieved:.2f} msg/s "
                f"({(achieved / 50 - 1) * 100:+.2f} %, target within ±2 %), "
                f"busiest 1-s window {busiest} (target <= 50)"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
