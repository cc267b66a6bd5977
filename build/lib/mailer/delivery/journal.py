"""The send journal: one row per (campaign, recipient), the truth about what went out.

A row is written when a run claims the recipient (``sending``), committed
*before* the message data goes out, and updated with the outcome after it
(``sent``, ``deferred`` to try again, ``failed``). Recipients a run skips get a
row saying why: ``suppressed``, ``held`` (the frequency cap holds them back
for now) or, for a scheduled greeting whose grace period ended, ``missed``.
``queued`` rows come from databases of older versions.

A crash leaves at most the messages that were in flight in ``sending`` —
"unknown": perhaps delivered, perhaps not — and the next run does not re-send
them unless asked to. The claim is conditional: a row that another run of the
same campaign has sent or has in flight is left alone, so two overlapping runs
never both send.

Rows are keyed by a journal key (``mailer.core.keys``): the campaign's id, a
scheduled wave's ``<id>@<occurrence>``, and ``@outbox`` for outbox runs. What
each run did as a whole is in ``campaign_runs`` (``mailer.delivery.runs``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from mailer.audience.database import Connection, Row
from mailer.audience.frequency import REAL_MAIL
from mailer.audience.store import JOURNAL_STATUSES, transaction
from mailer.core.clock import Clock, StampCache, parse_stamp, stamp
from mailer.core.recipient import Recipient

# Rows a later run sends to: not tried yet, tried and to be tried again, or held
# back by the frequency cap (looked at again with that run's own "now").
PENDING = ("queued", "deferred", "held")


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
    run_id: int | None = None


class Claim(StrEnum):
    """The answer to "may this run send to this recipient now?" (``Journal.claim``)."""

    CLAIMED = "claimed"  # the row now says 'sending' for this run: go ahead
    TAKEN = "taken"  # another run sent it, has it in flight, or it failed for good
    SUPPRESSED = "suppressed"  # the address was suppressed (perhaps a moment ago): never send


@dataclass(frozen=True)
class ClaimRules:
    """Which rows a run may take besides ``queued`` and ``deferred`` ones.

    ``live_runs``: ids of runs still at work (``runs.live_runs``); their rows in
    flight are never taken, even with ``resend_unknown``.
    """

    run_id: int | None = None
    retry_failed: bool = False
    resend_unknown: bool = False
    live_runs: frozenset[int] = frozenset()


# The claim is conditional and atomic: a row another run has sent or has in flight, a
# failed row (unless retried on purpose, and never a hard bounce), and any address on
# the suppression list at this moment are left alone (rowcount 0). Two runs of one
# campaign at once never both send, and a suppression committed mid-run stops the send.
_CLAIM = """INSERT INTO journal (campaign_id, email, contact_id, variant, status, attempts,
    message_id, queued_at, updated_at, run_id)
SELECT :key, :email, :contact_id, :variant, 'sending', 1, :message_id, :now, :now, :run_id
WHERE NOT EXISTS (SELECT 1 FROM suppressions WHERE email = :email)
ON CONFLICT (campaign_id, email) DO UPDATE SET status = 'sending',
    attempts = journal.attempts + 1,
    variant = excluded.variant, message_id = excluded.message_id,
    updated_at = excluded.updated_at, run_id = excluded.run_id
WHERE (journal.status IN ('queued', 'deferred', 'held')
    OR (journal.status = 'failed' AND :retry_failed = 1 AND journal.bounce = 0)
    OR (journal.status = 'sending' AND :resend_unknown = 1
        AND coalesce(journal.run_id, 0) NOT IN
            (SELECT CAST(value AS INTEGER) FROM json_each(:live))))
  AND NOT EXISTS (SELECT 1 FROM suppressions WHERE email = :email)"""


@contextmanager
def _atomic(conn: Connection) -> Iterator[None]:
    """One transaction — or, when the caller already holds one, part of theirs.

    Always the store's single writer, on PostgreSQL too: one transaction writes the
    outcomes of some rows and claims others, and two runs doing that under row locks
    alone lock rows in different orders and deadlock (seen in the tests).
    """
    if conn.in_transaction:
        yield
        return
    with transaction(conn):
        yield


def _entry(row: Row) -> Entry:
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
        run_id=row[10],
    )


class Journal:
    """Reads and writes one campaign's journal rows."""

    def __init__(
        self,
        conn: Connection,
        campaign_id: str,
        *,
        clock: Clock | None = None,
        rules: ClaimRules | None = None,
    ):
        """``clock`` stamps the rows this journal writes (a reader needs none); ``rules``
        say which rows ``claim`` may take."""
        self.conn = conn
        self.campaign_id = campaign_id
        self.rules = rules or ClaimRules()
        self.clock = clock
        self._stamps = StampCache(clock) if clock is not None else None
        # Outcomes waiting to ride along with the next commit (see ``mark_result``).
        self._pending: list[tuple[object, ...]] = []

    def _now(self) -> str:
        if self._stamps is None:
            raise TypeError("this Journal was opened without a clock: it cannot write")
        return self._stamps.now()

    def entries(self) -> dict[str, Entry]:
        """Every row of this campaign, keyed by lower-cased address."""
        rows = self.conn.execute(
            "SELECT email, status, attempts, variant, last_code, last_reply, message_id, bounce,"
            " updated_at, sent_at, run_id FROM journal WHERE campaign_id = ?",
            (self.campaign_id,),
        )
        return {row[0].lower(): _entry(row) for row in rows}

    def claim(self, recipient: Recipient, variant: str, message_id: str) -> Claim:
        """Commit 'this message may go out now' before the SMTP transaction starts.

        Takes the row only when the rules allow (see ``_CLAIM``); otherwise
        changes nothing and says why. Outcomes recorded with ``later=True`` are
        committed in the same transaction.
        """
        return self.claim_many([(recipient, variant, message_id)])[0]

    def claim_many(self, requests: Sequence[tuple[Recipient, str, str]]) -> list[Claim]:
        """``claim`` for several messages about to go out at once: one transaction for all.

        Each is ``(recipient, variant, message_id)``. The senders of a run ask
        together when their connections come free in the same moment, and one
        commit costs as much as several claims.
        """
        rules = self.rules
        now = self._now()
        common = {
            "key": self.campaign_id,
            "now": now,
            "run_id": rules.run_id,
            "retry_failed": rules.retry_failed,
            "resend_unknown": rules.resend_unknown,
            "live": json.dumps(sorted(rules.live_runs)),
        }
        claims: list[Claim] = []
        with _atomic(self.conn):
            self._write_pending()
            for recipient, variant, message_id in requests:
                args = {
                    **common,
                    "email": recipient.email,
                    "contact_id": recipient.contact_id,
                    "variant": variant,
                    "message_id": message_id,
                }
                claimed = self.conn.execute(_CLAIM, args).rowcount > 0
                claims.append(Claim.CLAIMED if claimed else self._why_not(recipient.email))
        return claims

    def _why_not(self, email: str) -> Claim:
        suppressed = self.conn.execute(
            "SELECT 1 FROM suppressions WHERE email = ?", (email,)
        ).fetchone()
        return Claim.SUPPRESSED if suppressed else Claim.TAKEN

    def mark_result(
        self,
        email: str,
        status: str,
        code: int | None,
        reply: str,
        *,
        bounce: bool = False,
        later: bool = False,
        charged: bool = True,
    ) -> None:
        """Record the outcome of one SMTP transaction (or of a lost connection).

        ``charged=False`` takes back the attempt the claim counted: the relay's state
        (a 421, no connection), not the recipient, cost it.

        With ``later`` the update waits for the next commit (the next
        ``mark_sending`` or ``flush``): one commit per message instead of two.
        Until then the row still says ``sending``, so a crash in between can
        only make a delivered message "unknown" — never send it twice — and
        since every message start commits the waiting outcomes, a crash still
        leaves at most one unknown row per concurrent sender.
        """
        now = self._now()
        sent_at = now if status == "sent" else None
        args = (
            status,
            code,
            reply[:500],
            int(bounce),
            now,
            sent_at,
            0 if charged else 1,
            self.campaign_id,
            email,
        )
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
                " updated_at = ?, sent_at = coalesce(?, sent_at),"
                " attempts = attempts - ? WHERE campaign_id = ? AND email = ?",
                pending,
            )

    def mark_suppressed(self, recipient: Recipient, reason: str) -> None:
        """Record that a recipient was skipped because they are on the suppression list.

        A row that is ``sent``, ``failed`` or in flight / unknown (``sending``) keeps
        its status: that record says what may have reached the person.
        """
        self._mark_skipped([recipient], "suppressed", reason)

    def mark_held(self, recipient: Recipient, reason: str) -> None:
        """Record that the frequency cap holds a recipient back (a later run looks again)."""
        self._mark_skipped([recipient], "held", reason)

    def mark_missed(self, recipients: Sequence[Recipient], reason: str) -> int:
        """Record scheduled recipients never reached before the grace period ended.

        Only rows not settled otherwise change (no row yet, or pending): a
        ``sent``, ``failed`` or unknown row keeps what it says. Returns how
        many were marked.
        """
        with _atomic(self.conn):
            return self._mark_skipped(recipients, "missed", reason, over=PENDING)

    def _mark_skipped(
        self,
        recipients: Sequence[Recipient],
        status: str,
        reason: str,
        over: tuple[str, ...] = (*PENDING, "suppressed"),
    ) -> int:
        """Write ``status`` for recipients with no row, or a row in one of ``over``."""
        now = self._now()
        marks = ", ".join(f"'{state}'" for state in over)  # constants, not user data
        sql = (
            "INSERT INTO journal (campaign_id, email, contact_id, status, last_reply,"
            " queued_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (campaign_id, email) DO UPDATE SET status = excluded.status,"
            " last_reply = excluded.last_reply, updated_at = excluded.updated_at"
            f" WHERE journal.status IN ({marks})"
        )
        marked = 0
        for person in recipients:
            args = (self.campaign_id, person.email, person.contact_id, status, reason, now, now)
            marked += self.conn.execute(sql, args).rowcount
        return marked

    def counts(self) -> dict[str, int]:
        """Number of rows per status (every status present, zero if none)."""
        counts = dict.fromkeys(JOURNAL_STATUSES, 0)
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

    def entries_for(self, emails: Sequence[str]) -> dict[str, Entry]:
        """The rows of ``emails`` that exist, keyed by lower-cased address (one query)."""
        rows = self.conn.execute(
            "SELECT email, status, attempts, variant, last_code, last_reply, message_id, bounce,"
            " updated_at, sent_at, run_id FROM journal WHERE campaign_id = ?"
            " AND email IN (SELECT value FROM json_each(?))",
            (self.campaign_id, json.dumps(list(emails))),
        )
        return {row[0].lower(): _entry(row) for row in rows}

    def statuses(self, emails: Sequence[str]) -> dict[str, str]:
        """The status of each of ``emails`` that has a row (keyed by lower-cased address).

        Looks up only these addresses, 500 at a time: a birthday key gathers a
        year of rows, and reading them all for each wave would cost every pass.
        """
        found: dict[str, str] = {}
        for start in range(0, len(emails), 500):
            chunk = list(emails[start : start + 500])
            marks = ",".join("?" * len(chunk))
            rows = self.conn.execute(
                f"SELECT email, status FROM journal WHERE campaign_id = ? AND email IN ({marks})",
                (self.campaign_id, *chunk),
            )
            found.update((email.lower(), status) for email, status in rows)
        return found


def sent_times_since(conn: Connection, since: datetime) -> list[float]:
    """Unix times of every real message sent (any campaign) since ``since``: quota history."""
    rows = conn.execute(
        f"SELECT sent_at FROM journal WHERE sent_at >= ? AND {REAL_MAIL}", (stamp(since),)
    )
    return [parse_stamp(row[0]).timestamp() for row in rows]
