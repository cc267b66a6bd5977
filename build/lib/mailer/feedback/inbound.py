"""``mailer bounces serve``: receive bounces and complaints directly, as the return-path's MX.

For senders who point the MX of their bounce domain at this machine instead of
keeping a mailbox: a small SMTP server (aiosmtpd) that accepts mail for that
domain only (never a relay) and for the List-Unsubscribe mailto: address,
reads each message as ``bounces fetch`` does (``reports``), applies it, and
keeps mail that is no report as a ``.eml`` file in a folder for a person to
read, so nothing sent to the address is lost.

A report line longer than SMTP's 1,000 characters is accepted (aiosmtpd would
answer a permanent ``500 Line too long``, and the reporting server would drop
the report): lines are only limited by the message size.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from socket import socket

from aiosmtpd.smtp import SMTP, Envelope, Session

from mailer.audience.store import open_store
from mailer.core.settings import Feedback
from mailer.feedback.events import apply_event
from mailer.feedback.reports import match_report, read_report

MAX_MESSAGE = 10 * 1024 * 1024  # bytes; a bounce quoting a large message stays well under


class _LongLines(SMTP):
    """aiosmtpd's server with lines limited only by the message size (see the docstring)."""

    line_length_limit = MAX_MESSAGE + 2


@dataclass
class Inbound:
    """Counts since the server started (for the log line per message and the tests)."""

    reports: int = 0
    events: int = 0
    not_ours: int = 0
    kept: int = 0  # not a report: written to the unread folder


class BounceHandler:
    """aiosmtpd handler: accept mail for ``domains``, apply reports, keep the rest."""

    def __init__(
        self,
        db_path: Path,
        rules: Feedback,
        domains: set[str],
        unread: Path,
        now: Callable[[], datetime],
        say: Callable[[str], None] = print,
        store_url: str | None = None,
        unsubscribe_address: str | None = None,
    ):
        self.db_path, self.rules, self.now, self.say = db_path, rules, now, say
        self.store_url = store_url
        self.unsubscribe_address = (unsubscribe_address or "").lower() or None
        self.domains = {d.lower().rstrip(".") for d in domains}
        self.unread = unread
        self.counts = Inbound()

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        """Mail for the bounce domains and the unsubscribe address only: this is not a relay."""
        domain = address.rpartition("@")[2].lower().rstrip(".")
        if domain not in self.domains and not self._unsubscribe_address(address):
            return "550 5.7.1 relaying denied: this server takes bounces only"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Apply the report (or keep the message); 250 once it is safely recorded."""
        raw = bytes(envelope.original_content or b"")
        try:
            line = await asyncio.to_thread(self._take, raw)
        except Exception as exc:  # a full disk or a locked database: the sender retries
            self.say(f"could not record a message: {exc}")
            return "451 4.3.0 cannot record this now, try again later"
        self.say(line)
        return "250 2.0.0 OK"

    def _unsubscribe_address(self, address: str) -> bool:
        """``address`` is the mailto: unsubscribe address (or it with a +token)."""
        if not self.unsubscribe_address:
            return False
        local, _, domain = address.lower().partition("@")
        want_local, _, want_domain = self.unsubscribe_address.partition("@")
        return domain == want_domain and local.partition("+")[0] == want_local

    def _take(self, raw: bytes) -> str:
        report = read_report(raw, self.unsubscribe_address)
        if report.kind == "other":
            self.unread.mkdir(parents=True, exist_ok=True)
            name = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}.eml"
            (self.unread / name).write_bytes(raw)
            self.counts.kept += 1
            return f"kept a message that is no report: {self.unread.name}/{name}"
        conn = open_store(self.db_path, self.store_url)
        try:
            matched = match_report(conn, report, "inbound")
            applied = [apply_event(conn, e, self.rules, self.now()) for e in matched.events]
        finally:
            conn.close()
        self.counts.reports += 1
        self.counts.events += sum(a.new for a in applied)
        self.counts.not_ours += len(matched.not_ours)
        kinds = ", ".join(str(e.kind) for e in matched.events) or "nothing of ours"
        # No address in the log: counts and kinds only.
        return f"{report.kind}: {kinds}" + (
            f" ({len(matched.not_ours)} address(es) we never mailed: skipped)"
            if matched.not_ours
            else ""
        )


async def serve_inbound(
    handler: BounceHandler, host: str = "127.0.0.1", port: int = 0, *, sock: socket | None = None
) -> asyncio.Server:
    """Listen with ``handler`` on ``sock``, else on ``host:port`` (0: any free port)."""
    loop = asyncio.get_running_loop()

    def factory() -> SMTP:
        return _LongLines(handler, data_size_limit=MAX_MESSAGE, hostname="mailer-bounces")

    if sock is not None:
        return await loop.create_server(factory, sock=sock)
    return await loop.create_server(factory, host, port)
