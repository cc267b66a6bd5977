"""``mailer templates adopt FILE``: other tools' merge tags rewritten as mailer's Jinja.

Shows a unified diff; writes only with ``--write`` (in place) or ``-o FILE``;
lists, with line numbers, what it could not translate.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from mailer.cli.app import app, console, err_console, run

templates_app = typer.Typer(
    help="""Templates: bring one in from Mailchimp, SendGrid or Mailgun.

Examples:

\b
  mailer templates adopt mailchimp.html
  mailer templates adopt mailchimp.html -o templates/spring.mjml
""",
    no_args_is_help=True,
)
app.add_typer(templates_app, name="templates")


@templates_app.command("adopt")
def adopt(
    file: Annotated[Path, typer.Argument(help="the template (MJML or HTML)", metavar="FILE")],
    write: Annotated[
        bool, typer.Option("--write", help="rewrite FILE in place (without it: show the diff only)")
    ] = False,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", metavar="OUT", help="write the result to OUT instead"),
    ] = None,
) -> None:
    """Rewrite another tool's merge tags as mailer's Jinja; shows the diff.

    Mailchimp, Handlebars, Liquid, Mailgun, SendGrid and Campaign Monitor tags are rewritten;
    what cannot be is listed with its line. Nothing is written without --write or -o.

    Examples:

    \b
      mailer templates adopt mailchimp.html
      mailer templates adopt mailchimp.html --write
      mailer templates adopt sendgrid.html -o templates/spring.mjml
    """
    from mailer.services.templates import adopt_file, save_adopted

    adopted = run(lambda: adopt_file(file))
    diff = difflib.unified_diff(
        adopted.source.splitlines(keepends=True),
        adopted.text.splitlines(keepends=True),
        fromfile=str(file),
        tofile=str(output or file),
    )
    for line in diff:
        console.print(Text(line.rstrip("\n")), soft_wrap=True, highlight=False)
    tools = ", ".join(sorted(adopted.tools))
    summary = f"{adopted.changes} tag(s) rewritten" + (f" ({tools})" if tools else "")
    err_console.print(Text(summary), soft_wrap=True)
    if adopted.untranslated:
        err_console.print(Text(f"could not translate {len(adopted.untranslated)} tag(s):"))
        for item in adopted.untranslated:
            err_console.print(
                Text(f"  {file}:{item.line}: {item.tag}: {item.reason}"), soft_wrap=True
            )
    if adopted.error:
        err_console.print(Text(f"error: the result is not valid Jinja ({adopted.error})", "red"))
    target = output or (file if write else None)
    if target is None:
        if adopted.changed:
            err_console.print("Nothing was written: add --write, or -o FILE.")
        return
    run(lambda: save_adopted(adopted, target))
    err_console.print(Text(f"wrote {target}"), soft_wrap=True)
