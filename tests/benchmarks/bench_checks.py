"""Benchmark: what the pre-send checks cost, against building the message they check.

Measured in the same run, on the promotion campaign:
  build        PreparedCampaign.build for one recipient (render + MIME bytes): the baseline
  content      check_email on that message (HTML parse, every content/compliance rule)
  subjects     score_subject + check_preheader for one subject
  fold         one FoldBrowser.measure (real headless Chromium, browser already started)
  start        starting and closing headless Chromium (paid once per `mailer check`)
  run_checks   the whole `run_checks` on 3 samples, no browser / with the browser
Prints the median of several runs (milliseconds) and the ratio to the baseline.

    python tests/benchmarks/bench_checks.py [--runs 7]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from mailer.campaign.prepared import prepare_campaign
from mailer.checks.fold import PHONE, FoldBrowser
from mailer.checks.gate import check_email, run_checks
from mailer.checks.subject import check_preheader, score_subject
from mailer.core.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]


def median_ms(action: Callable[[], object], runs: int, repeat: int = 1) -> float:
    """Median over ``runs`` of the mean time of ``repeat`` calls, in milliseconds."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        for _ in range(repeat):
            action()
        times.append((time.perf_counter() - start) / repeat * 1000)
    return statistics.median(times)


def main() -> None:
    """Run the benchmark and print a table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs
    prepared = prepare_campaign(ROOT / "campaigns" / "promotion.toml", load_settings(ROOT, env={}))
    person = next(prepared.recipients())
    out = prepared.build(person)
    postal = prepared.settings.postal_address
    key = prepared.campaign.content.headline + "\n" + prepared.campaign.content.offer
    rows: list[tuple[str, float]] = [
        ("build (baseline)", median_ms(lambda: prepared.build(person), runs, 50)),
        (
            "content",
            median_ms(
                lambda: check_email(out.rendered, out.envelope.data, postal_address=postal),
                runs,
                50,
            ),
        ),
        (
            "subjects",
            median_ms(
                lambda: (
                    score_subject(out.subject, key_text=key),
                    check_preheader(out.rendered.preheader, out.subject),
                ),
                runs,
                50,
            ),
        ),
    ]
    with FoldBrowser() as browser:
        browser.measure(out.rendered.html, PHONE)  # warm up
        rows.append(
            (
                "fold (1 viewport)",
                median_ms(lambda: browser.measure(out.rendered.html, PHONE), runs, 3),
            )
        )
    rows.append(
        (
            "start+close Chromium",
            median_ms(lambda: FoldBrowser().__enter__().close(), max(3, runs // 2)),
        )
    )
    rows.append(
        (
            "run_checks, 3 samples, no browser",
            median_ms(lambda: run_checks(prepared, browser=False), runs),
        )
    )
    rows.append(
        (
            "run_checks, 3 samples, browser",
            median_ms(lambda: run_checks(prepared), max(3, runs // 2)),
        )
    )
    base = rows[0][1]
    print(f"{'step':36} {'median ms':>10} {'× build':>9}")
    for name, ms in rows:
        print(f"{name:36} {ms:10.2f} {ms / base:9.1f}")


if __name__ == "__main__":
    main()
