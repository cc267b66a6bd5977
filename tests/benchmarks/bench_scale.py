"""Sending and rendering at scale: time and peak memory, CLI end to end (a benchmark script).

    python tests/benchmarks/bench_scale.py [--sizes 100000 1000000] [--pool 8]
                                           [--render-max 1000000] [--dir /tmp/bench-scale]

For each size, a fresh workspace: a synthetic contacts file imported into the
database (list ``customers``), and two campaigns with the same template — one
whose audience is that list, one whose audience is the CSV file itself. Then,
each in a fresh ``mailer`` process:

* ``send db``  — ``mailer send --live --yes`` to Postfix's ``smtp-sink`` on loopback;
* ``send csv`` — the same with the CSV audience (into a fresh database);
* ``render``   — ``mailer render`` of the list campaign into an outbox folder
  (skipped above ``--render-max``; the folder is deleted afterwards).

Peak RSS is sampled every 50 ms over the whole process tree (the CLI and its
build workers, summed) and the CLI's own high-water mark (VmHWM) is read at the
end. The first line of progress output is timed too: how long a user waits
before the CLI shows anything moving.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.workspace import SETTINGS, TEMPLATE  # noqa: E402

SMTP_SINK = "/usr/sbin/smtp-sink"
CAMPAIGN = """id = "{id}"
template = "promo"
subjects = ["{{{{ contact.first_name }}}}, spring tea is here", "Spring tea is here"]
preheader = "Fresh leaves from the first harvest, 20% off this week"

[content]
headline = "Spring tea, {{{{ contact.first_name }}}}"
offer = "20% off all green teas"
cta_text = "Shop the harvest"
cta_url = "https://tea.test/spring?ref=mail"

[audience]
{audience}

[data]
products = [{{ name = "Longjing", url = "https://tea.test/longjing" }}]
"""


@dataclass
class Measured:
    """One CLI run: wall time, peak RSS (tree and CLI alone), exit code."""

    seconds: float
    tree_mb: float
    cli_mb: float
    code: int


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def workspace(root: Path, size: int) -> None:
    """mailer.toml, the template, two campaigns and ``size`` contacts."""
    (root / "templates").mkdir(parents=True)
    (root / "campaigns").mkdir()
    (root / "mailer.toml").write_text(SETTINGS, encoding="utf-8")
    (root / "templates" / "promo.mjml").write_text(TEMPLATE, encoding="utf-8")
    lists = 'list = "customers"'
    csv_audience = 'csv = "contacts.csv"'
    for name, audience in (("db", lists), ("csv", csv_audience)):
        text = CAMPAIGN.format(id=f"scale-{name}", audience=audience)
        (root / "campaigns" / f"{name}.toml").write_text(text, encoding="utf-8")
    with (root / "campaigns" / "contacts.csv").open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["email", "first_name", "city"])
        for i in range(size):
            writer.writerow([f"user{i}@shop{i % 500}.example.com", f"Ann{i}", "Shanghai"])


def tree_rss_kb(pid: int) -> int:
    """Resident memory of ``pid`` and all its descendants, in KiB."""
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            with open(f"/proc/{current}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            with open(f"/proc/{current}/task/{current}/children") as children:
                todo += [int(child) for child in children.read().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def high_water_kb(pid: int) -> int:
    """The process's own peak resident memory (VmHWM), in KiB; 0 once it has exited."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except FileNotFoundError:
        pass
    return 0


def measure(args: list[str], cwd: Path, log: Path) -> Measured:
    """Run ``mailer ARGS`` and sample its memory until it exits."""
    env = {**os.environ, "MAILER_DB": str(cwd / "mailer.db"), "COLUMNS": "120"}
    started = time.perf_counter()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mailer", *args], cwd=cwd, env=env, stdout=out, stderr=out
        )
        peak = cli_peak = 0
        done = threading.Event()

        def sample() -> None:
            nonlocal peak, cli_peak
            while not done.is_set():
                peak = max(peak, tree_rss_kb(proc.pid))
                cli_peak = max(cli_peak, high_water_kb(proc.pid))
                done.wait(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        code = proc.wait()
        done.set()
        sampler.join()
    return Measured(time.perf_counter() - started, peak / 1024, cli_peak / 1024, code)


def show(size: int, what: str, result: Measured) -> None:
    """One line of the results table."""
    rate = size / result.seconds if result.seconds else 0.0
    status = "" if result.code == 0 else f"  EXIT {result.code}"
    print(
        f"{size:>9,}  {what:<10} {result.seconds:8.1f} s  {rate:7.0f}/s  "
        f"tree peak {result.tree_mb:6.0f} MB  cli peak {result.cli_mb:6.0f} MB{status}",
        flush=True,
    )


def run_size(size: int, base: Path, port: int, pool: int, render_max: int) -> None:
    """Import, send (list and CSV audiences) and render ``size`` recipients."""
    root = base / f"n{size}"
    shutil.rmtree(root, ignore_errors=True)
    workspace(root, size)
    logs = root / "logs"
    logs.mkdir()
    imported = measure(
        ["contacts", "import", "campaigns/contacts.csv", "--list", "customers"],
        root,
        logs / "import.log",
    )
    show(size, "import", imported)
    smtp = ["--smtp", f"smtp://127.0.0.1:{port}", "--no-browser", "--concurrency", str(pool)]
    sent = measure(
        ["send", "campaigns/db.toml", "--live", "--yes", *smtp], root, logs / "send-db.log"
    )
    show(size, "send db", sent)
    (root / "mailer.db").rename(root / "list.db")
    sent = measure(
        ["send", "campaigns/csv.toml", "--live", "--yes", *smtp], root, logs / "send-csv.log"
    )
    show(size, "send csv", sent)
    (root / "list.db").replace(root / "mailer.db")
    if size <= render_max:
        outbox = root / "outbox"
        rendered = measure(
            ["render", "campaigns/db.toml", "--out", str(outbox)], root, logs / "render.log"
        )
        show(size, "render", rendered)
        shutil.rmtree(outbox, ignore_errors=True)
    for log in sorted(logs.iterdir()):
        tail = log.read_text(errors="replace").strip().splitlines()[-3:]
        print(f"    {log.name}: " + " | ".join(line.strip() for line in tail))


def main() -> None:
    """Parse arguments, start smtp-sink, run every size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--pool", type=int, default=8)
    parser.add_argument("--render-max", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    if not Path(SMTP_SINK).exists():
        sys.exit(f"{SMTP_SINK} is missing: apt-get install -y postfix")
    base = args.dir or Path(tempfile.mkdtemp(prefix="bench-scale-"))
    port = free_port()
    sink = subprocess.Popen(
        [SMTP_SINK, "-u", "nobody", f"127.0.0.1:{port}", "512"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.5)
        print(f"smtp-sink on 127.0.0.1:{port}; workspaces under {base}; pool {args.pool}")
        for size in args.sizes:
            run_size(size, base, port, args.pool, args.render_max)
    finally:
        sink.send_signal(signal.SIGTERM)
        sink.wait()
        if args.dir is None:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
