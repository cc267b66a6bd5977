"""The marketing calendar: shopping festivals, lunar days and solar terms, not only public holidays.

Each named day has a rule, never a typed-in list of dates:

* a fixed Gregorian day (双十一 11.11, 618, 520, 情人节 2.14, Halloween ...);
* a lunar date (七夕 7/7, 元宵 1/15, 腊八 12/8, 中秋 8/15 ...) converted with
  ``lunar-python`` (6tail's calendar library: lunar dates and the 24 solar
  terms, 1900–2100); the tests check every date of 2026–2030 against ``borax``,
  a second, independent implementation;
* a solar term (立春, 冬至 ...) from the same library, or a distance from one
  (寒食节: the day before 清明);
* the n-th 庚 day from a solar term (the dog days: 初伏 is the third 庚 day
  from 夏至, 中伏 the fourth, 末伏 the first from 立秋);
* the n-th weekday of a month (Mother's Day: 2nd Sunday of May; US
  Thanksgiving: 4th Thursday of November; the last, counted from the end:
  Memorial Day, the last Monday of May), or a fixed distance from one
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
    kind: str  # "fixed" | "lunar" | "term" | "geng" | "weekday" | "easter"
    month: int = 0  # fixed, lunar (12 = the twelfth lunar month), weekday
    day: int = 0  # fixed, lunar (0 with month 12: the last day of the lunar year)
    weekday: int = 0  # weekday: 0 = Monday
    nth: int = 0  # weekday: 1st, 2nd, ... (-1: the last of the month); geng: the n-th 庚 day
    offset: int = 0  # days after the rule's day (Black Friday: Thanksgiving + 1)
    region: str = "CN"  # where it is marketed: "CN", "US", "GB", or "*" (everywhere)
    aliases: tuple[str, ...] = ()
    anchor: str = ""  # term, geng: the solar term counted from, when it is not ``zh``

    @property
    def names(self) -> tuple[str, ...]:
        """Every name it answers to."""
        return (self.zh, self.en, *self.aliases)

    def on(self, year: int) -> date:
        """Its date in Gregorian ``year``."""
        return _date_of(self, year)


# Solar terms that are festivals too, with the names people give them.
_TERM_ALIASES = {
    "清明": ("清明节", "Qingming Festival", "Tomb-Sweeping Day"),
    "冬至": ("冬至节", "Dongzhi Festival"),
}

DAYS: tuple[MarketingDay, ...] = (
    # Shopping festivals and fixed days marketed in China.
    MarketingDay("元旦", "New Year's Day", "fixed", 1, 1, region="*"),
    MarketingDay("情人节", "Valentine's Day", "fixed", 2, 14, region="*"),
    MarketingDay("妇女节", "Women's Day", "fixed", 3, 8, aliases=("女神节", "三八节", "38")),
    MarketingDay("植树节", "Arbor Day", "fixed", 3, 12),
    MarketingDay("白色情人节", "White Day", "fixed", 3, 14),
    MarketingDay("愚人节", "April Fools' Day", "fixed", 4, 1, region="*"),
    MarketingDay("劳动节", "May Day", "fixed", 5, 1,
                 aliases=("五一", "五一劳动节", "Labour Day", "International Workers' Day")),
    MarketingDay("青年节", "Youth Day", "fixed", 5, 4, aliases=("五四青年节",)),
    MarketingDay("护士节", "Nurses' Day", "fixed", 5, 12, region="*",
                 aliases=("International Nurses Day",)),
    MarketingDay("520", "520 (I love you day)", "fixed", 5, 20, aliases=("网络情人节",)),
    MarketingDay("儿童节", "Children's Day", "fixed", 6, 1),
    MarketingDay("618", "618 Shopping Festival", "fixed", 6, 18, aliases=("年中大促",)),
    MarketingDay("建军节", "Army Day", "fixed", 8, 1),
    MarketingDay("开学季", "Back to School", "fixed", 9, 1),
    MarketingDay("教师节", "Teachers' Day", "fixed", 9, 10),
    MarketingDay("国庆节", "National Day", "fixed", 10, 1, aliases=("十一",)),
    MarketingDay("万圣节", "Halloween", "fixed", 10, 31, region="*"),
    MarketingDay("双十一", "Singles' Day", "fixed", 11, 11, aliases=("双11", "11.11", "光棍节")),
    MarketingDay("双十二", "Double 12", "fixed", 12, 12, aliases=("双12", "12.12")),
    MarketingDay("平安夜", "Christmas Eve", "fixed", 12, 24, region="*"),
    MarketingDay("圣诞节", "Christmas Day", "fixed", 12, 25, region="*", aliases=("Christmas",)),
    MarketingDay("跨年夜", "New Year's Eve", "fixed", 12, 31, region="*"),
    # Lunar days.
    MarketingDay("腊八节", "Laba Festival", "lunar", 12, 8, aliases=("腊八",)),
    MarketingDay("小年", "Little New Year", "lunar", 12, 23),
    MarketingDay("除夕", "Chinese New Year's Eve", "lunar", 12, 0),
    MarketingDay("春节", "Chinese New Year", "lunar", 1, 1, aliases=("Spring Festival", "新年")),
    MarketingDay("元宵节", "Lantern Festival", "lunar", 1, 15, aliases=("元宵",)),
    MarketingDay("龙抬头", "Dragon Raises Its Head", "lunar", 2, 2, aliases=("二月二",)),
    MarketingDay("上巳节", "Shangsi Festival", "lunar", 3, 3, aliases=("三月三",)),
    MarketingDay("端午节", "Dragon Boat Festival", "lunar", 5, 5, aliases=("端午",)),
    MarketingDay("七夕", "Qixi Festival", "lunar", 7, 7,
                 aliases=("七夕节", "Chinese Valentine's Day")),
    MarketingDay("中元节", "Ghost Festival", "lunar", 7, 15,
                 aliases=("七月半", "鬼节", "Zhongyuan Festival", "Hungry Ghost Festival")),
    MarketingDay("中秋节", "Mid-Autumn Festival", "lunar", 8, 15, aliases=("中秋",)),
    MarketingDay("重阳节", "Double Ninth Festival", "lunar", 9, 9, aliases=("重阳",)),
    MarketingDay("寒衣节", "Winter Clothes Day", "lunar", 10, 1, aliases=("十月朝",)),
    MarketingDay("下元节", "Xiayuan Festival", "lunar", 10, 15),
    # Days counted from a solar term.
    MarketingDay("寒食节", "Cold Food Festival", "term", 4, 3, offset=-1, anchor="清明",
                 aliases=("寒食",)),
    MarketingDay("初伏", "First Dog Days", "geng", 6, 20, nth=3, anchor="夏至",
                 aliases=("入伏", "头伏")),
    MarketingDay("中伏", "Middle Dog Days", "geng", 6, 20, nth=4, anchor="夏至",
                 aliases=("二伏",)),
    MarketingDay("末伏", "Last Dog Days", "geng", 8, 6, nth=1, anchor="立秋"),
    # Movable Western days.
    MarketingDay("母亲节", "Mother's Day", "weekday", 5, weekday=6, nth=2, region="*"),
    MarketingDay("父亲节", "Father's Day", "weekday", 6, weekday=6, nth=3, region="*"),
    MarketingDay("感恩节", "Thanksgiving", "weekday", 11, weekday=3, nth=4, region="US"),
    MarketingDay("黑色星期五", "Black Friday", "weekday", 11, weekday=3, nth=4, offset=1,
                 region="*", aliases=("黑五",)),
    MarketingDay("网络星期一", "Cyber Monday", "weekday", 11, weekday=3, nth=4, offset=4,
                 region="*"),
    # United States: the federal holidays and the retail days around them.
    MarketingDay("马丁·路德·金纪念日", "Martin Luther King Jr. Day", "weekday", 1, weekday=0,
                 nth=3, region="US", aliases=("MLK Day",)),
    MarketingDay("美国总统日", "Presidents' Day", "weekday", 2, weekday=0, nth=3, region="US",
                 aliases=("Washington's Birthday", "总统日")),
    MarketingDay("圣帕特里克节", "St. Patrick's Day", "fixed", 3, 17, region="US",
                 aliases=("Saint Patrick's Day",)),
    MarketingDay("阵亡将士纪念日", "Memorial Day", "weekday", 5, weekday=0, nth=-1,
                 region="US"),
    MarketingDay("六月节", "Juneteenth", "fixed", 6, 19, region="US",
                 aliases=("Juneteenth National Independence Day",)),
    MarketingDay("美国独立日", "Independence Day", "fixed", 7, 4, region="US",
                 aliases=("Fourth of July", "July 4th", "独立日")),
    MarketingDay("美国劳工节", "Labor Day", "weekday", 9, weekday=0, nth=1, region="US",
                 aliases=("劳工节",)),
    MarketingDay("哥伦布日", "Columbus Day", "weekday", 10, weekday=0, nth=2, region="US",
                 aliases=("Indigenous Peoples' Day",)),
    MarketingDay("退伍军人节", "Veterans Day", "fixed", 11, 11, region="US"),
    MarketingDay("小企业星期六", "Small Business Saturday", "weekday", 11, weekday=3, nth=4,
                 offset=2, region="US"),
    MarketingDay("捐赠星期二", "Giving Tuesday", "weekday", 11, weekday=3, nth=4, offset=5,
                 region="US", aliases=("GivingTuesday",)),
    MarketingDay("英国母亲节", "Mothering Sunday", "easter", offset=-21, region="GB",
                 aliases=("Mother's Day UK", "UK Mother's Day")),
    MarketingDay("复活节", "Easter", "easter", region="*", aliases=("Easter Sunday",)),
    # The 24 solar terms.
    *(MarketingDay(zh, en, "term", month, first, aliases=_TERM_ALIASES.get(zh, ()))
      for zh, (en, month, first) in SOLAR_TERMS.items()),
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
    """The closest known name, for "did you mean" hints; none when two different days are
    equally close (中元节 is as close to 元宵节 as to 中秋节: guessing would mislead)."""
    wanted = fold_name(name)
    scores: dict[float, set[str]] = {}
    shown: dict[str, str] = {}
    for day in DAYS:
        for candidate in day.names:
            folded = fold_name(candidate)
            score = difflib.SequenceMatcher(None, wanted, folded).ratio()
            if score >= 0.6:
                scores.setdefault(score, set()).add(day.zh)
                shown.setdefault(f"{score}:{day.zh}", candidate)
    if not scores:
        return None
    best = max(scores)
    days = scores[best]
    if len(days) > 1:
        return None
    return shown[f"{best}:{next(iter(days))}"]


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
        return _solar_term(year, day.anchor or day.zh, day.month, day.day) + timedelta(day.offset)
    if day.kind == "geng":
        return _geng_day(_solar_term(year, day.anchor, day.month, day.day), day.nth)
    if day.kind == "weekday":
        if day.nth < 0:  # counted from the end of the month
            last = date(year + day.month // 12, day.month % 12 + 1, 1) - timedelta(days=1)
            shift = (last.weekday() - day.weekday) % 7
            return last - timedelta(days=shift + 7 * (-day.nth - 1)) + timedelta(day.offset)
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


def _geng_day(start: date, nth: int) -> date:
    """The ``nth`` day whose heavenly stem is 庚, counting ``start`` itself."""
    from lunar_python import Solar

    seen = 0
    for step in range(10 * nth):
        candidate = start + timedelta(days=step)
        lunar = Solar.fromYmd(candidate.year, candidate.month, candidate.day).getLunar()
        if lunar.getDayGan() == "庚":
            seen += 1
            if seen == nth:
                return candidate
    raise ValueError(f"no {nth}th 庚 day after {start}")  # never: one in every ten days


def _solar(lunar: object) -> date:
    solar = lunar.getSolar()  # type: ignore[attr-defined]
    return date(solar.getYear(), solar.getMonth(), solar.getDay())
