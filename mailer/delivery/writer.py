"""The journal's writes during a send, from a thread of their own: the loop only sends.

Every message costs journal writes (its claim before the SMTP transaction,
its outcome after), and a commit costs as much as a good part of an SMTP
transaction. ``JournalWriter`` takes those writes off the event loop: a
thread with its own connection to the same database file commits whatever
has been asked for since its last commit, in one transaction. Under load
that is many claims and outcomes per commit; the loop meanwhile serves the
other connections.

The crash guarantee is unchanged: a sender waits until its claim is
committed before its SMTP transaction starts, so after a SIGKILL at most the
messages in flight (``concurrency``) are unknown. Outcomes are written after
the fact; a crash before their commit leaves such a row ``sending`` — unknown,
never sent twice.

A database with no file (in memory) cannot be opened twice: there the
writes happen in the loop's own thread (``InlineWriter``), same interface.
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mailer.audience.suppressions import suppress
from mailer.core.clock import Clock
from mailer.core.recipient import Recipient
from mailer.delivery.journal import Claim, ClaimRules, Journal

_BATCH = 500  # requests at most per transaction


@dataclass
class _Request:
    """One write: ``apply(journal)`` in the writer's transaction, its answer to ``reply``."""

    apply: Callable[[Journal], Any]
    reply: Callable[[Any, BaseException | None], None] | None = None


class InlineWriter:
    """The journal writes in the loop's own thread, claims batched per turn of the loop.

    A sender asks for its claim and waits; the claims asked for in the same
    turn (replies often arrive together) and the outcomes recorded since the
    last commit share one transaction, committed at the end of the turn.
    """

    def __init__(self, journal: Journal):
        self.journal = journal
        self._waiting: list[tuple[tuple[Recipient, str, str], asyncio.Future[Claim]]] = []

    def claim(self, recipient: Recipient, variant: str, message_id: str) -> asyncio.Future[Claim]:
        """Claim the row before the SMTP transaction (committed when the future is done)."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[Claim] = loop.create_future()
        self._waiting.append(((recipient, variant, message_id), answer))
        if len(self._waiting) == 1:
            loop.call_soon(self._commit)
        return answer

    def _commit(self) -> None:
        waiting, self._waiting = self._waiting, []
        try:
            claims = self.journal.claim_many([request for request, _ in waiting])
        except Exception as exc:  # a broken database: every sender hears it
            for _, answer in waiting:
                if not answer.done():
                    answer.set_exception(exc)
            return
        for (_, answer), claim in zip(waiting, claims, strict=True):
            if not answer.done():
                answer.set_result(claim)

    def outcome(self, email: str, status: str, code: int | None, reply: str, bounce: bool) -> None:
        """Record an SMTP transaction's outcome (committed with the next claim or flush)."""
        self.journal.mark_result(email, status, code, reply, bounce=bounce, later=True)

    def mark_suppressed(self, recipient: Recipient, reason: str) -> None:
        """Record a recipient skipped for being on the suppression list."""
        self.journal.mark_suppressed(recipient, reason)

    def suppress(self, email: str, source: str, now: datetime) -> None:
        """Put a hard bounce on the suppression list."""
        suppress(self.journal.conn, email, "bounced", source, now=now)

    async def flush(self) -> None:
        """Commit everything recorded so far."""
        self.journal.flush()

    def close(self) -> None:
        """Nothing to release."""


class JournalWriter:
    """The journal writes of a run, committed in batches by a thread of their own."""

    def __init__(self, path: str, key: str, clock: Clock, rules: ClaimRules):
        self.path, self.key, self.clock, self.rules = path, key, clock, rules
        self._requests: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="mailer-journal", daemon=True)
        self._thread.start()

    async def claim(self, recipient: Recipient, variant: str, message_id: str) -> Claim:
        """Claim the row before the SMTP transaction (committed when this returns)."""
        result = await self._ask(lambda journal: journal.claim(recipient, variant, message_id))
        return Claim(result)

    def outcome(self, email: str, status: str, code: int | None, reply: str, bounce: bool) -> None:
        """Record an SMTP transaction's outcome (committed with the writer's next batch)."""
        self._tell(lambda j: j.mark_result(email, status, code, reply, bounce=bounce, later=True))

    def mark_suppressed(self, recipient: Recipient, reason: str) -> None:
        """Record a recipient skipped for being on the suppression list."""
        self._tell(lambda journal: journal.mark_suppressed(recipient, reason))

    def suppress(self, email: str, source: str, now: datetime) -> None:
        """Put a hard bounce on the suppression list."""
        self._tell(lambda journal: suppress(journal.conn, email, "bounced", source, now=now))

    async def flush(self) -> None:
        """Wait until everything asked for so far is committed."""
        await self._ask(lambda journal: None)

    def close(self) -> None:
        """Commit what is left and stop the thread."""
        self._requests.put(None)
        self._thread.join()

    def _tell(self, apply: Callable[[Journal], Any]) -> None:
        if self._failure is not None:
            raise self._failure
        self._requests.put(_Request(apply))

    def _ask(self, apply: Callable[[Journal], Any]) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[Any] = loop.create_future()

        def reply(value: Any, error: BaseException | None) -> None:
            def settle() -> None:
                if answer.done():
                    return
                if error is not None:
                    answer.set_exception(error)
                else:
                    answer.set_result(value)

            loop.call_soon_threadsafe(settle)

        if self._failure is not None:
            reply(None, self._failure)
        else:
            self._requests.put(_Request(apply, reply))
        return answer

    def _run(self) -> None:
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("PRAGMA wal_autocheckpoint=20000")
        journal = Journal(conn, self.key, clock=self.clock, rules=self.rules)
        try:
            while True:
                first = self._requests.get()
                batch = [first] if first is not None else []
                stop = first is None
                while not stop and len(batch) < _BATCH:
                    try:
                        more = self._requests.get_nowait()
                    except queue.Empty:
                        break
                    if more is None:
                        stop = True
                    else:
                        batch.append(more)
                self._commit(conn, journal, batch)
                if stop:
                    return
        finally:
            conn.close()

    def _commit(self, conn: sqlite3.Connection, journal: Journal, batch: list[_Request]) -> None:
        """One transaction for the whole batch; then every asker hears its answer."""
        answers: list[tuple[_Request, Any]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for request in batch:
                answers.append((request, request.apply(journal)))
            journal.flush()
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            self._failure = exc
            for request in batch:
                if request.reply is not None:
                    request.reply(None, exc)
            return
        for request, value in answers:
            if request.reply is not None:
                request.reply(value, None)


def journal_writer(conn: sqlite3.Connection, journal: Journal) -> JournalWriter | InlineWriter:
    """A writer thread for a database file; in-line writes for a database in memory."""
    row = conn.execute("PRAGMA database_list").fetchone()
    path = str(row[2]) if row else ""
    if not path or journal.clock is None:
        return InlineWriter(journal)
    return JournalWriter(path, journal.campaign_id, journal.clock, journal.rules)
