"""run-due under the faults a marketer met: capped contacts, rehearsals, windows, crashes.

One test (or a few) per numbered fault of the scheduler issue. As in
``test_run_due``: a real aiosmtpd server on 127.0.0.1, a real SQLite file, the
real send orchestrator; the clock is fake (``tests.clock.pass_at``), and where
a send must take fake time (a throttle of one message a minute) the fake clock
moves when the sender waits.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from typer.testing import CliRunner

from mailer.audience.store import connect
from mailer.checks.gate import run_checks
from mailer.cli import app
from mailer.core.clock import PassClock, stamp
from mailer.core.settings import load_settings
from mailer.schedule.leases import Lease, claim
from mailer.schedule.runs import schedule_runs
from mailer.services.run_due import default_transport, run_due
from mailer.services.scheduled import load_scheduled
from tests.clock import FakeClock, pass_at
from tests.services.test_run_due import TODAY, Clock, mailer, utc, write_workspace
from tests.smtp_server import Faults, RecordingHandler, SmtpServer

SPRING_2027 = 'holiday = "春节"\ncountry = "CN"\nyear = 2027'
DUE = utc(2027, 2, 6, 1)  # 09:00 in Shanghai on the first day of the Spring Festival
SHANGHAI = ZoneInfo("Asia/Shanghai")


def people_csv(root: Path, count: int, name: str = "many.csv") -> None:
    rows = ["email,first_name,timezone"] + [
        f"p{n}@cn.test,P{n},Asia/Shanghai" for n in range(count)
    ]
    (root / "campaigns" / name).write_text("\n".join(rows) + "\n", encoding="utf-8")


def append(path: Path, text: str) -> None:
    path.write_text(path.read_text(encoding="utf-8") + text, encoding="utf-8")


def counts(conn, table: str) -> int:
    return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


# --- 1. frequency-capped recipients ----------------------------------------------------


def test_capped_recipients_are_held_looked_at_again_and_write_no_run_rows(tmp_path, smtp_server):
    root = write_workspace(
        tmp_path, smtp_server.url, {"spring": ("Happy Spring Festival", "cn.csv", SPRING_2027)}
    )
    append(root / "mailer.toml", "\n[frequency_cap]\nmax_messages = 1\ndays = 7\n")
    clock = Clock(root, smtp_server)
    # Mei got a newsletter 7 days minus 2 hours before the festival: the cap holds her
    # back until 03:00 UTC, inside the wave's 24 hours of grace.
    clock.conn.execute(
        "INSERT INTO journal (campaign_id, email, status, queued_at, updated_at, sent_at)"
        " VALUES ('newsletter', 'mei@cn.test', 'sent', ?, ?, ?)",
        (stamp(DUE),) * 3,
    )
    clock.conn.execute(
        "UPDATE journal SET sent_at = ? WHERE campaign_id = 'newsletter'",
        (stamp(DUE - timedelta(days=7) + timedelta(hours=2)),),
    )
    for minutes in range(0, 30, 5):  # six cron passes while the cap holds
        clock.at(DUE + timedelta(minutes=minutes))
    assert [r for r, _, _ in clock.seen] == ["wei@cn.test"]
    held = clock.conn.execute(
        "SELECT email, status, last_reply FROM journal WHERE campaign_id = 'spring@2027'"
        " AND status != 'sent'"
    ).fetchall()
    assert [tuple(row) for row in held] == [
        ("mei@cn.test", "held", "held back by the frequency cap")
    ]
    # One wave run, one send run: the passes that had nobody to send wrote nothing.
    assert counts(clock.conn, "schedule_runs") == 1
    assert counts(clock.conn, "campaign_runs") == 1
    assert [(r.outcome, r.sent, r.held) for r in clock.results] == [("sent", 1, 1)]
    # The cap lifts at 03:00 (by the pass's clock, not the machine's): the next pass sends.
    clock.at(utc(2027, 2, 6, 2, 55))
    assert [r for r, _, _ in clock.seen] == ["wei@cn.test"]
    clock.at(utc(2027, 2, 6, 3, 5))
    assert [r for r, _, _ in clock.seen] == ["wei@cn.test", "mei@cn.test"]
    assert counts(clock.conn, "schedule_runs") == 2


# --- 2. --now is a rehearsal; a pass ahead of the real clock closes nothing ---------------


def test_now_without_commit_is_a_rehearsal_that_changes_nothing(tmp_path, smtp_server, monkeypatch):
    root = write_workspace(
        tmp_path, smtp_server.url, {"spring": ("Happy Spring Festival", "cn.csv", SPRING_2027)}
    )
    monkeypatch.chdir(root)
    result = CliRunner().invoke(app, ["run-due", "--now", "2027-02-06T01:05Z", "--no-browser"])
    assert result.exit_code == 0, result.output
    assert "rehearsal (--now without --commit): nothing is sent or recorded" in result.stdout
    assert "would send  spring@2027  2027-02-06 Asia/Shanghai  2 recipient(s)" in result.stdout
    # After the grace period: the wave would be missed — and is not closed.
    result = CliRunner().invoke(app, ["run-due", "--now", "2027-02-10T00:00Z", "--no-browser"])
    assert "would miss  spring@2027  2027-02-06 Asia/Shanghai  2 recipient(s)" in result.stdout
    conn = connect(root / "mailer.db")
    for table in ("journal", "schedule_claims", "schedule_runs", "campaign_runs"):
        assert counts(conn, table) == 0, table
    assert smtp_server.handler.received == []


def test_a_pass_ahead_of_the_real_clock_never_closes_a_wave(tmp_path, smtp_server, monkeypatch):
    root = write_workspace(
        tmp_path, smtp_server.url, {"spring": ("Happy Spring Festival", "cn.csv", SPRING_2027)}
    )
    monkeypatch.chdir(root)
    # --commit, but 2027 is still ahead of this machine's clock: the miss is not recorded.
    result = CliRunner().invoke(
        app, ["run-due", "--now", "2027-02-10T00:00Z", "--commit", "--no-browser"]
    )
    assert result.exit_code == 0, result.output
    assert "not closed: this pass's --now is ahead of the real clock" in result.stdout
    conn = connect(root / "mailer.db")
    assert counts(conn, "schedule_claims") == 0 and counts(conn, "journal") == 0
    # On the day (the real clock agrees), the wave is sent as if nothing had happened.
    clock = Clock(root, smtp_server)
    clock.at(DUE + timedelta(minutes=5))
    assert sorted(r for r, _, _ in clock.seen) == ["mei@cn.test", "wei@cn.test"]


def test_closed_and_busy_waves_are_reported_apart(tmp_path, smtp_server):
    root = write_workspace(
        tmp_path, smtp_server.url, {"spring": ("Happy Spring Festival", "cn.csv", SPRING_2027)}
    )
    clock = Clock(root, smtp_server)
    key, wave = "spring@2027", "2027-02-06 Asia/Shanghai"
    me = f"{socket.gethostname()}:{os.getpid()}:other"
    assert claim(clock.conn, key, wave, me, DUE) is Lease.TAKEN
    first = run_due(
        clock.campaigns,
        conn=clock.conn,
        clock=pass_at(DUE),
        transport_for=default_transport,
        browser=False,
    )
    clock.conn.execute("UPDATE schedule_claims SET status = 'closed'")
    second = run_due(
        clock.campaigns,
        conn=clock.conn,
        clock=pass_at(DUE),
        transport_for=default_transport,
        browser=False,
    )
    assert [(r.outcome, r.note) for r in first.results + second.results] == [
        ("busy", "another run-due is sending this wave"),
        ("closed", "this wave was closed as missed"),
    ]
    assert smtp_server.handler.received == []


# --- 3. the send window and the grace period bound the sending itself ------------------


def throttled_wave(tmp_path, server, grace_hours: int) -> tuple[Path, list]:
    """Four people, due at 20:58 Shanghai time, one message a minute (one connection)."""
    schedule = (
        f'holiday = "春节"\ncountry = "CN"\nyear = 2027\nlocal_time = "20:58"\n'
        f"grace_hours = {grace_hours}"
    )
    root = write_workspace(
        tmp_path, server.url, {"spring": ("Happy Spring Festival", "many.csv", schedule)}
    )
    people_csv(root, 4)
    append(
        root / "campaigns" / "spring.toml",
        "\n[throttle]\nper_second = 0.0166667\nconcurrency = 1\n",
    )
    settings = load_settings(root)
    campaigns, errors = load_scheduled(root / "campaigns", settings, TODAY)
    assert errors == []
    return root, campaigns


def run_at(root: Path, campaigns: list, moment: datetime) -> list:
    conn = connect(root / "mailer.db")
    # FakeClock: the throttle's waits move this pass's time on, as they would for real.
    clock = PassClock(FakeClock(wall=moment.timestamp()))
    report = run_due(
        campaigns, conn=conn, clock=clock, transport_for=default_transport, browser=False
    )
    assert report.ok, report
    return report.results


def sent_times(root: Path) -> dict[str, datetime]:
    conn = connect(root / "mailer.db")
    rows = conn.execute("SELECT email, sent_at FROM journal WHERE status = 'sent'").fetchall()
    return {email: datetime.fromisoformat(at).astimezone(SHANGHAI) for email, at in rows}


def test_a_wave_stops_when_the_window_closes_and_goes_on_in_the_next(tmp_path, smtp_server):
    root, campaigns = throttled_wave(tmp_path, smtp_server, grace_hours=24)
    due = datetime(2027, 2, 6, 20, 58, tzinfo=SHANGHAI)
    [first] = run_at(root, campaigns, due)
    assert first.outcome == "sent" and 0 < first.sent < 4
    assert "the send window closed (21:00 Asia/Shanghai)" in first.note
    # Still inside the grace period: the next morning's first pass sends the rest.
    assert run_at(root, campaigns, datetime(2027, 2, 7, 7, 55, tzinfo=SHANGHAI)) == []
    [second] = run_at(root, campaigns, datetime(2027, 2, 7, 8, 0, tzinfo=SHANGHAI))
    assert second.sent == 4 - first.sent
    times = sent_times(root)
    assert len(times) == 4 == len(smtp_server.handler.delivered_to())
    assert all(8 <= moment.hour < 21 for moment in times.values()), times


def test_what_the_grace_period_does_not_allow_is_missed_per_recipient(tmp_path, smtp_server):
    root, campaigns = throttled_wave(tmp_path, smtp_server, grace_hours=2)
    [first] = run_at(root, campaigns, datetime(2027, 2, 6, 20, 58, tzinfo=SHANGHAI))
    left = 4 - first.sent
    assert left > 0
    [closed] = run_at(root, campaigns, datetime(2027, 2, 7, 8, 0, tzinfo=SHANGHAI))
    assert (closed.outcome, closed.recipients) == ("missed", left)
    conn = connect(root / "mailer.db")
    rows = conn.execute("SELECT status, count(*) FROM journal GROUP BY status").fetchall()
    assert dict(map(tuple, rows)) == {"sent": first.sent, "missed": left}
    assert len(smtp_server.handler.delivered_to()) == first.sent


# --- 4. unknowns and crashed runs ---------------------------------------------------------


def test_unknowns_are_reported_by_the_next_pass_and_resent_on_request(tmp_path):
    # The relay keeps p1's message, then hangs up before saying so: p1 is unknown.
    handler = RecordingHandler(Faults(keep_then_drop={"p1@cn.test"}))
    server = SmtpServer(handler).start()
    try:
        root = write_workspace(
            tmp_path, server.url, {"spring": ("Happy Spring Festival", "many.csv", SPRING_2027)}
        )
        people_csv(root, 3)
        clock = Clock(root, server)
        clock.at(DUE)
        assert [(r.outcome, r.sent, r.unknown) for r in clock.results] == [("sent", 2, 0)]
        clock.at(DUE + timedelta(minutes=5))
        assert [(r.outcome, r.unknown) for r in clock.results[1:]] == [("unknown", 1)]
        assert "run-due --resend-unknown" in clock.results[1].note
        assert sorted(handler.delivered_to()) == ["p0@cn.test", "p1@cn.test", "p2@cn.test"]
        from mailer.delivery.report import SendOptions

        again = run_due(
            clock.campaigns,
            conn=clock.conn,
            clock=pass_at(DUE + timedelta(minutes=10)),
            transport_for=default_transport,
            options=SendOptions(resend_unknown=True),
            browser=False,
        )
        assert [(r.outcome, r.sent) for r in again.results] == [("sent", 1)]
        assert sorted(handler.delivered_to()).count("p1@cn.test") == 2  # asked for: sent again
    finally:
        server.close()


def test_a_killed_run_due_is_shown_as_crashed_and_the_next_pass_finishes_the_wave(
    tmp_path, smtp_server
):
    root = write_workspace(
        tmp_path, smtp_server.url, {"spring": ("Happy Spring Festival", "many.csv", SPRING_2027)}
    )
    people_csv(root, 60)
    append(root / "campaigns" / "spring.toml", "\n[throttle]\nper_second = 20\n")
    connect(root / "mailer.db").close()
    process = mailer("run-due", "--now", "2027-02-06T01:05Z", "--commit", "--no-browser", cwd=root)
    deadline = time.monotonic() + 120
    while len(smtp_server.handler.received) < 10:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    conn = connect(root / "mailer.db")
    now = datetime.now(UTC)
    [shown] = schedule_runs(conn, now)
    assert shown.outcome == "crashed"  # its process is gone, whatever the row says
    unknown = {r[0] for r in conn.execute("SELECT email FROM journal WHERE status = 'sending'")}
    assert len(unknown) <= 8  # the default concurrency

    clock = Clock(root, smtp_server)
    clock.at(utc(2027, 2, 6, 1, 10))
    [result] = clock.results
    assert result.outcome == "sent" and result.unknown == len(unknown)
    rows = conn.execute("SELECT outcome, note FROM schedule_runs ORDER BY id").fetchall()
    assert rows[0][0] == "crashed" and rows[0][1].startswith("its run-due process died")
    assert rows[1][0] == "sent"
    delivered = smtp_server.handler.delivered_to()
    for n in range(60):
        email = f"p{n}@cn.test"
        # An unknown one was perhaps delivered before the kill: never twice, never resent.
        assert delivered.count(email) <= 1 if email in unknown else delivered.count(email) == 1


# --- 5. scheduled sends are visible where users look --------------------------------------


def test_status_of_a_scheduled_campaign_file_lists_its_instances(
    tmp_path, smtp_server, monkeypatch
):
    root = write_workspace(
        tmp_path, smtp_server.url, {"spring": ("Happy Spring Festival", "cn.csv", SPRING_2027)}
    )
    clock = Clock(root, smtp_server)
    clock.at(DUE)
    monkeypatch.chdir(root)
    monkeypatch.setenv("COLUMNS", "160")
    result = CliRunner().invoke(app, ["status", "campaigns/spring.toml"])
    assert result.exit_code == 0, result.output
    assert "nothing has been sent" not in result.output
    lines = [" ".join(line.replace("│", " ").split()) for line in result.output.splitlines()]
    assert "spring@2027 2 0 0 0 0 0 0" in lines
    assert "per wave: mailer schedule runs spring" in lines


def test_a_campaign_is_not_warned_about_repeating_its_own_scheduled_instances(
    tmp_path, smtp_server
):
    root = write_workspace(
        tmp_path, smtp_server.url, {"spring": ("Happy Spring Festival", "cn.csv", SPRING_2027)}
    )
    clock = Clock(root, smtp_server)
    clock.at(DUE)
    report = run_checks(clock.campaigns[0].prepared, browser=False, conn=clock.conn, now=DUE)
    codes = [f.code for f in report.findings]
    assert not [c for c in codes if c.startswith("repeat")], codes


# --- 6. the workspace time zone ------------------------------------------------------------


def test_the_demo_workspace_greets_on_hangzhou_time():
    repo = Path(__file__).resolve().parents[2]
    assert load_settings(repo, env={}).default_timezone == "Asia/Shanghai"


# --- cheap idle passes ----------------------------------------------------------------


def test_a_settled_holiday_is_skipped_without_reading_the_audience(
    tmp_path, smtp_server, monkeypatch
):
    from mailer.campaign.prepared import PreparedCampaign

    root = write_workspace(
        tmp_path, smtp_server.url, {"spring": ("Happy Spring Festival", "cn.csv", SPRING_2027)}
    )
    clock = Clock(root, smtp_server)
    reads: list[object] = []
    real = PreparedCampaign.recipients

    def counting(self, only=None):
        reads.append(only)
        return real(self, only)

    monkeypatch.setattr(PreparedCampaign, "recipients", counting)
    clock.at(DUE)  # sent (the pre-send checks read the audience too)
    clock.at(utc(2027, 2, 8))  # past every wave's grace: closed, and the occurrence settled
    assert reads and all(only is None for only in reads)
    settled = len(reads)
    clock.at(utc(2027, 2, 9))  # inside the missed-wave lookback, yet nothing to read
    clock.at(utc(2027, 3, 9))  # far from any occurrence
    assert len(reads) == settled
    assert sorted(r for r, _, _ in clock.seen) == ["mei@cn.test", "wei@cn.test"]
