"""The run log (``campaign_runs``) and a campaign's status: what each send run did.

Each send run gets a ``campaign_runs`` row: when, which transport, whether the
checks were overridden (``forced``), and the subject, text and audience that
went out; other commands compare campaigns against them (repetition). A
campaign's ``Status`` gathers its journal counts, failures, unknowns and runs.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from mailer.core.clock import stamp
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


def start_run(
    conn: sqlite3.Connection,
    campaign_id: str,
    *,
    now: datetime,
    transport: str,
    forced: bool,
    subject: str,
    body_text: str,
    audience: str,
) -> int:
    """Insert a ``campaign_runs`` row for a send run and return its id."""
    cursor = conn.execute(
        "INSERT INTO campaign_runs (campaign_id, started_at, transport, forced, subject,"
        " body_text, audience) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (campaign_id, stamp(now), transport, int(forced), subject, body_text, audience),
    )
    return int(cursor.lastrowid or 0)


def finish_run(conn: sqlite3.Connection, run_id: int, note: str, *, now: datetime) -> None:
    """Close a run row with its finish time and a one-line summary."""
    conn.execute(
        "UPDATE campaign_runs SET finished_at = ?, note = ? WHERE id = ?",
        (stamp(now), note, run_id),
    )


def runs(conn: sqlite3.Connection, campaign_id: str) -> Iterator[Run]:
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
    unknown: list[Entry]
    deferred: list[Entry]
    runs: list[Run]

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


def campaign_ids(conn: sqlite3.Connection) -> list[str]:
    """Every campaign id the journal or the run log knows, sorted."""
    rows = conn.execute(
        "SELECT campaign_id FROM journal UNION SELECT campaign_id FROM campaign_runs ORDER BY 1"
    )
    return [row[0] for row in rows]


def campaign_status(conn: sqlite3.Connection, campaign_id: str) -> Status:
    """Counts by status, every failure with its SMTP reply, unknowns, and the runs so far."""
    journal = Journal(conn, campaign_id)
    return Status(
        campaign_id,
        journal.counts(),
        journal.with_status("failed"),
        journal.with_status("sending"),
        journal.with_status("deferred"),
        list(runs(conn, campaign_id)),
    )
