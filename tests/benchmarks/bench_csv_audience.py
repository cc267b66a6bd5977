"""Memory of validating a CSV audience (the duplicate check), a benchmark script.

    python tests/benchmarks/bench_csv_audience.py [--rows 1000000] [--runs 3]

Each variant runs in a fresh process over the same file; its peak RSS is read
from ``ru_maxrss``:

* ``stream``  — read and check every row's address, keep nothing (the floor);
* ``set``     — the same plus a Python set of address hashes (the old duplicate check);
* ``mailer``  — ``open_csv_audience`` (packed 8-byte hashes sorted with numpy).

Prints the median peak of each and its growth over ``stream``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

VARIANT = """
import resource, sys
sys.path.insert(0, {root!r})
from pathlib import Path
from mailer.audience.csv_source import _bare, _rows, open_csv_audience
from mailer.audience.textfile import detect_encoding
from mailer.core.addresses import normalize_address
path = Path({path!r})
kind = {kind!r}
if kind == "mailer":
    audience = open_csv_audience(path)
    assert audience.count == {rows}, audience.count
else:
    seen = set()
    for line, row in _rows(path, detect_encoding(path, None)):
        email = normalize_address(_bare(row["email"]))
        if kind == "set":
            seen.add(hash(email.lower()))
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def peak_kb(kind: str, path: Path, rows: int) -> int:
    code = VARIANT.format(root=str(ROOT), path=str(path), kind=kind, rows=rows)
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return int(out.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / "audience.csv"
        with path.open("w", encoding="utf-8") as out:
            out.write("email,first_name,city\n")
            for i in range(args.rows):
                out.write(f"customer{i}@mail{i % 97}.test,Name{i},City{i % 50}\n")
        peaks: dict[str, list[int]] = {"stream": [], "set": [], "mailer": []}
        for _ in range(args.runs):
            for kind in peaks:
                peaks[kind].append(peak_kb(kind, path, args.rows))
    floor = statistics.median(peaks["stream"])
    print(f"{args.rows:,} rows, {args.runs} runs (median peak RSS)")
    for kind, values in peaks.items():
        median = statistics.median(values)
        growth = (median - floor) / 1024
        print(f"  {kind:<7} {median / 1024:6.1f} MB  (+{growth:5.1f} MB over stream)  {values}")


if __name__ == "__main__":
    main()
