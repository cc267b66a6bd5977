"""What the scheduler keeps in the database: wave leases and the record of wave runs.

``schedule_claims`` (migration v2) holds one lease per (journal key, wave):
``claim`` takes it inside ``BEGIN IMMEDIATE``, so of two ``run-due`` processes
only one sends a wave at a time; ``release`` hands it back. ``schedule_runs``
records what each wave did (sent, missed, failed) for ``mailer schedule runs``.
"""

from __future__ import annotations

import os
import socket
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from mailer.schedule import Wave
from mailer.store import transaction

# A lease outlives any sane send run; a crashed owner on this host is noticed at once.
LEASE = timedelta(hours=6)


def journal_statuses(conn: sqlite3.Connection, key: str, emails: list[str]) -> dict[str, str]:
    """Journal status of each address that has a row under ``key`` (lower-cased addresses).

    Looks up only the wave's addresses, 500 at a time: a birthday key gathers a
    year of rows, and every pass would otherwise read them all for each wave.
    """
    found: dict[str, str] = {}
    for start in range(0, len(emails), 500):
        chunk = emails[start : start + 500]
        marks = ",".join("?" * len(chunk))
        rows = conn.execute(
            f"SELECT email, status FROM journal WHERE campaign_id = ? AND email IN ({marks})",
            (key, *chunk),
        )
        found.update((email.lower(), status) for email, status in rows)
    return found


# --- leases ------------------------------------------------------------------


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
    if datetime.fromisoformat(row[2]) <= now:
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


# --- schedule_runs -----------------------------------------------------------


def stamp(moment: datetime) -> str:
    """A database timestamp: ISO 8601 UTC to the second."""
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def start_wave_run(
    conn: sqlite3.Connection, campaign: str, key: str, wave: Wave, count: int
) -> int:
    cursor = conn.execute(
        "INSERT INTO schedule_runs (campaign, campaign_id, wave, due_at, started_at, outcome,"
        " recipients) VALUES (?, ?, ?, ?, ?, 'running', ?)",
        (campaign, key, wave.key, stamp(wave.due_at), stamp(datetime.now(UTC)), count),
    )
    return int(cursor.lastrowid or 0)


def finish_wave_run(
    conn: sqlite3.Connection, run_id: int, outcome: str, sent: int, failed: int, note: str
) -> None:
    """Close a wave's row with its outcome, counts and a short note."""
    conn.execute(
        "UPDATE schedule_runs SET outcome = ?, sent = ?, failed = ?, note = ?, finished_at = ?"
        " WHERE id = ?",
        (outcome, sent, failed, note[:500], stamp(datetime.now(UTC)), run_id),
    )


@dataclass(frozen=True)
class ScheduleRun:
    """One row of ``schedule_runs``."""

    campaign: str
    key: str
    wave: str
    due_at: str
    started_at: str
    outcome: str
    recipients: int
    sent: int
    failed: int
    note: str


def schedule_runs(conn: sqlite3.Connection, campaign: str | None = None) -> list[ScheduleRun]:
    """Recorded wave runs (all campaigns, or one), oldest first."""
    sql = (
        "SELECT campaign, campaign_id, wave, due_at, started_at, outcome, recipients, sent,"
        " failed, note FROM schedule_runs"
    )
    rows = conn.execute(
        sql + (" WHERE campaign = ? ORDER BY id" if campaign else " ORDER BY id"),
        (campaign,) if campaign else (),
    )
    return [ScheduleRun(*row) for row in rows]
