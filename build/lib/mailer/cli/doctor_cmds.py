"""``mailer doctor``: sender checks (SPF, DKIM, DMARC, rDNS, TLS) and the message rules."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from mailer.cli.app import app, console, run

_STYLE = {
    "pass": "green",
    "warn": "yellow",
    "fail": "bold red",
    "unknown": "bold magenta",
    "skip": "dim",
}
EXIT_FAILED = 1  # a check failed
EXIT_UNKNOWN = 3  # --strict: some area could not be checked (a DNS lookup failed)


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
        typer.Option(
            "--resolver",
            metavar="SERVER",
            help="DNS server to ask: 1.1.1.1, 1.1.1.1:53, ::1, [::1]:53 or a host name[:port]",
        ),
    ] = None,
    offline: Annotated[
        bool, typer.Option("--offline", help="no DNS lookups, no connection to the relay")
    ] = False,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict", help=f"exit {EXIT_UNKNOWN} when a check could not be made (DNS failed)"
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
) -> None:
    """Check the sender's DNS: will Gmail and Outlook accept it?

    SPF, DKIM, DMARC, MX, reverse DNS and the relay's TLS; with a campaign, also its
    messages and audience. Exits 1 when a check fails, and with --strict 3 when a check
    could not be made (a DNS lookup failed).

    Examples:

    \b
      mailer doctor
      mailer doctor campaigns/promotion.toml
      mailer doctor --resolver 127.0.0.1:5353 --json
      mailer doctor --strict      # for a CI gate: unknown is not a pass
    """
    from mailer.services.doctor import DoctorOptions, run_doctor

    report = run(lambda: run_doctor(campaign, DoctorOptions(resolver=resolver, offline=offline)))
    if as_json:
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        table = Table(title=f"doctor · {report.domain}", title_justify="left")
        for column in ("check", "result", "what was found"):
            table.add_column(column, overflow="fold")
        fixes: list[str] = []
        for check in report.checks:
            status = str(check.status)
            found = Text(check.reason)
            if check.fix:
                # The fix goes under the table, whole: a command to copy never breaks in a cell.
                fixes.append(f"{check.area} · fix: {check.fix}")
                found.append(" (fix below)", style="italic")
            table.add_row(check.area, Text(status, style=_STYLE[status]), found)
        console.print(table)
        counts = report.counts()
        summary = ", ".join(
            f"{counts[k]} {k}" for k in ("pass", "warn", "fail", "unknown", "skip") if counts[k]
        )
        if any(check.dns for check in report.checks):
            summary += " — some checks could not be made: a DNS lookup failed (see above)"
        elif report.unknown:
            summary += " — some checks could not be made (see above)"
        console.print(Text(summary, style=_STYLE[str(report.result)]))
        if fixes:
            console.print(Text("\n".join(fixes)), soft_wrap=True)
    if report.failed:
        raise typer.Exit(EXIT_FAILED)
    if strict and report.unknown:
        raise typer.Exit(EXIT_UNKNOWN)
