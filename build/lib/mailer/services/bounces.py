"""``mailer bounces fetch`` and ``serve``: bounces and complaints, from a mailbox or as an MX."""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
from contextlib import suppress
from pathlib import Path

from mailer.core.clock import utc_now
from mailer.core.errors import ConfigError
from mailer.feedback.inbound import BounceHandler, serve_inbound
from mailer.feedback.mailbox import PASSWORD_ENV, Fetched, Mailbox, fetch_bounces
from mailer.services.listening import listening_socket
from mailer.services.workspace import open_database, workspace_settings

__all__ = [
    "BounceHandler",
    "Fetched",
    "bounce_handler",
    "fetch",
    "listening_socket",
    "serve_bounces",
]


def fetch(
    imap: str | None = None,
    done_folder: str | None = None,
    *,
    context: ssl.SSLContext | None = None,
) -> Fetched:
    """Read the mailbox (``imap`` or ``[feedback] imap``), apply bounces and complaints."""
    settings = workspace_settings()
    rules = settings.feedback
    url = imap or rules.imap
    if not url:
        raise ConfigError(
            "no bounce mailbox is configured",
            hint='add imap = "imaps://USER@HOST/INBOX" under [feedback] in mailer.toml, '
            "or pass --imap",
        )
    password = os.environ.get(PASSWORD_ENV, "")
    if not password:
        raise ConfigError(
            f"{PASSWORD_ENV} is not set: the bounce mailbox's password comes from the "
            "environment, never from a file",
            hint=f"export {PASSWORD_ENV}=...",
        )
    conn = open_database(settings)
    try:
        return fetch_bounces(
            conn,
            Mailbox.from_url(url),
            password,
            rules,
            done_folder=done_folder or rules.done_folder,
            now=utc_now,
            context=context,
            unsubscribe_address=settings.unsubscribe_mailto,
        )
    finally:
        conn.close()


def bounce_handler(domains: list[str], unread: Path | None = None) -> BounceHandler:
    """The handler for ``mailer bounces serve`` in this workspace (default domain: the sender's)."""
    settings = workspace_settings()
    wanted = set(domains) or {settings.sender.email.rpartition("@")[2]}
    folder = unread or settings.root / "bounces-unread"
    open_database(settings).close()  # a broken database is an error before anything listens
    return BounceHandler(
        settings.db_path,
        settings.feedback,
        wanted,
        folder,
        utc_now,
        store_url=settings.store_url,
        unsubscribe_address=settings.unsubscribe_mailto,
    )


def serve_bounces(handler: BounceHandler, sock: socket.socket) -> None:
    """Receive bounces on ``sock`` (``listening_socket``) until stopped (Ctrl-C)."""

    async def main() -> None:
        server = await serve_inbound(handler, sock=sock)
        async with server:
            await server.serve_forever()

    with suppress(KeyboardInterrupt):
        asyncio.run(main())
