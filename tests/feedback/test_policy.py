"""Policy by reason on a real SQLite store: soft-bounce counting with its reset, sender-side
refusals that never suppress but can pause, mailto: unsubscribes over real SMTP and IMAP,
an over-long report line, and migration 12 keeping what was recorded before it."""

from __future__ import annotations

import smtplib
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mailer.audience.store import connect
from mailer.core.clock import stamp
from mailer.core.settings import Feedback
from mailer.feedback.events import Event, Kind, apply_event
from mailer.feedback.inbound import BounceHandler
from mailer.feedback.rates import Rates, pause_cause, pause_reason
from tests.feedback.report_mail import dsn
from tests.feedback.test_inbound import inbound  # noqa: F401 (fixture)
from tests.feedback.test_mailbox import OTHERS, fetch, imap, sent  # noqa: F401 (fixtures)
from tests.imap_server import ImapServer

START = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
RULES = Feedback()  # 3 soft bounces within 30 days


def soft(conn: sqlite3.Connection, email: str, campaign: str, day: int) -> bool:
    event = Event(Kind.SOFT_BOUNCE, email, "mailbox", campaign, f"{email}:{campaign}",
                  "452 4.2.2 mailbox full", "mailbox_full", "4.2.2")  # fmt: skip
    return apply_event(conn, event, RULES, START + timedelta(days=day)).suppressed


def sent_to(conn: sqlite3.Connection, email: str, campaign: str, day: int) -> None:
    at = stamp(START + timedelta(days=day))
    conn.execute(
        "INSERT INTO journal (campaign_id, email, status, queued_at, updated_at, sent_at)"
        " VALUES (?, ?, 'sent', ?, ?, ?)",
        (campaign, email, at, at, at),
    )


def test_three_soft_bounces_in_30_days_suppress_and_a_delivery_between_resets(
    tmp_path: Path,
) -> None:
    conn = connect(tmp_path / "mailer.db")
    for day, campaign in enumerate(("c1", "c2", "c3", "c4", "c5")):
        for email in ("full@x.test", "back@x.test"):
            sent_to(conn, email, campaign, day * 5)
    # full@: three campaigns in a row come back full: suppressed at the third.
    assert [soft(conn, "full@x.test", c, d * 5 + 1) for d, c in enumerate(("c1", "c2", "c3"))] == [
        False, False, True,
    ]  # fmt: skip
    # back@: c1 and c2 bounce, c3 is delivered (nothing comes back), c4 and c5 bounce.
    answers = [soft(conn, "back@x.test", c, d) for c, d in (("c1", 1), ("c2", 6), ("c4", 16))]
    answers.append(soft(conn, "back@x.test", "c5", 21))
    assert answers == [False, False, False, False]  # the delivery of c3 reset the count
    listed = {r[0]: r[1] for r in conn.execute("SELECT email, source FROM suppressions")}
    conn.close()
    assert list(listed) == ["full@x.test"]
    assert "3 soft bounces in 30 days (last: mailbox_full)" in listed["full@x.test"]


def test_sender_side_refusals_never_suppress_but_count_and_can_pause(tmp_path: Path) -> None:
    conn = connect(tmp_path / "mailer.db")
    for i in range(3):
        event = Event(Kind.SENDER_SIDE, f"p{i}@gmail.test", "mailbox", "spring", f"e{i}",
                      "550 5.7.26 Unauthenticated email ... DMARC policy", "auth_failed", "5.7.26")  # fmt: skip
        assert not apply_event(conn, event, RULES, START).suppressed
    (suppressed,) = conn.execute("SELECT count(*) FROM suppressions").fetchone()
    conn.close()
    assert suppressed == 0
    rates = Rates(100, 0, 0, sender_side=3)
    assert pause_cause(rates, RULES) == "sender"  # 3 % over the 2 % limit
    reason = pause_reason(rates, RULES)
    assert reason is not None and "sending side" in reason and "pause_sender_rate" in reason
    complaints = Rates(1000, 0, 4, sender_side=3)
    assert pause_cause(complaints, RULES) == "complaints"  # named for what it is
    late = Rates(1000, 51, 0)  # 51 late hard bounces among 1,000 delivered
    assert late.bounce_rate == 0.051 and pause_cause(late, RULES) == "bounces"


def unsubscribe_mail(sender: str, to: str = "unsubscribe@mailer-demo.test") -> bytes:
    return (
        f"From: {sender}\r\nTo: {to}\r\nSubject: unsubscribe\r\n"
        "Message-ID: <req-" + sender.replace("@", ".") + ">\r\n\r\nPlease unsubscribe me.\r\n"
    ).encode()


def test_mailto_unsubscribes_over_smtp_suppress_recipients_we_mailed_only(
    inbound: tuple[BounceHandler, int],  # noqa: F811
    sent: tuple[Path, dict[str, bytes]],  # noqa: F811
) -> None:
    handler, port = inbound
    handler.unsubscribe_address = "unsubscribe@mailer-demo.test"
    root, _ = sent
    with smtplib.SMTP("127.0.0.1", port) as client:
        client.sendmail(OTHERS[0], ["unsubscribe@mailer-demo.test"], unsubscribe_mail(OTHERS[0]))
        # Somebody we never mailed: skipped. A forged From that failed DMARC: skipped.
        stranger = unsubscribe_mail("stranger@elsewhere.test")
        client.sendmail("stranger@elsewhere.test", ["unsubscribe@mailer-demo.test"], stranger)
        forged = b"Authentication-Results: mx.test; dmarc=fail header.from=tea.test\r\n"
        forged += unsubscribe_mail(OTHERS[1])
        client.sendmail(OTHERS[1], ["unsubscribe@mailer-demo.test"], forged)
    conn = connect(root / "mailer.db")
    listed = {r[0]: r[1] for r in conn.execute("SELECT email, reason FROM suppressions")}
    conn.close()
    assert listed == {OTHERS[0]: "unsubscribed"}
    assert handler.counts.not_ours == 2


def test_a_report_with_an_over_long_line_is_accepted_not_refused_for_good(
    inbound: tuple[BounceHandler, int],  # noqa: F811
    sent: tuple[Path, dict[str, bytes]],  # noqa: F811
) -> None:
    _handler, port = inbound
    root, messages = sent
    report = dsn(messages[OTHERS[2]], OTHERS[2]).replace(
        b"\r\n\r\n", b"\r\nX-Long: " + b"x" * 5000 + b"\r\n\r\n", 1
    )
    with smtplib.SMTP("127.0.0.1", port) as client:
        client.sendmail("", ["bounces@tea.test"], report)  # raises on any refusal
    conn = connect(root / "mailer.db")
    listed = {r[0]: r[1] for r in conn.execute("SELECT email, reason FROM suppressions")}
    conn.close()
    assert listed == {OTHERS[2]: "bounced"}


def test_bounces_fetch_applies_mailto_unsubscribes(
    imap: ImapServer,  # noqa: F811
    sent: tuple[Path, dict[str, bytes]],  # noqa: F811
) -> None:
    root, _ = sent
    imap.deliver(unsubscribe_mail(OTHERS[3]))
    imap.deliver(unsubscribe_mail("stranger@elsewhere.test"))
    result = fetch(root, imap, unsubscribe="unsubscribe@mailer-demo.test")
    assert result.unsubscribes == 1 and result.not_ours == ["stranger@elsewhere.test"]
    conn = connect(root / "mailer.db")
    listed = {r[0]: r[1] for r in conn.execute("SELECT email, reason FROM suppressions")}
    conn.close()
    assert listed == {OTHERS[3]: "unsubscribed"}


def test_migration_12_keeps_earlier_events_and_adds_reasons(tmp_path: Path) -> None:
    from mailer.audience.store import MIGRATIONS

    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    for number in range(11):  # a database made by the mailer before this change
        for statement in MIGRATIONS[number]:
            old.execute(statement)
    old.execute("PRAGMA user_version = 11")
    old.execute(
        "INSERT INTO feedback_events (kind, email, campaign_id, source, event_id, detail,"
        " received_at) VALUES ('hard_bounce', 'a@x.test', 'spring', 'dsn', 'r1', '550', ?)",
        (stamp(START),),
    )
    old.commit()
    old.close()
    conn = connect(path)  # migrates
    row = conn.execute("SELECT kind, email, reason, status, report_id FROM feedback_events")
    assert tuple(row.fetchone()) == ("hard_bounce", "a@x.test", "", "", "")
    event = Event(Kind.SENDER_SIDE, "b@x.test", "dsn", "spring", "r2", reason="blocked")
    assert apply_event(conn, event, RULES, START).new
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute(
            "INSERT INTO feedback_events (kind, email, source, event_id, received_at)"
            " VALUES ('nonsense', 'c@x.test', 'dsn', 'r3', 'now')"
        )
    conn.close()


def test_contacts_show_status_report_and_doctor_tell_the_reasons(
    sent: tuple[Path, dict[str, bytes]],  # noqa: F811
) -> None:
    from tests.workspace import invoke

    root, _ = sent
    conn = connect(root / "mailer.db")
    hard = Event(Kind.HARD_BOUNCE, OTHERS[0], "mailbox", "spring", "h1",
                 "550 5.1.1 user unknown", "user_unknown", "5.1.1", "<dsn-1@mx.test>")  # fmt: skip
    block = Event(Kind.SENDER_SIDE, OTHERS[1], "mailbox", "spring", "s1",
                  "550 5.7.26 DMARC policy", "auth_failed", "5.7.26", "<dsn-2@mx.test>")  # fmt: skip
    now = datetime.now(UTC)
    apply_event(conn, hard, RULES, now)
    apply_event(conn, block, RULES, now)
    conn.close()
    shown = invoke(root, "contacts", "show", OTHERS[0])
    assert shown.exit_code == 0, shown.output
    assert "hard bounce  user_unknown 5.1.1" in shown.output and "<dsn-1@mx.test>" in shown.output
    status = invoke(root, "status", "spring")
    assert "hard bounce: 1 × user_unknown (the mailbox does not exist)" in status.output
    assert "sender problem: receivers refused our mail for 1 address(es)" in status.output
    report = invoke(root, "report", "spring")
    assert "sender side: 1 × auth_failed" in report.output
    doctor = invoke(root, "doctor", "--offline")
    assert "sender problem" in doctor.output and "auth_failed" in doctor.output
