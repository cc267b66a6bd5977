"""``mailer report``: a campaign at a glance (terminal, ``--json``, or an HTML page with charts)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from mailer.cli.app import app, console, run
from mailer.cli.options import CampaignRefArg, DbOpt
from mailer.cli.status_cmds import reason_line

if TYPE_CHECKING:
    from mailer.services.report import CampaignReport


@app.command()
def report(
    campaign: CampaignRefArg,
    html_file: Annotated[
        Path | None, typer.Option("--html", help="write a self-contained HTML report here")
    ] = None,
    db: DbOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
) -> None:
    """What happened to a campaign: sent, bounces, clicks.

    Delivery, bounces, complaints, unsubscribes and clicks, by receiving domain and over
    time; --html writes one self-contained page with charts.

    Examples:

    \b
      mailer report campaigns/promotion.toml
      mailer report winter-oolong-2026@outbox --html report.html
      mailer report xmas@2027 --json
    """
    from mailer.services.report import report_of, write_html

    found = run(lambda: report_of(campaign, db=db))
    if as_json:
        print(json.dumps(found.to_dict(), ensure_ascii=False, indent=2))
    else:
        _print(found)
    if html_file is not None:
        size = run(lambda: write_html(found, html_file))
        console.print(Text(f"wrote {html_file} ({size / 1024:.0f} KB, no outside requests)"))


def _print(found: CampaignReport) -> None:
    if found.empty:
        console.print(Text(f"{found.campaign}: nothing has been sent yet"))
        return
    rates = found.rates
    sent = found.statuses.get("sent", 0)
    total = sum(found.statuses.values())
    lines = [
        f"{found.campaign}: {sent} of {total} sent",
        "  " + ", ".join(f"{k} {v}" for k, v in sorted(found.statuses.items()) if v),
        f"  hard bounces {rates.bounced} ({rates.bounce_rate:.1%}), complaints "
        f"{rates.complained} ({rates.complaint_rate:.2%}), unsubscribes {rates.unsubscribed}, "
        f"refused because of our sending {rates.sender_side} ({rates.sender_rate:.1%})",
    ]
    lines += [reason_line(r) for r in found.reasons]
    if found.per_minute:
        first, last = found.per_minute[0][0], found.per_minute[-1][0]
        busiest = max(found.per_minute, key=lambda row: row[1])
        lines.append(
            f"  sent from {first} to {last} UTC; busiest minute {busiest[0][11:]} ({busiest[1]})"
        )
    for line in lines:
        console.print(Text(line), soft_wrap=True)
    if found.domains:
        table = Table(title="by receiving domain (top 10)", title_justify="left")
        for column in ("domain", "sent", "failed", "deferred", "other"):
            table.add_column(column, justify="left" if column == "domain" else "right")
        for domain, counts in found.domains:
            other = sum(v for k, v in counts.items() if k not in ("sent", "failed", "deferred"))
            table.add_row(domain, *(str(counts.get(k, 0)) for k in ("sent", "failed", "deferred")),
                          str(other))  # fmt: skip
        console.print(table)
    if found.links:
        table = Table(title="clicks per link", title_justify="left")
        for column in ("link", "clicks", "people"):
            table.add_column(column, justify="left" if column == "link" else "right")
        for url, clicks, people in found.links[:10]:
            table.add_row(url, str(clicks), str(people))
        console.print(table)
    if len(found.variants) > 1 or found.links:
        table = Table(title="variants", title_justify="left")
        for column in ("variant", "sent", "clicked", "click rate"):
            table.add_column(column, justify="left" if column == "variant" else "right")
        for v in found.variants:
            table.add_row(v.variant or "—", str(v.sent), str(v.clickers), f"{v.click_rate:.1%}")
        console.print(table)
