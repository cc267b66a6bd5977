"""Benchmark: how fast the live preview follows an edit (target: well within one second).

Measured in the same run, on a small campaign written to a temporary folder:
  prepare    prepare_campaign alone (load + compile): the floor any reload pays (baseline)
  event      save the template -> the server's event stream announces the new version
  page       save the template -> the new text is visible in the page in headless Chromium
Prints the median of several edits and each as a ratio of the baseline.

    python tests/benchmarks/bench_preview.py [--runs 7]
"""

from __future__ import annotations

import argparse
import http.client
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from mailer.campaign.prepared import prepare_campaign  # noqa: E402
from mailer.checks.fold import CHROMIUM_ARGS, DEFAULT_CHROMIUM  # noqa: E402
from mailer.core.settings import load_settings  # noqa: E402
from tests.preview.test_preview import TEMPLATE, make_workspace, rewrite, start_server  # noqa: E402


def bench_prepare(root: Path, runs: int) -> list[float]:
    """Seconds per ``prepare_campaign`` call."""
    campaign = make_workspace(root)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        prepare_campaign(campaign, load_settings(root, env={}))
        times.append(time.perf_counter() - started)
    return times


def bench_event(root: Path, runs: int) -> list[float]:
    """Seconds from saving the template to the event announcing the new version."""
    server = start_server(root, poll=0.2)
    template = root / "templates" / "card.mjml"
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("GET", "/events")
    stream = conn.getresponse()
    for _ in range(3):
        stream.readline()  # the first version
    times = []
    try:
        for run in range(runs):
            time.sleep(random.uniform(0, 0.2))  # edits land at any point of the poll cycle
            started = time.perf_counter()
            rewrite(template, TEMPLATE.replace("Hello", f"Edit {run}"))
            while not stream.readline().startswith(b"data:"):
                pass
            times.append(time.perf_counter() - started)
            stream.readline()
    finally:
        conn.close()
        server.close()
    return times


def bench_page(root: Path, runs: int) -> list[float]:
    """Seconds from saving the template to the new text showing in Chromium."""
    from playwright.sync_api import sync_playwright

    server = start_server(root, poll=0.2)
    template = root / "templates" / "card.mjml"
    times = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=DEFAULT_CHROMIUM, args=CHROMIUM_ARGS
            )
            page = browser.new_page()
            page.goto(server.url)
            frame = page.frame_locator("#frame-phone").locator("body")
            frame.get_by_text("Hello Ann").wait_for()
            for run in range(runs):
                time.sleep(random.uniform(0, 0.2))
                started = time.perf_counter()
                rewrite(template, TEMPLATE.replace("Hello", f"Edit {run}"))
                frame.get_by_text(f"Edit {run} Ann").wait_for(timeout=5000)
                times.append(time.perf_counter() - started)
            browser.close()
    finally:
        server.close()
    return times


def main() -> None:
    """Run the three measurements and print medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs
    random.seed(7)
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        results = {}
        for name, bench in (("prepare", bench_prepare), ("event", bench_event)):
            (base / name).mkdir()
            results[name] = statistics.median(bench(base / name, runs))
        (base / "page").mkdir()
        results["page"] = statistics.median(bench_page(base / "page", runs))
    baseline = results["prepare"]
    print(f"median of {runs} edits (file watcher polls every 0.2 s)")
    for name, value in results.items():
        print(f"  {name:8s} {value * 1000:7.1f} ms   {value / baseline:5.1f}× prepare")


if __name__ == "__main__":
    main()
