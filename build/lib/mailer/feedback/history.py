"""What came back, read for people: one address's history, a campaign's reasons, sender problems.

``contacts show`` lists an address's feedback events (each with its reason,
raw status and the report it came from); ``mailer report`` and ``mailer
status`` count a campaign's by kind and reason; ``mailer status`` and
``mailer doctor`` show sender-side refusals — the receivers refusing *our*
mail (authentication, reputation, policy, content) — as a sender problem.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from mailer.audience.database import Connection
from mailer.core.clock import stamp
from mailer.feedback.reasons import DESCRIPTIONS, reason_named


@dataclass(frozen=True)
class FeedbackEntry:
    """One recorded decision about an address."""

    received_at: str
    kind: str  # hard_bounce, soft_bounce, sender_side, complaint, unsubscribe, ...
    reason: str  # a Reason value, or "" (recorded before reasons, or not a bounce)
    status: str  # the raw status as reported
    source: str
    campaign: str
    detail: str
    report_id: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


@dataclass(frozen=True)
class ReasonCount:
    """How many addresses of a campaign came back for one kind and reason."""

    kind: str
    reason: str
    addresses: int
    example: str  # one server reply, for the person reading

    @property
    def description(self) -> str:
        """The reason in words ("the mailbox is full")."""
        found = reason_named(self.reason)
        return DESCRIPTIONS[found] if found else self.kind.replace("_", " ")


@dataclass(frozen=True)
class SenderProblem:
    """Receivers refusing our mail for one reason, lately."""

    reason: str
    addresses: int
    campaigns: tuple[str, ...]
    example: str

    @property
    def description(self) -> str:
        """The reason in words."""
        found = reason_named(self.reason)
        return DESCRIPTIONS[found] if found else "refused because of our sending"


def history(conn: Connection, email: str, limit: int = 20) -> list[FeedbackEntry]:
    """The newest feedback events about ``email`` (newest first)."""
    rows = conn.execute(
        "SELECT received_at, kind, reason, status, source, campaign_id, detail, report_id"
        " FROM feedback_events WHERE email = ? ORDER BY received_at DESC, id DESC LIMIT ?",
        (email, limit),
    )
    return [FeedbackEntry(*(str(v or "") for v in row)) for row in rows]


def campaign_reasons(conn: Connection, campaign: str) -> list[ReasonCount]:
    """A campaign's bounces, refusals and complaints by kind and reason (most first)."""
    rows = conn.execute(
        "SELECT kind, reason, count(DISTINCT email), max(detail) FROM feedback_events"
        " WHERE campaign_id = ? AND kind IN ('hard_bounce', 'soft_bounce', 'sender_side',"
        " 'complaint') GROUP BY kind, reason ORDER BY count(DISTINCT email) DESC, kind, reason",
        (campaign,),
    )
    return [ReasonCount(str(k), str(r or ""), int(n), str(d or "")[:160]) for k, r, n, d in rows]


def sender_problems(conn: Connection, now: datetime, days: int = 30) -> list[SenderProblem]:
    """Sender-side refusals of the last ``days``, by reason (most first)."""
    since = stamp(now - timedelta(days=days))
    rows = conn.execute(
        "SELECT reason, count(DISTINCT email), max(detail) FROM feedback_events"
        " WHERE kind = 'sender_side' AND received_at >= ? GROUP BY reason"
        " ORDER BY count(DISTINCT email) DESC",
        (since,),
    ).fetchall()
    problems = []
    for reason, count, detail in rows:
        campaigns = conn.execute(
            "SELECT DISTINCT campaign_id FROM feedback_events WHERE kind = 'sender_side'"
            " AND reason = ? AND received_at >= ? ORDER BY campaign_id LIMIT 5",
            (reason, since),
        )
        named = tuple(str(c[0]) for c in campaigns if c[0])
        problems.append(
            SenderProblem(str(reason or ""), int(count), named, str(detail or "")[:160])
        )
    return problems
