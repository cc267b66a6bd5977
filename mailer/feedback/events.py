"""One feedback event at a time: recorded once, then the rules (suppress, count, resubscribe).

Rules (``Settings.feedback``): a hard bounce, a complaint or an unsubscribe
suppresses the address at once; a soft bounce is counted, and suppresses the
address once there are ``soft_bounce_limit`` of them within
``soft_bounce_days``; a resubscribe lifts an *unsubscribe* suppression (never a
bounce or a complaint). Every event is stored with its source and the source's
event id, unique together, so a webhook delivered twice or replayed is applied
once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from mailer.audience.contact_address import address_key
from mailer.audience.database import Connection
from mailer.audience.store import transaction
from mailer.audience.suppressions import suppress
from mailer.core.clock import stamp
from mailer.core.settings import Feedback
from mailer.core.tokens import LinkData


class Kind(StrEnum):
    """What happened."""

    HARD_BOUNCE = "hard_bounce"
    SOFT_BOUNCE = "soft_bounce"
    COMPLAINT = "complaint"
    UNSUBSCRIBE = "unsubscribe"
    RESUBSCRIBE = "resubscribe"


_SUPPRESS_AS = {
    Kind.HARD_BOUNCE: "bounced",
    Kind.COMPLAINT: "complained",
    Kind.UNSUBSCRIBE: "unsubscribed",
}


@dataclass(frozen=True)
class Event:
    """One report about one address."""

    kind: Kind
    email: str
    source: str  # "one-click", "ses", "postmark", "sendgrid", "mailgun", "dsn", ...
    campaign: str = ""  # the journal key the message was sent under, when known
    event_id: str = ""  # the source's own id; default: a hash of the event
    detail: str = ""  # the SMTP reply or the report's words, for the record

    def key(self) -> str:
        """The id that makes a repeat of this event recognisable."""
        if self.event_id:
            return self.event_id
        text = f"{self.kind}\n{self.email.lower()}\n{self.campaign}\n{self.detail}"
        return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Applied:
    """What applying an event did."""

    new: bool  # False: the same event was applied before (a repeat or a replay)
    suppressed: bool = False  # the address went on the suppression list now
    lifted: bool = False  # an unsubscribe suppression was lifted (resubscribe)


def apply_event(conn: Connection, event: Event, rules: Feedback, now: datetime) -> Applied:
    """Record ``event`` (once) and apply the rules, in one transaction."""
    email = address_key(event.email)
    with transaction(conn):
        campaign = event.campaign or _last_campaign(conn, email, now)
        cursor = conn.execute(
            "INSERT INTO feedback_events (kind, email, campaign_id, source, event_id, detail,"
            " received_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (source, event_id) DO NOTHING",
            (
                str(event.kind),
                email,
                campaign,
                event.source,
                event.key(),
                event.detail[:500],
                stamp(now),
            ),
        )
        if cursor.rowcount == 0:
            return Applied(new=False)
        if event.kind in _SUPPRESS_AS:
            added = suppress(conn, email, _SUPPRESS_AS[event.kind], event.source, now=now)
            return Applied(new=True, suppressed=added)
        if event.kind is Kind.SOFT_BOUNCE:
            return Applied(new=True, suppressed=_soft_limit(conn, email, rules, now, event))
        # A resubscribe lifts an unsubscribe, never a bounce or a complaint, even one
        # recorded after the unsubscribe (the suppression keeps its first reason).
        (worse,) = conn.execute(
            "SELECT count(*) FROM feedback_events WHERE email = ?"
            " AND kind IN ('hard_bounce', 'complaint')",
            (email,),
        ).fetchone()
        lifted = 0
        if not worse:
            lifted = conn.execute(
                "DELETE FROM suppressions WHERE email = ? AND reason = 'unsubscribed'", (email,)
            ).rowcount
        return Applied(new=True, lifted=lifted > 0)


def _last_campaign(conn: Connection, email: str, now: datetime) -> str:
    """The campaign a report without one is about: the last one delivered to the address.

    Relays' bounce and complaint reports often do not say which campaign (no
    header of ours survives), and a report comes after its message.
    """
    row = conn.execute(
        "SELECT campaign_id FROM journal WHERE email = ? AND status = 'sent' AND sent_at <= ?"
        " ORDER BY sent_at DESC LIMIT 1",
        (email, stamp(now)),
    ).fetchone()
    return str(row[0]) if row else ""


def _soft_limit(conn: Connection, email: str, rules: Feedback, now: datetime, event: Event) -> bool:
    since = stamp(now - timedelta(days=rules.soft_bounce_days))
    (count,) = conn.execute(
        "SELECT count(*) FROM feedback_events WHERE email = ? AND kind = 'soft_bounce'"
        " AND received_at >= ?",
        (email, since),
    ).fetchone()
    if count < max(1, rules.soft_bounce_limit):
        return False
    source = f"{event.source}: {count} soft bounces in {rules.soft_bounce_days} days"
    return suppress(conn, email, "bounced", source, now=now)


@dataclass(frozen=True)
class Rates:
    """A campaign's delivered messages and what came back about them."""

    delivered: int  # journal rows ``sent``
    bounced: int  # refused during the send as "no such user", or bounced after delivery
    complained: int
    unsubscribed: int = 0

    @property
    def bounce_rate(self) -> float:
        """Hard bounces per message handed to the relay (delivered or refused as unknown)."""
        attempted = self.delivered + self.bounced
        return self.bounced / attempted if attempted else 0.0

    @property
    def complaint_rate(self) -> float:
        """Complaints per delivered message."""
        return self.complained / self.delivered if self.delivered else 0.0


def campaign_rates(conn: Connection, campaign: str) -> Rates:
    """Delivered, bounced, complained and unsubscribed, for one journal key.

    An address counts once per kind however many reports came for it. (A bounce
    during the send and a bounce report about the same address would count
    twice; a relay that refused a message does not report it again.)
    """
    delivered, bounced = journal_counts(conn, campaign)
    return rates_with(Rates(delivered, bounced, 0), reported(conn, campaign))


def journal_counts(conn: Connection, campaign: str) -> tuple[int, int]:
    """(Messages delivered, refused as "no such user") for a journal key, from the journal."""
    row = conn.execute(
        "SELECT count(*) FILTER (WHERE status = 'sent'), count(*) FILTER (WHERE bounce = 1)"
        " FROM journal WHERE campaign_id = ?",
        (campaign,),
    ).fetchone()
    return int(row[0] or 0), int(row[1] or 0)


def reported(conn: Connection, campaign: str) -> dict[str, int]:
    """Addresses per kind of report that came back about a journal key (cheap: indexed)."""
    return {
        str(kind): int(count)
        for kind, count in conn.execute(
            "SELECT kind, count(DISTINCT email) FROM feedback_events WHERE campaign_id = ?"
            " GROUP BY kind",
            (campaign,),
        )
    }


def rates_with(sent: Rates, reports: dict[str, int]) -> Rates:
    """``sent``'s journal figures with the reports added."""
    return Rates(
        sent.delivered,
        sent.bounced + reports.get("hard_bounce", 0),
        reports.get("complaint", 0),
        reports.get("unsubscribe", 0),
    )


def pause_reason(rates: Rates, rules: Feedback) -> str | None:
    """Why a running send should pause now, or None."""
    if rates.delivered < rules.min_delivered:
        return None
    how = "to go on anyway, raise [feedback] {} in mailer.toml"
    if rates.complaint_rate > rules.pause_complaint_rate:
        return (
            f"paused: {rates.complained} complaint(s), {rates.complaint_rate:.2%} of "
            f"{rates.delivered} delivered, over the {rules.pause_complaint_rate:.2%} limit "
            "(Gmail and Yahoo want under 0.3 %); look at who is on the list and why; "
            + how.format("pause_complaint_rate")
        )
    if rates.bounce_rate > rules.pause_bounce_rate:
        return (
            f"paused: {rates.bounced} hard bounce(s), {rates.bounce_rate:.1%}, over the "
            f"{rules.pause_bounce_rate:.1%} limit: the list has many dead addresses; "
            "clean it before resuming; " + how.format("pause_bounce_rate")
        )
    return None


def record_click(conn: Connection, link: LinkData, now: datetime) -> None:
    """Count one click on a tracked link (who, which campaign, variant and link, when)."""
    with transaction(conn):
        conn.execute(
            "INSERT INTO clicks (campaign_id, email, variant, url, clicked_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (link.campaign, address_key(link.email), link.variant, link.url, stamp(now)),
        )
