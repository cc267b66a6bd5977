"""Score the bounce classifier on the labelled corpus (``tests/feedback/corpus``).

Shared by ``test_corpus.py`` (which asserts the thresholds) and
``tests/benchmarks/bench_bounces.py`` (which prints the tables for the docs).

Figures, each over the labelled messages or their recipient rows:
* right recipient: the set of addresses the classifier names for a message is
  exactly the labelled set (a report that hides the address is labelled "");
* right class: for each labelled recipient, the classifier's class for that
  address is the labelled class;
* temporary suppressed: labelled rows whose failure is temporary (a 4.x.x
  status, or one of the reasons that mean "try later": mailbox full, rate
  limited, greylisted, expired) that the classifier calls hard or complaint:
  must be 0;
* tracebacks: messages on which the classifier raised.
"""

from __future__ import annotations

import csv
import traceback
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from mailer.feedback.classify import Classified, classify_bytes

CORPUS = Path(__file__).parent / "corpus"
TEMPORARY = {"mailbox_full", "rate_limited", "greylisted", "expired"}


@dataclass(frozen=True)
class Label:
    """One labelled recipient row."""

    file: str
    family: str
    recipient: str
    reason: str
    kind: str
    status: str


@dataclass
class Tally:
    """Counts for one family (or all)."""

    messages: int = 0
    right_recipients: int = 0
    rows: int = 0
    right_class: int = 0
    right_reason: int = 0
    temporary_suppressed: int = 0
    tracebacks: int = 0

    def add(self, other: Tally) -> None:
        """Add another tally's counts to this one."""
        for name in vars(self):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class Score:
    """The corpus figures, overall and per family, and what went wrong where."""

    total: Tally = field(default_factory=Tally)
    families: dict[str, Tally] = field(default_factory=dict)
    misses: list[str] = field(default_factory=list)


def labels() -> dict[str, list[Label]]:
    """The labels, grouped by file."""
    grouped: dict[str, list[Label]] = defaultdict(list)
    with (CORPUS / "labels.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            grouped[row["file"]].append(
                Label(
                    row["file"],
                    row["family"],
                    row["recipient"],
                    row["reason"],
                    row["class"],
                    row["status"],
                )
            )
    return dict(grouped)


def classify_file(name: str) -> Classified:
    """The classifier's answer for one corpus file."""
    return classify_bytes((CORPUS / "sisimai" / name).read_bytes())


def score() -> Score:
    """Run the classifier over every labelled message and count."""
    result = Score()
    for name, rows in sorted(labels().items()):
        tally = _score_one(name, rows, result.misses)
        result.families.setdefault(rows[0].family, Tally()).add(tally)
        result.total.add(tally)
    return result


def _score_one(name: str, rows: list[Label], misses: list[str]) -> Tally:
    tally = Tally(messages=1, rows=len(rows))
    try:
        found = classify_file(name)
    except Exception:
        tally.tracebacks = 1
        misses.append(f"{name}: traceback\n{traceback.format_exc()}")
        return tally
    by_address = {v.recipient: v for v in found.verdicts}
    wanted = {r.recipient for r in rows}
    if set(by_address) == wanted:
        tally.right_recipients = 1
    else:
        misses.append(f"{name}: recipients {sorted(by_address)} != {sorted(wanted)}")
    for row in rows:
        verdict = by_address.get(row.recipient)
        if verdict is None and len(by_address) == 1 and len(rows) == 1:
            verdict = next(iter(by_address.values()))  # judged on the class even so
        got_class = str(verdict.kind) if verdict else "none"
        got_reason = str(verdict.reason) if verdict else "none"
        tally.right_class += got_class == row.kind
        tally.right_reason += got_reason == row.reason
        temporary = row.reason in TEMPORARY or row.status.startswith("4")
        if temporary and got_class in ("hard", "complaint"):
            tally.temporary_suppressed += 1
        if got_class != row.kind or got_reason != row.reason:
            said = verdict.diagnostic[:90] if verdict else ""
            misses.append(
                f"{name} {row.recipient}: {got_reason}/{got_class} != {row.reason}/{row.kind}"
                f" [{verdict.decided_by if verdict else ''}] {said}"
            )
    return tally
