"""The record of scheduled waves (``schedule_runs``): what each wave did, for ``schedule runs``.

A wave run is ``running`` while it sends, then ``sent``, ``missed`` (its grace
period ended before everyone was reached) or ``failed`` (checks or the send
stopped it).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime

from mailer.core.clock import stamp
from mailer.schedule.model import Wave


def start_wave_run(
    conn: sqlite3.Connection, campaign: str, key: str, wave: Wave, count: int, *, now: datetime
) -> int:
    """Open a wave's row in ``schedule_runs`` (outcome ``running``); return its id."""
    cursor = conn.execute(
        "INSERT INTO schedule_runs (campaign, campaign_id, wave, due_at, started_at, outcome,"
        " recipients) VALUES (?, ?, ?, ?, ?, 'running', ?)",
        (campaign, key, wave.key, stamp(wave.due_at), stamp(now), count),
    )
    return int(cursor.lastrowid or 0)


def finish_wave_run(
    conn: sqlite3.Connection,
    run_id: int,
    outcome: str,
    sent: int,
    failed: int,
    note: str,
    *,
    now: datetime,
) -> None:
    """Close a wave's row with its outcome, counts and a short note."""
    conn.execute(
        "UPDATE schedule_runs SET outcome = ?, sent = ?, failed = ?, note = ?, finished_at = ?"
        " WHERE id = ?",
        (outcome, sent, failed, note[:500], stamp(now), run_id),
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
