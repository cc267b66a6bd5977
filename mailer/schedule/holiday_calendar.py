"""Holiday dates from the ``holidays`` package, by country and holiday name.

Names are looked up in an explicit language (``en_US`` by default): without
``language=`` the package names holidays after the machine's locale, so the
same campaign would resolve on one server and fail on another. A few friendly
aliases ("Chinese New Year", "Spring Festival", "春节", "Christmas", ...) map
to the package's own names. A name written in another of the country's
languages also resolves ("Mid-Autumn Festival" with ``language = "zh_CN"``,
"劳动节" with ``en_US``): the same holiday falls on the same day in every
language. Observed days and substitute days off are left out (we greet on the
holiday, not on the day off in lieu), and a holiday that spans several days
(Spring Festival, National Day) resolves to its first day. Countries whose
calendar has no translations (Ghana, Fiji, ...) name their holidays in English.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any

from mailer.core.days_off import DaysOffByHand
from mailer.core.errors import ScheduleError

DEFAULT_LANGUAGE = "en_US"

# Friendly name (case-folded) -> the names the package uses, in every language we know.
ALIASES: dict[str, tuple[str, ...]] = {
    "chinese new year": ("Chinese New Year (Spring Festival)", "春节", "春節"),
    "spring festival": ("Chinese New Year (Spring Festival)", "春节", "春節"),
    "lunar new year": ("Chinese New Year (Spring Festival)", "春节", "春節"),
    "春节": ("Chinese New Year (Spring Festival)", "春节", "春節"),
    "春節": ("Chinese New Year (Spring Festival)", "春节", "春節"),
    "除夕": ("Chinese New Year's Eve", "农历除夕", "農曆除夕"),
    "mid-autumn": ("Mid-Autumn Festival", "中秋节", "中秋節"),
    "mid autumn festival": ("Mid-Autumn Festival", "中秋节", "中秋節"),
    "moon festival": ("Mid-Autumn Festival", "中秋节", "中秋節"),
    "中秋": ("Mid-Autumn Festival", "中秋节", "中秋節"),
    "中秋节": ("Mid-Autumn Festival", "中秋节", "中秋節"),
    "christmas": ("Christmas Day",),
    "xmas": ("Christmas Day",),
    "thanksgiving": ("Thanksgiving Day", "Thanksgiving"),
    "new year": ("New Year's Day", "元旦"),
    "元旦": ("New Year's Day", "元旦"),
    "national day": ("National Day", "国庆节", "國慶日"),
    "国庆": ("National Day", "国庆节"),
    "dragon boat": ("Dragon Boat Festival", "端午节", "端午節"),
    "端午": ("Dragon Boat Festival", "端午节", "端午節"),
    "qingming": ("Tomb-Sweeping Day", "清明节", "清明節"),
    "清明": ("Tomb-Sweeping Day", "清明节", "清明節"),
}

_CJK = re.compile(r"[\u2e80-\u9fff\uac00-\ud7af]")
_PAREN = re.compile(r"\s*[(（][^)）]*[)）]\s*")
# A day off in lieu, not a holiday: "Day off (substituted from 01/04/2026)",
# "休息日（由 2026-01-04 调休）".
_IN_LIEU = re.compile(r"\d{4}-\d{2}-\d{2}|\d{2}/\d{2}/\d{4}")


def _fold(name: str) -> str:
    return " ".join(name.casefold().split())


def calendar_class(country: str, where: str | None = None) -> Any:
    """The ``holidays`` class for a country code (``CN``, ``US``), or ``ScheduleError``."""
    import holidays

    supported = holidays.list_supported_countries()
    code = country.upper()
    if code not in supported:
        close = difflib.get_close_matches(code, list(supported), n=3)
        raise ScheduleError(
            f"the holiday calendar has no country '{country}'",
            where=where,
            hint="use an ISO 3166 code such as CN or US"
            + (f" (did you mean {', '.join(close)}?)" if close else ""),
        )
    return holidays.country_holidays(code)


def check_calendar(
    country: str,
    language: str,
    subdiv: str | None,
    categories: tuple[str, ...],
    where: str | None = None,
) -> None:
    """Validate country, language, subdivision and categories against the package."""
    cal = calendar_class(country, where)
    if not cal.supported_languages:
        # Untranslated calendars name their holidays in English on every machine.
        if language != DEFAULT_LANGUAGE:
            raise ScheduleError(
                f"the {country.upper()} calendar names its holidays in English only,"
                f" not in '{language}'",
                where=where,
                hint="drop schedule.language and write the holiday's English name",
            )
    elif language not in cal.supported_languages:
        raise ScheduleError(
            f"the {country.upper()} calendar has no language '{language}'",
            where=where,
            hint="supported: " + ", ".join(cal.supported_languages),
        )
    if subdiv is not None and subdiv not in cal.subdivisions:
        raise ScheduleError(
            f"the {country.upper()} calendar has no subdivision '{subdiv}'",
            where=where,
            hint="supported: " + ", ".join(cal.subdivisions[:40]),
        )
    unknown = [c for c in categories if c not in cal.supported_categories]
    if unknown:
        raise ScheduleError(
            f"the {country.upper()} calendar has no category '{unknown[0]}'",
            where=where,
            hint="supported: " + ", ".join(cal.supported_categories),
        )


@lru_cache(maxsize=256)
def holidays_in(
    country: str, year: int, language: str, subdiv: str | None, categories: tuple[str, ...]
) -> dict[str, date]:
    """Every holiday name of ``year`` -> its first day (observed days in lieu left out)."""
    import holidays

    kwargs: dict[str, Any] = {"years": year, "language": language, "observed": False}
    if subdiv:
        kwargs["subdiv"] = subdiv
    if categories:
        kwargs["categories"] = categories
    cal = holidays.country_holidays(country.upper(), **kwargs)
    first: dict[str, date] = {}
    for day, names in sorted(cal.items()):
        # Two holidays on one day come joined with "; ".
        for name in names.split("; "):
            if not _IN_LIEU.search(name):
                first.setdefault(name.strip(), day)
    return first


@lru_cache(maxsize=64)
def _languages(country: str) -> tuple[str, ...]:
    """The languages the country's calendar is translated into (empty: English only)."""
    return tuple(calendar_class(country).supported_languages)


def _find(
    country: str,
    name: str,
    year: int,
    language: str,
    subdiv: str | None,
    categories: tuple[str, ...],
) -> date | None:
    """First day of ``name`` in ``year``, matched in ``language`` first, then in the others."""
    others = [lang for lang in _languages(country) if lang != language]
    for lang in (language, *others):
        days = holidays_in(country, year, lang, subdiv, categories)
        found = _matches(name, list(days))
        if found:
            return min(days[n] for n in found)
    return None


def _matches(wanted: str, names: list[str]) -> list[str]:
    folded = _fold(wanted)
    targets = {_fold(n) for n in ALIASES.get(folded, ())} | {folded}
    exact = [n for n in names if _fold(n) in targets]
    if exact:
        return exact
    # "Chinese New Year" -> "Chinese New Year (Spring Festival)"; "Labor" -> "Labor Day".
    return [
        n
        for n in names
        if _fold(_PAREN.sub(" ", n)) in targets or _fold(n) in {f"{folded} day", f"{folded}节"}
    ]


def holiday_date(
    country: str,
    name: str,
    year: int,
    *,
    language: str = DEFAULT_LANGUAGE,
    subdiv: str | None = None,
    categories: tuple[str, ...] = (),
    where: str | None = None,
) -> date | None:
    """First day of holiday ``name`` in ``year``, or None if it does not fall in that year.

    Raises ``ScheduleError`` when the name is unknown to the country's calendar
    in both ``year`` and the year after (a holiday can skip a year, like an
    Islamic holiday falling twice in one Gregorian year and none in another).
    """
    found = _find(country, name, year, language, subdiv, categories)
    if found is not None:
        return found
    if _find(country, name, year + 1, language, subdiv, categories) is not None:
        return None
    known = _known_names(country, year, language, subdiv, categories)
    suggestion = _suggest(name, known)
    hint = f"did you mean '{suggestion}'? " if suggestion else ""
    raise ScheduleError(
        f"no holiday named '{name}' in the {country.upper()} calendar (language {language})",
        where=where,
        hint=hint + "known: " + ", ".join(known),
    )


def _known_names(
    country: str, year: int, language: str, subdiv: str | None, categories: tuple[str, ...]
) -> list[str]:
    """The calendar's holiday names: in its own language first (春节 before Spring Festival
    for CN), then in ``language``; this year's and next year's."""
    native = calendar_class(country).default_language or language
    known: list[str] = []
    for lang in dict.fromkeys((native, language)):
        names = set(holidays_in(country, year, lang, subdiv, categories))
        names |= set(holidays_in(country, year + 1, lang, subdiv, categories))
        known += sorted(names - set(known))
    return known


def _suggest(wanted: str, known: list[str]) -> str | None:
    """The known name closest to ``wanted``, also by its parts and aliases ("Spring Festivle")."""
    variants: dict[str, str] = {}
    for name in known:
        variants[_fold(name)] = name
        variants.setdefault(_fold(_PAREN.sub(" ", name)), name)
        for inner in re.findall(r"[(（]([^)）]*)[)）]", name):
            variants.setdefault(_fold(inner), name)
    for alias, targets in ALIASES.items():
        hits = [n for n in known if n in targets]
        if hits:
            variants.setdefault(alias, hits[0])
    # Two Chinese characters share at most one with a typo (元日 for 元旦): a ratio of 0.5.
    cutoff = 0.5 if _CJK.search(wanted) else 0.6
    close = difflib.get_close_matches(_fold(wanted), list(variants), n=1, cutoff=cutoff)
    return variants[close[0]] if close else None


# "Day off (substituted from 01/04/2026)": 4 January 2026, a Sunday, is a working day.
_SUBSTITUTED = re.compile(r"substituted from (\d{2})/(\d{2})/(\d{4})")


@dataclass(frozen=True)
class YearOff:
    """What the holidays package knows of a year's days off."""

    statutory: frozenset[date]  # the holidays themselves (never guessed)
    in_lieu: frozenset[date]  # days in lieu and observed days: official once published
    working: frozenset[date]  # weekends made working days (published years only)
    published: bool  # the State Council's arrangement for the year is in the data


@lru_cache(maxsize=64)
def _year_off(country: str, year: int) -> YearOff:
    """The package's days off of ``year``, the holidays apart from the days in lieu."""
    import holidays

    calendar = holidays.country_holidays(country, years=year, language=DEFAULT_LANGUAGE)
    working = {
        date(int(y), int(m), int(d))
        for name in calendar.values()
        for m, d, y in _SUBSTITUTED.findall(str(name))
    }
    statutory: set[date] = set()
    in_lieu: set[date] = set()
    for day, names in calendar.items():
        parts = str(names).split("; ")
        lieu = all("(observed" in p or _SUBSTITUTED.search(p) for p in parts)
        (in_lieu if lieu else statutory).add(day)
    return YearOff(frozenset(statutory), frozenset(in_lieu), frozenset(working),
                   _published(country, year, bool(working)))  # fmt: skip


def _published(country: str, year: int, has_working_days: bool) -> bool:
    """Whether the package carries China's announced arrangement for ``year`` (it lists
    each announced year's special days); other countries have no such arrangement."""
    if country.upper() != "CN":
        return True
    try:
        from holidays.countries.china import ChinaStaticHolidays

        return year in ChinaStaticHolidays.special_public_holidays
    except (ImportError, AttributeError):  # a later holidays release: judge by the data
        return has_working_days


def is_day_off(day: date, country: str = "CN", by_hand: DaysOffByHand | None = None) -> bool:
    """True on an official day off: a public holiday or day in lieu, or a weekend that is
    not an adjusted working day (调休: China moves weekends to join holidays).

    A year entered by hand (``[calendar.days_off]``) is taken as announced; a year the
    package has not published yet counts its holidays and weekends only: the package's
    guessed days in lieu are never taken for official ones.
    """
    hand = by_hand.for_year(day.year) if by_hand is not None else None
    if hand is not None:
        if day in hand.working:
            return False
        return day in hand.off or day in _year_off(country, day.year).statutory or (
            day.weekday() >= 5)  # fmt: skip
    years = [_year_off(country, y) for y in (day.year - 1, day.year)]
    if any(day in y.working for y in years if y.published):
        return False
    this = years[1]
    official = day in this.statutory or (this.published and day in this.in_lieu)
    return official or day.weekday() >= 5


def days_off_known(year: int, country: str = "CN", by_hand: DaysOffByHand | None = None) -> bool:
    """Whether ``year``'s days off and adjusted working days are known: published in the
    data, or entered by hand.

    China announces each year's arrangement in November of the year before;
    until the ``holidays`` package carries it, only the holidays themselves
    and the weekends are known (no days in lieu, no working weekends).
    """
    if country.upper() != "CN":
        return True
    if by_hand is not None and by_hand.for_year(year) is not None:
        return True
    return _year_off(country, year).published


def guessed_days_off(year: int, country: str = "CN") -> list[date]:
    """The package's guessed days in lieu of an unpublished year (weekdays it would give
    off), which ``is_day_off`` does not count: for the note that says so."""
    found = _year_off(country, year)
    if found.published:
        return []
    return sorted(d for d in found.in_lieu - found.statutory if d.weekday() < 5)
