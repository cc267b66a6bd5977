"""Validation of a campaign's ``[schedule]`` table (see ``mailer.schedule.plan`` for the model).

Every mistake names the key and, through ``where``, the campaign file and line.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, time, timedelta
from typing import Any

from mailer.core.errors import ScheduleError
from mailer.core.marketing_days import find_day, suggest
from mailer.schedule.holiday_calendar import DEFAULT_LANGUAGE, check_calendar, holiday_date
from mailer.schedule.model import KEYS, KINDS, WEEKDAYS, Schedule, Where, zone_named

Locate = Callable[[str], str | None]


def parse_schedule(
    table: Mapping[str, Any],
    *,
    today: date,
    where: Where = None,
    default_timezone: str = "UTC",
) -> Schedule:
    """Validate a campaign's ``[schedule]`` table; raise ``ScheduleError`` with file:line.

    ``where`` is a callable giving the location of ``schedule.<key>`` (the
    campaign's ``lambda key: campaign.where("schedule", key)``), or a fixed string.
    ``default_timezone`` (``Settings.default_timezone``) is used for recipients
    without a valid ``timezone`` field. ``today`` picks the year in which a
    yearly holiday's name is looked up, to say early that it does not exist.
    """
    at = _locator(where)
    unknown = [k for k in table if k not in KEYS]
    if unknown:
        close = difflib.get_close_matches(unknown[0], KEYS, n=1)
        hint = f"did you mean '{close[0]}'?" if close else "allowed: " + ", ".join(KEYS)
        raise ScheduleError(f"unknown key 'schedule.{unknown[0]}'", where=at(unknown[0]), hint=hint)
    kinds = [k for k in KINDS if k in table]
    if len(kinds) != 1:
        raise ScheduleError(
            "a schedule needs exactly one of "
            + ", ".join(KINDS)
            + (f" (found {', '.join(kinds)})" if kinds else ""),
            where=at(kinds[1] if kinds else ""),
            hint='for example holiday = "Christmas" with country = "US", or birthday = true',
        )
    _check_zone(default_timezone, "the workspace time zone (mailer.toml 'timezone')", None)
    common = _common(table, at, default_timezone)
    if kinds[0] == "holiday":
        schedule = _holiday_kind(table, at, common, today)
    else:
        schedule = {
            "date": _date_kind,
            "day": _day_kind,
            "birthday": _birthday_kind,
            "after_last_order_days": _order_kind,
        }[kinds[0]](table, at, common)
    _check_window(schedule, at)
    return schedule


def _locator(where: Where) -> Locate:
    if callable(where):
        return where
    return lambda key: where


def _common(table: Mapping[str, Any], at: Locate, default_tz: str) -> dict:
    values: dict[str, Any] = {"default_timezone": default_tz}
    if "local_time" in table:
        values["local_time"] = _time(table["local_time"], "local_time", at)
    if "timezone" in table:
        name = _string(table, "timezone", at)
        values["zone"] = _check_zone(name, "schedule.timezone", at("timezone"))
        values["zone_name"] = name
    if "window" in table:
        values["window"] = _window(table["window"], at)
    if "quiet_days" in table:
        values["quiet_days"] = _quiet_days(table["quiet_days"], at)
        values["days_off"] = _days_off(table["quiet_days"])
    if "grace_hours" in table:
        hours = table["grace_hours"]
        if isinstance(hours, bool) or not isinstance(hours, int | float) or hours <= 0:
            raise ScheduleError(
                f"schedule.grace_hours must be a positive number of hours, not {hours!r}",
                where=at("grace_hours"),
            )
        values["grace"] = timedelta(hours=hours)
    if "recurring" in table:
        if table["recurring"] not in ("yearly", "once"):
            raise ScheduleError(
                f'schedule.recurring must be "yearly" or "once", not {table["recurring"]!r}',
                where=at("recurring"),
            )
        values["recurring"] = table["recurring"] == "yearly"
    return values


def _date_kind(table: Mapping[str, Any], at: Locate, common: dict) -> Schedule:
    value = table["date"]
    _refuse(
        table, at, "date", ("country", "subdiv", "language", "categories", "year", "offset_days")
    )
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)
        except ValueError:
            raise ScheduleError(
                f"schedule.date is not an ISO date or date-time: {table['date']!r}",
                where=at("date"),
                hint='date = "2027-02-06T09:00" with timezone = "Asia/Shanghai", '
                'or date = "2027-02-06" with local_time = "09:00"',
            ) from None
    if isinstance(value, datetime):
        if "local_time" in table:
            raise ScheduleError(
                "schedule.date already has a time: drop local_time, or give a date only",
                where=at("local_time"),
            )
        if value.tzinfo is not None and "timezone" not in table:
            common["zone"], common["zone_name"] = value.tzinfo, str(value.tzinfo)
        elif "zone" not in common:
            raise ScheduleError(
                "schedule.date has a time but no time zone",
                where=at("date"),
                hint='add timezone = "Asia/Shanghai" (or an offset like +08:00), or give a date '
                'only with local_time = "09:00" to send at that hour in each recipient\'s zone',
            )
        common["local_time"] = value.time().replace(tzinfo=None)
        value = value.date()
    if not isinstance(value, date):
        raise ScheduleError("schedule.date must be a date or date-time", where=at("date"))
    return Schedule(kind="date", day=value, **common)


def _holiday_kind(table: Mapping[str, Any], at: Locate, common: dict, today: date) -> Schedule:
    name = _string(table, "holiday", at)
    if "country" not in table:
        raise ScheduleError(
            "schedule.holiday needs a country", where=at("holiday"), hint='add country = "CN"'
        )
    country = _string(table, "country", at).upper()
    language = _string(table, "language", at) if "language" in table else DEFAULT_LANGUAGE
    subdiv = _string(table, "subdiv", at) if "subdiv" in table else None
    categories = tuple(_strings(table, "categories", at)) if "categories" in table else ()
    check_calendar(country, language, subdiv, categories, at("country"))
    year = _year(table, at, common, "holiday")
    probe = year or today.year
    # Fails early, with the calendar's known names, when the holiday does not exist.
    holiday_date(
        country,
        name,
        probe,
        language=language,
        subdiv=subdiv,
        categories=categories,
        where=at("holiday"),
    )
    return Schedule(
        kind="holiday",
        holiday=name,
        country=country,
        subdiv=subdiv,
        language=language,
        categories=categories,
        year=year,
        offset_days=_offset_days(table, at),
        **common,
    )


def _year(table: Mapping[str, Any], at: Locate, common: dict, kind: str) -> int | None:
    """``year`` (a one-off) or ``recurring = "yearly"``: exactly one of them."""
    year = table.get("year")
    if year is not None and (isinstance(year, bool) or not isinstance(year, int)):
        raise ScheduleError(
            f"schedule.year must be a year like 2027, not {year!r}", where=at("year")
        )
    if year is None and not common.get("recurring"):
        raise ScheduleError(
            f'a {kind} schedule needs a year, or recurring = "yearly"',
            where=at(kind),
            hint='add year = 2027 for a one-off greeting, or recurring = "yearly"',
        )
    if year is not None and common.get("recurring"):
        raise ScheduleError('give either year or recurring = "yearly", not both', where=at("year"))
    return year


def _day_kind(table: Mapping[str, Any], at: Locate, common: dict) -> Schedule:
    """``day = "双十一"``: a day of the marketing calendar (``marketing_days``)."""
    name = _string(table, "day", at)
    found = find_day(name)
    if found is None:
        close = suggest(name)
        raise ScheduleError(
            f"unknown marketing day {name!r}",
            where=at("day"),
            hint=(f"did you mean {close!r}? " if close else "")
            + "mailer calendar lists every named day; a public holiday goes in holiday = ...",
        )
    _refuse(table, at, "day", ("country", "subdiv", "language", "categories"))
    return Schedule(
        kind="day",
        named_day=found.zh,
        year=_year(table, at, common, "day"),
        offset_days=_offset_days(table, at),
        **common,
    )


def _birthday_kind(table: Mapping[str, Any], at: Locate, common: dict) -> Schedule:
    if table["birthday"] is not True:
        raise ScheduleError("schedule.birthday must be true", where=at("birthday"))
    _refuse(table, at, "birthday", ("country", "subdiv", "language", "categories", "year"))
    if table.get("recurring", "yearly") != "yearly":
        raise ScheduleError(
            'a birthday greeting recurs every year: schedule.recurring cannot be "once"',
            where=at("recurring"),
            hint="drop schedule.recurring; each contact gets one greeting per birthday",
        )
    common["recurring"] = True
    return Schedule(kind="birthday", offset_days=_offset_days(table, at), **common)


def _order_kind(table: Mapping[str, Any], at: Locate, common: dict) -> Schedule:
    days = table["after_last_order_days"]
    if isinstance(days, bool) or not isinstance(days, int) or days < 0:
        raise ScheduleError(
            f"schedule.after_last_order_days must be a whole number of days, not {days!r}",
            where=at("after_last_order_days"),
        )
    _refuse(
        table,
        at,
        "after_last_order_days",
        ("country", "subdiv", "language", "categories", "year", "offset_days", "recurring"),
    )
    return Schedule(kind="after_last_order_days", after_days=days, **common)


def _refuse(table: Mapping[str, Any], at: Locate, kind: str, keys: Iterable[str]) -> None:
    for key in keys:
        if key in table:
            raise ScheduleError(
                f"schedule.{key} has no meaning with schedule.{kind}", where=at(key)
            )


def _offset_days(table: Mapping[str, Any], at: Locate) -> int:
    value = table.get("offset_days", 0)
    if isinstance(value, bool) or not isinstance(value, int) or abs(value) > 366:
        raise ScheduleError(
            f"schedule.offset_days must be a whole number of days (-3 = three days before), "
            f"not {value!r}",
            where=at("offset_days"),
        )
    return value


def _string(table: Mapping[str, Any], key: str, at: Locate) -> str:
    value = table[key]
    if not isinstance(value, str) or not value.strip():
        raise ScheduleError(f"schedule.{key} must be a non-empty string", where=at(key))
    return value.strip()


def _strings(table: Mapping[str, Any], key: str, at: Locate) -> list[str]:
    value = table[key]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ScheduleError(f"schedule.{key} must be a list of strings", where=at(key))
    return value


def _time(value: Any, key: str, at: Locate) -> time:
    if isinstance(value, time):
        return value.replace(tzinfo=None)
    try:
        if not isinstance(value, str) or len(value.split(":")) != 2:
            raise ValueError
        return time.fromisoformat(value.strip().zfill(5))
    except ValueError:
        raise ScheduleError(
            f'schedule.{key} must be a time of day like "09:00", not {value!r}', where=at(key)
        ) from None


def _window(value: Any, at: Locate) -> tuple[time, time] | None:
    if value in (False, "always"):
        return None
    if not isinstance(value, list) or len(value) != 2:
        raise ScheduleError(
            'schedule.window must be two times, like ["08:00", "21:00"]', where=at("window")
        )
    start, end = (_time(v, "window", at) for v in value)
    if start >= end:
        raise ScheduleError(
            f"schedule.window must start before it ends ({start:%H:%M} is not before {end:%H:%M})",
            where=at("window"),
        )
    return start, end


def _quiet_days(value: Any, at: Locate) -> frozenset[int]:
    if not isinstance(value, list):
        raise ScheduleError(
            "schedule.quiet_days must be a list of weekdays", where=at("quiet_days")
        )
    days = set()
    for name in value:
        if name == DAYS_OFF:
            continue  # read by _days_off
        matches = [
            i
            for i, d in enumerate(WEEKDAYS)
            if isinstance(name, str) and len(name) >= 3 and d.startswith(name.strip().lower())
        ]
        if len(matches) != 1:
            raise ScheduleError(
                f"schedule.quiet_days: {name!r} is not a weekday",
                where=at("quiet_days"),
                hint='for example quiet_days = ["saturday", "sunday"], or ["days-off"] for '
                "China's official days off (holidays, days in lieu, not working weekends)",
            )
        days.add(matches[0])
    return frozenset(days)


DAYS_OFF = "days-off"


def _days_off(value: Any) -> str | None:
    """quiet_days = ["days-off"]: China's official days off (the only calendar with 调休)."""
    return "CN" if isinstance(value, list) and DAYS_OFF in value else None


def _check_window(schedule: Schedule, at: Locate) -> None:
    window = schedule.window
    if window and not window[0] <= schedule.local_time < window[1]:
        raise ScheduleError(
            f"the send time {schedule.local_time:%H:%M} is outside the send window "
            f"{window[0]:%H:%M}–{window[1]:%H:%M}",
            where=at("local_time" if schedule.kind != "date" else "date"),
            hint="move the time into the window, or widen schedule.window",
        )


def _check_zone(name: str, label: str, where: str | None) -> Any:
    zone = zone_named(name) if name else None
    if zone is None:
        raise ScheduleError(
            f"{label}: '{name}' is not a known IANA time zone",
            where=where,
            hint="use a name like Asia/Shanghai, America/New_York or UTC",
        )
    return zone
