"""Wave leases: of two ``run-due`` processes, only one sends a wave at a time.

``schedule_claims`` (migration v2) holds one lease per (journal key, wave):
``claim`` takes it inside ``BEGIN IMMEDIATE``; ``renew`` keeps it while a long
wave is being sent (``LeaseKeeper`` does so from a thread); ``release`` hands
it back (``idle``) or settles the wave for good (``closed``). Leases live on
the real clock, whatever moment a pass is run for (``run-due --now``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from enum import StrEnum

from mailer.audience.database import Connection, Row
from mailer.audience.store import Heartbeat, transaction
from mailer.core.clock import parse_stamp, stamp
from mailer.core.process import owner_alive

# A lease outlives any sane send run; a crashed owner on this host is noticed at once.
LEASE = timedelta(hours=6)


class Lease(StrEnum):
    """The answer to "may this run-due send this wave?" (``claim``)."""

    TAKEN = "taken"  # yes: the lease is ours
    TAKEN_OVER = "taken over"  # yes, from a run-due that died while it held the lease
    BUSY = "busy"  # no: another live run-due is sending the wave
    CLOSED = "closed"  # no: the wave's grace period ended and it was settled

    @property
    def ours(self) -> bool:
        """True when the lease was granted."""
        return self in (Lease.TAKEN, Lease.TAKEN_OVER)


def claim(conn: Connection, key: str, wave: str, owner: str, now: datetime) -> Lease:
    """Take the lease on a wave, unless another live run holds it or it is closed.

    ``now`` is the real time (leases are about processes, not about the
    schedule a pass may be rehearsing).
    """
    with transaction(conn):  # BEGIN IMMEDIATE: one process at a time reads and writes
        row = conn.execute(
            "SELECT status, owner, expires_at FROM schedule_claims"
            " WHERE campaign_id = ? AND wave = ?",
            (key, wave),
        ).fetchone()
        if row is not None and row[0] == "closed":
            return Lease.CLOSED
        taken_over = row is not None and row[0] == "running" and row[1] != owner
        if taken_over and _alive(row, now):
            return Lease.BUSY
        conn.execute(
            "INSERT INTO schedule_claims (campaign_id, wave, status, owner, claimed_at,"
            " expires_at) VALUES (?, ?, 'running', ?, ?, ?) ON CONFLICT (campaign_id, wave)"
            " DO UPDATE SET status = 'running', owner = excluded.owner,"
            " claimed_at = excluded.claimed_at, expires_at = excluded.expires_at",
            (key, wave, owner, stamp(now), stamp(now + LEASE)),
        )
    return Lease.TAKEN_OVER if taken_over else Lease.TAKEN


def renew(conn: Connection, key: str, wave: str, owner: str, now: datetime) -> bool:
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

    Each renewal counts from ``clock()``: the real time, read afresh (a renewal
    from a moment read when the pass began could already be in the past).
    """

    def __init__(
        self,
        conn: Connection,
        key: str,
        wave: str,
        owner: str,
        *,
        clock: Callable[[], datetime],
        every: float = 60.0,
    ):
        def beat(renewing: Connection) -> bool:
            return renew(renewing, key, wave, owner, clock())

        super().__init__(conn, beat, every)

    @property
    def renewals(self) -> int:
        """How often the lease was renewed."""
        return self.beats


def release(conn: Connection, key: str, wave: str, owner: str, *, status: str = "idle") -> None:
    """Give the lease back (``idle``), or settle the wave for good (``closed``)."""
    conn.execute(
        "UPDATE schedule_claims SET status = ? WHERE campaign_id = ? AND wave = ? AND owner = ?",
        (status, key, wave, owner),
    )


# The wave name of an occurrence-wide row: every wave of the occurrence is settled.
ALL_WAVES = "*"


def settle_occurrence(conn: Connection, key: str, owner: str, now: datetime) -> None:
    """Record that every wave of an occurrence is sent or missed for good.

    Later passes then skip the occurrence without reading the audience (a
    holiday's week of missed-wave lookback would otherwise read everyone
    every five minutes).
    """
    conn.execute(
        "INSERT INTO schedule_claims (campaign_id, wave, status, owner, claimed_at, expires_at)"
        " VALUES (?, ?, 'closed', ?, ?, ?) ON CONFLICT (campaign_id, wave) DO NOTHING",
        (key, ALL_WAVES, owner, stamp(now), stamp(now)),
    )


def closed_waves(conn: Connection, key: str) -> set[str]:
    """The waves of journal key ``key`` settled for good (a read: no write lock taken)."""
    rows = conn.execute(
        "SELECT wave FROM schedule_claims WHERE campaign_id = ? AND status = 'closed'", (key,)
    )
    return {row[0] for row in rows}


def lease_holder(conn: Connection, key: str, wave: str, now: datetime) -> str | None:
    """The owner of a wave's running lease if that run-due is alive at ``now``, else None."""
    row = conn.execute(
        "SELECT status, owner, expires_at FROM schedule_claims WHERE campaign_id = ? AND wave = ?",
        (key, wave),
    ).fetchone()
    if row is None or row[0] != "running" or not _alive(row, now):
        return None
    return str(row[1])


def _alive(row: Row, now: datetime) -> bool:
    """Is the lease's owner still working? Expired leases and dead local processes are not."""
    return parse_stamp(row[2]) > now and owner_alive(str(row[1]))
