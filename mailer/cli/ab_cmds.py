"""``mailer ab``: an A/B test's figures, and picking the winner for the rest of the audience."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from mailer.cli.app import app, console, run

ab_app = typer.Typer(
    help="""A/B tests with a test share ([ab] in the campaign).

A live send of an [ab] campaign mails a test share first; after the wait, the winner goes to
the rest.

Examples:

\b
  mailer ab show campaigns/oolong-ab.toml
  mailer ab pick campaigns/oolong-ab.toml B
""",
    no_args_is_help=True,
)
app.add_typer(ab_app, name="ab")

_SMTP = typer.Option("--smtp", metavar="URL", help="relay URL (beats MAILER_SMTP_URL)")


@ab_app.command("show")
def show(
    campaign: Annotated[Path, typer.Argument(help="campaign file", show_default=False)],
    smtp: Annotated[str | None, _SMTP] = None,
) -> None:
    """Where an A/B test stands, and each variant's figures.

    Examples:

    \b
      mailer ab show campaigns/oolong-ab.toml
    """
    from mailer.services.ab import ab_view

    view = run(lambda: ab_view(campaign, smtp=smtp))
    state, test = view.state, view.test
    if state.started_at is None:
        console.print(Text(f"{view.key}: the test share ({test.test_share:.0%}) is not sent yet"))
        return
    assert state.decide_after is not None
    status = (
        f"winner {state.winner}"
        if state.winner
        else f"running until {state.decide_after:%Y-%m-%d %H:%M} UTC (pick_by {test.pick_by})"
    )
    console.print(Text(f"{view.key}: {status}"))
    if view.section is not None:
        from mailer.cli.report_cmds import print_ab

        print_ab(view.section, running=False)
        return
    table = Table()
    for column in ("variant", "sent", "clicked" if test.pick_by == "clicks" else "left", "rate"):
        table.add_column(column, justify="left" if column == "variant" else "right")
    for f in view.figures:
        table.add_row(f.variant, str(f.sent), str(f.hits), f"{f.rate:.1%}")
    console.print(table)


@ab_app.command("pick")
def pick(
    campaign: Annotated[Path, typer.Argument(help="campaign file", show_default=False)],
    variant: Annotated[
        str | None, typer.Argument(help="pick this variant by hand", show_default=False)
    ] = None,
    now: Annotated[
        str | None,
        typer.Option(
            "--now",
            metavar="ISO",
            help="pretend it is this moment (e.g. 2027-02-06T01:00Z; no offset means UTC)",
        ),
    ] = None,
    smtp: Annotated[str | None, _SMTP] = None,
) -> None:
    """Decide an A/B test's winner now.

    By the rule once the wait is over, or VARIANT by hand; the rest of the audience gets the
    winner with the next `mailer send --live` (or `mailer run-due`).

    Examples:

    \b
      mailer ab pick campaigns/oolong-ab.toml
      mailer ab pick campaigns/oolong-ab.toml B
    """
    from mailer.cli.schedule_cmds import parse_now
    from mailer.services.ab import ab_pick

    moment = run(lambda: parse_now(now))
    decision = run(lambda: ab_pick(campaign, variant, moment, smtp=smtp))
    console.print(Text(f"winner {decision.winner}: {decision.reason}"))
    console.print(Text(f"the rest of the audience gets it with: mailer send {campaign} --live"))
