"""The marketing calendar's dates for 2026–2030, each checked against an independent source.

* Lunar days and solar terms: ``lunar-python`` (what mailer uses) must agree
  with ``borax`` (a separate implementation, MIT) on every date, and a few are
  pinned by hand from the Hong Kong Observatory's published calendar tables
  (https://www.hko.gov.hk/en/gts/time/conversion.htm).
* Western movable days: pinned from timeanddate.com's holiday pages
  (https://www.timeanddate.com/holidays/us/mothers-day and the pages for
  Father's Day, Thanksgiving Day, Black Friday, Cyber Monday, Easter Sunday and
  UK Mothering Sunday).
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from borax.calendars.lunardate import LunarDate, TermUtils

from mailer.core.marketing_days import DAYS, days_in, find_day, suggest

YEARS = range(2026, 2031)


def borax_lunar(year: int, month: int, day: int) -> date:
    """Borax's Gregorian date in ``year`` of lunar month/day (0: the lunar year's last day)."""
    for lunar_year in (year - 1, year):
        if day == 0:
            found = LunarDate(lunar_year + 1, 1, 1).to_solar_date() - timedelta(days=1)
        else:
            found = LunarDate(lunar_year, month, day).to_solar_date()
        if found.year == year:
            return found
    raise AssertionError("no such day in the year")


@pytest.mark.parametrize("year", YEARS)
def test_lunar_days_agree_with_a_second_library(year: int) -> None:
    lunar = [d for d in DAYS if d.kind == "lunar"]
    assert len(lunar) == 14  # 上巳, 中元, 寒衣 and 下元 among them
    for day in lunar:
        assert day.on(year) == borax_lunar(year, day.month, day.day), (day.zh, year)


@pytest.mark.parametrize("year", YEARS)
def test_solar_terms_agree_with_a_second_library(year: int) -> None:
    terms = [d for d in DAYS if d.kind == "term" and not d.anchor]
    assert len(terms) == 24
    for day in terms:
        expected = TermUtils.nth_term_day(year, TermUtils.name2index(day.zh))
        assert day.on(year) == expected, (day.zh, year)


# Hong Kong Observatory: first day of the first lunar month, 2026–2030.
SPRING_FESTIVAL = [date(2026, 2, 17), date(2027, 2, 6), date(2028, 1, 26), date(2029, 2, 13),
                   date(2030, 2, 3)]  # fmt: skip
QIXI = [date(2026, 8, 19), date(2027, 8, 8), date(2028, 8, 26), date(2029, 8, 16),
        date(2030, 8, 5)]  # fmt: skip
WINTER_SOLSTICE = [date(2026, 12, 22), date(2027, 12, 22), date(2028, 12, 21),
                   date(2029, 12, 21), date(2030, 12, 22)]  # fmt: skip

# timeanddate.com
PINNED = {
    "Mother's Day": [(5, 10), (5, 9), (5, 14), (5, 13), (5, 12)],
    "Father's Day": [(6, 21), (6, 20), (6, 18), (6, 17), (6, 16)],
    "Thanksgiving": [(11, 26), (11, 25), (11, 23), (11, 22), (11, 28)],
    "Black Friday": [(11, 27), (11, 26), (11, 24), (11, 23), (11, 29)],
    "Cyber Monday": [(11, 30), (11, 29), (11, 27), (11, 26), (12, 2)],
    "Easter": [(4, 5), (3, 28), (4, 16), (4, 1), (4, 21)],
    "Mothering Sunday": [(3, 15), (3, 7), (3, 26), (3, 11), (3, 31)],
}


def test_hand_pinned_lunar_and_term_dates() -> None:
    for name, dates in (("春节", SPRING_FESTIVAL), ("七夕", QIXI), ("冬至", WINTER_SOLSTICE)):
        named = find_day(name)
        assert named is not None
        assert [named.on(y) for y in YEARS] == dates, name


@pytest.mark.parametrize("name", sorted(PINNED))
def test_movable_western_days(name: str) -> None:
    named = find_day(name)
    assert named is not None
    expected = [date(y, m, d) for y, (m, d) in zip(YEARS, PINNED[name], strict=True)]
    assert [named.on(y) for y in YEARS] == expected


def test_fixed_shopping_days_and_their_names() -> None:
    for alias in ("双十一", "双11", "11.11", "Singles' Day", "singles day", "光棍节"):
        found = find_day(alias)
        assert found is not None and found.zh == "双十一", alias
        assert [found.on(y) for y in YEARS] == [date(y, 11, 11) for y in YEARS]
    for name, (month, day) in {"618": (6, 18), "520": (5, 20), "双十二": (12, 12),
                               "情人节": (2, 14), "女神节": (3, 8)}.items():  # fmt: skip
        found = find_day(name)
        assert found is not None and found.on(2027) == date(2027, month, day)
    assert find_day("black-friday") is find_day("Black Friday") is find_day("黑五")
    assert find_day("Singels Day") is None and suggest("Singels Day") == "Singles' Day"


def test_the_mid_autumn_festival_matches_the_holidays_package_too() -> None:
    """A third source for one lunar day: the holidays package's China calendar."""
    import holidays

    named = find_day("中秋节")
    assert named is not None
    for year in YEARS:
        china = holidays.China(years=year, language="en_US")
        # 2028: the festival falls on National Day, and the package names both.
        assert "Mid-Autumn Festival" in str(china.get(named.on(year))).split("; "), year


def test_a_year_by_region() -> None:
    china = [d.zh for _, d in days_in(2027, "CN")]
    usa = [d.en for _, d in days_in(2027, "US")]
    assert "双十一" in china and "Thanksgiving" not in [d.en for _, d in days_in(2027, "CN")]
    assert "Thanksgiving" in usa and "Singles' Day" not in usa and "Black Friday" in usa
    dates = [when for when, _ in days_in(2027)]
    assert dates == sorted(dates) and len(dates) == len(DAYS)


@pytest.mark.parametrize("year", YEARS)
def test_the_dog_days_and_cold_food_agree_with_borax(year: int) -> None:
    """初伏/中伏/末伏 (庚 days from 夏至 and 立秋): borax's own festival rules, a second
    implementation; 寒食节 is the day before 清明."""
    from borax.calendars.festivals2 import FestivalLibrary

    library = FestivalLibrary.load_builtin()
    for name in ("初伏", "中伏", "末伏"):
        named = find_day(name)
        assert named is not None and named.on(year) == library.get_festival(name).at(year), name
    cold_food, qingming = find_day("寒食节"), find_day("清明节")
    assert cold_food is not None and qingming is not None and qingming.zh == "清明"
    assert cold_food.on(year) == qingming.on(year) - timedelta(days=1)


def test_the_ghost_festival_is_found_and_never_suggests_the_lantern_festival() -> None:
    ghost = find_day("中元节")
    assert ghost is not None and ghost.en == "Ghost Festival" and find_day("七月半") is ghost
    # Hong Kong Observatory: 15th day of the 7th lunar month.
    assert [ghost.on(y) for y in YEARS] == [date(2026, 8, 27), date(2027, 8, 16),
                                             date(2028, 9, 3), date(2029, 8, 24),
                                             date(2030, 8, 13)]  # fmt: skip
    # Two festivals are as close to a typo as each other: no guess rather than a wrong one.
    assert suggest("中球节") is None and suggest("Memorail Day") == "Memorial Day"


US_FEDERAL = {  # the holidays package's name -> ours
    "Martin Luther King Jr. Day": "MLK Day",
    "Washington's Birthday": "Presidents' Day",
    "Memorial Day": "Memorial Day",
    "Juneteenth National Independence Day": "Juneteenth",
    "Independence Day": "Fourth of July",
    "Labor Day": "Labor Day",
    "Columbus Day": "Columbus Day",
    "Veterans Day": "Veterans Day",
    "Thanksgiving Day": "Thanksgiving",
    "Christmas Day": "Christmas",
    "New Year's Day": "New Year's Day",
}


@pytest.mark.parametrize("year", YEARS)
def test_us_federal_days_agree_with_the_holidays_package(year: int) -> None:
    import holidays

    federal = holidays.country_holidays("US", years=year, language="en_US", observed=False)
    seen = set()
    for when, name in federal.items():
        ours = find_day(US_FEDERAL[name])
        assert ours is not None and ours.on(year) == when, (name, year)
        assert ours.region in ("US", "*")
        seen.add(name)
    assert seen == set(US_FEDERAL)
    us = {d.en for _, d in days_in(year, "US")}
    assert {"Small Business Saturday", "Giving Tuesday", "Cyber Monday"} <= us
    assert "Labor Day" in us and "May Day" not in us  # China's 劳动节 is not the US one


def test_memorial_day_is_the_last_monday_of_may() -> None:
    # timeanddate.com: 2026-05-25, 2027-05-31, 2028-05-29, 2029-05-28, 2030-05-27
    named = find_day("Memorial Day")
    assert named is not None
    assert [named.on(y) for y in YEARS] == [date(2026, 5, 25), date(2027, 5, 31),
                                             date(2028, 5, 29), date(2029, 5, 28),
                                             date(2030, 5, 27)]  # fmt: skip
