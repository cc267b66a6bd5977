"""What a schedule is: the validated ``[schedule]`` table, and the waves it cuts an audience into.

A schedule names *which day* (a fixed date, a holiday of a country's calendar,
a marketing day such as 双十一 or 七夕, each contact's birthday, N days after
a contact's last order) and *which hour* (``local_time`` in each recipient's
own time zone, or pinned to one zone). ``mailer.schedule.plan`` turns a
schedule, the recipients and "now" into ``Wave``s; ``mailer.schedule.parse``
builds a ``Schedule`` from a file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mailer.core.days_off import DaysOffByHand
from mailer.core.recipient import Recipient
from mailer.schedule.holiday_calendar import DEFAULT_LANGUAGE

KINDS = ("date", "holiday", "day", "birthday", "after_last_order_days")
KEYS = (
    *KINDS,
    "country",
    "subdiv",
    "language",
    "categories",
    "year",
    "recurring",
    "offset_days",
    "local_time",
    "timezone",
    "window",
    "quiet_days",
    "grace_hours",
)
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DEFAULT_WINDOW = (time(8), time(21))

Where = Callable[[str], str] | str | None


@dataclass(frozen=True)
class Schedule:
    """A validated ``[schedule]`` table. ``kind`` is one of ``KINDS``."""

    kind: str
    day: date | None = None  # kind "date"
    holiday: str | None = None  # kind "holiday"
    named_day: str | None = None  # kind "day": a marketing day (双十一, 七夕, 冬至, Black Friday)
    country: str | None = None
    subdiv: str | None = None
    language: str = DEFAULT_LANGUAGE
    categories: tuple[str, ...] = ()
    year: int | None = None
    recurring: bool = False
    offset_days: int = 0
    after_days: int = 0  # kind "after_last_order_days"
    local_time: time = time(9)
    zone: tzinfo | None = None  # pinned zone for the due time; None = each recipient's own
    zone_name: str | None = None
    window: tuple[time, time] | None = DEFAULT_WINDOW
    quiet_days: frozenset[int] = frozenset()
    days_off: str | None = None  # quiet_days "days-off": this country's official days off
    # [calendar.days_off] in mailer.toml: years whose arrangement was entered by hand.
    days_off_by_hand: DaysOffByHand | None = None
    grace: timedelta = timedelta(hours=24)
    default_timezone: str = "UTC"

    def describe(self) -> str:
        """One line for humans: what day, what hour, where."""
        if self.kind == "date":
            assert self.day is not None
            what = f"every year on {self.day:%d %B}" if self.recurring else f"on {self.day}"
        elif self.kind == "holiday":
            what = f"{_offset(self.offset_days)}{self.holiday} ({self.country})"
            what += " every year" if self.recurring else f" {self.year}"
        elif self.kind == "day":
            what = f"{_offset(self.offset_days)}{self.named_day}"
            what += " every year" if self.recurring else f" {self.year}"
        elif self.kind == "birthday":
            what = f"{_offset(self.offset_days)}each contact's birthday"
        else:
            what = f"{self.after_days} days after each contact's last order"
        where = self.zone_name or "each recipient's time zone"
        return f"{what}, at {self.local_time:%H:%M} in {where}"


@dataclass(frozen=True)
class Wave:
    """Recipients who share an occurrence, a local date and a time zone."""

    occurrence: str  # "2027", "birthday-2027", "2027-02-06", "order-2027-03-01"
    local_date: date
    zone: str
    due_at: datetime  # UTC
    send_at: datetime | None  # first moment inside the window and grace period (UTC)
    deadline: datetime  # UTC; from here on the wave is missed
    state: str  # "pending" | "due" | "waiting" | "missed"
    recipients: tuple[Recipient, ...] = field(repr=False)

    @property
    def key(self) -> str:
        """Unique within an occurrence: ``2027-02-06 Asia/Shanghai``."""
        return f"{self.local_date.isoformat()} {self.zone}"


@dataclass(frozen=True)
class WavePlan:
    """Every wave around "now", plus recipients that could not be scheduled."""

    waves: tuple[Wave, ...]
    undated: int = 0  # recipients without a usable birthday / last order date
    default_zone: int = 0  # recipients on the workspace zone (none or unknown timezone)
    # Contacts whose timezone, birthday or last_order_at is there but unreadable,
    # each naming its source ("contacts.csv line 7"); the first PROBLEMS_KEPT of them.
    problems: tuple[str, ...] = ()
    problem_count: int = 0


PROBLEMS_KEPT = 5


def wave_key(campaign_id: str, wave: Wave) -> str:
    """The journal key of a wave's sends: once per occurrence per recipient (``xmas@2027``)."""
    return f"{campaign_id}@{wave.occurrence}"


@lru_cache(maxsize=1024)
def zone_named(name: str) -> ZoneInfo | None:
    """The IANA zone ``name`` (``Asia/Shanghai``), or None when there is no such zone."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _offset(days: int) -> str:
    if days == 0:
        return ""
    return f"{abs(days)} day{'s' if abs(days) != 1 else ''} {'before' if days < 0 else 'after'} "


# --- planning ----------------------------------------------------------------
