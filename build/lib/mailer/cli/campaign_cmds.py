"""Commands that work on one campaign file: ``render``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from mailer.cli.app import app, console, print_rows, run

CampaignArg = Annotated[
    Path, typer.Argument(help="campaign file (TOML)", metavar="CAMPAIGN", show_default=False)
]


@app.command()
def render(
    campaign: CampaignArg,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="outbox folder", show_default="outbox/<campaign id>"),
    ] = None,
) -> None:
    """Render each recipient's .eml and .html; nothing is sent.

    Files go to the outbox folder (or --out), one .eml and one .html per recipient, exactly
    as a send would build them.

    Examples:

    \b
      mailer render campaigns/promotion.toml
      mailer render campaigns/promotion.toml --out /tmp/promo
    """
    from mailer.cli.progress import phase_bar
    from mailer.services.render import render_campaign

    with phase_bar("rendering") as tick:
        campaign_id, summary = run(lambda: render_campaign(campaign, out, tick))
    rows = [("recipients", str(summary.count))]
    for label, count in sorted(summary.variants.items()):
        rows.append((f"subject {label}", f"{count} × e.g. “{summary.examples[label]}”"))
    rows.append(("largest HTML", f"{summary.largest_html / 1024:.1f} KB"))
    rows.append(("outbox", f"{summary.folder}  ({summary.count} .eml + {summary.count} .html)"))
    print_rows(f"rendered {campaign_id} (nothing was sent)", rows)
    for finding in summary.findings:
        style = "bold red" if finding.severity == "error" else "yellow"
        label = "error (check refuses to send this)" if finding.severity == "error" else "warning"
        console.print(Text(f"{label}: {finding.where}: {finding.message}", style=style))
