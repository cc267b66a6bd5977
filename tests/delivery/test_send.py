"""The send orchestrator against a real aiosmtpd server on 127.0.0.1, with injected faults."""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from email import message_from_bytes
from email.header import decode_header, make_header
from pathlib import Path

import pytest

from mailer.audience.store import connect
from mailer.audience.suppressions import suppress
from mailer.core.clock import SystemClock, stamp, utc_now
from mailer.delivery.journal import Claim, ClaimRules, Journal
from mailer.delivery.plan import dry_run
from mailer.delivery.policy import is_hard_bounce
from mailer.delivery.relay import parse_smtp_url
from mailer.delivery.runs import campaign_status
from mailer.delivery.send import send_campaign
from mailer.delivery.smtp import SmtpTransport
from mailer.delivery.testsend import send_tests
from mailer.delivery.throttle import Throttler
from tests.clock import VirtualClock
from tests.send_workspace import addresses, fast_options, prepared_campaign
from tests.smtp_server import Faults, RecordingHandler, SmtpServer

# A fixed moment for stamps the tests do not look at.
NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


def transport_for(server: SmtpServer, pool: int = 4) -> SmtpTransport:
    relay = parse_smtp_url(server.url)
    from dataclasses import replace

    return SmtpTransport(replace(relay, pool=pool, timeout=5))


def server_with(faults: Faults) -> SmtpServer:
    return SmtpServer(RecordingHandler(faults)).start()


def statuses(conn, campaign_id: str = "spring") -> dict[str, int]:
    return {k: v for k, v in Journal(conn, campaign_id).counts().items() if v}


@pytest.fixture
def faulty():
    servers: list[SmtpServer] = []

    def make(**faults: object) -> SmtpServer:
        server = server_with(Faults(**faults))  # type: ignore[arg-type]
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


def test_everyone_is_delivered_exactly_once(tmp_path: Path, smtp_server: SmtpServer) -> None:
    prepared = prepared_campaign(tmp_path, 40)
    conn = connect(tmp_path / "mailer.db")
    report = send_campaign(
        prepared, conn=conn, transport=transport_for(smtp_server), options=fast_options()
    )
    delivered = smtp_server.handler.delivered_to()
    assert sorted(delivered) == sorted(addresses(40))
    assert report.sent == 40 and report.complete
    assert statuses(conn) == {"sent": 40}
    assert smtp_server.connections <= 4  # connections are pooled and reused
    message = smtp_server.handler.received[0].message
    assert message["Message-ID"].endswith("@teahouse.cn>")
    row = conn.execute("SELECT variant, message_id, sent_at FROM journal LIMIT 1").fetchone()
    assert row["variant"] in ("A", "B") and row["message_id"] and row["sent_at"]


def test_temporary_failures_are_retried_until_delivered_never_twice(tmp_path: Path, faulty) -> None:
    server = faulty(tempfail_fraction=0.3)
    prepared = prepared_campaign(tmp_path, 60)
    conn = connect(tmp_path / "mailer.db")
    report = send_campaign(
        prepared, conn=conn, transport=transport_for(server), options=fast_options(max_attempts=12)
    )
    assert len(server.handler.tempfailed) > 5
    delivered = server.handler.delivered_to()
    assert Counter(delivered) == Counter(addresses(60))  # everyone, once
    assert report.sent == 60 and report.retries >= len(server.handler.tempfailed)
    assert statuses(conn) == {"sent": 60}
    # "451 4.3.0" is trouble at the relay, not about the recipient: it charges no
    # attempt (the claim's count is given back), so each row shows its one delivery.
    attempts = dict(conn.execute("SELECT email, attempts FROM journal"))
    assert set(attempts.values()) == {1}


def test_unknown_users_fail_at_once_and_are_suppressed(tmp_path: Path, faulty) -> None:
    server = faulty(reject={"u3@a.test", "u7@b.test"})
    prepared = prepared_campaign(tmp_path, 10)
    conn = connect(tmp_path / "mailer.db")
    report = send_campaign(
        prepared, conn=conn, transport=transport_for(server), options=fast_options()
    )
    assert (report.sent, report.failed, report.bounced) == (8, 2, 2)
    assert sorted(f.email for f in report.failures) == ["u3@a.test", "u7@b.test"]
    suppressed = dict(conn.execute("SELECT email, reason FROM suppressions"))
    assert suppressed == {"u3@a.test": "bounced", "u7@b.test": "bounced"}
    row = conn.execute(
        "SELECT status, attempts, last_code, last_reply, bounce FROM journal WHERE email = ?",
        ("u3@a.test",),
    ).fetchone()
    assert tuple(row)[:3] == ("failed", 1, 550) and row["bounce"] == 1
    assert "5.1.1" in row["last_reply"]
    # A later run, even with retry_failed, never mails a hard bounce again.
    again = send_campaign(
        prepared,
        conn=conn,
        transport=transport_for(server),
        options=fast_options(retry_failed=True),
    )
    assert again.sent == 0 and again.skipped_sent == 8
    assert again.skipped_failed == 2  # and their rows keep the bounce reply
    assert conn.execute("SELECT COUNT(*) FROM journal WHERE status = 'failed'").fetchone()[0] == 2
    assert len(server.handler.received) == 8


def test_connection_dropped_before_the_message_was_sent_is_retried(tmp_path: Path, faulty) -> None:
    # The relay hangs up on DATA: nothing of the message went out, so sending it again is safe.
    server = faulty(drop_at_data={"u2@c.test", "u5@c.test", "u9@a.test"})
    prepared = prepared_campaign(tmp_path, 12)
    conn = connect(tmp_path / "mailer.db")
    report = send_campaign(
        prepared, conn=conn, transport=transport_for(server), options=fast_options()
    )
    assert sorted(server.handler.dropped) == ["u2@c.test", "u5@c.test", "u9@a.test"]
    assert Counter(server.handler.delivered_to()) == Counter(addresses(12))
    assert report.sent == 12 and report.retries == 3
    assert statuses(conn) == {"sent": 12}


def test_connection_lost_after_the_message_was_sent_leaves_it_unknown(
    tmp_path: Path, faulty
) -> None:
    # The relay keeps the message, then the connection dies before its 250 (every 5th
    # message here): the client cannot know it arrived, so it must not send it again.
    server = faulty(keep_then_drop_every=5)
    prepared = prepared_campaign(tmp_path, 30)
    conn = connect(tmp_path / "mailer.db")
    report = send_campaign(
        prepared, conn=conn, transport=transport_for(server), options=fast_options()
    )
    kept = [a.lower() for a in server.handler.kept_then_dropped]
    assert len(kept) == 6
    delivered = Counter(server.handler.delivered_to())
    assert delivered == Counter(addresses(30))  # everyone once: no duplicate
    assert sorted(report.unknown) == sorted(kept) and report.sent == 24
    assert statuses(conn) == {"sent": 24, "sending": 6}
    status = campaign_status(conn, "spring", utc_now())
    assert sorted(e.email for e in status.unknown) == sorted(kept)
    assert all("may have been delivered" in (e.last_reply or "") for e in status.unknown)
    # A plain resume lists them and sends nothing; --resend-unknown sends them again, on purpose.
    again = send_campaign(
        prepared, conn=conn, transport=transport_for(server), options=fast_options()
    )
    assert again.sent == 0 and sorted(again.unknown) == sorted(kept)
    server.handler.faults.keep_then_drop_every = 0
    resend = send_campaign(
        prepared,
        conn=conn,
        transport=transport_for(server),
        options=fast_options(resend_unknown=True),
    )
    assert resend.sent == 6
    assert statuses(conn) == {"sent": 30}
    assert sorted(Counter(server.handler.delivered_to()).values()) == [1] * 24 + [2] * 6


def test_connection_lost_mid_message_is_unknown_not_retried(tmp_path: Path, faulty) -> None:
    # Half-way through DATA from the relay's side is after the final "." from ours (the
    # whole message was written): the client cannot tell, so it does not guess.
    server = faulty(drop_data={"u2@c.test"})
    prepared = prepared_campaign(tmp_path, 6)
    conn = connect(tmp_path / "mailer.db")
    report = send_campaign(
        prepared, conn=conn, transport=transport_for(server), options=fast_options()
    )
    assert report.sent == 5 and report.unknown == ["u2@c.test"] and report.retries == 0
    assert server.handler.delivered_to().count("u2@c.test") == 0


def test_relay_stopped_and_restarted_mid_campaign(tmp_path: Path, smtp_server: SmtpServer) -> None:
    prepared = prepared_campaign(tmp_path, 150, throttle="per_second = 300")
    conn = connect(tmp_path / "mailer.db")
    outage = threading.Event()

    def bounce_relay() -> None:
        while len(smtp_server.handler.received) < 40:
            time.sleep(0.005)
        smtp_server.stop()
        outage.set()
        time.sleep(0.4)
        smtp_server.start()

    thread = threading.Thread(target=bounce_relay)
    thread.start()
    report = send_campaign(
        prepared,
        conn=conn,
        transport=transport_for(smtp_server),
        options=fast_options(max_consecutive_failures=100),
    )
    thread.join()
    assert outage.is_set()
    delivered = Counter(smtp_server.handler.delivered_to())
    # A message whose final "." was written when the relay went down is unknown (the
    # client cannot tell whether it arrived): never sent twice, never silently lost.
    assert max(delivered.values()) == 1
    assert set(delivered) | set(report.unknown) == set(addresses(150))
    assert report.sent + len(report.unknown) == 150 and report.retries > 0
    unknown = {"sending": len(report.unknown)} if report.unknown else {}
    assert statuses(conn) == {"sent": report.sent, **unknown}


def test_run_pauses_after_consecutive_failures_and_says_why(tmp_path: Path, faulty) -> None:
    server = faulty(tempfail_fraction=1.0)
    prepared = prepared_campaign(tmp_path, 30)
    conn = connect(tmp_path / "mailer.db")
    report = send_campaign(
        prepared,
        conn=conn,
        transport=transport_for(server),
        options=fast_options(max_consecutive_failures=5, concurrency=1),
    )
    assert report.paused == (
        "paused after 5 failures in a row (last: 451 4.3.0 Temporary failure, try again later); "
        "the relay may be down or refusing us"
    )
    assert report.sent == 0 and report.pending == 30 and not report.complete
    # The five tried are deferred (rows come with claims; the others have none yet).
    assert statuses(conn) == {"deferred": 5}
    run = conn.execute("SELECT finished_at, note FROM campaign_runs").fetchone()
    assert run["finished_at"] and "paused after 5 failures" in run["note"]


def test_resume_skips_sent_and_lists_unknown(tmp_path: Path, smtp_server: SmtpServer) -> None:
    prepared = prepared_campaign(tmp_path, 10)
    conn = connect(tmp_path / "mailer.db")
    people = list(prepared.recipients())
    journal = Journal(conn, "spring", clock=SystemClock())
    # What a crash leaves behind: three sent, two in flight (unknown), the rest untouched.
    for person in people[:5]:
        journal.claim(person, "A", f"<{person.email}>")
    for person in people[:3]:
        journal.mark_result(person.email, "sent", 250, "OK")
    report = send_campaign(
        prepared, conn=conn, transport=transport_for(smtp_server), options=fast_options()
    )
    assert report.skipped_sent == 3
    assert report.unknown == [people[3].email, people[4].email]
    assert report.sent == 5
    assert sorted(smtp_server.handler.delivered_to()) == sorted(p.email for p in people[5:])
    assert statuses(conn) == {"sent": 8, "sending": 2}
    again = send_campaign(
        prepared,
        conn=conn,
        transport=transport_for(smtp_server),
        options=fast_options(resend_unknown=True),
    )
    assert again.sent == 2 and again.unknown == []
    assert statuses(conn) == {"sent": 10}


def test_stop_request_lets_inflight_finish_and_resume_completes(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    prepared = prepared_campaign(tmp_path, 60, throttle="per_second = 200")
    conn = connect(tmp_path / "mailer.db")
    stop = threading.Event()

    def progress(report) -> None:
        if report.sent >= 10:
            stop.set()

    first = send_campaign(
        prepared,
        conn=conn,
        transport=transport_for(smtp_server),
        options=fast_options(stop=stop),
        progress=progress,
    )
    assert first.stopped and 10 <= first.sent < 60
    assert first.pending == 60 - first.sent
    assert "sending" not in statuses(conn)  # nothing was cut off mid-transaction
    second = send_campaign(
        prepared, conn=conn, transport=transport_for(smtp_server), options=fast_options()
    )
    assert second.complete and second.sent == 60 - first.sent
    assert Counter(smtp_server.handler.delivered_to()) == Counter(addresses(60))


def test_daily_quota_spent_by_earlier_runs_pauses_the_run(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    prepared = prepared_campaign(tmp_path, 10, throttle="per_day = 5")
    conn = connect(tmp_path / "mailer.db")
    now = stamp(utc_now())
    conn.executemany(
        "INSERT INTO journal (campaign_id, email, status, queued_at, updated_at, sent_at)"
        " VALUES ('older', ?, 'sent', ?, ?, ?)",
        [(f"x{i}@old.test", now, now, now) for i in range(3)],
    )
    report = send_campaign(
        prepared, conn=conn, transport=transport_for(smtp_server), options=fast_options()
    )
    assert report.sent == 2
    assert report.paused is not None
    # Facts only: when to send again is said by the caller (send or run-due), in its own words.
    assert report.paused == "the daily quota of 5 messages is used up"
    assert report.resume_in is not None and 0 < report.resume_in <= 86400
    assert report.pending == 8


def test_dry_run_renders_everything_and_writes_nothing(tmp_path: Path) -> None:
    prepared = prepared_campaign(tmp_path, 20)
    conn = connect(tmp_path / "mailer.db")
    result = dry_run(prepared, conn, now=prepared.now())
    assert result.plan.todo == 20
    assert sum(result.variants.values()) == 20 and set(result.variants) == {"A", "B"}
    assert result.total_bytes > 20 * 1000
    assert conn.execute("SELECT COUNT(*) FROM journal").fetchone()[0] == 0
    assert conn.execute("SELECT COUNT(*) FROM campaign_runs").fetchone()[0] == 0


def test_each_run_is_recorded_with_forced_flag(tmp_path: Path, smtp_server: SmtpServer) -> None:
    prepared = prepared_campaign(tmp_path, 3)
    conn = connect(tmp_path / "mailer.db")
    send_campaign(
        prepared,
        conn=conn,
        transport=transport_for(smtp_server),
        options=fast_options(forced=True),
    )
    run = conn.execute("SELECT * FROM campaign_runs").fetchone()
    assert run["forced"] == 1 and run["campaign_id"] == "spring"
    assert run["transport"].startswith(f"smtp://127.0.0.1:{smtp_server.port}")
    assert "Spring tea is here" in run["subject"]
    assert run["audience"] == "csv:contacts.csv"
    assert "Shop the harvest" in run["body_text"]
    # The stored body keeps nobody's personal data: not the first recipient's name,
    # address or unsubscribe token (which `contacts forget` could not find there).
    first = next(prepared.recipients())
    token_url = prepared.render(first).unsubscribe_url
    assert first.fields["first_name"] in prepared.render(first).text  # it was personalised
    assert first.fields["first_name"] not in run["body_text"]
    assert first.email not in run["body_text"] and token_url not in run["body_text"]
    assert campaign_status(conn, "spring", utc_now()).runs[0].note == "sent 3, failed 0, pending 0"


def test_scheduler_overrides_recipients_and_journal_key(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    prepared = prepared_campaign(tmp_path, 10)
    conn = connect(tmp_path / "mailer.db")
    wave = list(prepared.recipients())[:4]
    report = send_campaign(
        prepared,
        conn=conn,
        transport=transport_for(smtp_server),
        options=fast_options(),
        recipients=wave,
        campaign_id="spring@2027",
    )
    assert report.sent == 4 and report.campaign_id == "spring@2027"
    assert statuses(conn, "spring@2027") == {"sent": 4}
    assert statuses(conn, "spring") == {}


def test_too_many_connections_backs_off_and_delivers(tmp_path: Path, faulty) -> None:
    server = faulty(too_many=3)
    prepared = prepared_campaign(tmp_path, 12)
    conn = connect(tmp_path / "mailer.db")
    report = send_campaign(
        prepared, conn=conn, transport=transport_for(server), options=fast_options()
    )
    # The first 421 meets the connection opened at the start (the relay is there, just
    # busy: the run starts); the other two meet messages, which are tried again.
    assert report.sent == 12 and report.retries >= 2
    assert Counter(server.handler.delivered_to()) == Counter(addresses(12))


def test_test_send_marks_each_variant_and_skips_the_journal(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    prepared = prepared_campaign(tmp_path, 10)
    conn = connect(tmp_path / "mailer.db")
    results = send_tests(
        prepared, "me@tea.test", transport_for(smtp_server), now=prepared.clock.time()
    )
    assert [r.variant for r in results] == ["A", "B"]
    assert all(r.code == 250 and r.subject.startswith("[TEST] ") for r in results)
    received = smtp_server.handler.received
    assert [m.rcpt_tos for m in received] == [["me@tea.test"], ["me@tea.test"]]
    for message in (message_from_bytes(m.data) for m in received):
        assert message["To"] == "me@tea.test"
        assert str(make_header(decode_header(message["Subject"]))).startswith("[TEST] ")
    assert conn.execute("SELECT COUNT(*) FROM journal").fetchone()[0] == 0
    # Unsubscribing from a test message must not unsubscribe the contact it was based on.
    import re
    import time

    from mailer.core.tokens import read_token

    for message in (message_from_bytes(m.data) for m in received):
        header = str(message["List-Unsubscribe"])
        [token] = re.findall(r"unsubscribe\?t=([\w.-]+)", header)
        found = read_token(token, time.time())
        assert found is not None and found.email not in addresses(10)


@pytest.mark.parametrize(
    ("code", "reply", "bounce"),
    [
        (550, "5.1.1 <x@y.test>: Recipient address rejected: User unknown", True),
        (550, "5.1.10 Recipient address rejected", True),
        (553, "5.1.3 Bad recipient address syntax", True),
        (550, "No such user here", True),
        (550, "5.7.1 Message rejected as spam", False),
        (553, "5.1.8 Sender address rejected: Domain not found", False),
        (552, "5.2.2 Mailbox full", False),
        (554, "Transaction failed", False),
        (451, "4.1.1 try later", False),
        # Our sender refused: never a reason to suppress the recipient.
        (553, "5.1.0 <news@tea.test>: Sender address rejected: User unknown", False),
        (550, "5.1.1 MAIL FROM address does not exist", False),
    ],
)
def test_hard_bounce_classification(code: int, reply: str, bounce: bool) -> None:
    assert is_hard_bounce(code, reply) is bounce


def test_unreachable_relay_stops_before_anything_is_written(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    from mailer.core.errors import TransportError

    prepared = prepared_campaign(tmp_path, 5)
    conn = connect(tmp_path / "mailer.db")
    transport = transport_for(smtp_server)
    smtp_server.close()
    with pytest.raises(TransportError, match="cannot connect to the SMTP relay"):
        send_campaign(prepared, conn=conn, transport=transport, options=fast_options())
    assert conn.execute("SELECT COUNT(*) FROM journal").fetchone()[0] == 0
    assert conn.execute("SELECT COUNT(*) FROM campaign_runs").fetchone()[0] == 0


def test_suppressed_addresses_are_skipped_and_recorded(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    from mailer.audience.suppressions import suppress

    prepared = prepared_campaign(tmp_path, 6)
    conn = connect(tmp_path / "mailer.db")
    suppress(conn, "U1@b.test", "unsubscribed", "test", now=NOW)
    report = send_campaign(
        prepared, conn=conn, transport=transport_for(smtp_server), options=fast_options()
    )
    assert report.sent == 5 and report.skipped_suppressed == 1
    assert "u1@b.test" not in smtp_server.handler.delivered_to()
    assert statuses(conn) == {"sent": 5, "suppressed": 1}


def test_a_relay_calling_everyone_unknown_pauses_the_run(tmp_path: Path, faulty) -> None:
    # A broken relay that answers 550 5.1.1 for every address must not get the whole
    # list suppressed: bounces in a row count towards the pause like other failures.
    people = addresses(30)
    server = faulty(reject=set(people))
    prepared = prepared_campaign(tmp_path, 30)
    conn = connect(tmp_path / "mailer.db")
    report = send_campaign(
        prepared,
        conn=conn,
        transport=transport_for(server),
        options=fast_options(max_consecutive_failures=5, concurrency=1),
    )
    assert report.paused is not None and report.paused.startswith(
        "paused after 5 failures in a row (last: 550 5.1.1 "
    )
    assert report.bounced == 5 and report.pending == 25
    assert conn.execute("SELECT COUNT(*) FROM suppressions").fetchone()[0] == 5


def test_retry_failed_sends_again_to_those_that_ran_out_of_attempts(
    tmp_path: Path, faulty, smtp_server: SmtpServer
) -> None:
    # Each recipient refused for itself (4.7.1), as a greylisting server that never relents.
    refusing = faulty(tempfail_fraction=1.0, tempfail_reply="451 4.7.1 Try again later")
    prepared = prepared_campaign(tmp_path, 6)
    conn = connect(tmp_path / "mailer.db")
    first = send_campaign(
        prepared,
        conn=conn,
        transport=transport_for(refusing),
        options=fast_options(max_attempts=2, max_consecutive_failures=100),
    )
    assert (first.sent, first.failed, first.bounced) == (0, 6, 0)
    assert statuses(conn) == {"failed": 6}
    plain = send_campaign(
        prepared, conn=conn, transport=transport_for(smtp_server), options=fast_options()
    )
    assert plain.sent == 0 and plain.skipped_failed == 6  # not without --retry-failed
    retried = send_campaign(
        prepared,
        conn=conn,
        transport=transport_for(smtp_server),
        options=fast_options(retry_failed=True),
    )
    assert retried.sent == 6 and retried.complete
    assert Counter(smtp_server.handler.delivered_to()) == Counter(addresses(6))
    assert statuses(conn) == {"sent": 6}


def test_two_runs_of_one_campaign_at_once_send_each_message_once(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    # E.g. a cron job and a manual `mailer send` overlapping: each claims a recipient's
    # journal row before sending, and a row the other run holds is left to it.
    from mailer.campaign.prepared import prepare_campaign
    from mailer.core.settings import load_settings

    prepared_campaign(tmp_path, 120, throttle="per_second = 200")
    path, settings = tmp_path / "campaigns" / "spring.toml", load_settings(tmp_path, env={})
    both = [prepare_campaign(path, settings) for _ in range(2)]
    start = threading.Barrier(2, timeout=30)  # a run that dies early fails the test, no hang
    reports = []

    # Each run's first message waits until the other run has planned too, so the two
    # really overlap however busy the machine is (otherwise one could finish first).
    both_planned = threading.Barrier(2, timeout=30)

    class Overlapping(SmtpTransport):
        waited = False

        async def deliver(self, envelope, go=None):  # type: ignore[no-untyped-def]
            if not self.waited:
                self.waited = True
                both_planned.wait()  # blocks this run's loop: its other workers wait too
            return await super().deliver(envelope, go=go)

    def one_run(prepared) -> None:
        conn = connect(tmp_path / "mailer.db")
        start.wait()
        relay = replace(parse_smtp_url(smtp_server.url), pool=4, timeout=5)
        reports.append(
            send_campaign(prepared, conn=conn, transport=Overlapping(relay), options=fast_options())
        )

    runs = [threading.Thread(target=one_run, args=(p,)) for p in both]
    for run in runs:
        run.start()
    for run in runs:
        run.join(timeout=60)
    assert len(reports) == 2, "a run raised (see the thread exception above)"
    assert Counter(smtp_server.handler.delivered_to()) == Counter(addresses(120))
    assert sum(r.sent for r in reports) == 120
    # They overlapped (each planned rows the other then sent): without the claim, those
    # would have gone out twice.
    assert sum(r.skipped_other_run for r in reports) > 0
    for r in reports:
        # A row the other run had in flight when this one planned is listed as unknown.
        assert r.sent + r.skipped_sent + r.skipped_other_run + len(r.unknown) == 120
    assert statuses(connect(tmp_path / "mailer.db")) == {"sent": 120}


def test_a_claim_takes_a_row_only_when_no_run_has_it_and_nobody_forbids_it(tmp_path: Path) -> None:
    prepared = prepared_campaign(tmp_path, 3)
    conn = connect(tmp_path / "mailer.db")
    clock = SystemClock()
    journal = Journal(conn, "spring", clock=clock)
    resending = Journal(conn, "spring", clock=clock, rules=ClaimRules(resend_unknown=True))
    ann, bob, cy = list(prepared.recipients())
    assert journal.claim(ann, "A", "<1@t>") is Claim.CLAIMED  # new row
    assert journal.claim(ann, "A", "<1@t>") is Claim.TAKEN  # in flight elsewhere
    assert resending.claim(ann, "A", "<1@t>") is Claim.CLAIMED  # --resend-unknown
    journal.mark_result(ann.email, "sent", 250, "OK")
    assert resending.claim(ann, "A", "<1@t>") is Claim.TAKEN  # never re-send
    assert journal.claim(bob, "B", "<2@t>") is Claim.CLAIMED
    journal.mark_result(bob.email, "deferred", 451, "later")
    assert journal.claim(bob, "B", "<2@t>") is Claim.CLAIMED  # a retry
    rows = dict(conn.execute("SELECT email, attempts FROM journal").fetchall())
    assert rows == {ann.email: 2, bob.email: 2}
    # A failed row is taken again only when failures are retried, and a bounce never.
    journal.mark_result(bob.email, "failed", 550, "no", bounce=True)
    retrying = Journal(conn, "spring", clock=clock, rules=ClaimRules(retry_failed=True))
    assert retrying.claim(bob, "B", "<2@t>") is Claim.TAKEN
    # Suppressed a moment ago: never claimed, whatever the row says.
    suppress(conn, cy.email, "unsubscribed", "test", now=NOW)
    assert journal.claim(cy, "A", "<3@t>") is Claim.SUPPRESSED


def test_per_domain_rate_from_the_campaign_file_paces_that_domain(
    tmp_path: Path, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On a virtual clock, noting when the throttle let each message go: the times are the
    # loop's decisions, not the machine's speed.
    clock = VirtualClock()
    allowed: list[tuple[str, float]] = []
    acquire = Throttler.acquire

    async def noting(self: Throttler, domain: str = "", *, held: bool = False):
        rate = await acquire(self, domain, held=held)
        allowed.append((domain, clock.now))
        return rate

    monkeypatch.setattr(Throttler, "acquire", noting)
    prepared = prepared_campaign(tmp_path, 15, throttle='per_domain = { "a.test" = 5 }')
    report = send_campaign(
        prepared,
        conn=connect(tmp_path / "mailer.db"),
        transport=transport_for(smtp_server),
        options=fast_options(),
        clock=clock,
    )
    assert report.sent == 15
    paced = sorted(t for domain, t in allowed if domain == "a.test")
    assert len(paced) == 5 and len(allowed) == 15
    gaps = [b - a for a, b in itertools.pairwise(paced)]
    assert min(gaps) >= 0.2 - 1e-9, gaps  # 5 per second: one every 0.2 s


def test_a_transport_error_stops_the_run_without_leaving_unknowns(tmp_path: Path) -> None:
    from mailer.core.errors import TransportError
    from mailer.delivery.transport import OutboxTransport

    prepared = prepared_campaign(tmp_path, 6)
    conn = connect(tmp_path / "mailer.db")
    folder = tmp_path / "out"
    (folder / "u3@a.test.eml").mkdir(parents=True)  # that message cannot be written
    with pytest.raises(TransportError, match="cannot write to the outbox"):
        send_campaign(
            prepared,
            conn=conn,
            transport=OutboxTransport(folder),
            options=fast_options(concurrency=1),
        )
    row = conn.execute("SELECT status, last_reply FROM journal WHERE email = 'u3@a.test'")
    status, reply = row.fetchone()
    assert status == "deferred" and reply.startswith("cannot write to the outbox")
    assert "sending" not in statuses(conn)


def test_outbox_runs_count_towards_no_quota_or_cap(tmp_path: Path) -> None:
    # Files in a folder are not mail: the relay's daily quota and the frequency cap
    # count real sends only.
    from datetime import timedelta

    from mailer.audience.frequency import capped_addresses
    from mailer.core.keys import journal_key
    from mailer.delivery.journal import sent_times_since

    conn = connect(tmp_path / "mailer.db")
    now = stamp(utc_now())
    for key in ("spring", journal_key("spring", "outbox"), journal_key("summer", "outbox")):
        conn.execute(
            "INSERT INTO journal (campaign_id, email, status, queued_at, updated_at, sent_at)"
            " VALUES (?, 'ann@x.test', 'sent', ?, ?, ?)",
            (key, now, now, now),
        )
    assert journal_key("summer", "outbox") == "summer@outbox"
    assert journal_key("summer", "smtp") == "summer"
    assert len(sent_times_since(conn, datetime.now(UTC) - timedelta(hours=1))) == 1
    capped = capped_addresses(conn, max_messages=1, days=7, exclude="autumn", now=datetime.now(UTC))
    assert capped == {"ann@x.test"}
    # The real send is the campaign being resumed: it does not cap itself.
    assert (
        capped_addresses(conn, max_messages=1, days=7, exclude="spring", now=datetime.now(UTC))
        == set()
    )


def test_no_more_messages_in_flight_than_connections(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    # --concurrency 8 over a pool of 2: six workers would hold their recipients in
    # 'sending' (unknown after a crash) while waiting for a connection.
    import sqlite3

    prepared = prepared_campaign(tmp_path, 40)
    conn = connect(tmp_path / "mailer.db")
    watcher = sqlite3.connect(tmp_path / "mailer.db")
    in_flight: list[int] = []

    class Watched(SmtpTransport):
        async def deliver(self, envelope, go=None):  # type: ignore[no-untyped-def]
            count = "SELECT count(*) FROM journal WHERE status = 'sending'"
            in_flight.append(watcher.execute(count).fetchone()[0])
            return await super().deliver(envelope, go=go)

    relay = parse_smtp_url(smtp_server.url)
    from dataclasses import replace

    report = send_campaign(
        prepared,
        conn=conn,
        transport=Watched(replace(relay, pool=2, timeout=5)),
        options=fast_options(concurrency=8),
    )
    assert report.sent == 40
    assert len(in_flight) == 40 and max(in_flight) <= 2
