"""Benchmark and figures: the bounce classifier on the labelled corpus (589 messages, 77 kinds).

Prints, for docs/incoming/issue-25.md:
  * the corpus figures: right recipient %, right class %, right reason %,
    temporary failures suppressed on first sight, tracebacks; the same for
    flufl.bounce alone (its permanent addresses taken as hard bounces, its
    temporary ones as soft, complaints and auto-replies unseen);
  * the per-family table (``--families``);
  * speed, measured in the same run: messages per second of the classifier and
    of flufl.bounce alone over the whole corpus (parse included in both), the
    median of ``--runs`` runs, and their ratio.

    python tests/benchmarks/bench_bounces.py [--runs 5] [--families]
"""

from __future__ import annotations

import argparse
import email
import logging
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from mailer.feedback.classify import classify_bytes  # noqa: E402
from tests.feedback.corpus_eval import CORPUS, TEMPORARY, Tally, labels, score  # noqa: E402

logging.getLogger("flufl.bounce").disabled = True


def flufl_only(raw: bytes) -> dict[str, str]:
    """flufl.bounce's answer as classes: permanent → hard, temporary → soft."""
    from flufl.bounce import all_failures

    try:
        temporary, permanent = all_failures(email.message_from_bytes(raw))
    except Exception:
        return {}
    found = {_text(a).lower(): "soft" for a in temporary}
    found.update({_text(a).lower(): "hard" for a in permanent})
    return found


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def flufl_score() -> Tally:
    """The corpus figures for flufl.bounce alone."""
    tally = Tally()
    for name, rows in labels().items():
        found = flufl_only((CORPUS / "sisimai" / name).read_bytes())
        tally.messages += 1
        tally.rows += len(rows)
        tally.right_recipients += set(found) == {r.recipient for r in rows}
        for row in rows:
            got = found.get(row.recipient, "none")
            tally.right_class += got == row.kind
            temporary = row.reason in TEMPORARY or row.status.startswith("4")
            tally.temporary_suppressed += temporary and got == "hard"
    return tally


def line(name: str, t: Tally) -> str:
    """One row of the figures table (Markdown)."""
    return (
        f"| {name} | {t.messages} | {t.right_recipients / t.messages:.1%} | "
        f"{t.right_class / t.rows:.1%} | {t.right_reason / t.rows:.1%} | "
        f"{t.temporary_suppressed} | {t.tracebacks} |"
    )


def speed(runs: int) -> tuple[float, float]:
    """Median messages per second: (classifier, flufl.bounce alone)."""
    corpus = [p.read_bytes() for p in sorted((CORPUS / "sisimai").glob("*.eml"))]
    ours, theirs = [], []
    for _ in range(runs):
        started = time.perf_counter()
        for raw in corpus:
            classify_bytes(raw)
        ours.append(len(corpus) / (time.perf_counter() - started))
        started = time.perf_counter()
        for raw in corpus:
            flufl_only(raw)
        theirs.append(len(corpus) / (time.perf_counter() - started))
    return statistics.median(ours), statistics.median(theirs)


def main() -> None:
    """Print the figures (and the per-family table with --families), then the speed."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--families", action="store_true")
    args = parser.parse_args()
    figures = score()
    print("| | messages | right recipient | right class | right reason | temporary"
          " suppressed | tracebacks |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|")
    print(line("mailer classifier", figures.total))
    theirs = flufl_score()
    print(
        line("flufl.bounce alone", theirs).replace(
            f"| {theirs.right_reason / theirs.rows:.1%}", "| –"
        )
    )
    if args.families:
        print("\n| family | messages | right recipient | right class | right reason |")
        print("|---|---:|---:|---:|---:|")
        for name, t in sorted(figures.families.items()):
            print(
                f"| {name} | {t.messages} | {t.right_recipients}/{t.messages} | "
                f"{t.right_class}/{t.rows} | {t.right_reason}/{t.rows} |"
            )
    ours, flufl = speed(args.runs)
    print(
        f"\nspeed (median of {args.runs} runs, {len(labels())} messages): classifier "
        f"{ours:.0f} msg/s, flufl.bounce alone {flufl:.0f} msg/s, ratio {ours / flufl:.2f}"
    )


if __name__ == "__main__":
    main()
