"""The Typer application object and the helpers every command module shares.

Command modules (``campaign_cmds``, ``contacts_cmds``, ...) register their
commands on ``app``. They stay thin: parse arguments, call one service
(``mailer.services``), print its result with rich. Heavy libraries are
imported inside the commands so that ``mailer --help`` stays fast.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.text import Text

from mailer.cli.advice import worded
from mailer.core.errors import MailerError

ROOT_HELP = """Email-marketing campaigns from the command line, kept as files.

Render, check, preview and send campaigns; contacts and segments; scheduled greetings;
unsubscribes and bounces. Run it in your workspace: the folder with mailer.toml, campaigns/
and templates/. Each command explains itself with `mailer COMMAND --help`; the tutorial is
docs/tutorial.md.

Examples:

\b
  mailer contacts import campaigns/contacts.csv --list customers
  mailer check campaigns/promotion.toml
  mailer send campaigns/promotion.toml --live
"""

app = typer.Typer(
    name="mailer",
    help=ROOT_HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help text: rich-formatted help costs ~70 ms of imports on every --help.
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        from mailer import __version__

        typer.echo(f"mailer {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
    workspace: Annotated[
        Path | None,
        typer.Option(
            "--workspace",
            metavar="DIR",
            envvar="MAILER_WORKSPACE",
            show_envvar=False,
            help="the folder holding mailer.toml (or $MAILER_WORKSPACE)",
            show_default="found from here upwards",
        ),
    ] = None,
) -> None:
    """Email-marketing campaigns from the command line, kept as files."""
    if ctx.invoked_subcommand == "init" or ctx.resilient_parsing:
        return  # init makes a workspace; it does not use one
    # Click has already taken the subcommand's arguments off ctx here: look at argv for
    # --help, which should print help alone.
    asked_help = bool({"--help", "-h"} & set(sys.argv[1:]))
    run(lambda: _enter_workspace(workspace, quiet=asked_help))


def _enter_workspace(given: Path | None, *, quiet: bool) -> None:
    """Find the workspace, load its .env, and say which one this command uses.

    The line goes to stderr, and only to a terminal: scripts' output (and
    ``--json``) stay exactly as they were.
    """
    from mailer.core.workspace import WORKSPACE_ENV, find_workspace, load_dotenv

    if given is not None and not given.is_dir():
        from mailer.core.errors import ConfigError

        source = "MAILER_WORKSPACE" if os.environ.get("MAILER_WORKSPACE") else "--workspace"
        raise ConfigError(
            f"the workspace {str(given)!r} is not a folder",
            where=source,
            hint="name the folder that holds mailer.toml",
        )
    if given is not None:
        # In the environment, so `mailer serve`, workers and run-due's children see it too.
        os.environ[WORKSPACE_ENV] = str(given.absolute())
    found = find_workspace()
    load_dotenv(found.root, os.environ)
    if not quiet and err_console.is_terminal:
        err_console.print(Text(f"workspace: {found.describe()}", style="dim"), soft_wrap=True)


console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

T = TypeVar("T")


def print_rows(title: str, rows: list[tuple[str, str]]) -> None:
    """A heading line, then aligned ``key  value`` rows, never wrapped mid-value.

    soft_wrap keeps paths, subjects and counts on one line whatever the
    terminal width (a rich table would break them at 80 columns).
    """
    width = max((len(key) for key, _ in rows), default=0)
    lines = [title] + [f"  {key.ljust(width)}  {value}" for key, value in rows]
    console.print(Text("\n".join(lines)), soft_wrap=True)


def fail(error: MailerError) -> NoReturn:
    """Print a user-facing error (no traceback) and exit 1."""
    # Text, not markup: user data in messages may contain [brackets].
    print_error(error)
    raise typer.Exit(1)


def print_error(error: MailerError) -> None:
    """``error: ...`` on stderr, worded for the command line (see ``advice``)."""
    err_console.print(Text("error: ", style="bold red") + Text(worded(error)), soft_wrap=True)


def run(action: Callable[[], T]) -> T:
    """Call a core function, turning a ``MailerError`` into a clean message and exit code 1."""
    try:
        return action()
    except MailerError as error:
        fail(error)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
