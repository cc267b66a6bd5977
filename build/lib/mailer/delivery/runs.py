"""The run log (``campaign_runs``) and a campaign's status: what each send run did.

Each send run gets a ``campaign_runs`` row: when, which transport, whether the
checks were overridden (``forced``), and the subject, text and audience that
went out; other commands compare campaigns against them (repetition).

While it sends, a run keeps a heartbeat in its row (``keep_alive``). A row in
flight (``sending``) whose run is live is being sent right now; one whose run
crashed or finished is *unknown*: perhaps delivered. ``live_runs`` tells them
apart, so nothing takes over another live run's recipients. A campaign's
``Status`` gathers its journal counts, failures, rows in flight, unknowns and runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from mailer.audience.database import Connection
from mailer.audience.store import Heartbeat
from mailer.core.clock import Clock, stamp, stamp_unix
from mailer.core.process import owner_alive, process_owner
from mailer.delivery.journal import Entry, Journal


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


# A live run writes its heartbeat this often; one silent for STALE_AFTER is taken as dead.
HEARTBEAT_SECONDS = 15.0
STALE_AFTER = timedelta(seconds=4 * HEARTBEAT_SECONDS)


def start_run(
    conn: Connection,
    campaign_id: str,
    *,
    now: datetime,
    transport: str,
    forced: bool,
    subject: str,
    body_text: str,
    audience: str,
    job_id: int | None = None,
) -> int:
    """Insert a ``campaign_runs`` row for a send run (this process, alive now); return its id.

    ``job_id``: the queued job (``mailer worker``) the run works for.
    """
    cursor = conn.execute(
        "INSERT INTO campaign_runs (campaign_id, started_at, transport, forced, subject,"
        " body_text, audience, owner, heartbeat_at, job_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " RETURNING id",
        (
            campaign_id,
            stamp(now),
            transport,
            int(forced),
            subject,
            body_text,
            audience,
            process_owner(),
            stamp(now),
            job_id,
        ),
    )
    return int(cursor.fetchall()[0][0])


def keep_alive(conn: Connection, run_id: int, clock: Clock) -> Heartbeat:
    """A heartbeat for a running send (``with keep_alive(...):``), every HEARTBEAT_SECONDS."""

    def beat(beating: Connection) -> bool:
        cursor = beating.execute(
            "UPDATE campaign_runs SET heartbeat_at = ? WHERE id = ? AND finished_at IS NULL",
            (stamp_unix(clock.time()), run_id),
        )
        return cursor.rowcount == 1

    return Heartbeat(conn, beat, HEARTBEAT_SECONDS)


def live_runs(conn: Connection, now: datetime) -> frozenset[int]:
    """Ids of send runs still at work: not finished, heartbeat fresh, process alive."""
    rows = conn.execute(
        "SELECT id, owner FROM campaign_runs WHERE finished_at IS NULL AND heartbeat_at >= ?",
        (stamp(now - STALE_AFTER),),
    )
    return frozenset(run_id for run_id, owner in rows if owner_alive(owner))


def finish_run(conn: Connection, run_id: int, note: str, *, now: datetime) -> None:
    """Close a run row with its finish time and a one-line summary."""
    conn.execute(
        "UPDATE campaign_runs SET finished_at = ?, note = ? WHERE id = ?",
        (stamp(now), note, run_id),
    )


def runs(conn: Connection, campaign_id: str) -> Iterator[Run]:
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
    unknown: list[Entry]  # in flight when their run crashed or stopped: perhaps delivered
    deferred: list[Entry]
    runs: list[Run]
    in_flight: list[Entry] = field(default_factory=list)  # being sent by a live run now

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
            "in_flight": [{**row(e), "run": e.run_id} for e in self.in_flight],
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


def campaign_ids(conn: Connection) -> list[str]:
    """Every campaign id the journal or the run log knows, sorted."""
    rows = conn.execute(
        "SELECT campaign_id FROM journal UNION SELECT campaign_id FROM campaign_runs ORDER BY 1"
    )
    return [row[0] for row in rows]


def campaign_status(conn: Connection, campaign_id: str, now: datetime) -> Status:
    """Counts by status, every failure with its SMTP reply, unknowns, and the runs so far.

    Rows ``sending`` in a run that is live at ``now`` are in flight, not unknown.
    """
    journal = Journal(conn, campaign_id)
    live = live_runs(conn, now)
    sending = journal.with_status("sending")
    return Status(
        campaign_id,
        journal.counts(),
        journal.with_status("failed"),
        [e for e in sending if e.run_id not in live],
        journal.with_status("deferred"),
        list(runs(conn, campaign_id)),
        [e for e in sending if e.run_id in live],
    )
