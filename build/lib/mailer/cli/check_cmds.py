"""``mailer check``: pre-send checks as a readable table (or ``--json``); exit 1 on errors."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from mailer.cli.app import app, console, run

if TYPE_CHECKING:
    from mailer.services.checking import CheckReport, FoldResult, Viewport

_SIZE = re.compile(r"^\s*(\d{2,5})\s*[x×]\s*(\d{2,5})\s*$")
_MIN_SIDE, _MAX_SIDE = 200, 5000
_STYLE = {"error": "bold red", "warning": "yellow", "info": "dim"}


def _viewport(name: str, value: str) -> Viewport:
    from mailer.services.checking import Viewport

    match = _SIZE.match(value)
    if not match:
        raise typer.BadParameter(f"{value!r} is not WIDTHxHEIGHT (for example 375x667)")
    width, height = int(match.group(1)), int(match.group(2))
    if not (_MIN_SIDE <= width <= _MAX_SIDE and _MIN_SIDE <= height <= _MAX_SIDE):
        raise typer.BadParameter(
            f"{value!r}: width and height must be {_MIN_SIDE}–{_MAX_SIDE} pixels (a real screen)"
        )
    return Viewport(name, width, height)


# Longer than most functions: Typer declares every flag in the signature.
@app.command()
def check(
    campaign: Annotated[
        Path, typer.Argument(help="campaign file (TOML)", metavar="CAMPAIGN", show_default=False)
    ],
    as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
    shots: Annotated[
        Path | None,
        typer.Option(
            "--shots", metavar="DIR", help="save screenshots with the fold line drawn into DIR"
        ),
    ] = None,
    no_browser: Annotated[
        bool,
        typer.Option(
            "--no-browser", help="skip the fold check in headless Chromium (reported as NOT run)"
        ),
    ] = False,
    sample: Annotated[
        int,
        typer.Option("--sample", metavar="N", min=1, max=50, help="sample recipients to render"),
    ] = 3,
    phone: Annotated[
        str, typer.Option("--phone", metavar="WxH", help="phone viewport")
    ] = "375x667",
    desktop: Annotated[
        str, typer.Option("--desktop", metavar="WxH", help="desktop viewport")
    ] = "1024x600",
    chromium: Annotated[
        str | None,
        typer.Option(
            "--chromium",
            metavar="PATH",
            help="Chromium binary",
            show_default="$MAILER_CHROMIUM, else /usr/bin/chromium",
        ),
    ] = None,
    fetch_images: Annotated[
        bool,
        typer.Option("--fetch-images", help="let the browser load remote images (off: no network)"),
    ] = False,
    offline: Annotated[
        bool, typer.Option("--offline", help="no DNS lookups, no connection to the relay")
    ] = False,
    no_spam: Annotated[
        bool,
        typer.Option("--no-spam-score", help="skip SpamAssassin (reported as NOT checked)"),
    ] = False,
) -> None:
    """Check subjects, content, compliance and the fold.

    Scores each subject, measures in headless Chromium whether the headline, offer and
    button are above the fold on a phone and a desktop, and runs the content and compliance
    rules. Exits 1 when there are errors.

    Examples:

    \b
      mailer check campaigns/promotion.toml
      mailer check campaigns/promotion.toml --shots shots
      mailer check campaigns/promotion.toml --no-browser --json
    """
    viewports = (_viewport("phone", phone), _viewport("desktop", desktop))

    def action() -> CheckReport:
        from mailer.services.checking import check_campaign

        return check_campaign(
            campaign,
            browser=not no_browser,
            viewports=viewports,
            shots=shots,
            chromium=chromium,
            fetch_images=fetch_images,
            sample=sample,
            offline=offline,
            spam=not no_spam,
        )

    report = run(action)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        print_report(report)
    if not report.ok:
        raise typer.Exit(1)


def print_report(report: CheckReport) -> None:
    """The report as rich tables: subjects, fold positions, findings, then a summary line."""
    console.print(Text(f"check {report.campaign_id} · {report.samples} sample(s)", style="bold"))
    console.print(_subjects_table(report))
    if report.fold:
        console.print(_fold_table(report.fold))
    _print_findings(report)
    console.print(_summary(report), soft_wrap=True)


def _subjects_table(report: CheckReport) -> Table:
    table = Table(title="subjects", title_justify="left")
    for column in ("variant", "subject", "cols", "score", "reasons"):
        table.add_column(column, overflow="fold")
    for score in report.subjects:
        style = "green" if score.score >= 80 else "yellow" if score.score >= 60 else "red"
        table.add_row(
            score.variant,
            Text(score.subject),
            str(score.width),
            Text(str(score.score), style=style),
            Text("\n".join(score.reasons)),
        )
    return table


def _fold_table(results: list[FoldResult]) -> Table:
    table = Table(title="above the fold (top–bottom px)", title_justify="left")
    for column in ("sample", "screen", "headline", "offer", "call to action"):
        table.add_column(column)
    for result in results:
        cells = []
        for cls in ("mailer-headline", "mailer-offer", "mailer-cta"):
            block = min(
                (b for b in result.blocks if b.cls == cls), key=lambda b: b.top, default=None
            )
            if block is None:
                cells.append(Text("missing", style="yellow"))
                continue
            below = block.bottom > result.viewport.height
            mark = " ✗ below" if below else (" ? estimated" if block.uncertain else " ✓")
            style = "bold red" if below else ("yellow" if block.uncertain else "green")
            cells.append(Text(f"{block.top:.0f}–{block.bottom:.0f}{mark}", style=style))
        table.add_row(result.label, str(result.viewport), *cells)
    return table


def _print_findings(report: CheckReport) -> None:
    """Errors and warnings in a table (what needs doing); notes as lines under it.

    Notes are many and wordy (word count, client support, spam rules): in table cells
    they wrap into a wall, so each gets one soft-wrapped line instead.
    """
    act = [f for f in report.findings if f.severity != "info"]
    if act:
        table = Table(title="findings", title_justify="left")
        for column in ("severity", "code", "where", "message"):
            table.add_column(column, overflow="fold")
        for finding in act:
            table.add_row(
                Text(finding.severity, style=_STYLE[finding.severity]),
                finding.code,
                Text(finding.where),
                Text(finding.message),
            )
        console.print(table)
    # The same note on several samples (a spam score of 0.7 on each) is printed once.
    notes: dict[tuple[str, str], list[str]] = {}
    for finding in report.findings:
        if finding.severity == "info":
            notes.setdefault((finding.code, finding.message), []).append(finding.where)
    if notes:
        lines = Text("notes")
        for (code, message), wheres in notes.items():
            where = ", ".join(w for w in wheres if w)
            lines.append(f"\n  · {code}", style="bold")
            lines.append(f" ({where}): " if where else ": ")
            lines.append(message)
        console.print(lines, soft_wrap=True)


def _spam_lines(spam: list[dict[str, Any]]) -> list[str]:
    """One line per distinct score: samples that scored the same share it."""
    by_score: dict[tuple[Any, str], list[str]] = {}
    for score in spam:
        by_score.setdefault((score["score"], score["tool"]), []).append(str(score["sample"]))
    return [
        f"{value:g} — {tool} ({', '.join(samples)})" for (value, tool), samples in by_score.items()
    ]


def _summary(report: CheckReport) -> Text:
    errors, warnings = len(report.errors), len(report.warnings)
    infos = len(report.findings) - errors - warnings
    mark, style = ("✗", "bold red") if errors else ("✓", "bold green")
    text = Text(f"{mark} {errors} error(s), {warnings} warning(s), {infos} info", style=style)
    uncertain = "UNCERTAIN" in report.fold_note
    fold_style = "green" if report.fold_ran and not uncertain else "bold yellow"
    text.append("\nfold check: ").append(report.fold_note, style=fold_style)
    for line in _spam_lines(report.spam):
        text.append("\nspam score: ").append(line, style="bold")
    return text
