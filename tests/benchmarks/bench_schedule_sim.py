"""A month of cron at scale: run-due every five minutes for 30 days, 10,000 contacts.

    python tests/benchmarks/bench_schedule_sim.py [--contacts 10000] [--runs 1]

A birthday campaign and a New Year (元旦) campaign over contacts in three time
zones (``tests/schedule_sim.py``): 8,640 passes against a real aiosmtpd relay
on loopback and a real SQLite file, with a fake clock. Prints the wall time,
the time per pass, the greetings sent and the run rows written, and fails
loudly if any greeting went out twice, outside its window or not at all.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.schedule_sim import simulate  # noqa: E402
from tests.smtp_server import RecordingHandler, SmtpServer  # noqa: E402


def main() -> None:
    """Run the month ``--runs`` times; print medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    times = []
    for run in range(args.runs):
        server = SmtpServer(RecordingHandler(keep_data="headers")).start()
        try:
            sim = simulate(Path(tempfile.mkdtemp(prefix="bench-sim-")), server, args.contacts)
        finally:
            server.close()
        if sim.problems:
            sys.exit("PROBLEMS:\n" + "\n".join(sim.problems[:20]))
        times.append(sim.seconds)
        print(
            f"run {run + 1}: {sim.passes} passes in {sim.seconds:.1f} s "
            f"({sim.seconds / sim.passes * 1000:.1f} ms a pass); "
            f"{sum(sim.deliveries.values())} greetings, each once, inside its window; "
            f"{sim.schedule_runs} wave runs for {sim.waves} waves, "
            f"{sim.campaign_runs} send runs",
            flush=True,
        )
    print(f"median: {statistics.median(times):.1f} s for a month of cron, {args.contacts} contacts")


if __name__ == "__main__":
    main()
