"""Delivery under the real world's faults: refusals by step, greylisting, live runs, suppression.

A real aiosmtpd relay on 127.0.0.1 with injected faults, real SQLite files, and
(where time matters) a virtual clock: no assertion here depends on how fast
the machine is.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections import Counter
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from mailer.audience.store import connect
from mailer.audience.suppressions import suppress
from mailer.compose.outgoing import Envelope
from mailer.core.clock import SystemClock, stamp, utc_now
from mailer.delivery.journal import Journal
from mailer.delivery.relay import parse_smtp_url
from mailer.delivery.runs import STALE_AFTER, campaign_status, live_runs, start_run
from mailer.delivery.send import send_campaign
from mailer.delivery.smtp import SmtpTransport
from mailer.delivery.testsend import send_tests
from mailer.delivery.transport import Delivery, OutboxTransport
from tests.clock import VirtualClock
from tests.send_workspace import addresses, fast_options, prepared_campaign
from tests.smtp_server import Faults, RecordingHandler, SmtpServer


def relay(server: SmtpServer, pool: int = 4) -> SmtpTransport:
    return SmtpTransport(replace(parse_smtp_url(server.url), pool=pool, timeout=5))


def statuses(conn: sqlite3.Connection, key: str = "spring") -> dict[str, int]:
    return {k: v for k, v in Journal(conn, key).counts().items() if v}


@pytest.fixture
def faulty():
    servers: list[SmtpServer] = []

    def make(**faults: object) -> SmtpServer:
        server = SmtpServer(RecordingHandler(Faults(**faults))).start()  # type: ignore[arg-type]
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


def test_a_refusal_at_mail_from_pauses_the_run_and_fails_nobody(tmp_path: Path, faulty) -> None:
    server = faulty(mail_reply="530 5.7.0 Authentication required")
    prepared = prepared_campaign(tmp_path, 20)
    conn = connect(tmp_path / "mailer.db")
    report = send_campaign(prepared, conn=conn, transport=relay(server), options=fast_options())
    assert report.paused == "the relay refuses this campaign: 530 5.7.0 Authentication required"
    assert report.failed == 0 and report.sent == 0 and report.pending == 20
    assert "failed" not in statuses(conn)
    # Fixed relay: a plain resume sends to everyone.
    server.handler.faults.mail_reply = None
    again = send_campaign(prepared, conn=conn, transport=relay(server), options=fast_options())
    assert again.sent == 20 and statuses(conn) == {"sent": 20}


def test_a_campaign_wide_policy_block_pauses_and_nobody_stays_failed(
    tmp_path: Path, faulty
) -> None:
    # The same 5.7.1 for every recipient (the relay's IP is blocked somewhere): after a few,
    # the run stops, and the recipients refused so far are tried again next time.
    server = faulty(rcpt_reply="550 5.7.1 Message refused by local policy")
    prepared = prepared_campaign(tmp_path, 20)
    conn = connect(tmp_path / "mailer.db")
    report = send_campaign(
        prepared, conn=conn, transport=relay(server, pool=1), options=fast_options(concurrency=1)
    )
    assert report.paused is not None and report.paused.startswith(
        "the relay refuses this campaign: 550 5.7.1 Message refused by local policy"
    )
    assert report.failed == 0 and report.failures == []
    assert "failed" not in statuses(conn)
    server.handler.faults.rcpt_reply = None
    again = send_campaign(prepared, conn=conn, transport=relay(server), options=fast_options())
    assert again.sent == 20


def test_one_recipients_policy_refusal_fails_only_that_recipient(tmp_path: Path, faulty) -> None:
    server = faulty()
    refused = addresses(10)[3]

    class OneRefused(SmtpTransport):
        async def deliver(self, envelope: Envelope, go=None) -> Delivery | None:
            if envelope.recipient == refused:
                return Delivery(550, "5.7.1 Recipient address rejected: Access denied")
            return await super().deliver(envelope, go=go)

    prepared = prepared_campaign(tmp_path, 10)
    conn = connect(tmp_path / "mailer.db")
    report = send_campaign(
        prepared,
        conn=conn,
        transport=OneRefused(replace(parse_smtp_url(server.url), timeout=5)),
        options=fast_options(),
    )
    assert report.sent == 9 and report.failed == 1 and report.paused is None
    assert [f.email for f in report.failures] == [refused]


def test_greylisting_retries_those_recipients_and_does_not_slow_the_others(
    tmp_path: Path, faulty
) -> None:
    # 20 % of recipients greylisted on their first try: each of them is retried, and the
    # run never slows down for it (it used to: every 451 halved the rate for everybody).
    # How long such a run takes against a clean one is tests/benchmarks/bench_delivery.py's.
    server = faulty(greylist_fraction=0.2)
    prepared = prepared_campaign(tmp_path, 200, throttle="per_second = 100")
    waits: set[str] = set()
    report = send_campaign(
        prepared,
        conn=connect(tmp_path / "mailer.db"),
        transport=relay(server),
        options=fast_options(retry_base=0.05, retry_max=0.2),
        clock=VirtualClock(),
        progress=lambda r: waits.add(r.waiting),
    )
    assert report.sent == 200
    greylisted = len(server.handler.greylisted)
    assert 20 <= greylisted <= 60
    assert report.retries == greylisted
    assert Counter(server.handler.delivered_to()) == Counter(addresses(200))
    assert not any("slowing down" in w or "not answering" in w for w in waits), waits


def test_a_421_at_connect_is_not_charged_to_the_next_recipient(tmp_path: Path, faulty) -> None:
    server = faulty(too_many=2)
    prepared = prepared_campaign(tmp_path, 5)
    conn = connect(tmp_path / "mailer.db")
    transport = relay(server, pool=1)
    # The relay greets, then answers EHLO with "421 Too many connections" twice: that
    # is about the relay, so with one attempt allowed nobody fails.
    report = send_campaign(
        prepared,
        conn=conn,
        transport=transport,
        options=fast_options(max_attempts=1, concurrency=1),
    )
    assert report.sent == 5 and report.failed == 0


def test_an_address_suppressed_mid_run_is_not_mailed(tmp_path: Path, faulty) -> None:
    server = faulty()
    prepared = prepared_campaign(tmp_path, 12)
    later = addresses(12)[9]
    db = tmp_path / "mailer.db"

    class UnsubscribesDuringTheRun(SmtpTransport):
        delivered = 0

        async def deliver(self, envelope: Envelope, go=None) -> Delivery | None:
            self.delivered += 1
            if self.delivered == 2:  # another process commits an unsubscribe now
                other = connect(db)
                suppress(other, later, "unsubscribed", "one-click", now=utc_now())
                other.close()
            return await super().deliver(envelope, go=go)

    report = send_campaign(
        prepared,
        conn=connect(db),
        transport=UnsubscribesDuringTheRun(replace(parse_smtp_url(server.url), pool=1)),
        options=fast_options(concurrency=1),
    )
    assert later not in server.handler.delivered_to()
    assert report.sent == 11 and report.skipped_suppressed == 1
    assert Journal(connect(db), "spring").entries()[later].status == "suppressed"


def test_resend_unknown_never_takes_the_rows_of_a_live_run(tmp_path: Path, faulty) -> None:
    server = faulty()
    prepared = prepared_campaign(tmp_path, 6)
    conn = connect(tmp_path / "mailer.db")
    people = list(prepared.recipients())
    # Another run of this campaign, alive in this very process, has two in flight.
    other = start_run(
        conn, "spring", now=utc_now(), transport="smtp", forced=False, subject="",
        body_text="", audience="",
    )  # fmt: skip
    live = Journal(conn, "spring", clock=SystemClock())
    live.rules = replace(live.rules, run_id=other)
    for person in people[:2]:
        live.claim(person, "A", f"<{person.email}>")
    assert other in live_runs(conn, utc_now())
    status = campaign_status(conn, "spring", utc_now())
    assert [e.email for e in status.in_flight] == [p.email for p in people[:2]]
    assert status.unknown == []
    report = send_campaign(
        prepared, conn=conn, transport=relay(server), options=fast_options(resend_unknown=True)
    )
    assert report.sent == 4 and report.skipped_other_run == 2 and report.unknown == []
    assert sorted(server.handler.delivered_to()) == sorted(p.email for p in people[2:])
    # That run crashed (its heartbeat went silent): now its rows are unknown, and
    # only --resend-unknown sends them.
    conn.execute(
        "UPDATE campaign_runs SET heartbeat_at = ? WHERE id = ?",
        (stamp(utc_now() - 2 * STALE_AFTER), other),
    )
    status = campaign_status(conn, "spring", utc_now())
    assert status.in_flight == [] and len(status.unknown) == 2
    plain = send_campaign(prepared, conn=conn, transport=relay(server), options=fast_options())
    assert plain.sent == 0 and len(plain.unknown) == 2
    resend = send_campaign(
        prepared, conn=conn, transport=relay(server), options=fast_options(resend_unknown=True)
    )
    assert resend.sent == 2 and statuses(conn) == {"sent": 6}


def test_a_run_whose_process_died_is_not_live(tmp_path: Path) -> None:
    conn = connect(tmp_path / "mailer.db")
    now = utc_now()
    run_id = start_run(
        conn, "x", now=now, transport="smtp", forced=False, subject="", body_text="",
        audience="",
    )  # fmt: skip
    assert run_id in live_runs(conn, now)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    owner = conn.execute("SELECT owner FROM campaign_runs").fetchone()[0]
    host = owner.split(":")[0]
    conn.execute("UPDATE campaign_runs SET owner = ?", (f"{host}:{dead}:x",))
    assert run_id not in live_runs(conn, now)
    conn.execute("UPDATE campaign_runs SET owner = ?, finished_at = ?", (owner, stamp(now)))
    assert run_id not in live_runs(conn, now)
    assert os.getpid() == int(owner.split(":")[1])


def test_message_ids_differ_by_journal_key_and_for_every_test_send(tmp_path: Path) -> None:
    prepared = prepared_campaign(tmp_path, 3)
    person = next(prepared.recipients())
    ids = {
        prepared.build(person).envelope.message_id,
        prepared.build(person, key="spring@2027").envelope.message_id,
        prepared.build(person, key="spring@2028").envelope.message_id,
    }
    assert len(ids) == 3
    assert prepared.build(person).envelope.message_id == prepared.build(person).envelope.message_id
    first = send_tests(
        prepared, "me@tea.test", OutboxTransport(tmp_path / "t1"), now=prepared.clock.time()
    )
    second = send_tests(
        prepared, "me@tea.test", OutboxTransport(tmp_path / "t2"), now=prepared.clock.time()
    )
    first_ids = {
        p.read_bytes().split(b"Message-ID: ")[1][:60] for p in (tmp_path / "t1").rglob("*.eml")
    }
    second_ids = {
        p.read_bytes().split(b"Message-ID: ")[1][:60] for p in (tmp_path / "t2").rglob("*.eml")
    }
    assert len(first) == len(second) == 2
    assert first_ids and not first_ids & second_ids


def test_live_runs_treat_an_old_heartbeat_as_dead(tmp_path: Path) -> None:
    conn = connect(tmp_path / "mailer.db")
    now = utc_now()
    run_id = start_run(
        conn, "x", now=now - timedelta(hours=1), transport="smtp", forced=False, subject="",
        body_text="", audience="",
    )  # fmt: skip
    assert run_id not in live_runs(conn, now)
