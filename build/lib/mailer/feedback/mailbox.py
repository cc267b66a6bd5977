"""``mailer bounces fetch``: read the bounce mailbox over IMAP, apply what it reports, file it away.

Order matters for crash safety: a batch's events are applied (each once: the
report's Message-ID plus the address is the event id) before its messages are
moved to the done folder, so a run cut short is simply run again; the repeats
are recognised and not applied twice. Mail that is not a report (bounce,
complaint, auto-reply, or an unsubscribe request sent to the List-Unsubscribe
mailto: address) stays in the mailbox for a person to read.
"""

from __future__ import annotations

import imaplib
import re
import ssl
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import unquote, urlsplit

from mailer.audience.database import Connection
from mailer.core.errors import TransportError
from mailer.core.settings import Feedback
from mailer.feedback.events import Kind, apply_event
from mailer.feedback.reports import match_report, read_report

PASSWORD_ENV = "MAILER_IMAP_PASSWORD"
CHUNK = 100  # messages fetched per IMAP command
_LOOPBACK = {"127.0.0.1", "::1", "localhost"}


@dataclass
class Fetched:
    """What one ``bounces fetch`` did."""

    messages: int = 0  # in the mailbox folder when the run started
    hard_bounces: int = 0
    soft_bounces: int = 0
    complaints: int = 0
    sender_side: int = 0  # refusals of our mail (auth, policy, reputation): nobody suppressed
    ignored: int = 0  # auto-replies and delivery notices
    unsubscribes: int = 0  # mailto: unsubscribe requests from recipients we mailed
    suppressed: int = 0  # addresses put on the suppression list now
    repeats: int = 0  # events applied by an earlier run (a crash before the move)
    not_ours: list[str] = field(default_factory=list)  # bounces of addresses we never mailed
    not_reports: int = 0  # left in the mailbox: not a bounce or a complaint
    moved: int = 0

    def to_dict(self) -> dict[str, object]:
        """JSON-ready."""
        return {
            "messages": self.messages,
            "hard_bounces": self.hard_bounces,
            "soft_bounces": self.soft_bounces,
            "complaints": self.complaints,
            "sender_side": self.sender_side,
            "ignored": self.ignored,
            "unsubscribes": self.unsubscribes,
            "suppressed": self.suppressed,
            "repeats": self.repeats,
            "not_ours": len(self.not_ours),
            "not_reports": self.not_reports,
            "moved": self.moved,
        }


@dataclass(frozen=True)
class Mailbox:
    """Where the bounce mailbox is (from ``[feedback] imap``)."""

    host: str
    port: int
    user: str
    folder: str
    tls: bool  # imaps:// (TLS from the start); imap:// uses STARTTLS except on loopback

    @classmethod
    def from_url(cls, url: str) -> Mailbox:
        """``imaps://USER@HOST[:PORT]/FOLDER`` (folder default INBOX)."""
        parts = urlsplit(url)
        if parts.scheme not in ("imap", "imaps") or not parts.hostname or not parts.username:
            raise TransportError(
                f"not an IMAP mailbox URL: {url!r}", hint="use imaps://USER@HOST/INBOX"
            )
        tls = parts.scheme == "imaps"
        return cls(
            parts.hostname,
            parts.port or (993 if tls else 143),
            unquote(parts.username),
            unquote(parts.path.lstrip("/")) or "INBOX",
            tls,
        )


def fetch_bounces(
    conn: Connection,
    mailbox: Mailbox,
    password: str,
    rules: Feedback,
    *,
    done_folder: str,
    now: Callable[[], datetime],
    context: ssl.SSLContext | None = None,
    unsubscribe_address: str | None = None,
) -> Fetched:
    """Read every message in the mailbox folder, apply the reports, move them to ``done_folder``.

    ``unsubscribe_address``: the List-Unsubscribe mailto: address, whose mail is read
    as unsubscribe requests."""
    result = Fetched()
    with _session(mailbox, password, context) as imap:
        _ok(imap.select(_quote(mailbox.folder)), f"open the folder {mailbox.folder!r}")
        typ, data = imap.uid("SEARCH", "ALL")
        _ok((typ, data), "list the messages")
        uids = (data[0] or b"").split()
        result.messages = len(uids)
        if uids:
            imap.create(_quote(done_folder))  # NO when it exists already: fine
        for start in range(0, len(uids), CHUNK):
            chunk = uids[start : start + CHUNK]
            handled = [
                uid
                for uid, raw in _bodies(imap, chunk)
                if _apply(conn, raw, rules, now, result, unsubscribe_address)
            ]
            if handled:
                _move(imap, handled, done_folder)
                result.moved += len(handled)
    return result


def _apply(
    conn: Connection,
    raw: bytes,
    rules: Feedback,
    now: Callable[[], datetime],
    result: Fetched,
    unsubscribe_address: str | None = None,
) -> bool:
    """Apply one message's report; False when it is not a report (it stays put)."""
    report = read_report(raw, unsubscribe_address)
    if report.kind == "other":
        result.not_reports += 1
        return False
    matched = match_report(conn, report, "mailbox")
    result.not_ours += matched.not_ours
    for event in matched.events:
        applied = apply_event(conn, event, rules, now())
        if not applied.new:
            result.repeats += 1
            continue
        result.suppressed += int(applied.suppressed)
        counter = _COUNTERS.get(event.kind)
        if counter:
            setattr(result, counter, getattr(result, counter) + 1)
    return True


_COUNTERS = {
    Kind.HARD_BOUNCE: "hard_bounces",
    Kind.SOFT_BOUNCE: "soft_bounces",
    Kind.COMPLAINT: "complaints",
    Kind.SENDER_SIDE: "sender_side",
    Kind.IGNORED: "ignored",
    Kind.UNSUBSCRIBE: "unsubscribes",
}


@contextmanager
def _session(
    mailbox: Mailbox, password: str, context: ssl.SSLContext | None
) -> Iterator[imaplib.IMAP4]:
    where = f"{mailbox.host}:{mailbox.port}"
    context = context or ssl.create_default_context()
    try:
        if mailbox.tls:
            imap: imaplib.IMAP4 = imaplib.IMAP4_SSL(
                mailbox.host, mailbox.port, ssl_context=context, timeout=30
            )
        else:
            imap = imaplib.IMAP4(mailbox.host, mailbox.port, timeout=30)
            if "STARTTLS" in imap.capabilities:
                imap.starttls(context)
            elif mailbox.host not in _LOOPBACK:
                imap.logout()
                raise TransportError(
                    f"the IMAP server at {where} offers no STARTTLS: the password would "
                    "cross the network in clear",
                    hint="use imaps:// (port 993)",
                )
        imap.login(mailbox.user, password)
    except (TimeoutError, OSError) as exc:
        raise TransportError(
            f"cannot reach the bounce mailbox at {where}: {exc}",
            hint="check [feedback] imap in mailer.toml and that the server is up",
        ) from None
    except imaplib.IMAP4.error as exc:
        raise TransportError(
            f"the bounce mailbox at {where} refused the login for {mailbox.user!r}: {_said(exc)}",
            hint=f"check the user in [feedback] imap and {PASSWORD_ENV}",
        ) from None
    try:
        yield imap
    finally:
        with suppress(OSError, imaplib.IMAP4.error):
            imap.logout()


def _bodies(imap: imaplib.IMAP4, uids: list[bytes]) -> Iterator[tuple[bytes, bytes]]:
    """(uid, raw message) for each uid, fetched in one command without setting \\Seen."""
    typ, data = imap.uid("FETCH", b",".join(uids).decode(), "(UID BODY.PEEK[])")
    _ok((typ, data), "fetch messages")
    for item in data:
        if isinstance(item, tuple):
            found = re.search(rb"UID (\d+)", item[0])
            if found:
                yield found.group(1), item[1]


def _move(imap: imaplib.IMAP4, uids: list[bytes], folder: str) -> None:
    """Move messages (RFC 6851 MOVE, or copy, flag deleted and expunge)."""
    message_set = b",".join(uids).decode()
    if "MOVE" in _capabilities(imap):
        _ok(imap.uid("MOVE", message_set, _quote(folder)), f"move mail to {folder!r}")
        return
    _ok(imap.uid("COPY", message_set, _quote(folder)), f"copy mail to {folder!r}")
    _ok(imap.uid("STORE", message_set, "+FLAGS.SILENT", r"(\Deleted)"), "flag moved mail")
    imap.expunge()


def _capabilities(imap: imaplib.IMAP4) -> set[str]:
    """The server's capabilities as they are after login (they change at login)."""
    typ, data = imap.capability()
    if typ != "OK" or not data or not isinstance(data[0], bytes):
        return set(imap.capabilities)
    return set(data[0].decode("ascii", "replace").upper().split())


def _ok(answer: tuple[str, Sequence[object]], what: str) -> None:
    typ, data = answer
    if typ != "OK":
        raise TransportError(f"the bounce mailbox would not {what}: {_said(data)}")


def _said(value: object) -> str:
    if isinstance(value, list):
        value = value[0] if value else ""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return str(value)


def _quote(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'
