"""When a campaign is due: cut the audience into waves, and say which are due now.

A schedule names *which day* (a fixed date, a holiday of a country's calendar,
each contact's birthday, N days after a contact's last order) and *which
hour* (``local_time`` in each recipient's own time zone, or pinned to one
zone). ``plan_waves`` turns a schedule, the recipients and "now" into ``Wave``s —
one per (occurrence, local date, time zone) — and ``due`` keeps those that may
be sent right now. Both are pure: the clock is a parameter, so tests can drive
a whole year in a second.

Rules worth knowing (also in docs/guides/schedules.md):

* Windows and quiet days are judged in each recipient's own time zone, even
  when the due time is pinned to one zone: the point is not to wake people.
* A wave due while its window is closed waits for the window to open, for at
  most ``grace_hours`` after its due time; after that it is *missed* and never
  sent (a Christmas greeting on 28 December is worse than none).
* A birthday on 29 February is greeted on 28 February in non-leap years: the
  greeting stays in the contact's birthday month rather than arriving in March.
* A local time that does not exist (the hour skipped when clocks go forward)
  is read with the offset before the change, so 02:30 becomes 03:30.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from typing import Any

from mailer.audience.selection import DateFilter
from mailer.core.marketing_days import find_day
from mailer.core.recipient import Recipient
from mailer.schedule.holiday_calendar import holiday_date, is_day_off
from mailer.schedule.model import PROBLEMS_KEPT, Schedule, Wave, WavePlan, zone_named


def plan_waves(
    schedule: Schedule,
    recipients: Iterable[Recipient],
    now: datetime,
    *,
    days: tuple[date, date] | None = None,
) -> WavePlan:
    """Every wave with an occurrence in last, this or next year, as seen at ``now``.

    ``days`` (first, last) keeps only waves whose local date is in that range:
    ``run-due`` only cares about the days around now, and skipping the rest of a
    birthday calendar makes its pass several times cheaper.
    """
    now = _aware(now)
    years = (now.year - 1, now.year, now.year + 1)
    # People who share a time zone and an anchor (birthday, last order date) share
    # their occurrences: bucket them first, so the date work is per bucket, not per person.
    buckets: dict[tuple[str, Any], list[Recipient]] = {}
    undated = fallback = 0
    problems: list[str] = []
    personal = _personal(schedule)
    for person in recipients:
        zone, known = _recipient_zone(schedule, person)
        fallback += not known
        anchor = _anchor(schedule, person.fields) if personal else None
        problems += _problems(schedule, person, known, personal and anchor is None)
        if personal and anchor is None:
            undated += 1
            continue
        buckets.setdefault((zone, anchor), []).append(person)
    groups: dict[tuple[str, date, str], list[Recipient]] = {}
    first, last = days or (date.min, date.max)
    for (zone, anchor), people in buckets.items():
        for label, day in _occurrences(schedule, anchor, years):
            if first <= day <= last:
                groups.setdefault((label, day, zone), []).extend(people)
    waves = [_wave(schedule, key, tuple(people), now) for key, people in groups.items()]
    waves.sort(key=lambda w: (w.due_at, w.zone))
    return WavePlan(tuple(waves), undated, fallback, tuple(problems[:PROBLEMS_KEPT]), len(problems))


def due(schedule: Schedule, recipients: Iterable[Recipient], now: datetime) -> list[Wave]:
    """The waves that may be sent at ``now`` (due, inside their window and grace period)."""
    return [
        w
        for w in plan_waves(schedule, recipients, now, days=near(schedule, now)).waves
        if w.state == "due"
    ]


def near(
    schedule: Schedule, now: datetime, lookback: timedelta = timedelta(0)
) -> tuple[date, date]:
    """Local dates whose waves can be due (or missed within ``lookback``) at ``now``.

    A day of slack each side covers the time zones (UTC-12 to UTC+14).
    """
    start = now - schedule.grace - lookback - timedelta(days=2)
    return start.date(), (now + timedelta(days=2)).date()


def occurrences_near(
    schedule: Schedule, now: datetime, lookback: timedelta = timedelta(0)
) -> list[tuple[str, date]] | None:
    """The (label, local date) occurrences whose waves can be due, or missed within
    ``lookback``, at ``now``; None for personal schedules (birthdays, orders), which
    have occurrences every day.

    For schedules that are the same for everyone (a date, a holiday) this needs
    no recipients: a cron pass skips reading the audience on the other 360 days
    of the year.
    """
    if _personal(schedule):
        return None
    first, last = near(schedule, now, lookback)
    years = (now.year - 1, now.year, now.year + 1)
    return [
        (label, day) for label, day in _occurrences(schedule, None, years) if first <= day <= last
    ]


def last_deadline(schedule: Schedule, day: date) -> datetime:
    """The latest grace deadline any wave on local date ``day`` can have (UTC).

    The wave furthest west (UTC-12) is due last; once this moment has passed,
    every wave of the occurrence is either sent or missed for good.
    """
    zone = schedule.zone or zone_named("Etc/GMT+12") or UTC
    return datetime.combine(day, schedule.local_time, zone).astimezone(UTC) + schedule.grace


def date_filter(schedule: Schedule, days: tuple[date, date]) -> DateFilter | None:
    """The contacts a personal schedule can have a wave for on ``days`` (first, last).

    A birthday greeting N days before or after the birthday on day D is for
    birthdays on D - N; an order follow-up M days after the last order is for
    orders on D - M. 29 February birthdays are greeted on 28 February in other
    years, so they are included whenever 28 February is. None for schedules
    that are the same for everyone.
    """
    if not _personal(schedule):
        return None
    first, last = days
    span = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    if schedule.kind == "birthday":
        keys = {f"{d - timedelta(days=schedule.offset_days):%m-%d}" for d in span}
        if "02-28" in keys:
            keys.add("02-29")
        return DateFilter("birthday", frozenset(keys))
    after = timedelta(days=schedule.after_days)
    return DateFilter("last_order_at", frozenset((d - after).isoformat() for d in span))


def wave_state(schedule: Schedule, wave: Wave, now: datetime) -> str:
    """The wave's state at ``now``: ``pending``, ``due``, ``waiting`` or ``missed``.

    A pass decides each wave with a fresh ``now``: a pass that spent an hour
    on one wave must not send the next one on the hour-old verdict.
    """
    return _state(schedule, wave.due_at, wave.deadline, zone_named(wave.zone) or UTC, _aware(now))


def sending_until(schedule: Schedule, wave: Wave, now: datetime) -> datetime:
    """When a wave due at ``now`` must stop taking new messages (UTC).

    The end of today's send window in the wave's time zone, or the end of the
    grace period if that comes first. What is left continues in the next
    window, if the grace period still allows; else it is missed.
    """
    if schedule.window is None:
        return wave.deadline
    zone = zone_named(wave.zone) or UTC
    local = _aware(now).astimezone(zone)
    closes = datetime.combine(local.date(), schedule.window[1], zone).astimezone(UTC)
    return min(closes, wave.deadline)


def upcoming(waves: Iterable[Wave], limit: int = 20) -> list[Wave]:
    """Waves not yet missed (due, waiting or pending), soonest first.

    A wave that quiet days and the window shut out for its whole grace period
    (``send_at`` None) is kept, so ``schedule list`` can say it will be skipped.
    """
    open_waves = [w for w in waves if w.state != "missed"]
    return sorted(open_waves, key=lambda w: (w.send_at or w.due_at, w.zone))[:limit]


def allowed_at(schedule: Schedule, local: datetime) -> bool:
    """True when a recipient's local time is inside the window and not on a quiet day."""
    if _quiet(schedule, local):
        return False
    window = schedule.window
    return window is None or window[0] <= local.time().replace(tzinfo=None) < window[1]


def _quiet(schedule: Schedule, local: datetime) -> bool:
    """A quiet weekday, or (quiet_days "days-off") an official day off in China."""
    if local.weekday() in schedule.quiet_days:
        return True
    return schedule.days_off is not None and is_day_off(
        local.date(), schedule.days_off, schedule.days_off_by_hand
    )


def _aware(now: datetime) -> datetime:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(UTC)


def _personal(schedule: Schedule) -> bool:
    return schedule.kind in ("birthday", "after_last_order_days")


def _recipient_zone(schedule: Schedule, person: Recipient) -> tuple[str, bool]:
    name = str(person.fields.get("timezone") or "").strip()
    if name and zone_named(name) is not None:
        return name, True
    return schedule.default_timezone, False


def _problems(schedule: Schedule, person: Recipient, known_zone: bool, undated: bool) -> list[str]:
    """What is wrong with a contact's schedule fields: filled in, but not readable."""
    found = []
    zone = str(person.fields.get("timezone") or "").strip()
    if zone and not known_zone:
        found.append(
            f"{person.source}: timezone {zone!r} is not an IANA time zone "
            f"(the workspace zone {schedule.default_timezone} is used)"
        )
    key = "birthday" if schedule.kind == "birthday" else "last_order_at"
    value = str(person.fields.get(key) or "").strip()
    if undated and value:
        found.append(
            f"{person.source}: {key} {value[:30]!r} is not a date like 1988-02-14 (never sent)"
        )
    return found


def _anchor(schedule: Schedule, fields: Mapping[str, Any]) -> Any:
    """What a personal schedule counts from: (month, day) of a birthday, or the last order date."""
    if schedule.kind == "birthday":
        return birthday_of(fields.get("birthday"))
    return day_of(fields.get("last_order_at"))


def _occurrences(schedule: Schedule, anchor: Any, years: tuple[int, ...]) -> list[tuple[str, date]]:
    """(occurrence label, local date) pairs for an anchor (None for everyone-alike schedules)."""
    offset = timedelta(days=schedule.offset_days)
    if schedule.kind == "date":
        assert schedule.day is not None
        if not schedule.recurring:
            return [(schedule.day.isoformat(), schedule.day)]
        day = schedule.day
        return [(str(y), same_day_in(y, day.month, day.day)) for y in years]
    if schedule.kind == "holiday":
        found = []
        for year in (schedule.year,) if schedule.year else years:
            first = holiday_of(schedule, year)
            if first is not None:
                found.append((str(year), first + offset))
        return found
    if schedule.kind == "day":
        named = find_day(schedule.named_day or "")
        assert named is not None  # parse_schedule checked the name
        return [
            (str(y), named.on(y) + offset) for y in ((schedule.year,) if schedule.year else years)
        ]
    if schedule.kind == "birthday":
        return [(f"birthday-{y}", same_day_in(y, *anchor) + offset) for y in years]
    return [(f"order-{anchor.isoformat()}", anchor + timedelta(days=schedule.after_days))]


def holiday_of(schedule: Schedule, year: int) -> date | None:
    """The date in ``year`` of a holiday schedule's holiday (before ``offset_days``)."""
    assert schedule.country and schedule.holiday
    return holiday_date(
        schedule.country,
        schedule.holiday,
        year,
        language=schedule.language,
        subdiv=schedule.subdiv,
        categories=schedule.categories,
    )


def same_day_in(year: int, month: int, day: int) -> date:
    """``month``/``day`` in ``year``; 29 February becomes 28 February in non-leap years."""
    if month == 2 and day == 29 and not calendar.isleap(year):
        return date(year, 2, 28)
    return date(year, month, day)


def birthday_of(value: Any) -> tuple[int, int] | None:
    """(month, day) of a birthday: ``1988-02-29``, ``--02-29`` (year unknown) or a date."""
    if isinstance(value, date):
        return value.month, value.day
    return _month_day(str(value or "").strip())


@lru_cache(maxsize=65536)
def _month_day(text: str) -> tuple[int, int] | None:
    if text.startswith("--"):
        text = "2000-" + text[2:]  # a leap year, so --02-29 is accepted
    try:
        parsed = date.fromisoformat(text[:10])
    except ValueError:
        return None
    return parsed.month, parsed.day


def day_of(value: Any) -> date | None:
    """The date of an ISO date or date-time (``2027-03-01`` or ``2027-03-01T10:20:00``)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value or "").strip()[:10])
    except ValueError:
        return None


def _wave(
    schedule: Schedule, key: tuple[str, date, str], people: tuple[Recipient, ...], now: datetime
) -> Wave:
    label, day, zone_name = key
    zone = zone_named(zone_name) or UTC
    # fold=0: a local time skipped by a DST change is read with the earlier offset.
    due_at = datetime.combine(day, schedule.local_time, schedule.zone or zone).astimezone(UTC)
    deadline = due_at + schedule.grace
    send_at = _first_allowed(schedule, due_at, deadline, zone)
    state = _state(schedule, due_at, deadline, zone, now)
    return Wave(label, day, zone_name, due_at, send_at, deadline, state, people)


def _state(
    schedule: Schedule, due_at: datetime, deadline: datetime, zone: tzinfo, now: datetime
) -> str:
    if now < due_at:
        return "pending"
    if now >= deadline:
        return "missed"
    return "due" if allowed_at(schedule, now.astimezone(zone)) else "waiting"


def _first_allowed(
    schedule: Schedule, start: datetime, deadline: datetime, zone: tzinfo
) -> datetime | None:
    """The first moment from ``start`` inside the window and off quiet days, before ``deadline``."""
    local = start.astimezone(zone)
    opens = schedule.window[0] if schedule.window else time(0)
    for _ in range(20):  # quiet weekdays or a run of days off (Spring Festival), one evening
        if local.astimezone(UTC) >= deadline:
            return None
        if allowed_at(schedule, local):
            return local.astimezone(UTC)
        day = local.date()
        if _quiet(schedule, local) or local.time() >= opens:
            day += timedelta(days=1)
        local = datetime.combine(day, opens, zone)
    return None
