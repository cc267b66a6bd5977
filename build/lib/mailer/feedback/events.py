"""One feedback event at a time: recorded once, then the rules (suppress, count, resubscribe).

Rules (``Settings.feedback``), by the event's kind, which the classifier's
class decides (``reasons``):

* a hard bounce (unknown user or domain), a complaint or an unsubscribe
  suppresses the address at once;
* a soft bounce is counted; the address is suppressed once ``soft_bounce_limit``
  soft bounces came within ``soft_bounce_days`` with no delivery between them
  (a message we sent the address that did not come back resets the count);
* a sender-side refusal (authentication, policy, reputation, content) never
  suppresses: it counts against the campaign (``rates``) and can pause its send;
* an ignored report (auto-reply, delivery notice) is recorded and nothing else;
* a resubscribe lifts an *unsubscribe* suppression (never a bounce or a complaint).

Every event is stored with its reason, raw status and source message id, and
with its source and the source's event id, unique together, so a webhook
delivered twice or replayed, or a mailbox read twice, is applied once.
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
from mailer.feedback.reasons import Class


class Kind(StrEnum):
    """What happened."""

    HARD_BOUNCE = "hard_bounce"
    SOFT_BOUNCE = "soft_bounce"
    COMPLAINT = "complaint"
    UNSUBSCRIBE = "unsubscribe"
    RESUBSCRIBE = "resubscribe"
    SENDER_SIDE = "sender_side"
    IGNORED = "ignored"


KIND_OF_CLASS = {
    Class.HARD: Kind.HARD_BOUNCE,
    Class.SOFT: Kind.SOFT_BOUNCE,
    Class.SENDER: Kind.SENDER_SIDE,
    Class.COMPLAINT: Kind.COMPLAINT,
    Class.IGNORE: Kind.IGNORED,
}

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
    source: str  # "one-click", "ses", "postmark", "sendgrid", "mailgun", "mailbox", ...
    campaign: str = ""  # the journal key the message was sent under, when known
    event_id: str = ""  # the source's own id; default: a hash of the event
    detail: str = ""  # the SMTP reply or the report's words, for the record
    reason: str = ""  # a mailer.feedback.reasons.Reason value, when one was judged
    status: str = ""  # the raw status as reported ("5.1.1", "550", "Permanent/General")
    report_id: str = ""  # the Message-ID of the report mail (or the provider's message id)

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
    soft_count: int = 0  # soft bounces in a row so far (soft bounces only)


def apply_event(conn: Connection, event: Event, rules: Feedback, now: datetime) -> Applied:
    """Record ``event`` (once) and apply the rules, in one transaction."""
    email = address_key(event.email)
    with transaction(conn):
        campaign = event.campaign or _last_campaign(conn, email, now)
        cursor = conn.execute(
            "INSERT INTO feedback_events (kind, email, campaign_id, source, event_id, detail,"
            " received_at, reason, status, report_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (source, event_id) DO NOTHING",
            (
                str(event.kind),
                email,
                campaign,
                event.source,
                event.key(),
                event.detail[:500],
                stamp(now),
                event.reason,
                event.status[:40],
                event.report_id[:300],
            ),
        )
        if cursor.rowcount == 0:
            return Applied(new=False)
        if event.kind in _SUPPRESS_AS:
            why = f"{event.source}: {event.reason}".rstrip(": ") if event.reason else event.source
            added = suppress(conn, email, _SUPPRESS_AS[event.kind], why, now=now)
            return Applied(new=True, suppressed=added)
        if event.kind is Kind.SOFT_BOUNCE:
            return _soft_bounce(conn, email, rules, now, event)
        if event.kind is Kind.RESUBSCRIBE:
            return Applied(new=True, lifted=_lift(conn, email))
        return Applied(new=True)  # sender-side or ignored: recorded, nobody suppressed


def _lift(conn: Connection, email: str) -> bool:
    # A resubscribe lifts an unsubscribe, never a bounce or a complaint, even one
    # recorded after the unsubscribe (the suppression keeps its first reason).
    (worse,) = conn.execute(
        "SELECT count(*) FROM feedback_events WHERE email = ?"
        " AND kind IN ('hard_bounce', 'complaint')",
        (email,),
    ).fetchone()
    if worse:
        return False
    deleted = conn.execute(
        "DELETE FROM suppressions WHERE email = ? AND reason = 'unsubscribed'", (email,)
    )
    return deleted.rowcount > 0


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


def soft_streak(conn: Connection, email: str, days: int, now: datetime) -> int:
    """Soft bounces of ``email`` in a row within ``days``: a delivery between two resets it.

    A delivery is a message we sent the address (journal ``sent``) between two
    soft bounces, about which no bounce or complaint came back.
    """
    since = stamp(now - timedelta(days=days))
    softs = conn.execute(
        "SELECT received_at FROM feedback_events WHERE email = ? AND kind = 'soft_bounce'"
        " AND received_at >= ? ORDER BY received_at DESC, id DESC",
        (email, since),
    ).fetchall()
    came_back = {
        str(row[0])
        for row in conn.execute(
            "SELECT DISTINCT campaign_id FROM feedback_events WHERE email = ?"
            " AND kind IN ('soft_bounce', 'hard_bounce', 'complaint', 'sender_side')",
            (email,),
        )
    }
    delivered = [
        str(row[1])
        for row in conn.execute(
            "SELECT campaign_id, sent_at FROM journal WHERE email = ? AND status = 'sent'"
            " AND sent_at >= ?",
            (email, since),
        )
        if str(row[0]) not in came_back
    ]
    count, newer = 0, None
    for (received,) in softs:
        if newer is not None and any(received < sent < newer for sent in delivered):
            break
        count, newer = count + 1, str(received)
    return count


def _soft_bounce(
    conn: Connection, email: str, rules: Feedback, now: datetime, event: Event
) -> Applied:
    count = soft_streak(conn, email, rules.soft_bounce_days, now)
    if count < max(1, rules.soft_bounce_limit):
        return Applied(new=True, soft_count=count)
    source = f"{event.source}: {count} soft bounces in {rules.soft_bounce_days} days"
    if event.reason:
        source += f" (last: {event.reason})"
    added = suppress(conn, email, "bounced", source, now=now)
    return Applied(new=True, suppressed=added, soft_count=count)


def record_click(conn: Connection, link: LinkData, now: datetime) -> None:
    """Count one click on a tracked link (who, which campaign, variant and link, when)."""
    with transaction(conn):
        conn.execute(
            "INSERT INTO clicks (campaign_id, email, variant, url, clicked_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (link.campaign, address_key(link.email), link.variant, link.url, stamp(now)),
        )
