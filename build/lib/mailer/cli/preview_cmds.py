"""``mailer preview``: the live preview server in the browser."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from mailer.cli.app import app, console, run


@app.command()
def preview(
    campaign: Annotated[
        Path, typer.Argument(help="campaign file (TOML)", metavar="CAMPAIGN", show_default=False)
    ],
    port: Annotated[
        int, typer.Option("--port", help="port on 127.0.0.1 (0 picks a free one)", min=0, max=65535)
    ] = 0,
    no_open: Annotated[
        bool, typer.Option("--no-open", help="print the URL but do not open a browser")
    ] = False,
    no_browser: Annotated[
        bool,
        typer.Option(
            "--no-browser", help="skip the fold check in headless Chromium (reported as NOT run)"
        ),
    ] = False,
) -> None:
    """Live preview in the browser, updated as you save.

    The inbox line, the email at phone and desktop width with the fold, dark mode, the text
    part, the headers, the checks, and a Send test button. Serves on 127.0.0.1 only and
    reloads the page whenever the campaign, its template or mailer.toml changes. Stop it
    with Ctrl+C.

    Examples:

    \b
      mailer preview campaigns/promotion.toml
      mailer preview campaigns/promotion.toml --no-open --port 8090
    """
    from mailer.services.preview import preview_campaign

    def action() -> None:
        server = preview_campaign(campaign, port=port, fold=not no_browser)
        try:
            # The path is escaped: a file name with [brackets] must not be read as markup.
            shown = escape(str(campaign))
            console.print(f"previewing {shown} at [bold]{server.url}[/bold]  (Ctrl+C to stop)")
            if not no_open:
                import webbrowser

                webbrowser.open(server.url)
            server.wait()
        except KeyboardInterrupt:
            console.print("preview stopped")
        finally:
            server.close()

    run(action)
