"""``mailer calendar``: the marketing days of a year, and which campaigns are scheduled on them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from mailer.core.errors import MailerError, ScheduleError
from mailer.core.marketing_days import days_in, find_day
from mailer.schedule.holiday_calendar import days_off_known, guessed_days_off, is_day_off
from mailer.schedule.model import Schedule
from mailer.schedule.plan import holiday_of
from mailer.services.scheduled import load_scheduled
from mailer.services.workspace import workspace_settings

__all__ = ["CalendarDay", "YearCalendar", "marketing_calendar"]

# lunar-python's tables run 1900–2100; a lunar date in the first or last year can fall
# outside it (the twelfth month of the year before), so one year is kept on each side.
FIRST_YEAR, LAST_YEAR = 1901, 2099


@dataclass
class CalendarDay:
    """One row: a named day (or a scheduled campaign's own date) and what is planned on it."""

    day: date
    zh: str
    en: str
    day_off: bool | None  # an official day off in China; None outside China
    campaigns: list[str] = field(default_factory=list)  # "id" or "id (3 days before: 02-03)"


@dataclass
class YearCalendar:
    """``mailer calendar``'s answer."""

    year: int
    country: str
    days: list[CalendarDay]
    days_off_known: bool  # China's days off and working weekends published for this year
    errors: list[MailerError] = field(default_factory=list)  # campaign files that did not load
    days_off_by_hand: bool = False  # the year's days off come from mailer.toml
    # Unpublished year: the holidays package's guessed days in lieu, not counted as off.
    guessed: list[date] = field(default_factory=list)


def marketing_calendar(year: int, country: str, campaigns: Path | None = None) -> YearCalendar:
    """The named days of ``year`` for ``country`` with the workspace's scheduled campaigns."""
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise ScheduleError(
            f"the marketing calendar covers {FIRST_YEAR}–{LAST_YEAR}, not {year}",
            hint="lunar dates and solar terms are computed for those years",
        )
    settings = workspace_settings()
    code = country.upper()
    china = code == "CN"
    rows = {
        (when, named.zh): CalendarDay(
            when, named.zh, named.en, is_day_off(when, code, settings.days_off) if china else None
        )
        for when, named in days_in(year, code)
    }
    folder = campaigns or settings.root / "campaigns"
    found, errors = load_scheduled(folder, settings, date(year, 1, 1))
    for item in found:
        anchor = _anchor(item.schedule, year)
        if anchor is None:
            continue
        when, zh, en = anchor
        row = rows.setdefault(
            (when, zh),
            CalendarDay(when, zh, en, is_day_off(when, code, settings.days_off) if china else None),
        )
        row.campaigns.append(_label(item.id, item.schedule, when))
    days = sorted(rows.values(), key=lambda r: (r.day, r.zh))
    known = days_off_known(year, code, settings.days_off) if china else True
    by_hand = china and settings.days_off.for_year(year) is not None
    guessed = [] if known else guessed_days_off(year, code)
    return YearCalendar(year, code, days, known, errors, by_hand, guessed)


def _anchor(schedule: Schedule, year: int) -> tuple[date, str, str] | None:
    """The day a schedule counts from in ``year`` (its named day or holiday), with names."""
    if schedule.year not in (None, year):
        return None
    if schedule.kind == "day":
        named = find_day(schedule.named_day or "")
        return (named.on(year), named.zh, named.en) if named else None
    if schedule.kind == "holiday" and schedule.country and schedule.holiday:
        when = holiday_of(schedule, year)
        if when is None:
            return None
        named = find_day(schedule.holiday)
        if named is not None and named.on(year) == when:
            return when, named.zh, named.en
        return when, schedule.holiday, schedule.holiday
    if schedule.kind == "date" and schedule.day is not None:
        when = schedule.day.replace(year=year) if schedule.recurring else schedule.day
        return (when, "—", "—") if when.year == year else None
    return None  # birthdays and order anniversaries are personal: no one day


def _label(campaign: str, schedule: Schedule, anchor: date) -> str:
    offset = schedule.offset_days
    if schedule.kind == "date" or not offset:
        return campaign
    when = anchor + timedelta(days=offset)
    side = "before" if offset < 0 else "after"
    return f"{campaign} ({abs(offset)} day{'s' if abs(offset) > 1 else ''} {side}: {when:%m-%d})"
