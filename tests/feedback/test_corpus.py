"""The bounce classifier on 589 real bounce and complaint messages from 77 MTA/ESP kinds.

The corpus is Sisimai's set-of-emails (BSD 2-clause, see corpus/NOTICE); the
labels (corpus/labels.csv) are Sisimai's verdicts in our reasons, with the
changes made by reading the messages listed in their ``note`` column.
"""

from __future__ import annotations

import email

import pytest

from mailer.feedback.classify import classify_bytes
from mailer.feedback.reasons import Class, Reason
from tests.feedback.corpus_eval import CORPUS, Score, labels, score


@pytest.fixture(scope="module")
def figures() -> Score:
    """The corpus scored once for the module."""
    return score()


def test_the_corpus_is_big_and_varied_enough() -> None:
    grouped = labels()
    assert len(grouped) >= 500
    assert len({rows[0].family for rows in grouped.values()}) >= 40
    assert sum(1 for rows in grouped.values() for r in rows if r.kind == "complaint") >= 20
    assert (CORPUS / "NOTICE").is_file()


def test_recipients_are_right_for_98_percent_of_messages(figures: Score) -> None:
    total = figures.total
    assert total.right_recipients / total.messages >= 0.98, "\n".join(figures.misses[:40])


def test_classes_are_right_for_95_percent_of_recipients(figures: Score) -> None:
    total = figures.total
    assert total.right_class / total.rows >= 0.95, "\n".join(figures.misses[:40])


def test_no_temporary_failure_is_suppressed_on_first_sight(figures: Score) -> None:
    assert figures.total.temporary_suppressed == 0, "\n".join(figures.misses)


def test_no_message_raises(figures: Score) -> None:
    assert figures.total.tracebacks == 0, "\n".join(figures.misses)


def test_mangled_copies_of_the_corpus_never_raise() -> None:
    """Truncated, CR-only and binary-garbled variants of every message: answers, no traceback."""
    for path in sorted((CORPUS / "sisimai").glob("*.eml"))[::7]:
        raw = path.read_bytes()
        for variant in (
            raw[: len(raw) // 2],
            raw.replace(b"\n", b"\r"),
            raw.replace(b"=", b"\xff"),
        ):
            classify_bytes(variant)


def test_a_temporary_user_unknown_is_soft() -> None:
    raw = (
        b"From: MAILER-DAEMON@mx.example\nTo: bounces@tea.test\nSubject: Undelivered Mail\n"
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=b\n\n--b\n"
        b"Content-Type: text/plain\n\nsorry\n--b\nContent-Type: message/delivery-status\n\n"
        b"Reporting-MTA: dns; mx.example\n\nFinal-Recipient: rfc822; ann@example.com\n"
        b"Action: failed\nStatus: 4.1.1\nDiagnostic-Code: smtp; 450 4.1.1 User unknown\n--b--\n"
    )
    (verdict,) = classify_bytes(raw).verdicts
    assert (verdict.recipient, verdict.reason, verdict.kind) == (
        "ann@example.com", Reason.USER_UNKNOWN, Class.SOFT,
    )  # fmt: skip
    assert verdict.status == "4.1.1"


def test_a_plain_letter_is_not_a_report() -> None:
    letter = email.message_from_string("From: ann@example.com\nSubject: hi\n\nHello!\n")
    assert classify_bytes(letter.as_bytes()).form == "other"
