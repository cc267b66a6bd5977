"""The SMTP reply policy: every reply judged by the step it answers (a table, one row a case)."""

from __future__ import annotations

import pytest

from mailer.delivery.policy import Stage, Verdict, classify, enhanced_code, is_hard_bounce

S, V = Stage, Verdict

CASES = [
    # stage, code, text, verdict, charged to the recipient
    # -- connecting: nothing was sent for the recipient, so nothing is charged
    (S.CONNECT, 421, "4.7.0 Too many connections, try again later", V.SLOW_DOWN, False),
    (S.CONNECT, 450, "Service busy", V.SLOW_DOWN, False),
    (S.CONNECT, 554, "5.7.1 No SMTP service here", V.PAUSE, False),
    (S.CONNECT, None, "connection refused", V.SLOW_DOWN, False),
    (S.EHLO, None, "timed out", V.SLOW_DOWN, False),
    (S.STARTTLS, 454, "4.7.0 TLS not available due to local problem", V.SLOW_DOWN, False),
    (S.AUTH, 535, "5.7.8 Authentication credentials invalid", V.PAUSE, False),
    (S.AUTH, 530, "5.7.0 Authentication required", V.PAUSE, False),
    (S.AUTH, 454, "4.7.0 Temporary authentication failure", V.SLOW_DOWN, False),
    # -- MAIL FROM: about us, never about the recipient
    (S.MAIL, 530, "5.7.0 Authentication required", V.PAUSE, False),
    (S.MAIL, 550, "5.7.1 Sender address rejected: not owned by user", V.PAUSE, False),
    (S.MAIL, 553, "5.1.8 Sender domain does not exist", V.PAUSE, False),
    (S.MAIL, 451, "4.3.0 Temporary local problem", V.SLOW_DOWN, False),
    (S.MAIL, 452, "4.3.1 Insufficient system storage", V.SLOW_DOWN, False),
    (S.MAIL, 421, "4.4.2 Timeout exceeded, closing", V.SLOW_DOWN, False),
    (S.MAIL, None, "connection lost", V.RETRY, True),
    # -- RCPT TO: about this recipient, unless it says otherwise
    (S.RCPT, 451, "4.7.1 Greylisted, please try again later", V.RETRY, True),
    (S.RCPT, 450, "4.2.1 Mailbox busy", V.RETRY, True),
    (S.RCPT, 452, "4.2.2 Mailbox full", V.RETRY, True),
    (S.RCPT, 451, "4.3.0 Temporary lookup failure", V.SLOW_DOWN, False),
    (S.RCPT, 450, "4.7.1 Rate limit exceeded, slow down", V.SLOW_DOWN, False),
    (S.RCPT, 421, "4.7.0 Too many connections", V.SLOW_DOWN, False),
    (S.RCPT, 550, "5.1.1 <ann@x.test>: Recipient address rejected: User unknown", V.BOUNCE, True),
    (S.RCPT, 550, "User unknown", V.BOUNCE, True),
    (S.RCPT, 553, "5.1.0 <news@shop.test>: Sender address rejected: User unknown", V.PAUSE, False),
    (S.RCPT, 552, "5.2.2 Mailbox full", V.FAIL, True),
    (S.RCPT, 550, "5.7.1 Recipient address rejected: Access denied", V.FAIL, True),
    (S.RCPT, 554, "5.7.1 Relay access denied", V.PAUSE, False),
    (
        S.RCPT,
        550,
        "5.7.26 Unauthenticated email from shop.test is not accepted (DMARC)",
        V.PAUSE,
        False,
    ),
    (S.RCPT, 550, "5.7.27 The sender does not pass SPF", V.PAUSE, False),
    (S.RCPT, 550, "5.7.1 Service unavailable; Client host blocked using Spamhaus", V.PAUSE, False),
    (
        S.RCPT,
        550,
        "5.7.515 Access denied, sending domain does not meet the required authentication level",
        V.PAUSE,
        False,
    ),
    (S.RCPT, 550, "5.4.5 Daily user sending quota exceeded", V.PAUSE, False),
    (S.RCPT, None, "timed out", V.RETRY, True),
    # -- DATA
    (S.DATA_START, 554, "5.5.1 No valid recipients", V.FAIL, True),
    (S.DATA_START, 451, "4.3.0 Try again later", V.SLOW_DOWN, False),
    (S.LOST_BEFORE_END, None, "connection lost", V.RETRY, True),
    (S.DATA_END, 250, "2.0.0 OK queued as 4F2A", V.SENT, True),
    (S.DATA_END, 451, "4.7.1 Greylisted", V.RETRY, True),
    (S.DATA_END, 452, "4.2.2 Mailbox full", V.RETRY, True),
    (S.DATA_END, 554, "5.7.1 Message rejected as spam", V.FAIL, True),
    (S.DATA_END, 552, "5.3.4 Message size exceeds fixed limit", V.PAUSE, False),
    (S.DATA_END, 550, "5.1.1 User unknown", V.BOUNCE, True),
    # -- the connection died after the final ".": perhaps delivered
    (S.LOST_AFTER_END, None, "connection lost", V.UNKNOWN, True),
    (S.LOST_AFTER_END, None, "timed out waiting for the reply", V.UNKNOWN, True),
]


@pytest.mark.parametrize(("stage", "code", "text", "verdict", "charged"), CASES)
def test_every_reply_is_judged_by_its_step(
    stage: Stage, code: int | None, text: str, verdict: Verdict, charged: bool
) -> None:
    action = classify(stage, code, text)
    assert action.verdict is verdict, action
    assert action.charged is charged, action


def test_a_refusal_that_may_be_about_the_campaign_is_flagged_policy() -> None:
    # One recipient's "access denied" fails that recipient; several in a row pause the run
    # (the send loop counts them): these are marked as policy refusals.
    assert classify(S.RCPT, 550, "5.7.1 Recipient address rejected: Access denied").policy
    assert classify(S.DATA_END, 554, "5.7.1 Message rejected as spam").policy
    assert not classify(S.RCPT, 550, "5.1.1 User unknown").policy


def test_the_same_code_means_different_things_at_different_steps() -> None:
    refusal = (550, "5.7.1 Not allowed")
    assert classify(S.MAIL, *refusal).verdict is V.PAUSE
    assert classify(S.RCPT, *refusal).verdict is V.FAIL
    lost = (None, "connection lost")
    assert classify(S.LOST_BEFORE_END, *lost).verdict is V.RETRY
    assert classify(S.LOST_AFTER_END, *lost).verdict is V.UNKNOWN


def test_enhanced_codes_and_hard_bounces() -> None:
    assert enhanced_code("550 5.1.1 <a@b>: User unknown") == "5.1.1"
    assert enhanced_code("250 OK") is None
    assert is_hard_bounce(550, "5.1.10 Null MX")
    assert not is_hard_bounce(550, "5.1.8 Bad sender's system address")
    assert not is_hard_bounce(450, "4.1.1 User unknown (try later)")
