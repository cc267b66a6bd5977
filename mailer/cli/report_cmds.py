"""``mailer report``: a campaign at a glance (terminal, ``--json``, or an HTML page with charts)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from mailer.cli.app import app, console, run
from mailer.cli.options import DbOpt
from mailer.cli.status_cmds import reason_line

if TYPE_CHECKING:
    from mailer.services.report import AbSection, CampaignReport, ReportIndex, Slice


@app.command()
def report(
    campaign: Annotated[
        str | None,
        typer.Argument(help="campaign file or id", metavar="[CAMPAIGN]", show_default=False),
    ] = None,
    every: Annotated[
        bool, typer.Option("--all", help="one row per campaign and scheduled instance")
    ] = False,
    html_file: Annotated[
        Path | None, typer.Option("--html", help="write a self-contained HTML report here")
    ] = None,
    db: DbOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
) -> None:
    """A campaign's results at a glance, and its A/B test.

    An overview first (each figure with what it means), then the A/B test (test share and
    winner send apart, and the decision), engagement by language, receiving domain and over
    time, and clicks per link. A scheduled campaign's file lists its instances; --all lists
    every campaign. --html writes one self-contained page.

    Examples:

    \b
      mailer report campaigns/promotion.toml
      mailer report winter-oolong-2026@outbox --html report.html
      mailer report xmas@2027 --json
      mailer report --all
    """
    from mailer.services.report import ReportIndex, all_campaigns, report_of, write_html

    if every == (campaign is not None):
        console.print(Text("give a campaign (file or id), or --all for every campaign"))
        raise typer.Exit(2)
    found: CampaignReport | ReportIndex = run(
        lambda: all_campaigns(db=db) if campaign is None else report_of(campaign, db=db)
    )
    if as_json:
        print(json.dumps(found.to_dict(), ensure_ascii=False, indent=2))
    elif isinstance(found, ReportIndex):
        _print_index(found)
    else:
        _print(found)
    if html_file is not None:
        size = run(lambda: write_html(found, html_file))
        console.print(Text(f"wrote {html_file} ({size / 1024:.0f} KB, no outside requests)"))


def percent(share: float) -> str:
    """A share as the report words it (0.15%, 4.2%); the service is imported when used."""
    from mailer.services.report import percent as worded

    return worded(share)


def _table(title: str) -> Table:
    """A compact table (no vertical rules): the report's tables fit 80 columns."""
    from rich import box

    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    table.padding = (0, 1)
    table.collapse_padding = True
    return table


def _say(line: str, style: str | None = None) -> None:
    console.print(Text(line, style=style or ""), soft_wrap=True)


def _print(found: CampaignReport) -> None:
    if found.note:
        _say(f"note: {found.note}", "yellow")
    if found.empty:
        _say(f"{found.campaign}: nothing has been sent yet")
        return
    o = found.overview
    _say(f"{found.campaign}: {o.sent:,} sent" + _span(o.first_sent, o.last_sent))
    for i, subject in enumerate(found.subjects):
        tag = f"subject {chr(65 + i)}" if len(found.subjects) > 1 else "subject"
        _say(f"  {tag}: “{subject}”")
    others = ", ".join(f"{k} {v:,}" for k, v in sorted(found.statuses.items()) if v and k != "sent")
    if others:
        _say(f"  not sent: {others}")
    table = _table("overview")
    for column in ("", "rate", "count", "what it means"):
        table.add_column(column, justify="right" if column in ("rate", "count") else "left")
    for m in o.metrics:
        whole = o.sent if m.of == "sent" else o.delivered
        count = (
            f"{m.count:,} clicks"
            if m.key == "clicks_per_recipient"
            else f"{m.count:,} of {whole:,} {m.of}"
        )
        style = "bold red" if m.over_limit else None
        table.add_row(m.label, m.rate_text(), count, m.meaning, style=style)
    console.print(table)
    times = found.click_times()
    if times:
        parts = [f"{share:.0%} {when}" for share, when in times]
        _say(f"  clicking: {', '.join(parts)} (of the people who clicked, from the first message)")
    if found.ab is not None:
        print_ab(found.ab)
    if len(found.languages) > 1:
        _slices("by language version", found.languages, "language")
    if found.domains:
        _slices("by receiving domain", found.domains, "domain")
    if found.links:
        table = _table("clicks per link")
        for column in ("link", "clicks", "people"):
            table.add_column(column, justify="left" if column == "link" else "right")
        for url, clicks, people in found.links[:10]:
            table.add_row(url, f"{clicks:,}", f"{people:,}")
        console.print(table)
    for r in found.reasons:
        _say(reason_line(r))


def _span(first: str, last: str) -> str:
    """ " 2026-11-22 09:00 – 09:03 UTC" (the end's date only when it differs)."""
    if not first:
        return ""
    start = first[:16].replace("T", " ")
    if last[:16] == first[:16]:
        return f" {start} UTC"
    end = last[11:16] if last[:10] == first[:10] else last[:16].replace("T", " ")
    return f" {start} – {end} UTC"


def print_ab(ab: AbSection, *, running: bool = True) -> None:
    """The A/B section: the decision (or that the test runs), the rule, and the test share
    and the winner send apart (``report`` and ``ab show``)."""
    share = f"test share {ab.rule.test_share:.0%}" if ab.rule.test_share else "test share"
    d = ab.decision
    if d is None and running:
        when = ab.decide_after[:16].replace("T", " ")
        _say(f"A/B test ({share}): running, the winner is decided after {when} UTC")
    elif d is None:
        pass
    else:
        _say(f"A/B test ({share}): {d.headline(ab.rule.default)}", "bold")
        if d.comparison is not None:
            sizes = ", ".join(f"{f.variant} {f.hits}/{f.sent:,}" for f in d.figures)
            _say(f"  difference {d.interval_text()}; {d.p_text}; at decision: {sizes}")
        _say(f"  decided {d.decided_at[:16].replace('T', ' ')} UTC: {d.reason}")
    _say(f"  rule: {ab.rule_text()}")
    table = _table("test share (rates over the test share only)")
    for column in ("variant", "sent", "clicked", "click rate", "unsubscribed"):
        table.add_column(column, justify="left" if column == "variant" else "right")
    rows = list(ab.test_share)
    for v in rows:
        table.add_row(v.variant, f"{v.sent:,}", f"{v.clickers:,}", percent(v.click_rate),
                      f"{v.unsubscribed:,}")  # fmt: skip
    if ab.winner_send is not None:
        w = ab.winner_send
        table.add_section()
        table.add_row(f"winner send ({w.variant})", f"{w.sent:,}", f"{w.clickers:,}",
                      percent(w.click_rate), f"{w.unsubscribed:,}")  # fmt: skip
    console.print(table)


def _slices(title: str, rows: list[Slice], name: str) -> None:
    table = _table(title)
    for column in (name, "delivered", "click rate", "unsub.", "bounced", "failed"):
        table.add_column(column, justify="left" if column == name else "right")
    for r in rows:
        table.add_row(r.name, f"{r.sent:,}", percent(r.click_rate), f"{r.unsubscribed:,}",
                      f"{r.hard_bounced + r.soft_bounced:,}", f"{r.failed:,}")  # fmt: skip
    console.print(table)


def _print_index(found: ReportIndex) -> None:
    if found.note:
        _say(f"{found.title}: {found.note}")
        if not found.rows:
            return
    table = _table(found.title)
    for column in ("campaign", "date", "sent", "deliv.", "clicks", "unsub.", "spam", "bounce"):
        table.add_column(column, justify="left" if column in ("campaign", "date") else "right")
    for row in found.rows:
        o = row.overview
        rates = [
            o.metric(k).rate_text()
            for k in ("delivered", "unique_clicks", "unsubscribes", "complaints", "hard_bounces")
        ]
        table.add_row(row.key, o.first_sent[:10] or "—", f"{o.sent:,}", *rates)
    console.print(table)
