"""run-due at the edges: DST hours, long waves, suppression, the fold check, `schedule list` states.

Like ``test_schedule_run``: a real aiosmtpd server on 127.0.0.1 (port 0), a
real SQLite file and the real send orchestrator; only the clock is fake.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mailer.cli import app
from mailer.core.clock import PassClock
from mailer.schedule.leases import LEASE, Lease, LeaseKeeper, claim
from mailer.services.run_due import default_transport, run_due
from tests.clock import pass_at
from tests.services.test_run_due import US, Clock, utc, write_workspace

# The day campaign files are loaded on (a holiday's name is checked in that year).
TODAY = date(2026, 11, 22)

# A fixed moment for stamps the tests do not look at.
NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)

CHROMIUM = Path("/usr/bin/chromium")
HALF_HOUR = timedelta(minutes=30)


def lines_of(output: str) -> list[str]:
    return [" ".join(line.replace("│", " ").split()) for line in output.splitlines()]


# --- daylight saving through the real server ----------------------------------


def test_a_send_hour_in_the_skipped_or_repeated_hour_is_delivered_once(tmp_path, smtp_server):
    root = write_workspace(
        tmp_path,
        smtp_server.url,
        {
            # 14 March 2027: 02:00 EST jumps to 03:00 EDT in New York and Los Angeles alike.
            "forward": ("Spring ahead", "us.csv", 'date = "2027-03-14"\nlocal_time = "02:30"'),
            # 7 November 2027: 01:00-02:00 happens twice (EDT, then EST).
            "back": ("Fall back", "us.csv", 'date = "2027-11-07"\nlocal_time = "01:30"'),
        },
    )
    for name in ("forward", "back"):
        path = root / "campaigns" / f"{name}.toml"
        path.write_text(path.read_text(encoding="utf-8") + "window = false\n", encoding="utf-8")
    clock = Clock(root, smtp_server)
    clock.drive(utc(2027, 3, 13, 12), utc(2027, 3, 15), HALF_HOUR)
    clock.drive(utc(2027, 11, 6, 12), utc(2027, 11, 8, 12), HALF_HOUR)
    # 02:30 does not exist: it is read as 03:30 daylight time (07:30 / 10:30 UTC).
    assert clock.sent("Spring ahead") == {
        "ann@us.test": [utc(2027, 3, 14, 7, 30)],
        "bob@us.test": [utc(2027, 3, 14, 10, 30)],
    }
    # 01:30 comes twice: the first one (daylight time) sends, the second one does not.
    assert clock.sent("Fall back") == {
        "ann@us.test": [utc(2027, 11, 7, 5, 30)],
        "bob@us.test": [utc(2027, 11, 7, 8, 30)],
    }


# --- a wave longer than its lease ---------------------------------------------


class SlowTransport:
    """Delivers through the real server, slowly, and looks at the wave's lease each time."""

    name = "slow"

    def __init__(self, inner, look) -> None:
        self.inner, self.look = inner, look
        self.seen: list[tuple[str, bool]] = []

    async def start(self) -> None:
        await self.inner.start()

    async def deliver(self, envelope, go=None):
        await asyncio.sleep(0.05)
        self.seen.append(self.look())
        return await self.inner.deliver(envelope, go=go)

    async def close(self) -> None:
        await self.inner.close()


class LeaseTime:
    """A fake real clock on which every look the lease keeper takes is an hour later.

    The send itself sees time stand still; the keeper's thread sees hours go by:
    a wave that takes longer than a lease, without a test that takes that long.
    """

    def __init__(self, start: datetime) -> None:
        self.start = start.timestamp()
        self.looks = 0

    def time(self) -> float:
        if threading.current_thread().name == "mailer-heartbeat":
            self.looks += 1
        return self.start + 3600 * self.looks

    def monotonic(self) -> float:
        return 0.0

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(0)


def test_a_wave_that_outlasts_the_lease_keeps_it(tmp_path, smtp_server, monkeypatch):
    import mailer.services.run_due as scheduler

    people = ["email,first_name,timezone"] + [f"p{n}@cn.test,P{n},Asia/Shanghai" for n in range(8)]
    root = write_workspace(
        tmp_path,
        smtp_server.url,
        {
            "spring": (
                "Happy Spring Festival",
                "many.csv",
                # No window, and days of grace: the hours the keeper sees go by must not
                # close the wave before it is sent.
                'holiday = "春节"\ncountry = "CN"\nyear = 2027\nwindow = false\ngrace_hours = 10000',
            )
        },
    )
    (root / "campaigns" / "many.csv").write_text("\n".join(people) + "\n", encoding="utf-8")
    clock = Clock(root, smtp_server)
    now = utc(2027, 2, 6, 1)
    monkeypatch.setattr(scheduler, "RENEW_SECONDS", 0.02)
    other = sqlite3.connect(clock.settings.db_path, timeout=30, isolation_level=None)
    key, wave = "spring@2027", "2027-02-06 Asia/Shanghai"

    def look() -> tuple[str, Lease]:
        (expires,) = other.execute("SELECT expires_at FROM schedule_claims").fetchone()
        # A second run-due on another machine, after the first lease would have run out.
        return expires, claim(other, key, wave, "elsewhere:1:x", now + LEASE + HALF_HOUR)

    transports: list[SlowTransport] = []

    def slow(item, key):
        transports.append(SlowTransport(default_transport(item, key), look))
        return transports[-1]

    report = run_due(
        clock.campaigns,
        conn=clock.conn,
        clock=PassClock(LeaseTime(now)),
        transport_for=slow,
        browser=False,
    )
    assert [(r.outcome, r.sent) for r in report.results] == [("sent", 8)]
    seen = transports[0].seen
    assert [taken for _, taken in seen] == [Lease.BUSY] * 8
    assert datetime.fromisoformat(seen[-1][0]) > now + LEASE + timedelta(hours=1)
    assert len(smtp_server.handler.delivered_to()) == 8


def test_the_lease_keeper_stops_when_the_lease_is_gone(tmp_path):
    from mailer.audience.store import connect

    conn = connect(tmp_path / "m.db")
    now = utc(2027, 2, 6, 1)
    assert claim(conn, "k@2027", "w", "me:1:a", now) is Lease.TAKEN
    hours = (now + timedelta(hours=n) for n in range(10**6))
    with LeaseKeeper(conn, "k@2027", "w", "me:1:a", every=0.005, clock=lambda: next(hours)):
        deadline = datetime.now().timestamp() + 5
        while datetime.now().timestamp() < deadline:
            (expires,) = conn.execute("SELECT expires_at FROM schedule_claims").fetchone()
            if datetime.fromisoformat(expires) > now + LEASE:
                break
    assert datetime.fromisoformat(expires) > now + LEASE
    # Once another owner holds the wave, the keeper gives up instead of fighting for it.
    conn.execute("UPDATE schedule_claims SET owner = 'them:2:b'")
    keeper = LeaseKeeper(conn, "k@2027", "w", "me:1:a", every=0.005, clock=lambda: now)
    with keeper:
        import time

        time.sleep(0.1)
    assert keeper.renewals == 0
    assert conn.execute("SELECT owner FROM schedule_claims").fetchone()[0] == "them:2:b"


# --- suppression and the report -------------------------------------------------


def test_suppressed_contacts_are_skipped_and_counted(tmp_path, smtp_server):
    from mailer.audience.suppressions import suppress

    xmas = 'holiday = "Christmas"\ncountry = "US"\nyear = 2027'
    root = write_workspace(tmp_path, smtp_server.url, {"xmas": ("Merry Christmas", "us.csv", xmas)})
    clock = Clock(root, smtp_server)
    suppress(clock.conn, "ann@us.test", "manual", now=NOW)
    clock.at(utc(2027, 12, 25, 14))
    clock.at(utc(2027, 12, 25, 14, 5))
    assert [(r.wave, r.outcome, r.sent, r.note) for r in clock.results] == [
        ("2027-12-25 America/New_York", "sent", 0, "1 suppressed")
    ]
    assert clock.seen == []
    clock.at(utc(2027, 12, 25, 17))
    assert [rcpt for rcpt, _, _ in clock.seen] == ["bob@us.test"]


# --- schedule list -------------------------------------------------------------


def test_schedule_list_marks_done_and_skipped_waves_and_names_bad_contacts(
    tmp_path, smtp_server, monkeypatch
):
    xmas = 'holiday = "Christmas"\ncountry = "US"\nrecurring = "yearly"\n'
    root = write_workspace(
        tmp_path,
        smtp_server.url,
        {
            "xmas": ("Merry Christmas", "us2.csv", xmas),
            # Christmas 2027 is a Saturday: quiet all day, and 12 h of grace end before Sunday.
            "quiet": (
                "Season's greetings",
                "us.csv",
                xmas + 'quiet_days = ["saturday"]\ngrace_hours = 12',
            ),
        },
    )
    (root / "campaigns" / "us2.csv").write_text(
        US + "cat@us.test,Cat,America/New_Yrok\n", encoding="utf-8"
    )
    clock = Clock(root, smtp_server)
    clock.at(utc(2027, 12, 25, 14))  # New York's wave of "xmas"
    monkeypatch.chdir(root)
    monkeypatch.setenv("COLUMNS", "200")
    result = CliRunner().invoke(app, ["schedule", "list", "--now", "2027-12-25T15:00Z"])
    assert result.exit_code == 0, result.output
    lines = lines_of(result.stdout)
    assert "2027 2027-12-25 09:00 America/New_York 2027-12-25 14:00 1 sent (1)" in lines
    assert "2027 2027-12-25 09:00 America/Los_Angeles 2027-12-25 17:00 1 pending" in lines
    assert (
        "2027 2027-12-25 09:00 America/New_York never 1 "
        "skipped: window/quiet days fill the grace period"
    ) in lines
    assert lines_of(result.stderr) == [
        "warning: 1 recipient(s) have no valid timezone: they get the greeting on "
        "Asia/Shanghai time (the workspace zone, `timezone` in mailer.toml)",
        "warning: us2.csv line 4: timezone 'America/New_Yrok' is not an IANA time zone "
        "(the workspace zone Asia/Shanghai is used)",
    ]


# --- the fold check in Chromium, as for a manual send -----------------------------

TALL = """<mjml><mj-head><mj-title>{{ subject }}</mj-title></mj-head><mj-body>
<mj-section><mj-column>
<mj-text css-class="mailer-headline">{{ headline }}</mj-text>
<mj-image src="https://tea.test/img/hero.jpg" alt="Tea field" width="600px" height="1400px" />
<mj-text css-class="mailer-offer">{{ offer }}</mj-text>
<mj-button css-class="mailer-cta" href="{{ cta.url }}">{{ cta.text }}</mj-button>
<mj-text>{{ sender.name }}, {{ postal_address }} · <a href="{{ unsubscribe_url }}">Unsubscribe</a>
</mj-text>
</mj-column></mj-section></mj-body></mjml>
"""


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium")
def test_run_due_runs_the_fold_check_in_chromium_unless_no_browser(
    tmp_path, smtp_server, monkeypatch
):
    spring = 'holiday = "Spring Festival"\ncountry = "CN"\nyear = 2027'
    root = write_workspace(
        tmp_path, smtp_server.url, {"spring": ("Happy Spring Festival", "cn.csv", spring)}
    )
    (root / "templates" / "promo.mjml").write_text(TALL, encoding="utf-8")
    monkeypatch.chdir(root)
    result = CliRunner().invoke(app, ["run-due", "--now", "2027-02-06T01:00Z", "--commit"])
    assert result.exit_code == 1, result.output
    assert "spring@2027  2027-02-06 Asia/Shanghai  2 recipient(s)  (pre-send checks failed)" in (
        result.stdout
    )
    assert "[fold-below] phone 375×667" in result.stderr
    assert smtp_server.handler.received == []
    result = CliRunner().invoke(
        app, ["run-due", "--now", "2027-02-06T01:05Z", "--commit", "--no-browser"]
    )
    assert result.exit_code == 0, result.output
    assert sorted(smtp_server.handler.delivered_to()) == ["mei@cn.test", "wei@cn.test"]


def test_a_wave_written_to_the_outbox_is_done_and_not_written_again(tmp_path: Path) -> None:
    # No relay configured: run-due writes the wave to the outbox, journaled as
    # <key>@outbox (files, not mail); the next pass and `schedule list` must see it done.
    from mailer.audience.store import connect
    from mailer.core.settings import load_settings
    from mailer.services.scheduled import load_scheduled, overview

    campaigns = {
        "xmas": ("Merry Christmas", "us.csv", 'holiday = "Christmas"\ncountry = "US"\nyear = 2027')
    }
    root = write_workspace(tmp_path, "smtp://unused", campaigns)
    settings_file = root / "mailer.toml"
    text = settings_file.read_text(encoding="utf-8")
    settings_file.write_text(text[: text.index("[smtp]")], encoding="utf-8")
    settings = load_settings(root, env={})
    assert not settings.smtp_configured
    found, errors = load_scheduled(root / "campaigns", settings, TODAY)
    assert errors == []
    conn = connect(settings.db_path)
    at = utc(2027, 12, 25, 14)  # 09:00 in New York
    first = run_due(
        found, conn=conn, clock=pass_at(at), transport_for=default_transport, browser=False
    )
    assert [(r.key, r.outcome, r.sent) for r in first.results] == [("xmas@2027@outbox", "sent", 1)]
    later = run_due(
        found,
        conn=conn,
        clock=pass_at(at + timedelta(minutes=5)),
        transport_for=default_transport,
        browser=False,
    )
    assert later.results == []
    (wave, progress), *_ = overview(found[0], at, conn).waves
    assert progress.outbox == len(wave.recipients) == 1 and progress.settled == 0
    assert len(list((root / "outbox" / "xmas@2027").glob("*.eml"))) == 1
