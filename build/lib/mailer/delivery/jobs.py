"""Sends shared by several worker processes: queued jobs and batch leases.

``send --live --enqueue-only`` checks a campaign and queues a *job*; any number
of ``mailer worker`` processes then work on it. Each worker walks the job's
audience batch by batch (the same batches for everyone: the audience's own
order, ``BATCH`` at a time) and plans only the batches it *leases*: the first
worker to ask for batch 7 gets it; a batch leased to a run that died (heartbeat
silent, or its process gone) is taken over. Inside a batch the journal's
conditional claims still decide each recipient, so even two workers that saw
the audience differently (contacts added or removed mid-send) never both send
to one address.

Limits are shared by splitting them: while ``n`` runs of a job are live, each
keeps ``1/n`` of the rate, of the hourly and daily quotas and of each domain's
rate (``Throttler.set_share``), looked at again before every batch.

The last run to finish (no other run of the job still holds a lease) makes one
more pass over the whole audience without leases — a sweep that picks up anyone
a batch boundary moved past — and then closes the job.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from mailer.audience.database import Connection, Row, is_postgres
from mailer.audience.store import transaction
from mailer.core.clock import stamp
from mailer.core.recipient import Recipient
from mailer.delivery.runs import live_runs

JOB_STATUSES = ("open", "paused", "done", "cancelled")


@dataclass(frozen=True)
class Job:
    """One queued live send."""

    id: int
    campaign_path: str
    journal_key: str
    fingerprint: str
    options: dict[str, Any]
    status: str
    enqueued_at: str
    finished_at: str | None
    note: str

    def to_dict(self) -> dict[str, Any]:
        """The job as JSON-ready data."""
        return {
            "id": self.id,
            "campaign": self.campaign_path,
            "journal_key": self.journal_key,
            "status": self.status,
            "enqueued_at": self.enqueued_at,
            "finished_at": self.finished_at,
            "note": self.note,
        }


def fingerprint(files: Iterable[Path]) -> str:
    """A short hash of the files a campaign is made of: a worker refuses a job whose
    campaign changed after it was checked and queued."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0")
        digest.update(path.read_bytes() if path.exists() else b"(missing)")
    return digest.hexdigest()[:16]


def enqueue(
    conn: Connection,
    campaign_path: str,
    journal_key: str,
    fingerprint: str,
    options: dict[str, Any],
    now: datetime,
) -> Job:
    """Queue a job (the send it describes was checked by the caller); return it.

    A job already open for the same journal key and the same files is returned
    instead of a second one; an open job of an older version of the files is
    cancelled ("replaced"): workers lease no more of it and take up the new one.
    """
    with transaction(conn):
        found = conn.execute(
            "SELECT id, fingerprint FROM send_jobs WHERE journal_key = ? AND status = 'open'",
            (journal_key,),
        ).fetchone()
        if found is not None and found[1] != fingerprint:
            conn.execute(
                "UPDATE send_jobs SET status = 'cancelled', finished_at = ?,"
                " note = 'replaced: the campaign was queued again after a change' WHERE id = ?",
                (stamp(now), found[0]),
            )
            found = None
        if found is None:
            found = conn.execute(
                "INSERT INTO send_jobs (campaign_path, journal_key, fingerprint, options, status,"
                " enqueued_at) VALUES (?, ?, ?, ?, 'open', ?) RETURNING id",
                (campaign_path, journal_key, fingerprint, json.dumps(options), stamp(now)),
            ).fetchall()[0]
    job = job_by_id(conn, int(found[0]))
    assert job is not None
    return job


def job_by_id(conn: Connection, job_id: int) -> Job | None:
    """The job with this id, or None."""
    row = conn.execute("SELECT * FROM send_jobs WHERE id = ?", (job_id,)).fetchone()
    return _job(row) if row else None


def jobs(conn: Connection, *statuses: str) -> list[Job]:
    """Jobs (with one of ``statuses``, when given), oldest first."""
    rows = conn.execute("SELECT * FROM send_jobs ORDER BY id").fetchall()
    return [_job(r) for r in rows if not statuses or r["status"] in statuses]


def close_job(conn: Connection, job_id: int, status: str, note: str, now: datetime) -> None:
    """Set an open job's end state (``done``, ``paused`` or ``cancelled``) with a note."""
    assert status in JOB_STATUSES
    conn.execute(
        "UPDATE send_jobs SET status = ?, note = ?, finished_at = ?"
        " WHERE id = ? AND status = 'open'",
        (status, note, stamp(now), job_id),
    )


def cancel_job(conn: Connection, job_id: int, now: datetime) -> Job | None:
    """Cancel an open or paused job: workers lease no more of its batches (messages they
    have in flight finish). Returns the job as it is now, or None when there is none."""
    conn.execute(
        "UPDATE send_jobs SET status = 'cancelled', note = 'cancelled by the user',"
        " finished_at = ? WHERE id = ? AND status IN ('open', 'paused')",
        (stamp(now), job_id),
    )
    return job_by_id(conn, job_id)


def release(conn: Connection, job_id: int, run_id: int) -> None:
    """Give up a run's leases (it stopped before the end): other runs take the batches
    over, and their planners skip whoever this run already sent to."""
    conn.execute("DELETE FROM batch_leases WHERE job_id = ? AND run_id = ?", (job_id, run_id))


def _job(row: Row) -> Job:
    return Job(
        id=row["id"],
        campaign_path=row["campaign_path"],
        journal_key=row["journal_key"],
        fingerprint=row["fingerprint"],
        options=json.loads(row["options"]),
        status=row["status"],
        enqueued_at=row["enqueued_at"],
        finished_at=row["finished_at"],
        note=row["note"],
    )


def lease_holders(
    conn: Connection, job_id: int, now: datetime, excluding: int | None = None
) -> tuple[int, int]:
    """How many unfinished runs (other than ``excluding``) hold leases on the job:
    (live, dead)."""
    rows = conn.execute(
        "SELECT DISTINCT r.id FROM batch_leases b JOIN campaign_runs r ON r.id = b.run_id"
        " WHERE b.job_id = ? AND r.finished_at IS NULL AND r.id <> coalesce(?, 0)",
        (job_id, excluding),
    ).fetchall()
    alive = live_runs(conn, now)
    live = sum(1 for (run_id,) in rows if run_id in alive)
    return live, len(rows) - live


class Shareable(Protocol):
    """What a batch share adjusts: the run's throttle (``Throttler``)."""

    refresh_share: Callable[[], None] | None

    def set_share(self, fraction: float) -> None: ...


@dataclass
class BatchShare:
    """One run's part of a job: which batches it leases, and its share of the limits.

    ``sweep``: take every batch without leasing (the job's last pass).
    ``audience``: the job's audience size (the run does not count it again), for
    choosing how to build the messages.
    """

    conn: Connection
    job_id: int
    now: Callable[[], datetime]  # the run's clock
    sweep: bool = False
    audience: int = 0
    run_id: int | None = None
    throttle: Shareable | None = None
    taken: int = 0
    passed: int = 0  # batches leased by other runs, left to them
    shares: list[float] = field(default_factory=list)

    def bind(self, run_id: int, throttle: Shareable) -> None:
        """Attach the share to the run that uses it and to that run's throttle, which
        asks it once a second how many runs share the limits now."""
        self.run_id, self.throttle = run_id, throttle
        throttle.refresh_share = self.refresh

    def batches(self, stream: Iterable[list[Recipient]]) -> Iterator[list[Recipient]]:
        """The batches of ``stream`` this run gets to plan and send."""
        for number, batch in enumerate(stream):
            if self.sweep or self.take(number):
                self.taken += 1
                yield batch
            else:
                self.passed += 1

    def take(self, batch: int) -> bool:
        """Lease ``batch`` to this run if it is free or its run is dead; True when ours."""
        assert self.run_id is not None, "bind the share to its run first"
        now = self.now()
        # SQLite: one writer at a time. PostgreSQL: row locks only, so workers on
        # several hosts lease at once; a lease another worker is looking at right now
        # is skipped (SKIP LOCKED), not waited for.
        with transaction(self.conn, rows_only=True):
            status = self.conn.execute(
                "SELECT status FROM send_jobs WHERE id = ?", (self.job_id,)
            ).fetchone()
            if status is None or status[0] != "open":
                return False  # cancelled or paused: lease nothing more
            if self.conn.execute(
                "INSERT INTO batch_leases (job_id, batch, run_id, taken_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (job_id, batch) DO NOTHING",
                (self.job_id, batch, self.run_id, stamp(now)),
            ).rowcount:
                taken = True
            else:
                taken = self._take_over(batch, now)
        if taken and not self.shares:  # the first batch: set the share; the throttle
            self.refresh()  # keeps it fresh
        return taken

    def _take_over(self, batch: int, now: datetime) -> bool:
        """The batch is leased already: take it when its run is dead (not finished)."""
        lock = " FOR UPDATE OF b SKIP LOCKED" if is_postgres(self.conn) else ""
        row = self.conn.execute(
            "SELECT b.run_id, r.finished_at FROM batch_leases b"
            " LEFT JOIN campaign_runs r ON r.id = b.run_id WHERE b.job_id = ? AND b.batch = ?"
            + lock,
            (self.job_id, batch),
        ).fetchone()
        if row is None:
            return False  # another worker holds the row this moment: it decides
        if row[0] == self.run_id:
            return True
        # A finished run's batch is done; a live run's is being done.
        if row[1] is not None or row[0] in live_runs(self.conn, now):
            return False
        self.conn.execute(
            "UPDATE batch_leases SET run_id = ?, taken_at = ? WHERE job_id = ? AND batch = ?",
            (self.run_id, stamp(now), self.job_id, batch),
        )
        return True

    def refresh(self) -> None:
        """Set the throttle's share from the job's live runs now (runs end, workers join)."""
        self._share(self._working(self.now()))

    def _working(self, now: datetime) -> int:
        """Live runs with batches of this job (this one included): a worker's run that
        found nothing left to lease does not hold a share."""
        return 1 + lease_holders(self.conn, self.job_id, now, excluding=self.run_id)[0]

    def _share(self, working: int) -> None:
        fraction = 1.0 / working
        if self.throttle is not None and (not self.shares or self.shares[-1] != fraction):
            self.throttle.set_share(fraction)
            self.shares.append(fraction)
