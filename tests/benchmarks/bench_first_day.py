"""Benchmark: a marketer's first day, from an empty folder to a live send to a local relay.

The steps a newcomer takes following only `mailer init` and `--help` (issue 27), run as
real `mailer` processes in a fresh empty folder, with an aiosmtpd relay on 127.0.0.1:
  help         mailer --help; mailer init --help
  init         mailer init shop --yes --brand ... --sender ... --relay smtp://127.0.0.1:PORT
  import       mailer contacts import 客户.csv --dry-run; then --list customers
               (a CSV with Chinese headers: 邮箱,姓名,城市,订单数,最近购买)
  audience     the starter campaign's [audience] switched to list = "customers" (an edit)
  check        mailer check campaigns/welcome.toml --offline   (fold measured in Chromium)
  test-send    mailer send campaigns/welcome.toml --test hello@...
  live-send    mailer send campaigns/welcome.toml --live --yes --no-browser
Prints each step's wall time (the CLI's own; typing and reading are not timed) as the
median of --runs runs, and the total. The relay counts what arrives: every run must
deliver one test message per variant and one message per contact.

    python tests/benchmarks/bench_first_day.py [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.smtp_server import SmtpServer  # noqa: E402

CONTACTS = "邮箱,姓名,城市,订单数,最近购买\n" + "".join(
    f"kunde{i}@example-shop.cn,客户{i},杭州,{i % 7},2026-1{i % 3}-0{1 + i % 9}\n" for i in range(50)
)
SENDER = "hello@lotus-tea.cn"


def mailer(cwd: Path, *args: str) -> float:
    """Run one command; return its wall time (it must succeed)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILER_")}
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "mailer", *args],
        cwd=cwd,
        env={**env, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"mailer {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return seconds


def one_day(folder: Path, relay: SmtpServer) -> dict[str, float]:
    """Every step once, in an empty folder; the wall time of each."""
    steps: dict[str, float] = {}
    steps["help"] = mailer(folder, "--help") + mailer(folder, "init", "--help")
    steps["init"] = mailer(
        folder, "init", "shop", "--yes", "--lang", "zh", "--brand", "莲心茶馆",
        "--sender", SENDER, "--postal-address", "中国浙江省杭州市西湖区柳浪巷 18 号 310000",
        "--relay", relay.url, "--timezone", "Asia/Shanghai",
    )  # fmt: skip
    shop = folder / "shop"
    (shop / "客户.csv").write_text(CONTACTS, encoding="utf-8")
    steps["import"] = mailer(shop, "contacts", "import", "客户.csv", "--dry-run") + mailer(
        shop, "contacts", "import", "客户.csv", "--list", "customers"
    )
    campaign = shop / "campaigns" / "welcome.toml"
    start = time.perf_counter()
    text = campaign.read_text(encoding="utf-8")
    campaign.write_text(text.replace('csv = "../contacts.csv"', 'list = "customers"'), "utf-8")
    steps["audience"] = time.perf_counter() - start
    steps["check"] = mailer(shop, "check", "campaigns/welcome.toml", "--offline")
    before = len(relay.handler.received)
    steps["test-send"] = mailer(shop, "send", "campaigns/welcome.toml", "--test", SENDER)
    steps["live-send"] = mailer(
        shop, "send", "campaigns/welcome.toml", "--live", "--yes", "--no-browser"
    )
    arrived = len(relay.handler.received) - before
    assert arrived == 1 + 50, f"the relay got {arrived} messages, not 51"
    return steps


def main() -> None:
    """Run the day --runs times; print each step's median and the total's."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    relay = SmtpServer().start()
    runs: list[dict[str, float]] = []
    try:
        for _ in range(args.runs):
            with tempfile.TemporaryDirectory(prefix="first-day-") as folder:
                runs.append(one_day(Path(folder), relay))
    finally:
        relay.close()
    print(f"first day, empty folder -> live send to a local relay; median of {args.runs} runs")
    for step in runs[0]:
        values = [run[step] for run in runs]
        shown = ", ".join(f"{v:.2f}" for v in values)
        print(f"  {step:<10}{statistics.median(values):>7.2f} s   ({shown})")
    totals = [sum(run.values()) for run in runs]
    print(f"  {'total':<10}{statistics.median(totals):>7.2f} s   "
          f"({', '.join(f'{t:.2f}' for t in totals)})")  # fmt: skip


if __name__ == "__main__":
    main()
