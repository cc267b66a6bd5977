"""The send journal: one row per (campaign, recipient), the truth about what went out.

Status moves ``queued → sending → sent | deferred | failed | suppressed``.
``mark_sending`` is committed *before* the SMTP transaction and ``mark_result``
after it, so a crash leaves at most the messages that were in flight in
``sending`` — "unknown": perhaps delivered, perhaps not — and the next run
does not re-send them unless asked to. Each
``mark_sending`` is its own committed transaction (WAL mode,
``synchronous=NORMAL``: it survives a killed process), and the outcome of the
previous message rides along in it, so a message costs one commit, not two.
It is also a claim: a row that another run of the same campaign has sent or
has in flight is left alone, so two overlapping runs never both send.

Each ``mailer send`` run also gets a ``campaign_runs`` row: when, which
transport, whether checks were overridden (``forced``), and the subject, text
and audience that went out (other commands compare campaigns against them).

Runs through the outbox transport write files, not mail: they are journaled
under ``<campaign>@outbox`` (``journal_key``), so a later real send still
reaches everyone, and they count towards no quota, frequency cap or
repetition check (``REAL_MAIL``).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from mailer.audience.store import transaction
from mailer.core.recipient import Recipient

PENDING = ("queued", "deferred")

OUTBOX_SUFFIX = "@outbox"
# SQL condition on a journal or campaign_runs row: real mail, not outbox files.
REAL_MAIL = f"campaign_id NOT LIKE '%{OUTBOX_SUFFIX}'"
# SQL condition on a journal row that counts towards the frequency cap: real mail
# sent since :cap_since, not of the campaign being sent (:campaign_id), so a resumed
# run does not cap itself. One rule for `mailer send` (capped_addresses) and for
# segment selection (mailer.audience.selection).
CAP_COUNTED = (
    f"status = 'sent' AND sent_at >= :cap_since AND campaign_id <> :campaign_id AND {REAL_MAIL}"
)


def journal_key(campaign_id: str, transport_name: str) -> str:
    """The journal key a run uses: the campaign's own, or ``<id>@outbox`` for the outbox.

    Idempotent: a key that already names the outbox is returned as it is.
    """
    if transport_name != "outbox" or campaign_id.endswith(OUTBOX_SUFFIX):
        return campaign_id
    return campaign_id + OUTBOX_SUFFIX


def cap_since(now: datetime, days: int) -> str:
    """The start of a frequency-cap window, as a journal timestamp."""
    return stamp(now - timedelta(days=days))


def capped_addresses(
    conn: sqlite3.Connection, *, max_messages: int, days: int, exclude: str, now: datetime
) -> set[str]:
    """Lower-cased addresses that got ``max_messages`` campaign emails in the last ``days``.

    Rows of ``exclude`` (the campaign being sent) do not count, so a resumed
    run does not cap itself; outbox runs never count.
    """
    rows = conn.execute(
        f"SELECT lower(email) FROM journal WHERE {CAP_COUNTED} "
        "GROUP BY lower(email) HAVING count(*) >= :cap_max",
        {"cap_since": cap_since(now, days), "campaign_id": exclude, "cap_max": max_messages},
    )
    return {row[0] for row in rows}


_now_cache: tuple[int, str] = (0, "")


def utc_now() -> str:
    """The journal's timestamp format, shared with ``mailer.audience.selection``: ``2026-11-22T08:20:38Z``."""
    global _now_cache
    second = int(time.time())
    if _now_cache[0] != second:  # formatting costs more than a journal write's SQL: once a second
        _now_cache = (second, stamp(datetime.fromtimestamp(second, UTC)))
    return _now_cache[1]


def stamp(when: datetime) -> str:
    """A datetime in the journal's format (ISO 8601 UTC to the second; sorts as text)."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> float:
    """A journal timestamp as Unix time."""
    return datetime.fromisoformat(text).timestamp()


@dataclass(frozen=True)
class Entry:
    """What the journal knows about one recipient of one campaign."""

    email: str
    status: str
    attempts: int
    variant: str
    last_code: int | None
    last_reply: str | None
    message_id: str | None
    bounce: bool
    updated_at: str
    sent_at: str | None


# The claim is conditional: a row another run has already sent, or has in flight,
# is left alone (rowcount 0), so two runs of one campaign at once never both send.
_SENDING = (
    "INSERT INTO journal (campaign_id, email, contact_id, variant, status, attempts,"
    " message_id, queued_at, updated_at) VALUES (?, ?, ?, ?, 'sending', 1, ?, ?, ?)"
    " ON CONFLICT (campaign_id, email) DO UPDATE SET status = 'sending',"
    " attempts = attempts + 1, variant = excluded.variant,"
    " message_id = excluded.message_id, updated_at = excluded.updated_at"
    " WHERE journal.status NOT IN ('sent', 'sending') OR (journal.status = 'sending' AND ?)"
)


@contextmanager
def _atomic(conn: sqlite3.Connection) -> Iterator[None]:
    """One transaction — or, when the caller already holds one, part of theirs."""
    if conn.in_transaction:
        yield
        return
    with transaction(conn):
        yield


def _entry(row: sqlite3.Row) -> Entry:
    return Entry(
        email=row[0],
        status=row[1],
        attempts=row[2],
        variant=row[3],
        last_code=row[4],
        last_reply=row[5],
        message_id=row[6],
        bounce=bool(row[7]),
        updated_at=row[8],
        sent_at=row[9],
    )


class Journal:
    """Reads and writes one campaign's journal rows."""

    def __init__(self, conn: sqlite3.Connection, campaign_id: str):
        self.conn = conn
        self.campaign_id = campaign_id
        # Outcomes waiting to ride along with the next commit (see ``mark_result``).
        self._pending: list[tuple[object, ...]] = []

    def entries(self) -> dict[str, Entry]:
        """Every row of this campaign, keyed by lower-cased address."""
        rows = self.conn.execute(
            "SELECT email, status, attempts, variant, last_code, last_reply, message_id, bounce,"
            " updated_at, sent_at FROM journal WHERE campaign_id = ?",
            (self.campaign_id,),
        )
        return {row[0].lower(): _entry(row) for row in rows}

    def queue(self, recipients: Iterable[Recipient]) -> None:
        """Add ``queued`` rows for recipients not yet in the journal (one transaction)."""
        now = utc_now()
        rows = ((self.campaign_id, r.email, r.contact_id, now, now) for r in recipients)
        with _atomic(self.conn):
            self.conn.executemany(
                "INSERT OR IGNORE INTO journal (campaign_id, email, contact_id, status, queued_at,"
                " updated_at) VALUES (?, ?, ?, 'queued', ?, ?)",
                rows,
            )

    def mark_sending(
        self, recipient: Recipient, variant: str, message_id: str, *, unknown_ok: bool = False
    ) -> bool:
        """Commit 'this message may go out now' before the SMTP transaction starts.

        Returns False, and changes nothing, when the row says ``sent`` or
        ``sending``: another run got there first (``unknown_ok`` allows taking
        over a ``sending`` row, for ``--resend-unknown``). Outcomes recorded
        with ``later=True`` are committed in the same transaction.
        """
        now = utc_now()
        row = (self.campaign_id, recipient.email, recipient.contact_id, variant, message_id, now)
        args = (*row, now, int(unknown_ok))
        if not self._pending:  # one statement is its own transaction: no BEGIN/COMMIT needed
            return self.conn.execute(_SENDING, args).rowcount > 0
        with _atomic(self.conn):
            self._write_pending()
            return self.conn.execute(_SENDING, args).rowcount > 0

    def mark_result(
        self,
        email: str,
        status: str,
        code: int | None,
        reply: str,
        *,
        bounce: bool = False,
        later: bool = False,
    ) -> None:
        """Record the outcome of one SMTP transaction (or of a lost connection).

        With ``later`` the update waits for the next commit (the next
        ``mark_sending`` or ``flush``): one commit per message instead of two.
        Until then the row still says ``sending``, so a crash in between can
        only make a delivered message "unknown" — never send it twice — and
        since every message start commits the waiting outcomes, a crash still
        leaves at most one unknown row per concurrent sender.
        """
        now = utc_now()
        sent_at = now if status == "sent" else None
        args = (status, code, reply[:500], int(bounce), now, sent_at, self.campaign_id, email)
        self._pending.append(args)
        if not later:
            self.flush()

    def flush(self) -> None:
        """Commit every outcome recorded with ``later=True``."""
        if self._pending:
            with _atomic(self.conn):
                self._write_pending()

    def _write_pending(self) -> None:
        if self._pending:
            pending, self._pending = self._pending, []
            self.conn.executemany(
                "UPDATE journal SET status = ?, last_code = ?, last_reply = ?, bounce = ?,"
                " updated_at = ?, sent_at = coalesce(?, sent_at)"
                " WHERE campaign_id = ? AND email = ?",
                pending,
            )

    def mark_suppressed(self, recipient: Recipient, reason: str) -> None:
        """Record that a recipient was skipped because they are on the suppression list."""
        now = utc_now()
        self.conn.execute(
            "INSERT INTO journal (campaign_id, email, contact_id, status, last_reply, queued_at,"
            " updated_at) VALUES (?, ?, ?, 'suppressed', ?, ?, ?)"
            " ON CONFLICT (campaign_id, email) DO UPDATE SET status = 'suppressed',"
            " last_reply = excluded.last_reply, updated_at = excluded.updated_at",
            (self.campaign_id, recipient.email, recipient.contact_id, reason, now, now),
        )

    def counts(self) -> dict[str, int]:
        """Number of rows per status (every status present, zero if none)."""
        counts = dict.fromkeys(("queued", "sending", "sent", "deferred", "failed", "suppressed"), 0)
        for status, number in self.conn.execute(
            "SELECT status, COUNT(*) FROM journal WHERE campaign_id = ? GROUP BY status",
            (self.campaign_id,),
        ):
            counts[status] = number
        return counts

    def with_status(self, *statuses: str) -> list[Entry]:
        """Rows in the given statuses, oldest update first."""
        return sorted(
            (e for e in self.entries().values() if e.status in statuses),
            key=lambda e: (e.updated_at, e.email),
        )


def sent_times_since(conn: sqlite3.Connection, seconds: float) -> list[float]:
    """Unix times of every message sent (any campaign) in the last ``seconds``: quota history."""
    since = stamp(datetime.now(UTC) - timedelta(seconds=seconds))
    rows = conn.execute(f"SELECT sent_at FROM journal WHERE sent_at >= ? AND {REAL_MAIL}", (since,))
    return [parse_time(row[0]) for row in rows]


def suppressed_reason(conn: sqlite3.Connection, email: str) -> str | None:
    """The suppression reason for an address, or None when it may be mailed."""
    row = conn.execute("SELECT reason FROM suppressions WHERE email = ?", (email,)).fetchone()
    return row[0] if row else None


def suppressed_set(conn: sqlite3.Connection) -> dict[str, str]:
    """Every suppressed address (lower-cased) with its reason: one query for a whole run."""
    return {
        email.lower(): reason
        for email, reason in conn.execute("SELECT email, reason FROM suppressions")
    }


def suppress_bounce(conn: sqlite3.Connection, email: str, source: str) -> None:
    """Add a hard bounce to the suppression list (through ``mailer.audience.selection`` when present)."""
    try:
        from mailer.audience.selection import suppress
    except ImportError:
        conn.execute(
            "INSERT OR IGNORE INTO suppressions (email, reason, created_at, source)"
            " VALUES (?, 'bounced', ?, ?)",
            (email, utc_now(), source),
        )
        return
    suppress(conn, email, "bounced", source)


@dataclass(frozen=True)
class Run:
    """One row of ``campaign_runs``."""

    id: int
    campaign_id: str
    started_at: str
    finished_at: str | None
    transport: str
    forced: bool
    note: str


def start_run(
    conn: sqlite3.Connection,
    campaign_id: str,
    *,
    transport: str,
    forced: bool,
    subject: str,
    body_text: str,
    audience: str,
) -> int:
    """Insert a ``campaign_runs`` row for a send run and return its id."""
    cursor = conn.execute(
        "INSERT INTO campaign_runs (campaign_id, started_at, transport, forced, subject,"
        " body_text, audience) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (campaign_id, utc_now(), transport, int(forced), subject, body_text, audience),
    )
    return int(cursor.lastrowid or 0)


def finish_run(conn: sqlite3.Connection, run_id: int, note: str) -> None:
    """Close a run row with its finish time and a one-line summary."""
    conn.execute(
        "UPDATE campaign_runs SET finished_at = ?, note = ? WHERE id = ?",
        (utc_now(), note, run_id),
    )


def runs(conn: sqlite3.Connection, campaign_id: str) -> Iterator[Run]:
    """The runs of a campaign, oldest first."""
    for row in conn.execute(
        "SELECT id, campaign_id, started_at, finished_at, transport, forced, note"
        " FROM campaign_runs WHERE campaign_id = ? ORDER BY id",
        (campaign_id,),
    ):
        yield Run(row[0], row[1], row[2], row[3], row[4], bool(row[5]), row[6])


@dataclass
class Status:
    """``mailer status``: where a campaign stands."""

    campaign_id: str
    counts: dict[str, int]
    failures: list[Entry]
    unknown: list[Entry]
    deferred: list[Entry]
    runs: list[Run]

    @property
    def total(self) -> int:
        """Rows in the journal for this campaign."""
        return sum(self.counts.values())

    def to_dict(self) -> dict[str, object]:
        """JSON-ready."""

        def row(e: Entry) -> dict[str, object]:
            return {
                "email": e.email,
                "code": e.last_code,
                "reply": e.last_reply,
                "attempts": e.attempts,
                "bounce": e.bounce,
                "updated_at": e.updated_at,
            }

        return {
            "campaign": self.campaign_id,
            "total": self.total,
            "counts": self.counts,
            "failures": [row(e) for e in self.failures],
            "unknown": [row(e) for e in self.unknown],
            "deferred": [row(e) for e in self.deferred],
            "runs": [
                {
                    "id": r.id,
                    "started_at": r.started_at,
                    "finished_at": r.finished_at,
                    "transport": r.transport,
                    "forced": r.forced,
                    "note": r.note,
                }
                for r in self.runs
            ],
        }


def campaign_ids(conn: sqlite3.Connection) -> list[str]:
    """Every campaign id the journal or the run log knows, sorted."""
    rows = conn.execute(
        "SELECT campaign_id FROM journal UNION SELECT campaign_id FROM campaign_runs ORDER BY 1"
    )
    return [row[0] for row in rows]


def campaign_status(conn: sqlite3.Connection, campaign_id: str) -> Status:
    """Counts by status, every failure with its SMTP reply, unknowns, and the runs so far."""
    journal = Journal(conn, campaign_id)
    return Status(
        campaign_id,
        journal.counts(),
        journal.with_status("failed"),
        journal.with_status("sending"),
        journal.with_status("deferred"),
        list(runs(conn, campaign_id)),
    )
