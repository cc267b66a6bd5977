"""run-due end to end: a fake clock drives a year of scheduled sends through a real SMTP server.

Every test uses a real aiosmtpd server on 127.0.0.1 (port 0), a real SQLite
file and the real send orchestrator; only the clock is fake (``now`` is a
parameter of ``run_due``, and ``--now`` of the command).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mailer.audience.store import connect
from mailer.cli import app
from mailer.core.settings import load_settings
from mailer.delivery.report import SendOptions
from mailer.services.run_due import default_transport, run_due
from mailer.services.scheduled import ScheduledCampaign, load_scheduled
from tests.clock import pass_at

# The day campaign files are loaded on (a holiday's name is checked in that year).
TODAY = date(2026, 11, 22)

HOUR = timedelta(hours=1)

TEMPLATE = """<mjml>
<mj-head><mj-title>{{ subject }}</mj-title><mj-preview>{{ preheader }}</mj-preview></mj-head>
<mj-body>
<mj-section><mj-column>
<mj-text css-class="mailer-headline">{{ headline }}</mj-text>
<mj-text css-class="mailer-offer">{{ offer }}</mj-text>
<mj-button css-class="mailer-cta" href="{{ cta.url }}">{{ cta.text }}</mj-button>
</mj-column></mj-section>
<mj-section><mj-column><mj-text>
{{ sender.name }}, {{ postal_address }} · <a href="{{ unsubscribe_url }}">Unsubscribe</a>
</mj-text></mj-column></mj-section>
</mj-body></mjml>
"""

SETTINGS = """timezone = "Asia/Shanghai"

[sender]
name = "Tea House"
email = "news@teahouse.cn"

[footer]
postal_address = "Tea House Ltd, 8 Garden Lane, 200000 Shanghai"

[unsubscribe]
url = "https://tea.test/unsubscribe?t={{{{ token }}}}"
mailto = "unsubscribe@tea.test"

[smtp]
url = "{url}"
"""

CAMPAIGN = """id = "{id}"
template = "promo"
subject = "{subject}"
preheader = "A small gift from the tea house, with our warmest wishes to you"

[content]
headline = "{subject}, {{{{ contact.first_name | default('friend', true) }}}}"
offer = "{subject}: a free tin of spring tea with every order this week"
cta_text = "Choose your tea"
cta_url = "https://tea.test/gift"

[audience]
csv = "{csv}"

[schedule]
{schedule}
"""

CN = """email,first_name,timezone
mei@cn.test,Mei,Asia/Shanghai
wei@cn.test,Wei,Asia/Shanghai
"""
US = """email,first_name,timezone
ann@us.test,Ann,America/New_York
bob@us.test,Bob,America/Los_Angeles
"""
BIRTHDAYS = """email,first_name,timezone,birthday
leap@bd.test,Lea,Asia/Shanghai,2000-02-29
spring@bd.test,Sam,America/New_York,1990-03-14
autumn@bd.test,Ada,America/New_York,1985-11-07
"""


def write_workspace(root: Path, url: str, campaigns: dict[str, tuple[str, str, str]]) -> Path:
    """mailer.toml, templates/promo.mjml and campaigns/<id>.toml (subject, csv, schedule)."""
    (root / "templates").mkdir(parents=True, exist_ok=True)
    (root / "campaigns").mkdir(exist_ok=True)
    (root / "mailer.toml").write_text(SETTINGS.format(url=url), encoding="utf-8")
    (root / "templates" / "promo.mjml").write_text(TEMPLATE, encoding="utf-8")
    for name, data in (("cn.csv", CN), ("us.csv", US), ("birthdays.csv", BIRTHDAYS)):
        (root / "campaigns" / name).write_text(data, encoding="utf-8")
    for cid, (subject, csv, schedule) in campaigns.items():
        text = CAMPAIGN.format(id=cid, subject=subject, csv=csv, schedule=schedule)
        (root / "campaigns" / f"{cid}.toml").write_text(text, encoding="utf-8")
    return root


YEAR_CAMPAIGNS = {
    "spring": (
        "Happy Spring Festival",
        "cn.csv",
        'holiday = "Spring Festival"\ncountry = "CN"\nrecurring = "yearly"\nlocal_time = "09:00"',
    ),
    "xmas": (
        "Merry Christmas",
        "us.csv",
        'holiday = "Christmas"\ncountry = "US"\nrecurring = "yearly"\nlocal_time = "09:00"\n'
        "grace_hours = 48",
    ),
    "birthday": ("Happy birthday", "birthdays.csv", "birthday = true"),
}


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


class Clock:
    """Steps a fake clock and notes, for every message the server receives, the fake time."""

    def __init__(self, root: Path, server) -> None:
        self.settings = load_settings(root)
        self.campaigns, errors = load_scheduled(root / "campaigns", self.settings, TODAY)
        assert errors == []
        self.conn = connect(self.settings.db_path)
        self.server = server
        self.seen: list[tuple[str, str, datetime]] = []  # (recipient, subject, fake now)
        self.results: list = []

    def drive(self, start: datetime, end: datetime, step: timedelta = HOUR) -> None:
        for now in steps(start, end, step):
            self.at(now)

    def at(self, now: datetime, campaigns: list[ScheduledCampaign] | None = None) -> None:
        before = len(self.server.handler.received)
        report = run_due(
            self.campaigns if campaigns is None else campaigns,
            conn=self.conn,
            clock=pass_at(now),
            transport_for=default_transport,
            browser=False,  # the fold check in Chromium has tests of its own below
        )
        assert report.ok, report
        self.results += report.results
        for message in self.server.handler.received[before:]:
            subject = message_from_bytes(message.data, policy=policy.default)["Subject"]
            for rcpt in message.rcpt_tos:
                self.seen.append((rcpt, str(subject), now))

    def sent(self, subject: str) -> dict[str, list[datetime]]:
        found: dict[str, list[datetime]] = {}
        for rcpt, subj, now in self.seen:
            if subj == subject:
                found.setdefault(rcpt, []).append(now)
        return found


def steps(start: datetime, end: datetime, step: timedelta) -> Iterator[datetime]:
    now = start
    while now < end:
        yield now
        now += step


def test_a_year_of_holiday_and_birthday_greetings_each_once_at_nine_local(tmp_path, smtp_server):
    root = write_workspace(tmp_path, smtp_server.url, YEAR_CAMPAIGNS)
    clock = Clock(root, smtp_server)
    clock.drive(utc(2027, 1, 10), utc(2028, 1, 10))

    # Spring Festival 2027 is 6 February: 09:00 in Shanghai is 01:00 UTC.
    assert clock.sent("Happy Spring Festival") == {
        "mei@cn.test": [utc(2027, 2, 6, 1)],
        "wei@cn.test": [utc(2027, 2, 6, 1)],
    }
    # Christmas at 09:00 EST (14:00 UTC) and 09:00 PST (17:00 UTC), once each.
    assert clock.sent("Merry Christmas") == {
        "ann@us.test": [utc(2027, 12, 25, 14)],
        "bob@us.test": [utc(2027, 12, 25, 17)],
    }
    # 29 February → 28 February in 2027; 14 March 2027 is the day clocks go forward in
    # New York (09:00 EDT = 13:00 UTC); 7 November the day they go back (09:00 EST = 14:00 UTC).
    assert clock.sent("Happy birthday") == {
        "leap@bd.test": [utc(2027, 2, 28, 1)],
        "spring@bd.test": [utc(2027, 3, 14, 13)],
        "autumn@bd.test": [utc(2027, 11, 7, 14)],
    }
    assert len(clock.seen) == 7
    rows = clock.conn.execute(
        "SELECT campaign_id, count(*) FROM journal WHERE status = 'sent' GROUP BY campaign_id"
    ).fetchall()
    assert sorted(map(tuple, rows)) == [
        ("birthday@birthday-2027", 3),
        ("spring@2027", 2),
        ("xmas@2027", 2),
    ]
    outcomes = clock.conn.execute(
        "SELECT outcome, count(*), sum(sent) FROM schedule_runs GROUP BY outcome"
    ).fetchall()
    assert [tuple(r) for r in outcomes] == [("sent", 6, 7)]  # one run per wave, no misses

    # 2028 is a leap year: the leap-day contact is greeted on 29 February, once.
    clock.drive(utc(2028, 2, 27), utc(2028, 3, 2))
    assert clock.sent("Happy birthday")["leap@bd.test"] == [
        utc(2027, 2, 28, 1),
        utc(2028, 2, 29, 1),
    ]
    assert len(clock.seen) == 8


def test_downtime_is_caught_up_inside_the_grace_period_and_skipped_after(tmp_path, smtp_server):
    schedule = 'holiday = "Christmas"\ncountry = "US"\nrecurring = "yearly"\n'
    root = write_workspace(
        tmp_path,
        smtp_server.url,
        {
            "xmas48": ("Merry Christmas", "us.csv", schedule + "grace_hours = 48"),
            "xmas12": ("Season's greetings", "us.csv", schedule + "grace_hours = 12"),
        },
    )
    clock = Clock(root, smtp_server)
    clock.drive(utc(2027, 12, 20), utc(2027, 12, 24, 12))
    assert clock.seen == []
    # The machine is down from 24 December 12:00 UTC until 27 December 06:00 UTC:
    # 01:00 in New York, so the 48 h greeting waits for 08:00 there (13:00 UTC),
    # and Los Angeles for 08:00 PST (16:00 UTC) — both before their deadlines.
    clock.drive(utc(2027, 12, 27, 6), utc(2028, 1, 3))
    assert clock.sent("Merry Christmas") == {
        "ann@us.test": [utc(2027, 12, 27, 13)],
        "bob@us.test": [utc(2027, 12, 27, 16)],
    }
    assert clock.sent("Season's greetings") == {}
    missed = [(r.key, r.wave, r.recipients) for r in clock.results if r.outcome == "missed"]
    assert missed == [
        ("xmas12@2027", "2027-12-25 America/New_York", 1),
        ("xmas12@2027", "2027-12-25 America/Los_Angeles", 1),
    ]
    rows = clock.conn.execute(
        "SELECT campaign_id, wave, outcome, note FROM schedule_runs WHERE outcome = 'missed'"
    ).fetchall()
    assert [tuple(r) for r in rows] == [
        (
            "xmas12@2027",
            "2027-12-25 America/New_York",
            "missed",
            "grace ended 2027-12-26 02:00 UTC",
        ),
        (
            "xmas12@2027",
            "2027-12-25 America/Los_Angeles",
            "missed",
            "grace ended 2027-12-26 05:00 UTC",
        ),
    ]


def test_schedule_runs_command_lists_sent_and_missed_waves(tmp_path, smtp_server, monkeypatch):
    schedule = 'holiday = "Christmas"\ncountry = "US"\nyear = 2027\ngrace_hours = 12'
    root = write_workspace(tmp_path, smtp_server.url, {"xmas": ("Hi", "us.csv", schedule)})
    clock = Clock(root, smtp_server)
    clock.at(utc(2027, 12, 25, 14))  # New York's wave
    clock.at(utc(2027, 12, 26, 12))  # Los Angeles' grace period ended at 05:00 UTC
    monkeypatch.chdir(root)
    monkeypatch.setenv("COLUMNS", "160")
    result = CliRunner().invoke(app, ["schedule", "runs", "xmas"])
    assert result.exit_code == 0, result.output
    lines = [" ".join(line.replace("│", " ").split()) for line in result.output.splitlines()]
    assert lines[4:6] == [
        "2027 2027-12-25 America/New_York sent 1 1",
        "2027 2027-12-25 America/Los_Angeles missed 1 0 grace ended 2027-12-26 05:00 UTC",
    ]


def test_contacts_added_during_the_grace_period_still_get_the_greeting(tmp_path, smtp_server):
    root = write_workspace(tmp_path, smtp_server.url, {"spring": YEAR_CAMPAIGNS["spring"]})
    clock = Clock(root, smtp_server)
    clock.at(utc(2027, 2, 6, 1))
    assert len(clock.seen) == 2
    with (root / "campaigns" / "cn.csv").open("a", encoding="utf-8") as out:
        out.write("late@cn.test,Late,Asia/Shanghai\n")
    campaigns, _ = load_scheduled(root / "campaigns", clock.settings, TODAY)
    clock.at(utc(2027, 2, 6, 3), campaigns)
    clock.at(utc(2027, 2, 6, 4), campaigns)
    assert [r for r, _, _ in clock.seen] == ["mei@cn.test", "wei@cn.test", "late@cn.test"]


def test_pre_send_check_errors_stop_a_scheduled_wave(tmp_path, smtp_server):
    # A subject of 90 columns: phones cut it off, an error the subject check refuses.
    _, csv, schedule = YEAR_CAMPAIGNS["spring"]
    long_subject = "Happy Spring Festival from all of us " + "at the tea house " * 3 + "x" * 3
    assert len(long_subject) > 78
    root = write_workspace(tmp_path, smtp_server.url, {"spring": (long_subject, csv, schedule)})
    settings = load_settings(root)
    campaigns, _ = load_scheduled(root / "campaigns", settings, TODAY)
    conn = connect(settings.db_path)
    report = run_due(
        campaigns,
        conn=conn,
        clock=pass_at(utc(2027, 2, 6, 1)),
        transport_for=default_transport,
        browser=False,
    )
    assert not report.ok
    assert [(r.outcome, r.sent, r.note) for r in report.results] == [
        ("failed", 0, "pre-send checks failed")
    ]
    assert [e.message.splitlines()[0] for e in report.errors] == ["1 pre-send check error(s):"]
    assert "[subject-too-long]" in report.errors[0].message
    assert smtp_server.handler.received == []
    # --force (options.forced) sends despite the errors, as a manual send does.
    forced = run_due(
        campaigns,
        conn=conn,
        clock=pass_at(utc(2027, 2, 6, 2)),
        transport_for=default_transport,
        options=SendOptions(forced=True),
        browser=False,
    )
    assert [(r.outcome, r.sent) for r in forced.results] == [("sent", 2)]
    assert len(smtp_server.handler.received) == 2


# --- the command line ---------------------------------------------------------


def mailer(*args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "mailer", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_concurrent_run_due_processes_never_send_twice(tmp_path, smtp_server):
    people = ["email,first_name,timezone"]
    for number in range(40):
        zone = "Asia/Shanghai" if number % 2 else "Asia/Tokyo"
        people.append(f"p{number}@many.test,P{number},{zone}")
    root = write_workspace(
        tmp_path,
        smtp_server.url,
        {
            "spring": (
                "Happy Spring Festival",
                "many.csv",
                'holiday = "Spring Festival"\ncountry = "CN"\nyear = 2027',
            )
        },
    )
    (root / "campaigns" / "many.csv").write_text("\n".join(people) + "\n", encoding="utf-8")
    # A throttle makes each wave take about a second, so the two runs overlap.
    with (root / "campaigns" / "spring.toml").open("a", encoding="utf-8") as out:
        out.write("\n[throttle]\nper_second = 25\n")
    # The workspace database exists already, as it does after the first cron run.
    connect(root / "mailer.db").close()
    first = mailer("run-due", "--now", "2027-02-06T01:05Z", "--commit", "--no-browser", cwd=root)
    second = mailer("run-due", "--now", "2027-02-06T01:05Z", "--commit", "--no-browser", cwd=root)
    outputs = [p.communicate(timeout=120) for p in (first, second)]
    assert [p.returncode for p in (first, second)] == [0, 0], outputs
    delivered = smtp_server.handler.delivered_to()
    assert sorted(delivered) == sorted(f"p{n}@many.test" for n in range(40))
    conn = connect(root / "mailer.db")
    assert conn.execute("SELECT count(*) FROM journal WHERE status = 'sent'").fetchone()[0] == 40
    runs = conn.execute("SELECT wave, sent FROM schedule_runs WHERE outcome = 'sent'").fetchall()
    assert sorted(map(tuple, runs)) == [
        ("2027-02-06 Asia/Shanghai", 20),
        ("2027-02-06 Asia/Tokyo", 20),
    ]
    # A third run afterwards finds nothing left to do.
    third = mailer("run-due", "--now", "2027-02-06T02:00Z", "--commit", cwd=root)
    out, _ = third.communicate(timeout=60)
    assert out.strip() == "2027-02-06 02:00 UTC  nothing due (1 scheduled campaign(s))"
    assert len(smtp_server.handler.delivered_to()) == 40


def test_schedule_list_shows_waves_and_counts(tmp_path, smtp_server, monkeypatch):
    root = write_workspace(tmp_path, smtp_server.url, YEAR_CAMPAIGNS)
    monkeypatch.chdir(root)
    monkeypatch.setenv("COLUMNS", "160")
    result = CliRunner().invoke(app, ["schedule", "list", "--now", "2027-12-01T00:00"])
    assert result.exit_code == 0, result.output
    lines = [" ".join(line.replace("│", " ").split()) for line in result.output.splitlines()]
    assert "xmas: Christmas (US) every year, at 09:00 in each recipient's time zone" in lines
    assert "2027 2027-12-25 09:00 America/New_York 2027-12-25 14:00 1 pending" in lines
    assert "2027 2027-12-25 09:00 America/Los_Angeles 2027-12-25 17:00 1 pending" in lines
    # One occurrence in view: it goes into the title instead of a column.
    assert (
        "spring: Spring Festival (CN) every year, at 09:00 in each recipient's time zone "
        "(occurrence 2028)" in lines
    )
    assert "2028-01-26 09:00 Asia/Shanghai 2028-01-26 01:00 2 pending" in lines
    assert "2028-02-29 09:00 Asia/Shanghai 2028-02-28 16:00 1 pending" not in lines
    assert "2028-02-29 09:00 Asia/Shanghai 2028-02-29 01:00 1 pending" in lines


def test_run_due_reports_a_broken_schedule_with_file_and_line(tmp_path, smtp_server, monkeypatch):
    root = write_workspace(
        tmp_path,
        smtp_server.url,
        {"bad": ("Hello", "cn.csv", 'holiday = "Spring Festivle"\ncountry = "CN"\nyear = 2027')},
    )
    monkeypatch.chdir(root)
    path = root / "campaigns" / "bad.toml"
    line = path.read_text(encoding="utf-8").splitlines().index('holiday = "Spring Festivle"') + 1
    result = CliRunner().invoke(app, ["run-due", "--now", "2027-02-06T01:00Z", "--commit"])
    assert result.exit_code == 1
    assert result.output == (
        f"error: {Path('campaigns', 'bad.toml')}:{line}: no holiday named 'Spring Festivle' in the CN calendar "
        "(language en_US)\n  hint: did you mean 'Chinese New Year (Spring Festival)'? known: "
        "中秋节, 元旦, 农历除夕, 劳动节, 国庆节, 春节, 清明节, 端午节, "
        "Chinese New Year (Spring Festival), Chinese New Year's Eve, Dragon Boat Festival, "
        "Labor Day, Mid-Autumn Festival, National Day, New Year's Day, Tomb-Sweeping Day\n"
    )


def test_run_due_rejects_a_bad_now(tmp_path, smtp_server, monkeypatch):
    write_workspace(tmp_path, smtp_server.url, {})
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["run-due", "--now", "tomorrow"])
    assert result.exit_code == 1
    assert result.output == (
        "error: --now is not an ISO date-time: 'tomorrow'\n"
        "  hint: for example --now 2027-02-06T01:00Z\n"
    )


@pytest.mark.parametrize("args", [["run-due"], ["schedule", "list"]])
def test_missing_campaigns_folder(tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, [*args, "--campaigns", "nowhere"])
    assert result.exit_code == 1
    assert result.output == (
        "error: the campaigns folder does not exist: nowhere\n"
        "  hint: run from the workspace, or pass --campaigns DIR\n"
    )


def test_scheduler_runs_passes_in_the_foreground_until_interrupted(tmp_path, smtp_server):
    import signal
    import time

    # A date far ahead: the pass runs on the real clock and must find nothing due.
    later = ("Hello", "us.csv", 'date = "2099-06-01"')
    root = write_workspace(tmp_path, smtp_server.url, {"later": later})
    loop = mailer("scheduler", "--interval", "10", cwd=root)
    assert loop.stdout is not None
    first = loop.stdout.readline()
    second = loop.stdout.readline()
    # Let the pass finish printing: an interrupt inside rich's write can repeat the line.
    time.sleep(0.5)
    loop.send_signal(signal.SIGINT)
    rest, _ = loop.communicate(timeout=30)
    assert first == "scheduler: a pass every 10 s; Ctrl-C to stop\n"
    assert second.endswith("UTC  nothing due (1 scheduled campaign(s))\n")
    assert rest == "scheduler stopped\n"
    assert loop.returncode == 130  # stopped by Ctrl-C (SIGTERM: 143)


def test_a_lease_left_by_a_crashed_process_is_taken_over(tmp_path, smtp_server):
    import os
    import socket

    from mailer.schedule.leases import Lease, claim

    root = write_workspace(tmp_path, smtp_server.url, {"spring": YEAR_CAMPAIGNS["spring"]})
    clock = Clock(root, smtp_server)
    now = utc(2027, 2, 6, 1)
    wave, key = "2027-02-06 Asia/Shanghai", "spring@2027"
    host = socket.gethostname()
    # A live process (this one) holds the lease: the wave is skipped as busy.
    assert claim(clock.conn, key, wave, f"{host}:{os.getpid()}:other", now) is Lease.TAKEN
    report = run_due(
        clock.campaigns,
        conn=clock.conn,
        clock=pass_at(now),
        transport_for=default_transport,
        browser=False,
    )
    assert [(r.outcome, r.recipients) for r in report.results] == [("busy", 2)]
    assert smtp_server.handler.received == []
    # The holder died without releasing it (no such pid): the next run takes over at once.
    clock.conn.execute("UPDATE schedule_claims SET owner = ?", (f"{host}:999999999:dead",))
    clock.at(now + timedelta(minutes=5))
    assert sorted(r for r, _, _ in clock.seen) == ["mei@cn.test", "wei@cn.test"]
