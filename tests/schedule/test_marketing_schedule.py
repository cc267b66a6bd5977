"""``[schedule] day = "双十一"``, ``quiet_days = ["days-off"]``, ``mailer calendar`` and the
check that a campaign names its day."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from mailer.core.errors import ScheduleError
from mailer.schedule.holiday_calendar import days_off_known, guessed_days_off, is_day_off
from mailer.schedule.parse import parse_schedule
from mailer.schedule.plan import allowed_at, plan_waves
from tests.schedule.test_schedule import TODAY, person, utc, where
from tests.workspace import CAMPAIGN, invoke, make_workspace


def test_a_named_day_schedule_plans_each_zone_at_its_local_hour() -> None:
    schedule = parse_schedule(
        {"day": "双11", "year": 2027, "local_time": "10:00"}, today=TODAY, where=where
    )
    assert schedule.kind == "day" and schedule.named_day == "双十一"
    assert schedule.describe() == "双十一 2027, at 10:00 in each recipient's time zone"
    people = [person("a@x.test", "Asia/Shanghai"), person("b@x.test", "Europe/London")]
    waves = plan_waves(schedule, people, utc(2027, 11, 1)).waves
    assert [(w.local_date, w.zone, w.due_at) for w in waves] == [
        (date(2027, 11, 11), "Asia/Shanghai", utc(2027, 11, 11, 2)),
        (date(2027, 11, 11), "Europe/London", utc(2027, 11, 11, 10)),
    ]


def test_offsets_and_lunar_days_every_year() -> None:
    schedule = parse_schedule(
        {"day": "七夕", "recurring": "yearly", "offset_days": -2}, today=TODAY, where=where
    )
    waves = plan_waves(schedule, [person("a@x.test", "Asia/Shanghai")], utc(2027, 1, 1)).waves
    assert [w.local_date for w in waves] == [date(2026, 8, 17), date(2027, 8, 6), date(2028, 8, 24)]


def test_unknown_days_and_stray_keys_are_clear_errors() -> None:
    with pytest.raises(ScheduleError) as caught:
        parse_schedule({"day": "Singels Day", "year": 2027}, today=TODAY, where=where)
    assert "unknown marketing day 'Singels Day'" in str(caught.value)
    assert 'did you mean "Singles\' Day"' in str(caught.value) and "mailer calendar" in str(
        caught.value
    )
    with pytest.raises(ScheduleError, match=r"schedule\.country has no meaning with schedule\.day"):
        parse_schedule({"day": "618", "year": 2027, "country": "CN"}, today=TODAY, where=where)
    with pytest.raises(ScheduleError, match="a day schedule needs a year"):
        parse_schedule({"day": "618"}, today=TODAY, where=where)


def test_china_days_off_know_the_working_weekends() -> None:
    # 2026 (State Council notice of November 2025): 1–3 January off, Sunday 4 January worked.
    assert is_day_off(date(2026, 1, 2)) and is_day_off(date(2026, 1, 3))
    assert not is_day_off(date(2026, 1, 4))  # a Sunday, but a working day
    assert is_day_off(date(2026, 2, 17))  # Spring Festival
    assert not is_day_off(date(2026, 3, 10)) and is_day_off(date(2026, 3, 14))  # Tue, Sat
    assert days_off_known(2026) and not days_off_known(2035)


def test_quiet_days_off_holds_a_wave_until_the_next_working_day() -> None:
    schedule = parse_schedule(
        {"date": "2026-01-02", "local_time": "10:00", "timezone": "Asia/Shanghai",
         "quiet_days": ["days-off"], "grace_hours": 72},
        today=TODAY, where=where,
    )  # fmt: skip
    assert schedule.days_off == "CN"
    shanghai = schedule.zone
    assert not allowed_at(schedule, datetime(2026, 1, 3, 10, tzinfo=shanghai))
    assert allowed_at(schedule, datetime(2026, 1, 4, 10, tzinfo=shanghai))  # working Sunday
    shanghai_person = person("a@x.test", "Asia/Shanghai")
    wave = plan_waves(schedule, [shanghai_person], utc(2026, 1, 1)).waves[0]
    assert wave.send_at == datetime(2026, 1, 4, 8, 0, tzinfo=shanghai).astimezone(UTC)
    with pytest.raises(ScheduleError, match="is not a weekday"):
        parse_schedule({"date": "2026-01-02", "quiet_days": ["holidays"]}, today=TODAY, where=where)


def test_mailer_calendar_lists_days_and_the_campaigns_on_them(tmp_path: Path) -> None:
    scheduled = CAMPAIGN + '\n[schedule]\nday = "双十一"\nyear = 2027\nlocal_time = "10:00"\n'
    make_workspace(
        tmp_path, campaign=scheduled.replace("subjects = [", 'subjects = ["双十一 tea", ')
    )
    result = invoke(tmp_path, "calendar", "--year", "2027", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    rows = {row["zh"]: row for row in data["days"]}
    assert rows["双十一"] == {"date": "2027-11-11", "zh": "双十一", "en": "Singles' Day",
                              "day_off": False, "campaigns": ["spring"]}  # fmt: skip
    assert rows["春节"]["day_off"] is True and rows["七夕"]["date"] == "2027-08-08"
    table = invoke(tmp_path, "calendar", "--year", "2027")
    assert "双十一" in table.output and "Singles' Day" in table.output and "spring" in table.output


def test_a_campaign_that_does_not_name_its_day_gets_a_note(tmp_path: Path) -> None:
    scheduled = CAMPAIGN + '\n[schedule]\nday = "双十一"\nyear = 2027\n'
    make_workspace(tmp_path, campaign=scheduled)
    result = invoke(tmp_path, "check", "campaigns/spring.toml", "--no-browser", "--json")
    codes = {f["code"]: f for f in json.loads(result.output)["findings"]}
    assert codes["day-not-named"]["severity"] == "info"
    assert "双十一" in codes["day-not-named"]["message"]
    named = scheduled.replace("subjects = [", 'subjects = ["双11 spring tea", ')
    make_workspace(tmp_path, campaign=named)
    result = invoke(tmp_path, "check", "campaigns/spring.toml", "--no-browser", "--json")
    assert "day-not-named" not in {f["code"] for f in json.loads(result.output)["findings"]}


def test_schedule_list_warns_when_a_years_days_off_are_not_published(tmp_path: Path) -> None:
    quiet = (
        CAMPAIGN + '\n[schedule]\nday = "618"\nrecurring = "yearly"\nquiet_days = ["days-off"]\n'
    )
    make_workspace(tmp_path, campaign=quiet)
    result = invoke(tmp_path, "schedule", "list", "--now", "2034-06-01T00:00Z")
    assert result.exit_code == 0, result.output
    assert "China's days off for 2034" in result.output and "not published yet" in result.output
    result = invoke(tmp_path, "schedule", "list", "--now", "2026-01-01T00:00Z", "--limit", "1")
    assert "China's days off for 2026" not in result.output


def test_guessed_days_in_lieu_are_never_taken_for_official_ones() -> None:
    # 2027 is not announced yet: the holidays package guesses 9–10 February (after the
    # Spring Festival weekend) and 4–5 October off; they are weekdays to us.
    assert not days_off_known(2027)
    assert guessed_days_off(2027)[:2] == [date(2027, 2, 9), date(2027, 2, 10)]
    assert not is_day_off(date(2027, 2, 9)) and not is_day_off(date(2027, 10, 4))
    assert is_day_off(date(2027, 2, 8)) and is_day_off(date(2027, 10, 1))  # statutory holidays
    assert guessed_days_off(2026) == []  # published: its days in lieu are official
    assert is_day_off(date(2026, 10, 6)) and not is_day_off(date(2026, 10, 10))


HAND = """
[calendar.days_off.2027]
off = ["2027-02-09", "2027-02-10", "2027-02-11"]
working = ["2027-02-20"]
"""


def test_a_years_days_off_entered_by_hand(tmp_path: Path) -> None:
    from mailer.core.settings import load_settings

    make_workspace(tmp_path)
    (tmp_path / "mailer.toml").write_text(
        (tmp_path / "mailer.toml").read_text() + HAND, encoding="utf-8"
    )
    hand = load_settings(tmp_path, env={}).days_off
    assert days_off_known(2027, "CN", hand) and not days_off_known(2028, "CN", hand)
    assert is_day_off(date(2027, 2, 11), "CN", hand)  # entered: a Thursday off
    assert not is_day_off(date(2027, 2, 20), "CN", hand)  # a Saturday worked
    assert is_day_off(date(2027, 2, 8), "CN", hand)  # the statutory holidays still count
    schedule = parse_schedule(
        {"date": "2027-02-09", "local_time": "10:00", "timezone": "Asia/Shanghai",
         "quiet_days": ["days-off"], "grace_hours": 336},
        today=TODAY, where=where,
    )  # fmt: skip
    guessed = plan_waves(schedule, [person("a@x.test", "Asia/Shanghai")], utc(2027, 1, 1))
    assert guessed.waves[0].local_date == date(2027, 2, 9)  # not announced: a working day
    entered = replace(schedule, days_off_by_hand=hand)
    wave = plan_waves(entered, [person("a@x.test", "Asia/Shanghai")], utc(2027, 1, 1)).waves[0]
    shanghai = schedule.zone
    # The first working day after the entered days off, as the window opens.
    assert wave.send_at == datetime(2027, 2, 12, 8, tzinfo=shanghai).astimezone(UTC)
    shown = invoke(tmp_path, "calendar", "--year", "2027")
    assert "from mailer.toml [calendar.days_off.2027]" in " ".join(shown.output.split())
    for bad, message in (
        ('[calendar.days_off.2027]\noff = ["2028-01-01"]\n', "2028-01-01 is not in 2027"),
        ('[calendar.days_off.soon]\noff = []\n', "must be a table named by a year"),
        ('[calendar.days_off.2027]\noff = ["2027-02-09"]\nworking = ["2027-02-09"]\n',
         "is both off and working"),
    ):  # fmt: skip
        (tmp_path / "mailer.toml").write_text(
            (tmp_path / "mailer.toml").read_text().split("[calendar")[0] + bad, encoding="utf-8"
        )
        result = invoke(tmp_path, "calendar", "--year", "2027")
        assert result.exit_code == 1 and message in result.output, result.output


def test_the_calendar_notes_an_unpublished_year_and_lists_us_days(tmp_path: Path) -> None:
    make_workspace(tmp_path)
    china = " ".join(invoke(tmp_path, "calendar", "--year", "2027").output.split())
    assert "2027's days in lieu and working weekends (调休) are not published yet" in china
    assert "guesses (02-09, 02-10" in china and "[calendar.days_off.2027]" in china
    assert "中元节" in china and "Ghost Festival" in china
    us = json.loads(invoke(tmp_path, "calendar", "--year", "2027", "--country", "US",
                           "--json").output)  # fmt: skip
    days = {row["en"]: row["date"] for row in us["days"]}
    assert days["Memorial Day"] == "2027-05-31" and days["Independence Day"] == "2027-07-04"
    assert days["Labor Day"] == "2027-09-06" and days["Thanksgiving"] == "2027-11-25"
    assert days["Black Friday"] == "2027-11-26" and days["Cyber Monday"] == "2027-11-29"


def test_a_ghost_festival_schedule_is_understood(tmp_path: Path) -> None:
    schedule = parse_schedule({"day": "中元节", "year": 2027}, today=TODAY, where=where)
    assert schedule.named_day == "中元节"
    waves = plan_waves(schedule, [person("a@x.test", "Asia/Shanghai")], utc(2027, 1, 1)).waves
    assert waves[0].local_date == date(2027, 8, 16)
