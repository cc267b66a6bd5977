"""The schedule core: parsing ``[schedule]`` tables and cutting audiences into waves (pure)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest

from mailer.core.errors import ScheduleError
from mailer.core.recipient import Recipient
from mailer.schedule.holiday_calendar import holiday_date
from mailer.schedule.model import Schedule, wave_key
from mailer.schedule.parse import parse_schedule
from mailer.schedule.plan import due, same_day_in
from mailer.schedule.plan import plan_waves as plan

# The day a schedule is parsed on (it picks the year a holiday name is checked in).
TODAY = date(2026, 11, 22)


def where(key: str) -> str:
    return f"campaigns/x.toml:{len(key) or 1}"  # a fake file:line that depends on the key


def person(email: str, zone: str | None = None, **fields: str) -> Recipient:
    data = dict(fields, email=email)
    if zone is not None:
        data["timezone"] = zone
    return Recipient(email, fields=data, source=email)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


HOLIDAY = {"holiday": "Christmas", "country": "US", "recurring": "yearly"}


# --- holiday calendar --------------------------------------------------------


@pytest.mark.parametrize(
    ("country", "name", "year", "expected"),
    [
        ("CN", "Chinese New Year", 2027, date(2027, 2, 6)),
        ("CN", "Spring Festival", 2026, date(2026, 2, 17)),
        ("CN", "Lunar New Year", 2028, date(2028, 1, 26)),
        ("CN", "春节", 2027, date(2027, 2, 6)),
        ("CN", "Chinese New Year (Spring Festival)", 2027, date(2027, 2, 6)),
        ("CN", "Mid-Autumn Festival", 2027, date(2027, 9, 15)),
        ("CN", "mid-autumn", 2026, date(2026, 9, 25)),
        ("US", "Thanksgiving", 2027, date(2027, 11, 25)),
        ("US", "Thanksgiving Day", 2026, date(2026, 11, 26)),
        ("US", "Christmas", 2027, date(2027, 12, 25)),
        ("US", "christmas day", 2027, date(2027, 12, 25)),
    ],
)
def test_holiday_names_and_aliases_resolve_to_the_first_day(country, name, year, expected):
    assert holiday_date(country, name, year, language="en_US") == expected


def test_holiday_names_in_chinese_with_language_zh_cn():
    assert holiday_date("CN", "中秋节", 2027, language="zh_CN") == date(2027, 9, 15)
    assert holiday_date("CN", "Spring Festival", 2027, language="zh_CN") == date(2027, 2, 6)


def test_observed_days_are_not_the_holiday():
    # 2027-12-24 is "Christmas Day (observed)": the greeting belongs on the 25th.
    assert holiday_date("US", "Christmas", 2027) == date(2027, 12, 25)


def test_unknown_holiday_names_the_closest_and_the_known_ones():
    with pytest.raises(ScheduleError) as info:
        parse_schedule({**HOLIDAY, "holiday": "Xmas Day"}, where=where, today=TODAY)
    error = info.value
    assert error.message == "no holiday named 'Xmas Day' in the US calendar (language en_US)"
    assert error.where == where("holiday")
    assert error.hint is not None
    assert error.hint.startswith("did you mean 'Christmas Day'? known: Christmas Day, Columbus")


def test_unknown_country_and_language():
    with pytest.raises(ScheduleError, match="the holiday calendar has no country 'XX'"):
        parse_schedule({**HOLIDAY, "country": "XX"}, where=where, today=TODAY)
    with pytest.raises(ScheduleError) as info:
        parse_schedule({**HOLIDAY, "language": "fr"}, where=where, today=TODAY)
    assert info.value.message == "the US calendar has no language 'fr'"
    assert info.value.hint == "supported: en_US, th"


# --- parsing -------------------------------------------------------------------


def test_parse_holiday_schedule_with_every_option():
    schedule = parse_schedule(
        {
            "holiday": "Chinese New Year",
            "country": "cn",
            "offset_days": -3,
            "local_time": "09:30",
            "window": ["08:00", "20:00"],
            "quiet_days": ["sunday", "sat"],
            "grace_hours": 48,
            "recurring": "yearly",
        },
        where=where,
        default_timezone="Asia/Shanghai",
        today=TODAY,
    )
    assert schedule == Schedule(
        kind="holiday",
        holiday="Chinese New Year",
        country="CN",
        recurring=True,
        offset_days=-3,
        local_time=time(9, 30),
        window=(time(8), time(20)),
        quiet_days=frozenset({5, 6}),
        grace=timedelta(hours=48),
        default_timezone="Asia/Shanghai",
    )
    assert schedule.describe() == (
        "3 days before Chinese New Year (CN) every year, at 09:30 in each recipient's time zone"
    )


@pytest.mark.parametrize(
    ("table", "message", "key"),
    [
        (
            {"holiday": "Christmas", "country": "US", "recurring": "yearly", "colour": 1},
            "unknown key 'schedule.colour'",
            "colour",
        ),
        (
            {"birthday": True, "holiday": "Christmas"},
            "a schedule needs exactly one of date, holiday, day, birthday, after_last_order_days "
            "(found holiday, birthday)",
            "birthday",
        ),
        (
            {},
            "a schedule needs exactly one of date, holiday, day, birthday, after_last_order_days",
            "",
        ),
        (
            {"holiday": "Christmas", "recurring": "yearly"},
            "schedule.holiday needs a country",
            "holiday",
        ),
        (
            {"holiday": "Christmas", "country": "US"},
            'a holiday schedule needs a year, or recurring = "yearly"',
            "holiday",
        ),
        (
            {**HOLIDAY, "local_time": "7 am"},
            "schedule.local_time must be a time of day like \"09:00\", not '7 am'",
            "local_time",
        ),
        (
            {**HOLIDAY, "local_time": "22:00"},
            "the send time 22:00 is outside the send window 08:00–21:00",
            "local_time",
        ),
        (
            {**HOLIDAY, "window": ["21:00", "08:00"]},
            "schedule.window must start before it ends (21:00 is not before 08:00)",
            "window",
        ),
        (
            {**HOLIDAY, "quiet_days": ["someday"]},
            "schedule.quiet_days: 'someday' is not a weekday",
            "quiet_days",
        ),
        (
            {**HOLIDAY, "grace_hours": 0},
            "schedule.grace_hours must be a positive number of hours, not 0",
            "grace_hours",
        ),
        (
            {**HOLIDAY, "timezone": "Mars/Olympus"},
            "schedule.timezone: 'Mars/Olympus' is not a known IANA time zone",
            "timezone",
        ),
        ({"date": "2027-02-06T09:00"}, "schedule.date has a time but no time zone", "date"),
        ({"date": "6 Feb"}, "schedule.date is not an ISO date or date-time: '6 Feb'", "date"),
        (
            {"date": "2027-02-06T09:00", "timezone": "UTC", "local_time": "10:00"},
            "schedule.date already has a time: drop local_time, or give a date only",
            "local_time",
        ),
        ({"birthday": "yes"}, "schedule.birthday must be true", "birthday"),
        (
            {"birthday": True, "country": "CN"},
            "schedule.country has no meaning with schedule.birthday",
            "country",
        ),
        (
            {"after_last_order_days": -1},
            "schedule.after_last_order_days must be a whole number of days, not -1",
            "after_last_order_days",
        ),
        (
            {**HOLIDAY, "offset_days": 1.5},
            "schedule.offset_days must be a whole number of days (-3 = three days before), not 1.5",
            "offset_days",
        ),
    ],
)
def test_parse_errors_say_what_and_where(table, message, key):
    with pytest.raises(ScheduleError) as info:
        parse_schedule(table, where=where, today=TODAY)
    assert info.value.message == message
    assert info.value.where == where(key)


def test_unknown_key_suggests_the_close_one():
    with pytest.raises(ScheduleError) as info:
        parse_schedule({**HOLIDAY, "grace_hour": 3}, where="x.toml:9", today=TODAY)
    assert info.value.hint == "did you mean 'grace_hours'?"
    assert str(info.value).startswith("x.toml:9: unknown key 'schedule.grace_hour'")


def test_bad_workspace_time_zone_is_reported():
    with pytest.raises(ScheduleError) as info:
        parse_schedule({"birthday": True}, default_timezone="Nowhere", today=TODAY)
    assert info.value.message == (
        "the workspace time zone (mailer.toml 'timezone'): 'Nowhere' is not a known IANA time zone"
    )


def test_date_with_offset_is_one_instant_for_everyone():
    schedule = parse_schedule(
        {"date": datetime.fromisoformat("2027-06-01T10:00+08:00")}, today=TODAY
    )
    waves = plan(schedule, [person("a@x.test", "Europe/London")], utc(2027, 5, 1)).waves
    assert [w.due_at for w in waves] == [utc(2027, 6, 1, 2)]
    # 03:00 in London is outside the window: London waits for 08:00 BST (07:00 UTC).
    assert waves[0].send_at == utc(2027, 6, 1, 7)


# --- waves ---------------------------------------------------------------------


def test_holiday_waves_at_nine_in_each_time_zone():
    schedule = parse_schedule({**HOLIDAY, "grace_hours": 6}, today=TODAY)
    people = [
        person("ny1@x.test", "America/New_York"),
        person("ny2@x.test", "America/New_York"),
        person("la@x.test", "America/Los_Angeles"),
        person("nobody@x.test"),
        person("bad@x.test", "Not/AZone"),
    ]
    result = plan(schedule, people, utc(2027, 12, 1))
    waves = [w for w in result.waves if w.occurrence == "2027"]
    assert [(w.zone, w.due_at, len(w.recipients)) for w in waves] == [
        ("UTC", utc(2027, 12, 25, 9), 2),
        ("America/New_York", utc(2027, 12, 25, 14), 2),
        ("America/Los_Angeles", utc(2027, 12, 25, 17), 1),
    ]
    assert result.default_zone == 2
    assert {w.state for w in waves} == {"pending"}
    assert wave_key("xmas", waves[0]) == "xmas@2027"
    assert waves[1].key == "2027-12-25 America/New_York"


def test_due_only_inside_the_grace_period_and_the_window():
    schedule = parse_schedule({**HOLIDAY, "grace_hours": 30}, today=TODAY)
    ny = [person("ny@x.test", "America/New_York")]
    assert due(schedule, ny, utc(2027, 12, 25, 13, 59)) == []
    assert [w.key for w in due(schedule, ny, utc(2027, 12, 25, 14))] == [
        "2027-12-25 America/New_York"
    ]
    # 22:00 in New York: past the window, so the wave waits for the morning ...
    late = plan(schedule, ny, utc(2027, 12, 26, 3)).waves
    assert [w.state for w in late if w.occurrence == "2027"] == ["waiting"]
    # ... and 08:00 the next morning is still inside the 30 h grace period.
    assert [w.state for w in plan(schedule, ny, utc(2027, 12, 26, 13)).waves][1] == "due"
    # From 20:00 UTC on the 26th (14:00 + 30 h) it is missed for good.
    assert [w.state for w in plan(schedule, ny, utc(2027, 12, 26, 20)).waves][1] == "missed"


def test_quiet_days_defer_to_the_next_allowed_morning():
    # Christmas 2027 is a Saturday.
    ny = [person("ny@x.test", "America/New_York")]
    schedule = parse_schedule(
        {**HOLIDAY, "quiet_days": ["saturday"], "grace_hours": 48}, today=TODAY
    )
    wave = next(w for w in plan(schedule, ny, utc(2027, 12, 1)).waves if w.occurrence == "2027")
    assert wave.send_at == utc(2027, 12, 26, 13)  # Sunday 08:00 EST
    assert due(schedule, ny, utc(2027, 12, 25, 14)) == []
    short = parse_schedule({**HOLIDAY, "quiet_days": ["saturday"], "grace_hours": 12}, today=TODAY)
    wave = next(w for w in plan(short, ny, utc(2027, 12, 1)).waves if w.occurrence == "2027")
    assert wave.send_at is None


def test_pinned_time_zone_with_windows_in_the_recipients_zone():
    schedule = parse_schedule(
        {
            **HOLIDAY,
            "timezone": "Asia/Shanghai",
            "local_time": "21:30",
            "window": ["08:00", "22:00"],
        },
        today=TODAY,
    )
    people = [person("sh@x.test", "Asia/Shanghai"), person("la@x.test", "America/Los_Angeles")]
    waves = [w for w in plan(schedule, people, utc(2027, 12, 1)).waves if w.occurrence == "2027"]
    assert {w.due_at for w in waves} == {utc(2027, 12, 25, 13, 30)}
    # 05:30 in Los Angeles: that wave waits for 08:00 PST.
    assert {w.zone: w.send_at for w in waves} == {
        "Asia/Shanghai": utc(2027, 12, 25, 13, 30),
        "America/Los_Angeles": utc(2027, 12, 25, 16),
    }


def test_offset_days_before_the_holiday_keep_the_holidays_year():
    schedule = parse_schedule(
        {"holiday": "New Year", "country": "US", "recurring": "yearly", "offset_days": -2},
        today=TODAY,
    )
    waves = plan(schedule, [person("a@x.test", "UTC")], utc(2027, 12, 1)).waves
    assert [(w.occurrence, w.local_date) for w in waves] == [
        ("2026", date(2025, 12, 30)),
        ("2027", date(2026, 12, 30)),
        ("2028", date(2027, 12, 30)),
    ]


def test_birthday_on_29_february_is_greeted_on_28_february_in_other_years():
    assert same_day_in(2027, 2, 29) == date(2027, 2, 28)
    assert same_day_in(2028, 2, 29) == date(2028, 2, 29)
    schedule = parse_schedule({"birthday": True}, today=TODAY)
    people = [
        person("leap@x.test", "Asia/Shanghai", birthday="2000-02-29"),
        person("noyear@x.test", "Asia/Shanghai", birthday="--02-29"),
        person("none@x.test", "Asia/Shanghai"),
        person("junk@x.test", "Asia/Shanghai", birthday="soon"),
    ]
    result = plan(schedule, people, utc(2027, 6, 1))
    assert result.undated == 2
    assert [(w.occurrence, w.local_date, len(w.recipients)) for w in result.waves] == [
        ("birthday-2026", date(2026, 2, 28), 2),
        ("birthday-2027", date(2027, 2, 28), 2),
        ("birthday-2028", date(2028, 2, 29), 2),
    ]
    assert result.waves[1].due_at == utc(2027, 2, 28, 1)


def test_daylight_saving_days_keep_nine_oclock_local():
    schedule = parse_schedule({"birthday": True}, today=TODAY)
    people = [
        person("spring@x.test", "America/New_York", birthday="1990-03-14"),
        person("autumn@x.test", "America/New_York", birthday="1990-11-07"),
        person("day-before@x.test", "America/New_York", birthday="1990-03-13"),
    ]
    waves = {w.local_date: w.due_at for w in plan(schedule, people, utc(2027, 6, 1)).waves}
    assert waves[date(2027, 3, 13)] == utc(2027, 3, 13, 14)  # EST, UTC-5
    assert waves[date(2027, 3, 14)] == utc(2027, 3, 14, 13)  # clocks went forward: EDT
    assert waves[date(2027, 11, 7)] == utc(2027, 11, 7, 14)  # clocks went back: EST


def test_a_local_time_skipped_by_daylight_saving_moves_forward():
    schedule = parse_schedule(
        {"date": "2027-03-14", "local_time": "02:30", "window": False}, today=TODAY
    )
    waves = plan(schedule, [person("a@x.test", "America/New_York")], utc(2027, 3, 1)).waves
    assert waves[0].due_at == utc(2027, 3, 14, 7, 30)  # 03:30 EDT


def test_after_last_order_days():
    schedule = parse_schedule({"after_last_order_days": 30, "local_time": "10:00"}, today=TODAY)
    people = [
        person("a@x.test", "Asia/Shanghai", last_order_at="2027-03-01"),
        person("b@x.test", "Asia/Shanghai", last_order_at="2027-03-01T23:10:00"),
        person("c@x.test", "Asia/Shanghai"),
    ]
    result = plan(schedule, people, utc(2027, 3, 1))
    assert result.undated == 1
    assert [(w.occurrence, w.local_date, w.due_at, len(w.recipients)) for w in result.waves] == [
        ("order-2027-03-01", date(2027, 3, 31), utc(2027, 3, 31, 2), 2)
    ]


def test_fixed_date_once_and_yearly():
    once = parse_schedule({"date": "2027-11-11", "local_time": "10:00"}, today=TODAY)
    waves = plan(once, [person("a@x.test", "Asia/Shanghai")], utc(2027, 1, 1)).waves
    assert [(w.occurrence, w.due_at) for w in waves] == [("2027-11-11", utc(2027, 11, 11, 2))]
    yearly = parse_schedule({"date": "2027-11-11", "recurring": "yearly"}, today=TODAY)
    waves = plan(yearly, [person("a@x.test", "Asia/Shanghai")], utc(2027, 1, 1)).waves
    assert [w.occurrence for w in waves] == ["2026", "2027", "2028"]
    assert yearly.describe() == "every year on 11 November, at 09:00 in each recipient's time zone"


def test_now_must_be_aware():
    with pytest.raises(ValueError, match="timezone-aware"):
        plan(parse_schedule({"birthday": True}, today=TODAY), [], datetime(2027, 1, 1))


def test_due_with_the_near_days_filter_matches_the_full_plan():
    # Extreme zones (UTC+14, UTC-12) and a late local time stress the day filter.
    import random

    rng = random.Random(3)
    zones = ["Pacific/Kiritimati", "Etc/GMT+12", "Asia/Shanghai", "America/New_York"]
    people = [
        person(
            f"p{i}@x.test",
            zones[i % 4],
            birthday=f"1990-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        )
        for i in range(200)
    ]
    schedule = parse_schedule(
        {"birthday": True, "local_time": "20:30", "grace_hours": 30}, today=TODAY
    )
    for _ in range(120):
        now = utc(2027, 1, 1) + timedelta(minutes=rng.randrange(365 * 24 * 60))
        full = [w for w in plan(schedule, people, now).waves if w.state == "due"]
        assert due(schedule, people, now) == full


# --- names in every language of the calendar ----------------------------------


@pytest.mark.parametrize("language", ["en_US", "zh_CN", "zh_TW"])
@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (("Spring Festival", "Chinese New Year", "春节", "春節"), date(2027, 2, 6)),
        (("Mid-Autumn Festival", "中秋节", "中秋節"), date(2027, 9, 15)),
        (("National Day", "国庆节", "國慶節"), date(2027, 10, 1)),
        (("Labor Day", "劳动节", "勞動節"), date(2027, 5, 1)),
        (("Tomb-Sweeping Day", "清明节", "清明節"), date(2027, 4, 5)),
        (("Chinese New Year's Eve", "除夕", "农历除夕", "農曆除夕"), date(2027, 2, 5)),
    ],
)
def test_a_holiday_name_in_any_of_the_calendars_languages_resolves(language, names, expected):
    # The calendar's language only decides how names are listed in errors: a marketer
    # writing "Mid-Autumn Festival" on a zh_CN calendar (or 劳动节 on en_US) is understood.
    assert {
        name: holiday_date("CN", name, 2027, language=language) for name in names
    } == dict.fromkeys(names, expected)


@pytest.mark.parametrize("language", ["en_US", "zh_CN"])
def test_days_off_in_lieu_are_not_offered_as_holidays(language):
    with pytest.raises(ScheduleError) as info:
        holiday_date("CN", "Arbor Day", 2026, language=language)
    hint = info.value.hint or ""
    # The calendar's own language first, then the campaign's.
    assert "known: 中秋节, " in hint
    assert ("Chinese New Year (Spring Festival)" in hint) is (language == "en_US")
    assert "Day off" not in hint and "休息日" not in hint and "2026" not in hint


@pytest.mark.parametrize(
    ("typo", "meant"),
    [("元日", "元旦"), ("春結", "春节"), ("Cristmas", "Christmas Day"), ("Spring Festivle", None)],
)
def test_a_mistyped_holiday_name_gets_the_closest_name_chinese_included(typo, meant):
    country = "US" if typo == "Cristmas" else "CN"
    with pytest.raises(ScheduleError) as info:
        holiday_date(country, typo, 2027)
    hint = info.value.hint or ""
    expected = meant or "Chinese New Year (Spring Festival)"
    assert hint.startswith(f"did you mean '{expected}'? known: ")


def test_untranslated_calendars_are_english_without_a_language():
    # Ghana's calendar has no translations: the names are English on every machine.
    schedule = parse_schedule({**HOLIDAY, "country": "GH"}, where=where, today=TODAY)
    assert schedule.language == "en_US"
    assert holiday_date("GH", "Christmas", 2027) == date(2027, 12, 25)
    with pytest.raises(ScheduleError) as info:
        parse_schedule({**HOLIDAY, "country": "GH", "language": "fr"}, where=where, today=TODAY)
    assert info.value.message == "the GH calendar names its holidays in English only, not in 'fr'"
    assert info.value.where == where("country")


def test_a_birthday_schedule_cannot_be_once():
    with pytest.raises(ScheduleError) as info:
        parse_schedule({"birthday": True, "recurring": "once"}, where=where, today=TODAY)
    assert info.value.message == (
        'a birthday greeting recurs every year: schedule.recurring cannot be "once"'
    )
    assert info.value.where == where("recurring")
    assert parse_schedule({"birthday": True, "recurring": "yearly"}, today=TODAY).recurring


# --- daylight saving in Europe: the skipped and the repeated hour -------------


def test_europe_nine_oclock_and_half_past_two_on_both_change_days():
    berlin = [person("b@x.test", "Europe/Berlin")]
    # 28 March 2027: 02:00 CET jumps to 03:00 CEST. 31 October: 03:00 CEST falls back to 02:00 CET.
    at_nine = {
        day: plan(parse_schedule({"date": day}, today=TODAY), berlin, utc(2027, 1, 1))
        .waves[0]
        .due_at
        for day in ("2027-03-27", "2027-03-28", "2027-10-30", "2027-10-31")
    }
    assert at_nine == {
        "2027-03-27": utc(2027, 3, 27, 8),  # CET, UTC+1
        "2027-03-28": utc(2027, 3, 28, 7),  # CEST, UTC+2
        "2027-10-30": utc(2027, 10, 30, 7),  # CEST
        "2027-10-31": utc(2027, 10, 31, 8),  # CET again
    }

    def half_past_two(day: str) -> list[datetime]:
        schedule = parse_schedule(
            {"date": day, "local_time": "02:30", "window": False}, today=TODAY
        )
        return [w.due_at for w in plan(schedule, berlin, utc(2027, 1, 1)).waves]

    # 02:30 does not exist on 28 March: read with the offset before the change, i.e. 03:30 CEST.
    assert half_past_two("2027-03-28") == [utc(2027, 3, 28, 1, 30)]
    # 02:30 happens twice on 31 October: one wave, at the first of them (02:30 CEST).
    assert half_past_two("2027-10-31") == [utc(2027, 10, 31, 0, 30)]


# --- contacts whose schedule fields cannot be read ----------------------------


def test_unreadable_time_zones_and_dates_are_reported_with_their_source():
    schedule = parse_schedule({"birthday": True}, default_timezone="Asia/Shanghai", today=TODAY)
    people = [
        Recipient(
            "ok@x.test",
            fields={"timezone": "Asia/Tokyo", "birthday": "1990-05-01"},
            source="c.csv line 2",
        ),
        Recipient(
            "tz@x.test",
            fields={"timezone": "Asia/Shangai", "birthday": "1990-05-01"},
            source="c.csv line 3",
        ),
        Recipient(
            "bd@x.test", fields={"timezone": "", "birthday": "14/02/1988"}, source="c.csv line 4"
        ),
        Recipient("none@x.test", fields={"birthday": ""}, source="c.csv line 5"),
    ]
    result = plan(schedule, people, utc(2027, 1, 1))
    assert result.problems == (
        "c.csv line 3: timezone 'Asia/Shangai' is not an IANA time zone "
        "(the workspace zone Asia/Shanghai is used)",
        "c.csv line 4: birthday '14/02/1988' is not a date like 1988-02-14 (never sent)",
    )
    assert (result.problem_count, result.undated, result.default_zone) == (2, 2, 3)


def test_upcoming_keeps_a_wave_that_will_be_skipped():
    from mailer.schedule.plan import upcoming

    # Christmas 2027 is a Saturday: with Saturdays quiet and 12 h of grace it can never go out,
    # and `schedule list` must say so instead of leaving it out.
    short = parse_schedule({**HOLIDAY, "quiet_days": ["saturday"], "grace_hours": 12}, today=TODAY)
    ny = [person("ny@x.test", "America/New_York")]
    waves = upcoming(plan(short, ny, utc(2027, 12, 1)).waves)
    assert [(w.occurrence, w.send_at) for w in waves][:1] == [("2027", None)]
