"""Scheduled campaigns in a workspace: which there are, and what is coming (``schedule list``).

``load_scheduled`` finds every campaign file with a ``[schedule]`` table and
prepares it; a broken file becomes an error in the result, not a stop, so
cron keeps greeting people while someone fixes a typo in another file.
``overview`` plans a campaign's next waves for ``schedule list``.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, replace
from datetime import date, datetime
from pathlib import Path

from mailer.audience.database import Connection
from mailer.campaign.prepared import PreparedCampaign, prepare_campaign
from mailer.core.campaign import Campaign
from mailer.core.clock import aware
from mailer.core.errors import MailerError, ScheduleError
from mailer.core.keys import journal_key
from mailer.core.settings import Settings
from mailer.delivery.choose import transport_name
from mailer.delivery.journal import PENDING, Journal
from mailer.schedule.holiday_calendar import days_off_known
from mailer.schedule.model import Schedule, Wave
from mailer.schedule.parse import parse_schedule
from mailer.schedule.plan import plan_waves, upcoming
from mailer.schedule.runs import ScheduleRun, schedule_runs

__all__ = [
    "Overview",
    "ScheduleRun",
    "ScheduledCampaign",
    "Wave",
    "WaveProgress",
    "load_scheduled",
    "overview",
    "schedule_of",
    "schedule_runs",
]


@dataclass(frozen=True)
class ScheduledCampaign:
    """A campaign file with a valid ``[schedule]``, compiled and ready to send."""

    path: Path
    prepared: PreparedCampaign
    schedule: Schedule

    @property
    def id(self) -> str:
        """The campaign's id."""
        return self.prepared.campaign.id

    def key(self, wave: Wave) -> str:
        """The journal key of ``wave``'s sends (outbox runs keep a key of their own)."""
        return self.occurrence_key(wave.occurrence)

    def occurrence_key(self, occurrence: str) -> str:
        """The journal key of an occurrence (``2027``, ``birthday-2027``) of this campaign."""
        return journal_key(f"{self.id}@{occurrence}", transport_name(self.prepared.settings))


def load_scheduled(
    folder: Path, settings: Settings, today: date
) -> tuple[list[ScheduledCampaign], list[MailerError]]:
    """Every campaign in ``folder`` with a ``[schedule]`` table, and the errors of broken ones."""
    if not folder.is_dir():
        raise ScheduleError(
            f"the campaigns folder does not exist: {folder}",
            hint="run from the workspace, or name the campaigns folder",
            advice="campaigns-folder",
        )
    found: list[ScheduledCampaign] = []
    errors: list[MailerError] = []
    for path in sorted(folder.glob("*.toml")):
        if not _has_schedule(path):
            continue
        try:
            prepared = prepare_campaign(path, settings)
            schedule = schedule_of(prepared.campaign, settings, today)
        except MailerError as exc:
            errors.append(exc)
            continue
        found.append(ScheduledCampaign(path, prepared, schedule))
    return found, errors


def schedule_of(campaign: Campaign, settings: Settings, today: date) -> Schedule:
    """Parse a loaded campaign's ``[schedule]`` table, with errors at its file:line."""

    def where(key: str) -> str:
        return campaign.where("schedule", key) if key else campaign.where("schedule")

    parsed = parse_schedule(
        campaign.schedule_table or {},
        where=where,
        default_timezone=settings.default_timezone,
        today=today,
    )
    return replace(parsed, days_off_by_hand=settings.days_off) if parsed.days_off else parsed


def _has_schedule(path: Path) -> bool:
    # A cheap look before compiling templates; a syntax error is reported by the loader.
    try:
        return "schedule" in tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return True


@dataclass(frozen=True)
class WaveProgress:
    """What the journal says of a wave's people: how many are settled under the key of
    a real send (sent, failed, suppressed or unknown after a crash: never sent again), how
    many of them were sent, and how many an outbox run wrote to files (not mail)."""

    settled: int = 0
    sent: int = 0
    outbox: int = 0


@dataclass(frozen=True)
class Overview:
    """What ``schedule list`` shows for one campaign."""

    campaign: str
    path: Path
    description: str
    # Upcoming waves, each with what the journal says of its people (whatever transport
    # ``schedule list`` itself would use: a wave sent through the relay is sent).
    waves: list[tuple[Wave, WaveProgress]]
    undated: int
    default_zone: int
    more: int = 0  # upcoming waves beyond ``limit``
    problems: tuple[str, ...] = ()  # unreadable timezone / date fields, a few of them
    problem_count: int = 0
    zone: str = "UTC"  # the workspace zone those without a valid timezone are greeted in
    # Years of upcoming waves whose official days off (quiet_days "days-off") are not published.
    days_off_unknown: tuple[int, ...] = ()


def overview(
    item: ScheduledCampaign, now: datetime, conn: Connection | None, limit: int = 10
) -> Overview:
    """The next waves of a scheduled campaign, with recipient counts per wave."""
    found = plan_waves(item.schedule, item.prepared.recipients(), aware(now))
    rows: list[tuple[Wave, WaveProgress]] = []
    coming = upcoming(found.waves, len(found.waves))
    for wave in coming[:limit]:
        rows.append((wave, _progress(conn, item, wave)))
    return Overview(
        item.id,
        item.path,
        item.schedule.describe(),
        rows,
        found.undated,
        found.default_zone,
        max(0, len(coming) - limit),
        found.problems,
        found.problem_count,
        item.schedule.default_timezone,
        _days_off_unknown(item.schedule, [wave for wave, _ in rows]),
    )


def _progress(conn: Connection | None, item: ScheduledCampaign, wave: Wave) -> WaveProgress:
    """The wave's people in the journal, under the real key and the outbox key."""
    if conn is None:
        return WaveProgress()
    emails = [r.email for r in wave.recipients]
    key = f"{item.id}@{wave.occurrence}"
    real = Journal(conn, journal_key(key, "smtp")).statuses(emails)
    files = Journal(conn, journal_key(key, "outbox")).statuses(emails)
    return WaveProgress(
        sum(status not in PENDING for status in real.values()),
        sum(status == "sent" for status in real.values()),
        sum(status == "sent" for status in files.values()),
    )


def _days_off_unknown(schedule: Schedule, waves: list[Wave]) -> tuple[int, ...]:
    if schedule.days_off is None:
        return ()
    years = sorted({wave.local_date.year for wave in waves})
    return tuple(
        y for y in years if not days_off_known(y, schedule.days_off, schedule.days_off_by_hand)
    )
