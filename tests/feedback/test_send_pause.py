"""A send pauses itself when complaints about it pass the limit, and resumes without repeats.

A real aiosmtpd relay on loopback; while it receives, a "feedback loop" files a
complaint (through ``apply_event``, into the same SQLite file, as ``mailer serve``
would) for some of the recipients it accepted.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from aiosmtpd.smtp import SMTP, Envelope, Session

from mailer.audience.store import connect
from mailer.core.settings import Feedback
from mailer.delivery.journal import Journal
from mailer.delivery.send import send_campaign
from mailer.feedback.events import Event, Kind, apply_event
from mailer.feedback.rates import campaign_rates
from tests.delivery.test_send import transport_for
from tests.send_workspace import addresses, fast_options, prepared_campaign
from tests.smtp_server import RecordingHandler, SmtpServer

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
RULES = Feedback(pause_complaint_rate=0.003, min_delivered=100)


class ComplainingHandler(RecordingHandler):
    """Accepts everything; the recipients in ``angry`` complain as soon as they get it."""

    def __init__(self, db: Path, angry: set[str]):
        super().__init__(keep_data=False)
        self.db, self.angry = db, angry

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        reply = await super().handle_DATA(server, session, envelope)
        for rcpt in envelope.rcpt_tos:
            if rcpt in self.angry:
                conn = connect(self.db)
                # Named campaign: the report quotes our headers (an ARF report, SES);
                # its journal row is not "sent" yet while the relay is still answering.
                event = Event(Kind.COMPLAINT, rcpt, "arf", "spring", f"arf-{rcpt}")
                apply_event(conn, event, RULES, datetime.now(UTC))
                conn.close()
        return reply


def statuses(conn: sqlite3.Connection) -> dict[str, int]:
    return {k: v for k, v in Journal(conn, "spring").counts().items() if v}


def test_complaints_pause_the_send_and_the_rest_goes_out_once_later(tmp_path: Path) -> None:
    everyone = addresses(1000)
    angry = set(everyone[:40:8])  # 5 of the first 40: 5 % of the first hundred delivered
    prepared = prepared_campaign(tmp_path, 1000)
    handler = ComplainingHandler(tmp_path / "mailer.db", angry)
    server = SmtpServer(handler).start()
    conn = connect(tmp_path / "mailer.db")
    try:
        first = send_campaign(
            prepared,
            conn=conn,
            transport=transport_for(server, pool=2),
            options=fast_options(feedback=RULES, concurrency=2),
        )
        assert first.paused is not None and "complaint" in first.paused
        assert "pause_complaint_rate" in first.paused  # says how to go on
        # It paused soon after the limit was passed (checked every 100 messages),
        # not at the end; nobody was refused or lost.
        assert 100 <= first.sent < 300
        assert statuses(conn).get("failed", 0) == 0
        rates = campaign_rates(conn, "spring")
        assert rates.complained == 5 and rates.delivered == first.sent
        # The complainers are suppressed; going on with a raised limit sends the rest once.
        second = send_campaign(
            prepared,
            conn=conn,
            transport=transport_for(server, pool=2),
            options=fast_options(feedback=replace(RULES, pause_complaint_rate=0.5)),
        )
        assert second.paused is None and second.complete
        delivered = Counter(handler.delivered_to())
        assert max(delivered.values()) == 1  # nobody twice
        assert set(delivered) == set(everyone)  # nobody lost (complainers got the first one)
        assert statuses(conn) == {"sent": 1000}
    finally:
        conn.close()
        server.close()


def test_no_limit_no_pause(tmp_path: Path) -> None:
    """Without [feedback] limits (options.feedback None) the same complaints change nothing."""
    everyone = addresses(300)
    prepared = prepared_campaign(tmp_path, 300)
    handler = ComplainingHandler(tmp_path / "mailer.db", set(everyone[:50]))
    server = SmtpServer(handler).start()
    conn = connect(tmp_path / "mailer.db")
    try:
        report = send_campaign(
            prepared, conn=conn, transport=transport_for(server), options=fast_options()
        )
        assert report.paused is None and report.sent == 300
    finally:
        conn.close()
        server.close()


def test_bounce_reports_count_against_the_bounce_limit(tmp_path: Path) -> None:
    """Reports that came after the send are attributed to the campaign last delivered."""
    prepared = prepared_campaign(tmp_path, 200)
    server = SmtpServer(RecordingHandler(keep_data=False)).start()
    conn = connect(tmp_path / "mailer.db")
    try:
        send_campaign(prepared, conn=conn, transport=transport_for(server), options=fast_options())
        later = datetime.now(UTC)
        for email in addresses(200)[:12]:  # DSNs, no campaign named
            apply_event(conn, Event(Kind.HARD_BOUNCE, email, "dsn"), RULES, later)
        rates = campaign_rates(conn, "spring")
        assert (rates.delivered, rates.bounced) == (200, 12)
        # The late bounces are among the 200 delivered: one denominator (it was 212).
        assert rates.bounce_rate == 12 / 200
        from mailer.feedback.rates import pause_reason

        reason = pause_reason(rates, RULES)
        assert reason is not None and "hard bounce" in reason
        suppressed = conn.execute("SELECT count(*) FROM suppressions").fetchone()[0]
        assert suppressed == 12
    finally:
        conn.close()
        server.close()
