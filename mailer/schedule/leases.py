"""Wave leases: of two ``run-due`` processes, only one sends a wave at a time.

``schedule_claims`` (migration v2) holds one lease per (journal key, wave):
``claim`` takes it inside ``BEGIN IMMEDIATE``; ``renew`` keeps it while a long
wave is being sent (``LeaseKeeper`` does so from a thread); ``release`` hands
it back (``idle``) or settles the wave for good (``closed``).
"""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from types import TracebackType

from mailer.audience.store import transaction
from mailer.core.clock import parse_stamp, stamp

# A lease outlives any sane send run; a crashed owner on this host is noticed at once.
LEASE = timedelta(hours=6)


def claim(conn: sqlite3.Connection, key: str, wave: str, owner: str, now: datetime) -> bool:
    """Take the lease on a wave; False when another live run holds it or it is closed."""
    with transaction(conn):  # BEGIN IMMEDIATE: one process at a time reads and writes
        row = conn.execute(
            "SELECT status, owner, expires_at FROM schedule_claims"
            " WHERE campaign_id = ? AND wave = ?",
            (key, wave),
        ).fetchone()
        if row is not None and row[0] == "closed":
            return False
        if row is not None and row[0] == "running" and row[1] != owner and _alive(row, now):
            return False
        conn.execute(
            "INSERT INTO schedule_claims (campaign_id, wave, status, owner, claimed_at,"
            " expires_at) VALUES (?, ?, 'running', ?, ?, ?) ON CONFLICT (campaign_id, wave)"
            " DO UPDATE SET status = 'running', owner = excluded.owner,"
            " claimed_at = excluded.claimed_at, expires_at = excluded.expires_at",
            (key, wave, owner, stamp(now), stamp(now + LEASE)),
        )
    return True


def renew(conn: sqlite3.Connection, key: str, wave: str, owner: str, now: datetime) -> bool:
    """Push a held lease's expiry to ``now + LEASE``; False when ``owner`` no longer holds it.

    A wave bigger than the throttle lets through in ``LEASE`` (12,000 people at
    2,000 an hour) would otherwise lose its lease half-way, and the next cron
    run would send the rest of it a second time.
    """
    cursor = conn.execute(
        "UPDATE schedule_claims SET expires_at = ? WHERE campaign_id = ? AND wave = ?"
        " AND owner = ? AND status = 'running'",
        (stamp(now + LEASE), key, wave, owner),
    )
    return cursor.rowcount == 1


class LeaseKeeper:
    """Renews a wave's lease from a thread, every ``every`` seconds, while the wave is sent.

    A thread rather than the send loop's progress callback: a throttle waiting
    out its hourly or daily cap sends nothing for hours, and the lease must
    outlive that wait too. The thread has its own connection (SQLite
    connections are not shared between threads). The renewed expiry counts
    from the run's ``now`` (which tests fake) plus the real time elapsed.
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        key: str,
        wave: str,
        owner: str,
        now: datetime,
        *,
        every: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        row = conn.execute("PRAGMA database_list").fetchone()
        self.path = str(row[2]) if row else ""
        self.key, self.wave, self.owner, self.now = key, wave, owner, now
        self.every, self.clock = every, clock
        self.started = clock()
        self.renewals = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="lease-keeper", daemon=True)

    def __enter__(self) -> LeaseKeeper:
        if self.path:  # an in-memory database has no second process to fend off
            self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _loop(self) -> None:
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        try:
            while not self._stop.wait(self.every):
                moment = self.now + timedelta(seconds=self.clock() - self.started)
                try:
                    if not renew(conn, self.key, self.wave, self.owner, moment):
                        return  # taken over or released: nothing left to keep
                    self.renewals += 1
                except sqlite3.Error:
                    continue  # a busy database: try again next time
        finally:
            conn.close()


def release(
    conn: sqlite3.Connection, key: str, wave: str, owner: str, *, status: str = "idle"
) -> None:
    """Give the lease back (``idle``), or settle the wave for good (``closed``)."""
    conn.execute(
        "UPDATE schedule_claims SET status = ? WHERE campaign_id = ? AND wave = ? AND owner = ?",
        (status, key, wave, owner),
    )


def _alive(row: sqlite3.Row, now: datetime) -> bool:
    """Is the lease's owner still working? Expired leases and dead local processes are not."""
    if parse_stamp(row[2]) <= now:
        return False
    host, _, rest = str(row[1]).partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
