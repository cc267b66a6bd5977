"""China's days off entered by hand: ``[calendar.days_off]`` in ``mailer.toml``.

The State Council announces each year's holiday arrangement (days in lieu,
weekends made working days, 调休) in November of the year before; the
``holidays`` package carries it some weeks later. Until then its days in lieu
are guesses, never treated as official: only the statutory holidays and the
weekends count. Once the notice is out, enter the year by hand::

    [calendar.days_off.2027]
    off = ["2027-02-09", "2027-02-10"]      # days in lieu (weekdays off)
    working = ["2027-02-20"]                # weekends made working days

A year entered here is taken as published, whatever the package says.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from mailer.core.errors import ConfigError
from mailer.core.tomlfile import TomlFile, check_keys


@dataclass(frozen=True)
class YearDaysOff:
    """One year's arrangement as announced: extra days off, and weekends worked."""

    year: int
    off: frozenset[date]
    working: frozenset[date]


@dataclass(frozen=True)
class DaysOffByHand:
    """Every year entered in ``[calendar.days_off]``."""

    years: tuple[YearDaysOff, ...] = ()

    def for_year(self, year: int) -> YearDaysOff | None:
        """The arrangement entered for ``year``, if any."""
        return next((y for y in self.years if y.year == year), None)


def days_off_from(table: Mapping[str, Any], doc: TomlFile) -> DaysOffByHand:
    """``[calendar.days_off.<year>]`` tables, checked: dates of that year, each once."""
    found = table.get("days_off", {})
    if not isinstance(found, dict):
        raise ConfigError("calendar.days_off must be a table", where=doc.where("calendar"))
    years = []
    for key, entry in sorted(found.items()):
        where = doc.where("calendar", "days_off", key)
        if not key.isdigit() or not 1901 <= int(key) <= 2099 or not isinstance(entry, dict):
            raise ConfigError(
                f"calendar.days_off.{key} must be a table named by a year, like "
                "[calendar.days_off.2027]",
                where=where,
            )
        check_keys(entry, ("off", "working"), doc, ConfigError, ("calendar", "days_off", key))
        year = int(key)
        off, working = (_dates(entry.get(k, []), year, f"calendar.days_off.{key}.{k}", where)
                        for k in ("off", "working"))  # fmt: skip
        both = off & working
        if both:
            raise ConfigError(
                f"calendar.days_off.{key}: {min(both)} is both off and working",
                where=where,
            )
        years.append(YearDaysOff(year, off, working))
    return DaysOffByHand(tuple(years))


def _dates(value: Any, year: int, name: str, where: str) -> frozenset[date]:
    if not isinstance(value, list):
        raise ConfigError(f'{name} must be a list of dates like ["{year}-02-09"]', where=where)
    days = set()
    for item in value:
        try:
            day = item if isinstance(item, date) else date.fromisoformat(str(item))
        except ValueError:
            raise ConfigError(f"{name}: {item!r} is not a date (YYYY-MM-DD)", where=where) from None
        if day.year != year:
            raise ConfigError(f"{name}: {day} is not in {year}", where=where)
        days.add(day)
    return frozenset(days)
