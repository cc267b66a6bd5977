"""Benchmark: what the checks for every inbox add to a full ``mailer check``.

Runs ``mailer check CAMPAIGN --json --offline`` as a user does (a fresh process, headless
Chromium, SpamAssassin when installed) with three trees, interleaved, in the same run:

  before       the code this branch started from (``git archive`` of the merge base with
               main): today's check, the baseline
  no spam      this tree with ``--no-spam-score``: client support, accessibility (static, and
               contrast/tap targets in the fold check's Chromium page), placeholders
  full         this tree, everything (SpamAssassin, one run per A/B variant)

Prints the median of ``--runs`` runs (seconds) per campaign and the ratio to ``before``.

Then, in one process (no interpreter start, no Chromium start: less noise on a busy
machine), the same samples through ``run_checks`` in one browser session:

  today        ``run_checks`` with the new per-sample checks switched off (the baseline)
  + inbox      with client support, accessibility (static and in the page), placeholders
  + spam       and the SpamAssassin runs ``mailer check`` adds (one per A/B variant)

    python tests/benchmarks/bench_check_inbox.py [--runs 3] [--base REF] [campaigns/promotion.toml ...]
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


def export_tree(ref: str, into: Path) -> Path:
    """The ``mailer`` package as it was at ``ref`` (git archive: the worktree is not touched)."""
    archive = subprocess.run(
        ["git", "archive", ref, "mailer"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


# Runs ``mailer`` from a given tree: an editable install's import hook would otherwise
# load this checkout's package whatever PYTHONPATH says.
LAUNCHER = """
import runpy, sys
sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in type(f).__module__]
sys.path.insert(0, sys.argv.pop(1))
sys.argv[0] = "mailer"
runpy.run_module("mailer", run_name="__main__", alter_sys=True)
"""


def run_check(tree: Path, campaign: str, *extra: str) -> float:
    """Seconds for one ``mailer check`` in a fresh process running the package in ``tree``."""
    env = {**os.environ, "COLUMNS": "200"}
    start = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            LAUNCHER,
            str(tree),
            "check",
            campaign,
            "--json",
            "--offline",
            *extra,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    seconds = time.perf_counter() - start
    if '"findings"' not in done.stdout:
        raise SystemExit(f"check failed in {tree}: {done.stderr.strip()[-300:]}")
    new = '"spam":' in done.stdout
    if new != (tree == ROOT):
        raise SystemExit(f"{tree} did not run its own code (an installed copy was imported)")
    return seconds


def in_process(campaign: str, runs: int) -> None:
    """Median seconds of run_checks without and with the new checks, and of the spam score."""
    from unittest import mock

    from mailer.campaign.prepared import prepare_campaign
    from mailer.checks import access_browser, gate
    from mailer.checks.fold import fold_browser
    from mailer.checks.spamscore import check_spam
    from mailer.core.settings import load_settings

    prepared = prepare_campaign(ROOT / campaign, load_settings(ROOT, env={}))
    samples, _ = gate.pick_samples(prepared, gate.DEFAULT_SAMPLES)
    labels = [f"sample {i}" for i in range(1, len(samples) + 1)]
    times: dict[str, list[float]] = {"today": [], "+ inbox": [], "+ spam": []}
    with fold_browser() as browser:
        gate.run_checks(prepared, samples, session=browser)  # warm up
        for _ in range(runs):
            with (
                mock.patch.object(gate, "inbox_findings", lambda *a: ([], [])),
                mock.patch.object(access_browser, "access_in_browser", lambda *a: []),
            ):
                times["today"].append(
                    _timed(lambda: gate.run_checks(prepared, samples, session=browser))
                )
            times["+ inbox"].append(
                _timed(lambda: gate.run_checks(prepared, samples, session=browser))
            )
            times["+ spam"].append(_timed(lambda: check_spam(prepared, samples, labels)))
    baseline = statistics.median(times["today"])
    print(f"\n{campaign}, in one process ({len(samples)} samples, browser started once)")
    inbox = statistics.median(times["+ inbox"])
    spam = statistics.median(times["+ spam"])
    print(f"  today    {baseline:6.2f} s  ×1.00")
    print(f"  + inbox  {inbox:6.2f} s  ×{inbox / baseline:.2f}")
    print(
        f"  + spam   {inbox + spam:6.2f} s  ×{(inbox + spam) / baseline:.2f}  (SpamAssassin {spam:.2f} s)"
    )


def _timed(action: object) -> float:
    start = time.perf_counter()
    action()  # type: ignore[operator]
    return time.perf_counter() - start


def main() -> None:
    """Interleave the three variants ``--runs`` times per campaign; print medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("campaigns", nargs="*", default=["campaigns/promotion.toml"])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--base", default="")
    args = parser.parse_args()
    base = (
        args.base
        or subprocess.run(
            ["git", "merge-base", "HEAD", "main"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    folder = Path(tempfile.mkdtemp(prefix="bench-check-"))
    try:
        before = export_tree(base, folder)
        variants = {
            "before": (before, ()),
            "no spam": (ROOT, ("--no-spam-score",)),
            "full": (ROOT, ()),
        }
        spam = "SpamAssassin " + ("installed" if shutil.which("spamassassin") else "NOT installed")
        print(f"baseline {base[:10]}; {spam}; median of {args.runs} runs, seconds")
        for campaign in args.campaigns:
            times: dict[str, list[float]] = {name: [] for name in variants}
            run_check(ROOT, campaign)  # warm the disk cache and MJML once
            for _ in range(args.runs):
                for name, (tree, extra) in variants.items():
                    times[name].append(run_check(tree, campaign, *extra))
            baseline = statistics.median(times["before"])
            print(f"\n{campaign}")
            for name, values in times.items():
                median = statistics.median(values)
                print(
                    f"  {name:<8} {median:6.2f} s  ×{median / baseline:.2f}  (runs: "
                    + ", ".join(f"{v:.2f}" for v in values)
                    + ")"
                )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    for campaign in args.campaigns:
        in_process(campaign, max(args.runs, 5))


if __name__ == "__main__":
    main()
