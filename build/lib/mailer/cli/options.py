"""Flags several commands share, declared once (Typer reads them from the annotations)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

CampaignRefArg = Annotated[
    str, typer.Argument(help="campaign file or id", metavar="CAMPAIGN", show_default=False)
]
# MAILER_DB and [store] path are applied by load_settings: the same default for every command.
DbOpt = Annotated[
    Path | None,
    typer.Option(
        "--db",
        help="the SQLite database file",
        show_default="$MAILER_DB, else [store] path in mailer.toml, else mailer.db",
    ),
]
SmtpOpt = Annotated[
    str | None, typer.Option("--smtp", metavar="URL", help="relay URL (beats MAILER_SMTP_URL)")
]
SmtpProfileOpt = Annotated[
    str | None, typer.Option("--smtp-profile", help="named [smtp.profiles.NAME] in mailer.toml")
]
InsecureOpt = Annotated[
    bool,
    typer.Option(
        "--insecure-skip-tls-verify",
        help="DANGEROUS: accept any relay certificate (local test relays only)",
    ),
]
ConcurrencyOpt = Annotated[
    int | None, typer.Option("--concurrency", min=1, max=64, help="messages in flight")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print the result as JSON")]
