"""A month of cron: ``run-due`` every five minutes over a birthday and a holiday campaign.

Shared by the test (a small audience) and ``tests/benchmarks/bench_schedule_sim.py``
(10,000 contacts). The workspace is real (contacts imported into SQLite, a real
aiosmtpd relay on loopback that records envelopes); the clock is fake: each
pass runs at its own cron moment. ``check`` then verifies what a marketer
cares about: every greeting went out exactly once, on the right local day,
inside the send window, and the run log grew with the waves, not with the passes.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from mailer.audience.importer import import_contacts
from mailer.audience.store import connect
from mailer.core.settings import load_settings
from mailer.services.run_due import default_transport, run_due
from mailer.services.scheduled import load_scheduled
from tests.clock import pass_at
from tests.smtp_server import SmtpServer

ZONES = ("Asia/Shanghai", "Europe/London", "America/New_York")
START = datetime(2026, 12, 15, tzinfo=UTC)  # New Year's Day 2027 (元旦) falls inside
DAYS = 30
STEP = timedelta(minutes=5)
WINDOW = (8, 21)  # the default send window, local hours

TEMPLATE = """<mjml><mj-head><mj-title>{{ subject }}</mj-title>
<mj-preview>{{ preheader }}</mj-preview></mj-head><mj-body>
<mj-section><mj-column>
<mj-text css-class="mailer-headline">{{ headline }}</mj-text>
<mj-text css-class="mailer-offer">{{ offer }}</mj-text>
<mj-button css-class="mailer-cta" href="{{ cta.url }}">{{ cta.text }}</mj-button>
<mj-text>{{ sender.name }}, {{ postal_address }} ·
<a href="{{ unsubscribe_url }}">Unsubscribe</a></mj-text>
</mj-column></mj-section></mj-body></mjml>
"""
SETTINGS = """timezone = "Asia/Shanghai"

[sender]
name = "Lotus Tea House"
email = "hello@lotus-tea.cn"

[footer]
postal_address = "Lotus Tea House, 18 Willow Lane, Hangzhou 310000, China"

[unsubscribe]
url = "https://lotus-tea.test/unsubscribe?t={{{{ token }}}}"

[smtp]
url = "{url}"
"""
CAMPAIGN = """id = "{id}"
template = "greeting"
subject = "{subject}"
preheader = "A small gift from the tea house, with our warmest wishes"

[content]
headline = "{subject}, {{{{ contact.first_name }}}}"
offer = "A free tin of spring tea with your next order"
cta_text = "Choose your tea"
cta_url = "https://lotus-tea.test/gift"

[audience]
list = "customers"

[schedule]
{schedule}
"""
CAMPAIGNS = {
    "birthday": ("Happy birthday", "birthday = true"),
    "newyear": ("Happy New Year", 'holiday = "元旦"\ncountry = "CN"\nrecurring = "yearly"'),
}


@dataclass
class Simulation:
    """What a simulated month did."""

    contacts: int
    passes: int = 0
    seconds: float = 0.0
    deliveries: Counter[tuple[str, str]] = field(default_factory=Counter)  # (email, campaign)
    problems: list[str] = field(default_factory=list)
    schedule_runs: int = 0
    campaign_runs: int = 0
    waves: int = 0  # distinct (journal key, wave) with a run row
    sent_waves: int = 0  # of those, waves that sent (the others were missed before the month)


def workspace(root: Path, url: str, contacts: int, seed: int = 11) -> dict[str, tuple[str, date]]:
    """The workspace with ``contacts`` people; returns email -> (zone, birthday)."""
    (root / "templates").mkdir(parents=True)
    (root / "campaigns").mkdir()
    (root / "mailer.toml").write_text(SETTINGS.format(url=url), encoding="utf-8")
    (root / "templates" / "greeting.mjml").write_text(TEMPLATE, encoding="utf-8")
    for cid, (subject, schedule) in CAMPAIGNS.items():
        text = CAMPAIGN.format(id=cid, subject=subject, schedule=schedule)
        (root / "campaigns" / f"{cid}.toml").write_text(text, encoding="utf-8")
    rng = random.Random(seed)
    people: dict[str, tuple[str, date]] = {}
    lines = ["email,first_name,timezone,birthday"]
    for n in range(contacts):
        zone = ZONES[n % len(ZONES)]
        born = date(1960, 1, 1) + timedelta(days=rng.randrange(365 * 40))
        email = f"c{n}@sim.test"
        people[email] = (zone, born)
        lines.append(f"{email},C{n},{zone},{born}")
    source = root / "contacts.csv"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    conn = connect(root / "mailer.db")
    import_contacts(conn, source, list_name="customers", now=START)
    conn.close()
    return people


def simulate(root: Path, server: SmtpServer, contacts: int) -> Simulation:
    """Build the workspace and run cron every five minutes for thirty days."""
    people = workspace(root, server.url, contacts)
    settings = load_settings(root, env={})
    campaigns, errors = load_scheduled(root / "campaigns", settings, START.date())
    assert errors == [], errors
    conn = connect(settings.db_path)
    sim = Simulation(contacts)
    moment, end = START, START + timedelta(days=DAYS)
    started = time.perf_counter()
    while moment < end:
        report = run_due(
            campaigns,
            conn=conn,
            clock=pass_at(moment),
            transport_for=default_transport,
            browser=False,
        )
        if not report.ok:
            sim.problems.append(f"{moment}: {report.errors} {report.results}")
        sim.passes += 1
        moment += STEP
    sim.seconds = time.perf_counter() - started
    check(sim, conn, server, people)
    return sim


def check(sim: Simulation, conn, server: SmtpServer, people: dict[str, tuple[str, date]]) -> None:
    """Each greeting once, on its local day, inside the window; run rows per wave."""
    by_subject = {subject: cid for cid, (subject, _) in CAMPAIGNS.items()}
    for received in server.handler.received:
        subject = str(received.message["Subject"])
        for rcpt in received.rcpt_tos:
            sim.deliveries[(rcpt, by_subject.get(subject, subject))] += 1
    for key, count in sim.deliveries.items():
        if count != 1:
            sim.problems.append(f"{key} delivered {count} times")
    expected = _expected(people)
    missing = expected - set(sim.deliveries)
    extra = set(sim.deliveries) - expected
    if missing:
        sim.problems.append(f"{len(missing)} greetings never sent, e.g. {sorted(missing)[:3]}")
    if extra:
        sim.problems.append(f"{len(extra)} greetings not due, e.g. {sorted(extra)[:3]}")
    rows = conn.execute(
        "SELECT campaign_id, email, sent_at FROM journal WHERE status = 'sent'"
    ).fetchall()
    for key, email, sent_at in rows:
        local = datetime.fromisoformat(sent_at).astimezone(ZoneInfo(people[email][0]))
        if not WINDOW[0] <= local.hour < WINDOW[1]:
            sim.problems.append(f"{key} {email} sent at {local} local, outside the window")
    sim.schedule_runs = conn.execute("SELECT count(*) FROM schedule_runs").fetchone()[0]
    sim.campaign_runs = conn.execute("SELECT count(*) FROM campaign_runs").fetchone()[0]
    sim.waves = conn.execute(
        "SELECT count(*) FROM (SELECT DISTINCT campaign_id, wave FROM schedule_runs)"
    ).fetchone()[0]
    sim.sent_waves = conn.execute(
        "SELECT count(*) FROM schedule_runs WHERE outcome = 'sent'"
    ).fetchone()[0]


def _expected(people: dict[str, tuple[str, date]]) -> set[tuple[str, str]]:
    """(email, campaign) pairs: who should have had which greeting in the month."""
    found = set()
    for email, (zone, born) in people.items():
        found.add((email, "newyear"))
        if _birthday_sendable(born, ZoneInfo(zone)):
            found.add((email, "birthday"))
    return found


def _birthday_sendable(born: date, zone: ZoneInfo) -> bool:
    """Does some cron moment of the month fall in this birthday's grace and send window?"""
    end = START + timedelta(days=DAYS)
    for year in (START.year, START.year + 1):
        day = born.replace(year=year) if (born.month, born.day) != (2, 29) else date(year, 2, 28)
        due = datetime(day.year, day.month, day.day, 9, tzinfo=zone)
        moment = max(due.astimezone(UTC), START)
        moment = START + -(-(moment - START) // STEP) * STEP  # the next cron moment
        while moment < min(due + timedelta(hours=24), end):
            if WINDOW[0] <= moment.astimezone(zone).hour < WINDOW[1]:
                return True
            moment += STEP
    return False
