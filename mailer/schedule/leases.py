"""Wave leases: of two ``run-due`` processes, only one sends a wave at a time.

``schedule_claims`` (migration v2) holds one lease per (journal key, wave):
``claim`` takes it inside ``BEGIN IMMEDIATE``; ``renew`` keeps it while a long
wave is being sent (``LeaseKeeper`` does so from a thread); ``release`` hands
it back (``idle``) or settles the wave for good (``closed``).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from mailer.audience.store import Heartbeat, transaction
from mailer.core.clock import parse_stamp, stamp
from mailer.core.process import owner_alive

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


class LeaseKeeper(Heartbeat):
    """Renews a wave's lease every ``every`` seconds, from a thread, while the wave is sent.

    The renewed expiry counts from the run's ``now`` (which tests fake) plus the
    real time elapsed on ``clock``.
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
        started = clock()

        def beat(renewing: sqlite3.Connection) -> bool:
            moment = now + timedelta(seconds=clock() - started)
            return renew(renewing, key, wave, owner, moment)

        super().__init__(conn, beat, every)

    @property
    def renewals(self) -> int:
        """How often the lease was renewed."""
        return self.beats


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
    return parse_stamp(row[2]) > now and owner_alive(str(row[1]))
