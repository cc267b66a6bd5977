"""``mailer calendar``: shopping festivals, lunar days, solar terms, and the campaigns on them."""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from mailer.cli.app import app, console, err_console, run

_WEEKDAYS = "一二三四五六日"


@app.command()
def calendar(
    year: Annotated[
        int | None, typer.Option("--year", help="the year", show_default="this year")
    ] = None,
    country: Annotated[
        str, typer.Option("--country", help="CN, US, GB: that country's days and the global ones")
    ] = "CN",
    as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
) -> None:
    """A year's marketing days and the campaigns planned on them.

    Chinese and English names: holidays, 双十一, 618, solar terms, Black Friday ...; 休 marks
    China's official days off (days in lieu included, once published).

    Examples:

    \b
      mailer calendar
      mailer calendar --year 2027
      mailer calendar --country US --json
    """
    from mailer.services.calendar import marketing_calendar

    wanted = year or date.today().year
    result = run(lambda: marketing_calendar(wanted, country))
    if as_json:
        rows = [
            {"date": r.day.isoformat(), "zh": r.zh, "en": r.en, "day_off": r.day_off,
             "campaigns": r.campaigns}
            for r in result.days
        ]  # fmt: skip
        print(json.dumps({"year": result.year, "country": result.country,
                          "days_off_known": result.days_off_known,
                          "days_off_by_hand": result.days_off_by_hand,
                          "guessed_days_off_not_counted": [d.isoformat() for d in result.guessed],
                          "days": rows},
                         ensure_ascii=False, indent=2))  # fmt: skip
        return
    table = Table(title=f"marketing days {result.year} · {result.country}", title_justify="left")
    for column in ("date", "", "中文", "English", "campaigns"):
        table.add_column(column, no_wrap=column != "campaigns")
    for row in result.days:
        # Chinese weekday names for China's calendar, English ones for the others.
        china = result.country == "CN"
        weekday = f"周{_WEEKDAYS[row.day.weekday()]}" if china else f"{row.day:%a}"
        if row.day_off:
            weekday += " 休"
        style = "bold" if row.campaigns else None
        table.add_row(f"{row.day:%m-%d}", weekday, row.zh, row.en, ", ".join(row.campaigns),
                      style=style)  # fmt: skip
    console.print(table)
    if result.country == "CN":
        note = "休: an official day off (holidays, days in lieu; not weekends made working days)"
        console.print(Text(note, style="dim"))
        if result.days_off_by_hand:
            console.print(Text(f"{result.year}'s days off: from mailer.toml "
                               f"[calendar.days_off.{result.year}]", style="dim"))  # fmt: skip
        elif not result.days_off_known:
            guessed = ", ".join(f"{d:%m-%d}" for d in result.guessed)
            console.print(Text(
                f"note: {result.year}'s days in lieu and working weekends (调休) are not published "
                "yet: 休 marks the statutory holidays and weekends only"
                + (f"; the holidays package's guesses ({guessed}) are not counted" if guessed
                   else "")
                + f". Once announced, enter them in mailer.toml [calendar.days_off.{result.year}].",
                style="yellow",
            ), soft_wrap=True)  # fmt: skip
    for error in result.errors:
        err_console.print(Text(f"skipped a campaign: {error}", style="yellow"))
