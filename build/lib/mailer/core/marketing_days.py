"""The marketing calendar: shopping festivals, lunar days and solar terms, not only public holidays.

Each named day has a rule, never a typed-in list of dates:

* a fixed Gregorian day (双十一 11.11, 618, 520, 情人节 2.14, Halloween ...);
* a lunar date (七夕 7/7, 元宵 1/15, 腊八 12/8, 中秋 8/15 ...) converted with
  ``lunar-python`` (6tail's calendar library: lunar dates and the 24 solar
  terms, 1900–2100); the tests check every date of 2026–2030 against ``borax``,
  a second, independent implementation;
* a solar term (立春, 冬至 ...) from the same library;
* the n-th weekday of a month (Mother's Day: 2nd Sunday of May; US
  Thanksgiving: 4th Thursday of November), or a fixed distance from one
  (Black Friday, Cyber Monday);
* a distance from Easter (UK Mothering Sunday: three weeks before), computed
  with ``dateutil``'s Western Easter (which ``holidays`` already depends on).

Names match in Chinese or English, with or without spaces and punctuation
("双11", "Singles Day", "black-friday").
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

from dateutil.easter import easter

# (month, first possible day) of each solar term: its date moves within a few days.
SOLAR_TERMS = {
    "小寒": ("Minor Cold", 1, 4), "大寒": ("Major Cold", 1, 18),
    "立春": ("Start of Spring", 2, 2), "雨水": ("Rain Water", 2, 17),
    "惊蛰": ("Awakening of Insects", 3, 4), "春分": ("Spring Equinox", 3, 19),
    "清明": ("Pure Brightness", 4, 3), "谷雨": ("Grain Rain", 4, 18),
    "立夏": ("Start of Summer", 5, 4), "小满": ("Grain Buds", 5, 19),
    "芒种": ("Grain in Ear", 6, 4), "夏至": ("Summer Solstice", 6, 20),
    "小暑": ("Minor Heat", 7, 5), "大暑": ("Major Heat", 7, 21),
    "立秋": ("Start of Autumn", 8, 6), "处暑": ("End of Heat", 8, 21),
    "白露": ("White Dew", 9, 6), "秋分": ("Autumn Equinox", 9, 21),
    "寒露": ("Cold Dew", 10, 7), "霜降": ("Frost's Descent", 10, 22),
    "立冬": ("Start of Winter", 11, 6), "小雪": ("Minor Snow", 11, 21),
    "大雪": ("Major Snow", 12, 5), "冬至": ("Winter Solstice", 12, 20),
}  # fmt: skip


@dataclass(frozen=True)
class MarketingDay:
    """One named day and its rule (``kind`` says which fields apply)."""

    zh: str
    en: str
    kind: str  # "fixed" | "lunar" | "term" | "weekday" | "easter"
    month: int = 0  # fixed, lunar (12 = the twelfth lunar month), weekday
    day: int = 0  # fixed, lunar (0 with month 12: the last day of the lunar year)
    weekday: int = 0  # weekday: 0 = Monday
    nth: int = 0  # weekday: 1st, 2nd, ... (the n-th such weekday of the month)
    offset: int = 0  # days after the rule's day (Black Friday: Thanksgiving + 1)
    region: str = "CN"  # where it is marketed: "CN", "US", "GB", or "*" (everywhere)
    aliases: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        """Every name it answers to."""
        return (self.zh, self.en, *self.aliases)

    def on(self, year: int) -> date:
        """Its date in Gregorian ``year``."""
        return _date_of(self, year)


DAYS: tuple[MarketingDay, ...] = (
    # Shopping festivals and fixed days marketed in China.
    MarketingDay("元旦", "New Year's Day", "fixed", 1, 1, region="*"),
    MarketingDay("情人节", "Valentine's Day", "fixed", 2, 14, region="*"),
    MarketingDay("妇女节", "Women's Day", "fixed", 3, 8, aliases=("女神节", "三八节", "38")),
    MarketingDay("白色情人节", "White Day", "fixed", 3, 14),
    MarketingDay("520", "520 (I love you day)", "fixed", 5, 20, aliases=("网络情人节",)),
    MarketingDay("儿童节", "Children's Day", "fixed", 6, 1),
    MarketingDay("618", "618 Shopping Festival", "fixed", 6, 18, aliases=("年中大促",)),
    MarketingDay("开学季", "Back to School", "fixed", 9, 1),
    MarketingDay("国庆节", "National Day", "fixed", 10, 1, aliases=("十一",)),
    MarketingDay("万圣节", "Halloween", "fixed", 10, 31, region="*"),
    MarketingDay("双十一", "Singles' Day", "fixed", 11, 11, aliases=("双11", "11.11", "光棍节")),
    MarketingDay("双十二", "Double 12", "fixed", 12, 12, aliases=("双12", "12.12")),
    MarketingDay("平安夜", "Christmas Eve", "fixed", 12, 24, region="*"),
    MarketingDay("圣诞节", "Christmas Day", "fixed", 12, 25, region="*", aliases=("Christmas",)),
    # Lunar days.
    MarketingDay("腊八节", "Laba Festival", "lunar", 12, 8, aliases=("腊八",)),
    MarketingDay("小年", "Little New Year", "lunar", 12, 23),
    MarketingDay("除夕", "Chinese New Year's Eve", "lunar", 12, 0),
    MarketingDay("春节", "Chinese New Year", "lunar", 1, 1, aliases=("Spring Festival", "新年")),
    MarketingDay("元宵节", "Lantern Festival", "lunar", 1, 15, aliases=("元宵",)),
    MarketingDay("龙抬头", "Dragon Raises Its Head", "lunar", 2, 2, aliases=("二月二",)),
    MarketingDay("端午节", "Dragon Boat Festival", "lunar", 5, 5, aliases=("端午",)),
    MarketingDay("七夕", "Qixi Festival", "lunar", 7, 7,
                 aliases=("七夕节", "Chinese Valentine's Day")),
    MarketingDay("中秋节", "Mid-Autumn Festival", "lunar", 8, 15, aliases=("中秋",)),
    MarketingDay("重阳节", "Double Ninth Festival", "lunar", 9, 9, aliases=("重阳",)),
    # Movable Western days.
    MarketingDay("母亲节", "Mother's Day", "weekday", 5, weekday=6, nth=2, region="*"),
    MarketingDay("父亲节", "Father's Day", "weekday", 6, weekday=6, nth=3, region="*"),
    MarketingDay("感恩节", "Thanksgiving", "weekday", 11, weekday=3, nth=4, region="US"),
    MarketingDay("黑色星期五", "Black Friday", "weekday", 11, weekday=3, nth=4, offset=1,
                 region="*", aliases=("黑五",)),
    MarketingDay("网络星期一", "Cyber Monday", "weekday", 11, weekday=3, nth=4, offset=4,
                 region="*"),
    MarketingDay("英国母亲节", "Mothering Sunday", "easter", offset=-21, region="GB",
                 aliases=("Mother's Day UK", "UK Mother's Day")),
    MarketingDay("复活节", "Easter", "easter", region="*", aliases=("Easter Sunday",)),
    # The 24 solar terms.
    *(MarketingDay(zh, en, "term", month, first) for zh, (en, month, first) in SOLAR_TERMS.items()),
)  # fmt: skip


def fold_name(name: str) -> str:
    """Case, spaces, apostrophes and dashes do not matter: "Black-Friday" = "black friday"."""
    return re.sub(r"[\s'’\-_.·]", "", name).casefold()


@lru_cache(maxsize=1)
def _by_name() -> dict[str, MarketingDay]:
    index: dict[str, MarketingDay] = {}
    for day in DAYS:
        for name in day.names:
            index.setdefault(fold_name(name), day)
    return index


def find_day(name: str) -> MarketingDay | None:
    """The named day called ``name`` (Chinese or English, any alias), or None."""
    return _by_name().get(fold_name(name))


def suggest(name: str) -> str | None:
    """The closest known name, for "did you mean" hints."""
    names = [n for day in DAYS for n in day.names]
    folded = {fold_name(n): n for n in names}
    close = difflib.get_close_matches(fold_name(name), list(folded), n=1, cutoff=0.6)
    return folded[close[0]] if close else None


def days_in(year: int, region: str | None = None) -> list[tuple[date, MarketingDay]]:
    """Every named day of ``year`` (for ``region``: its own days and the "*" ones), by date."""
    wanted: Iterable[MarketingDay] = DAYS
    if region:
        code = region.upper()
        wanted = [d for d in DAYS if d.region in ("*", code)]
    return sorted(((d.on(year), d) for d in wanted), key=lambda pair: (pair[0], pair[1].zh))


@lru_cache(maxsize=4096)  # lunar and solar-term conversions cost milliseconds; passes repeat them
def _date_of(day: MarketingDay, year: int) -> date:
    if day.kind == "fixed":
        return date(year, day.month, day.day)
    if day.kind == "lunar":
        return _lunar_in(year, day.month, day.day)
    if day.kind == "term":
        return _solar_term(year, day.zh, day.month, day.day)
    if day.kind == "weekday":
        first = date(year, day.month, 1)
        shift = (day.weekday - first.weekday()) % 7
        return first + timedelta(days=shift + 7 * (day.nth - 1) + day.offset)
    return easter(year) + timedelta(days=day.offset)


def _lunar_in(year: int, month: int, day: int) -> date:
    """The Gregorian date in ``year`` of lunar ``month``/``day`` (day 0: the lunar year's last).

    Days of the twelfth lunar month mostly fall in January or February of the
    next Gregorian year, so the lunar year before is tried first.
    """
    from lunar_python import Lunar, LunarYear

    for lunar_year in (year - 1, year):
        if day == 0:  # 除夕: the day before the next lunar new year
            found = _solar(Lunar.fromYmd(lunar_year + 1, 1, 1)) - timedelta(days=1)
        else:
            size = LunarYear.fromYear(lunar_year).getMonth(month).getDayCount()
            found = _solar(Lunar.fromYmd(lunar_year, month, min(day, size)))
        if found.year == year:
            return found
    raise ValueError(f"lunar {month}/{day} does not fall in {year}")  # never for real days


def _solar_term(year: int, name: str, month: int, first: int) -> date:
    from lunar_python import Solar

    start = date(year, month, first)
    for step in range(6):
        candidate = start + timedelta(days=step)
        solar = Solar.fromYmd(candidate.year, candidate.month, candidate.day)
        if solar.getLunar().getJieQi() == name:
            return candidate
    raise ValueError(f"solar term {name} not found near {start}")  # never for real terms


def _solar(lunar: object) -> date:
    solar = lunar.getSolar()  # type: ignore[attr-defined]
    return date(solar.getYear(), solar.getMonth(), solar.getDay())
