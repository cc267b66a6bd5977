"""The record of scheduled waves (``schedule_runs``): what each wave did, for ``schedule runs``.

A wave run is ``running`` while it sends, then ``sent``, ``missed`` (its grace
period ended before everyone was reached), ``failed`` (checks or the send
stopped it) or ``crashed`` (its run-due process died: the next pass that takes
the wave over says so, and ``schedule runs`` shows a dead run as crashed at once).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from mailer.audience.database import Connection
from mailer.core.clock import stamp
from mailer.schedule.leases import lease_holder
from mailer.schedule.model import Wave


def start_wave_run(
    conn: Connection, campaign: str, key: str, wave: Wave, count: int, *, now: datetime
) -> int:
    """Open a wave's row in ``schedule_runs`` (outcome ``running``); return its id."""
    cursor = conn.execute(
        "INSERT INTO schedule_runs (campaign, campaign_id, wave, due_at, started_at, outcome,"
        " recipients) VALUES (?, ?, ?, ?, ?, 'running', ?) RETURNING id",
        (campaign, key, wave.key, stamp(wave.due_at), stamp(now), count),
    )
    return int(cursor.fetchall()[0][0])


def finish_wave_run(
    conn: Connection,
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


def mark_crashed(conn: Connection, key: str, wave: str, note: str, *, now: datetime) -> int:
    """Close the ``running`` rows of a wave whose run-due died; return how many there were."""
    cursor = conn.execute(
        "UPDATE schedule_runs SET outcome = 'crashed', note = ?, finished_at = ?"
        " WHERE campaign_id = ? AND wave = ? AND outcome = 'running'",
        (note[:500], stamp(now), key, wave),
    )
    return cursor.rowcount


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


def schedule_runs(
    conn: Connection, now: datetime, campaign: str | None = None
) -> list[ScheduleRun]:
    """Recorded wave runs (all campaigns, or one), oldest first.

    A ``running`` row whose run-due is gone at ``now`` (real time: its lease
    expired or its process died) is shown as ``crashed``.
    """
    sql = (
        "SELECT campaign, campaign_id, wave, due_at, started_at, outcome, recipients, sent,"
        " failed, note FROM schedule_runs"
    )
    rows = conn.execute(
        sql + (" WHERE campaign = ? ORDER BY id" if campaign else " ORDER BY id"),
        (campaign,) if campaign else (),
    )
    runs = [ScheduleRun(*row) for row in rows]
    found = []
    for index, run in enumerate(runs):
        if run.outcome == "running" and lease_holder(conn, run.key, run.wave, now) is None:
            note = run.note or "its run-due process died; the next pass resumes the wave"
            run = replace(run, outcome="crashed", note=note)
        if run.outcome == "crashed":
            later = next((r.started_at for r in runs[index + 1 :] if r.key == run.key), None)
            run = _counted(conn, run, later)
        found.append(run)
    return found


def _counted(conn: Connection, run: ScheduleRun, until: str | None) -> ScheduleRun:
    """A crashed wave's counts as the journal has them: its process died before it could
    write them (it had recorded ``sent 0``). Rows of its key written from its start until
    the next run of that key began; ``sending`` ones are unknown (perhaps delivered)."""
    sql = (
        "SELECT status, count(*) FROM journal WHERE campaign_id = ? AND updated_at >= ?"
        + (" AND updated_at < ?" if until else "")
        + " AND status IN ('sent', 'failed', 'sending') GROUP BY status"
    )
    args = (run.key, run.started_at, until) if until else (run.key, run.started_at)
    counts = dict(conn.execute(sql, args).fetchall())
    unknown = counts.get("sending", 0)
    note = run.note
    if unknown and "unknown" not in note:
        note += f"; {unknown} unknown (perhaps delivered)"
    return replace(run, sent=counts.get("sent", 0), failed=counts.get("failed", 0), note=note)
