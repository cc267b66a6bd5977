"""A campaign's bounce, complaint and sender-side rates, and the pause rule the engine is given.

One denominator per rate, each message counted once:

* bounce rate = hard bounces / messages handed over, where *handed over* is the
  messages the relay accepted (journal ``sent``) plus those it refused during
  the send as unknown; a hard bounce reported *after* delivery is one of the
  delivered messages already, so it adds to the numerator only (counting it in
  the denominator again showed 4.9 % for 5.1 %);
* complaint rate = complaints / delivered;
* sender-side rate = refusals of our mail (authentication, policy, reputation,
  content) / messages handed over.

Each address counts once per kind however many reports came for it.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailer.audience.database import Connection
from mailer.core.settings import Feedback


@dataclass(frozen=True)
class Rates:
    """A campaign's delivered messages and what came back about them."""

    delivered: int  # journal rows ``sent``: the relay accepted them
    bounced: int  # hard: refused during the send as unknown, or bounced after delivery
    complained: int
    unsubscribed: int = 0
    refused: int = 0  # of ``bounced``, those refused during the send (never delivered)
    sender_side: int = 0  # refused for the sender's fault: auth, policy, reputation, content

    @property
    def handed_over(self) -> int:
        """Messages given to the relay once each: delivered, or refused during the send."""
        return self.delivered + self.refused

    @property
    def bounce_rate(self) -> float:
        """Hard bounces per message handed over."""
        return self.bounced / self.handed_over if self.handed_over else 0.0

    @property
    def complaint_rate(self) -> float:
        """Complaints per delivered message."""
        return self.complained / self.delivered if self.delivered else 0.0

    @property
    def sender_rate(self) -> float:
        """Sender-side refusals per message handed over."""
        return self.sender_side / self.handed_over if self.handed_over else 0.0


def campaign_rates(conn: Connection, campaign: str) -> Rates:
    """Delivered, bounced, complained, unsubscribed and sender-side, for one journal key."""
    delivered, refused = journal_counts(conn, campaign)
    return rates_with(Rates(delivered, refused, 0), reported(conn, campaign))


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


def sender_reasons(conn: Connection, campaign: str) -> dict[str, int]:
    """Sender-side refusals of a journal key by reason (``blocked``, ``auth_failed`` ...)."""
    return {
        str(reason or "other"): int(count)
        for reason, count in conn.execute(
            "SELECT reason, count(DISTINCT email) FROM feedback_events WHERE campaign_id = ?"
            " AND kind = 'sender_side' GROUP BY reason ORDER BY count(DISTINCT email) DESC",
            (campaign,),
        )
    }


def rates_with(sent: Rates, reports: dict[str, int]) -> Rates:
    """``sent``'s journal figures (delivered, refused during the send) with the reports added."""
    return Rates(
        sent.delivered,
        sent.bounced + reports.get("hard_bounce", 0),
        reports.get("complaint", 0),
        reports.get("unsubscribe", 0),
        refused=sent.bounced,
        sender_side=reports.get("sender_side", 0),
    )


def pause_cause(rates: Rates, rules: Feedback) -> str | None:
    """What should pause a running send now: "complaints", "bounces", "sender", or None."""
    if rates.delivered < rules.min_delivered:
        return None
    if rates.complaint_rate > rules.pause_complaint_rate:
        return "complaints"
    if rates.sender_rate > rules.pause_sender_rate:
        return "sender"
    if rates.bounce_rate > rules.pause_bounce_rate:
        return "bounces"
    return None


def pause_reason(rates: Rates, rules: Feedback) -> str | None:
    """Why a running send should pause now, in words naming the cause, or None."""
    cause = pause_cause(rates, rules)
    how = "to go on anyway, raise [feedback] {} in mailer.toml"
    if cause == "complaints":
        return (
            f"paused: {rates.complained} complaint(s), {rates.complaint_rate:.2%} of "
            f"{rates.delivered} delivered, over the {rules.pause_complaint_rate:.2%} limit "
            "(Gmail and Yahoo want under 0.3 %): recipients report this mail as spam; "
            + how.format("pause_complaint_rate")
        )
    if cause == "sender":
        return (
            f"paused: receivers refused our mail {rates.sender_side} time(s), "
            f"{rates.sender_rate:.1%} of {rates.handed_over}, over the "
            f"{rules.pause_sender_rate:.1%} limit, for reasons on the sending side "
            "(authentication, reputation, policy or content), not the addresses; "
            + how.format("pause_sender_rate")
        )
    if cause == "bounces":
        return (
            f"paused: {rates.bounced} hard bounce(s), {rates.bounce_rate:.1%} of "
            f"{rates.handed_over}, over the {rules.pause_bounce_rate:.1%} limit: the list has "
            "many dead addresses; " + how.format("pause_bounce_rate")
        )
    return None
