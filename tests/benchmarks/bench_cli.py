"""Benchmark: start-up time of `mailer --help`, against a bare `python -c pass` in the same run.

    python tests/benchmarks/bench_cli.py [--runs 15]

Heavy libraries (mjml, css_inline, playwright, aiosmtplib, holidays...) are imported
inside commands, so the help screen only pays for typer and rich.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time


def median_seconds(command: list[str], runs: int) -> float:
    """Median wall time of ``runs`` runs of ``command``."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    mailer = shutil.which("mailer") or sys.exit("install the package first: pip install -e .")
    bare = median_seconds([sys.executable, "-c", "pass"], args.runs)
    helped = median_seconds([mailer, "--help"], args.runs)
    print(f"python -c pass   {bare * 1000:6.0f} ms")
    print(
        f"mailer --help    {helped * 1000:6.0f} ms   ({helped / bare:.1f}x bare python; target < 300 ms)"
    )


if __name__ == "__main__":
    main()
