"""``mailer bounces fetch``: bounces and complaints from the bounce mailbox (IMAP)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.text import Text

from mailer.cli.app import app, console, run

bounces_app = typer.Typer(
    help="""Bounces and complaints that come back as mail.

Examples:

\b
  mailer bounces fetch
  mailer bounces serve --domain bounces.example.com
""",
    no_args_is_help=True,
)
app.add_typer(bounces_app, name="bounces")


@bounces_app.command("fetch")
def fetch(
    imap: Annotated[
        str | None,
        typer.Option(
            "--imap",
            metavar="URL",
            help="imaps://USER@HOST/FOLDER",
            show_default="[feedback] imap in mailer.toml",
        ),
    ] = None,
    done: Annotated[
        str | None,
        typer.Option(
            "--done-folder",
            help="where handled mail goes",
            show_default="[feedback] done_folder, else Processed",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
) -> None:
    """Read bounces and complaints from the bounce mailbox.

    DSN bounces and ARF complaints over IMAP ([feedback] imap in mailer.toml; password:
    MAILER_IMAP_PASSWORD): applied to the suppression list, then moved to the done folder.

    Examples:

    \b
      mailer bounces fetch
      mailer bounces fetch --imap imaps://bounces@mail.example.com/INBOX
    """
    from mailer.services.bounces import fetch as fetch_mail

    result = run(lambda: fetch_mail(imap, done))
    if as_json:
        print(json.dumps(result.to_dict(), indent=2))
        return
    lines = [
        f"messages      {result.messages}",
        f"hard bounces  {result.hard_bounces}",
        f"soft bounces  {result.soft_bounces}",
        f"complaints    {result.complaints}",
        f"sender side   {result.sender_side} (receivers refused our mail: nobody suppressed;"
        " see mailer status)",
        f"unsubscribes  {result.unsubscribes} (asked by mail)",
        f"ignored       {result.ignored} (auto-replies, delivery notices)",
        f"suppressed    {result.suppressed} address(es) now",
        f"repeats       {result.repeats} (applied by an earlier run)",
        f"not ours      {len(result.not_ours)} (addresses we never mailed: skipped)",
        f"not reports   {result.not_reports} (left in the mailbox for a person)",
        f"moved         {result.moved}",
    ]
    for line in lines:
        console.print(Text(line))


@bounces_app.command("serve")
def serve(
    host: Annotated[str, typer.Option("--host", help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="port to listen on")] = 2525,
    domain: Annotated[
        list[str] | None,
        typer.Option(
            "--domain",
            help="accept mail for this domain (repeatable)",
            show_default="the sender's domain",
        ),
    ] = None,
) -> None:
    """Receive bounces by SMTP, as the return path's MX.

    An SMTP server (aiosmtpd) that accepts mail for the bounce domains only, never a relay;
    reports are applied as `mailer bounces fetch` does.

    Examples:

    \b
      mailer bounces serve --domain bounces.example.com --port 25
    """
    from mailer.services.bounces import bounce_handler, listening_socket, serve_bounces

    handler = run(lambda: bounce_handler(domain or []))
    sock = run(lambda: listening_socket(host, port))
    domains = ", ".join(sorted(handler.domains))
    console.print(Text(f"receiving bounces for {domains} on {host}:{port} (Ctrl+C stops)"))
    handler.say = lambda line: console.print(Text(line))
    serve_bounces(handler, sock)
