"""``mailer doctor``: sender checks (SPF, DKIM, DMARC, rDNS, TLS) and the message rules."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from mailer.cli.app import app, console, run

_STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red", "skip": "dim"}


@app.command()
def doctor(
    campaign: Annotated[
        Path | None,
        typer.Argument(
            help="campaign file: also check its messages and audience", metavar="[CAMPAIGN]"
        ),
    ] = None,
    resolver: Annotated[
        str | None,
        typer.Option("--resolver", metavar="HOST[:PORT]", help="DNS server to ask"),
    ] = None,
    offline: Annotated[
        bool, typer.Option("--offline", help="no DNS lookups, no connection to the relay")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """Will Gmail, Yahoo and Outlook accept this sender? Exits 1 when a check fails."""
    from mailer.services.doctor import DoctorOptions, run_doctor

    report = run(lambda: run_doctor(campaign, DoctorOptions(resolver=resolver, offline=offline)))
    if as_json:
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        table = Table(title=f"doctor · {report.domain}", title_justify="left")
        for column in ("check", "result", "what was found"):
            table.add_column(column, overflow="fold")
        for check in report.checks:
            status = str(check.status)
            found = Text(check.reason)
            if check.fix:
                found.append(f"\nfix: {check.fix}", style="italic")
            table.add_row(check.area, Text(status, style=_STYLE[status]), found)
        console.print(table)
        counts = report.counts()
        summary = ", ".join(f"{counts[k]} {k}" for k in ("pass", "warn", "fail", "skip"))
        console.print(Text(summary, style="bold red" if report.failed else "bold green"))
    if report.failed:
        raise typer.Exit(1)
