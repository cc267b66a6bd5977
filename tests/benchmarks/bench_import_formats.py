"""Benchmark: importing Excel's files vs a plain CSV of the same contacts (issue 27).

The same N rows (bench_contacts' synthetic contacts) written three ways:
  plain      UTF-8, commas, decimal points                      (the baseline)
  semicolon  Excel "CSV" in a decimal-comma locale: UTF-8 with BOM, ';' separators,
             decimal commas in total_spent (1260,5), CRLF line ends
  utf16      Excel "Unicode text": UTF-16 with BOM, tab separated, decimal commas
Each is imported with `import_contacts` into a fresh SQLite file, in a fresh subprocess,
--runs times; prints the median seconds and each format's ratio to the plain CSV, and
checks the three databases hold the same contacts (same total of total_spent).

    python tests/benchmarks/bench_import_formats.py [--n 100000] [--runs 3] [--dir DIR]
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.benchmarks.bench_contacts import NOW, generate

FORMATS = ("plain", "semicolon", "utf16")


def excel_copies(plain: Path) -> dict[str, Path]:
    """The plain CSV rewritten as Excel writes it in a decimal-comma locale."""
    with plain.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    spent = rows[0].index("total_spent")
    for row in rows[1:]:
        row[spent] = row[spent].replace(".", ",")
    semicolon = plain.with_name("excel-semicolon.csv")
    with semicolon.open("w", encoding="utf-8-sig", newline="") as out:
        csv.writer(out, delimiter=";", lineterminator="\r\n").writerows(rows)
    utf16 = plain.with_name("excel-unicode.txt")
    with utf16.open("w", encoding="utf-16", newline="") as out:
        csv.writer(out, delimiter="\t", lineterminator="\r\n").writerows(rows)
    return {"plain": plain, "semicolon": semicolon, "utf16": utf16}


def phase_import(db: Path, source: Path) -> dict[str, float]:
    """One import into a fresh database (run in a subprocess)."""
    from mailer.audience import store
    from mailer.audience.importer import import_contacts

    conn = store.connect(db)
    start = time.perf_counter()
    result = import_contacts(conn, source, now=NOW)
    seconds = time.perf_counter() - start
    assert not result.rejected, result.rejected[:3]
    total = conn.execute("SELECT count(*), round(sum(total_spent), 2) FROM contacts").fetchone()
    return {"seconds": seconds, "contacts": total[0], "spent": total[1]}


def run_phase(db: Path, source: Path) -> dict[str, float]:
    db.unlink(missing_ok=True)
    out = subprocess.run(
        [sys.executable, __file__, "--phase", str(db), str(source)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout)


def main() -> None:
    """Generate, import each format --runs times (interleaved), print medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/bench-import-formats"))
    parser.add_argument("--phase", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(phase_import(*args.phase)))
        return
    args.dir.mkdir(parents=True, exist_ok=True)
    plain = args.dir / "plain.csv"
    generate(plain, args.n)
    files = excel_copies(plain)
    times: dict[str, list[float]] = {name: [] for name in FORMATS}
    seen: dict[str, tuple[float, float]] = {}
    for _ in range(args.runs):  # interleaved, so load on the machine hits every format alike
        for name in FORMATS:
            result = run_phase(args.dir / f"{name}.db", files[name])
            times[name].append(result["seconds"])
            seen[name] = (result["contacts"], result["spent"])
    assert len(set(seen.values())) == 1, f"the formats imported different contacts: {seen}"
    base = statistics.median(times["plain"])
    print(f"{args.n:,} rows, median of {args.runs} runs (each run a fresh process and database)")
    print(f"{'format':<12}{'seconds':>9}{'rows/s':>10}{'ratio':>8}  runs")
    for name in FORMATS:
        median = statistics.median(times[name])
        runs = ", ".join(f"{t:.2f}" for t in times[name])
        ratio = median / base
        print(f"{name:<12}{median:>9.2f}{args.n / median:>10,.0f}{ratio:>8.2f}  {runs}")
    print(f"same contacts in all three: {seen['plain'][0]:,.0f}, total_spent {seen['plain'][1]}")


if __name__ == "__main__":
    main()
