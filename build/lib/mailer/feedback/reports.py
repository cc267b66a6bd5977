"""Reports that arrive as mail — bounces, complaints, auto-replies, mailto: unsubscribes —
turned into events about our recipients.

``read_report`` asks the classifier (``classify``) what a message says, and
``mailto`` whether it is an unsubscribe request. ``match_report`` ties it to
our send: the original ``Message-ID`` the report quotes names the campaign and
the recipient exactly (the journal keeps each recipient's), even when the
report hides the address (many feedback loops do). A report without one falls
back to the addresses it names, each matched to the last campaign sent to it.
An address we never mailed is skipped, never suppressed: a bounce of somebody
else's mail, or a forged unsubscribe, must not change our list.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field

from mailer.audience.database import Connection, Row
from mailer.feedback.classify import Classified, Verdict, classify
from mailer.feedback.events import KIND_OF_CLASS, Event, Kind
from mailer.feedback.mailparts import parse
from mailer.feedback.mailto import MailtoRequest, mailto_request


@dataclass(frozen=True)
class Report:
    """What one incoming message reports."""

    kind: str  # "bounce", "complaint", "auto-reply", "unsubscribe", or "other" (left alone)
    report_id: str  # the report's own Message-ID, or a hash of it: makes repeats known
    verdicts: tuple[Verdict, ...] = ()
    original_id: str = ""  # the Message-ID of our message, when the report quotes it
    request: MailtoRequest | None = None  # for kind "unsubscribe"


@dataclass
class Matched:
    """A report turned into events about our recipients, and what was skipped."""

    events: list[Event] = field(default_factory=list)
    not_ours: list[str] = field(default_factory=list)  # addresses we never mailed


def read_report(raw: bytes, unsubscribe_address: str | None = None) -> Report:
    """What one message reports (never raises on bad mail)."""
    message = parse(raw)
    report_id = str(message.get("Message-ID", "")).strip() or hashlib.sha256(raw).hexdigest()[:32]
    request = mailto_request(message, unsubscribe_address, time.time())
    if request is not None:
        return Report("unsubscribe", report_id, request=request)
    found: Classified = classify(message, report_id)
    return Report(found.form, report_id, found.verdicts, found.original_id)


def match_report(conn: Connection, report: Report, source: str) -> Matched:
    """The events a report means for our journal (see the module docstring)."""
    matched = Matched()
    if report.kind == "unsubscribe" and report.request is not None:
        return _unsubscribe(conn, report, report.request, source)
    if report.kind == "other" or not report.verdicts:
        return matched
    row = _journal_row(conn, report) if report.original_id else None
    if row is not None:
        # One recipient per message of ours: the quoted Message-ID says who, whatever
        # address form the reporting server printed.
        email, campaign = str(row[1]), str(row[0])
        verdict = next(
            (v for v in report.verdicts if v.recipient == email.lower()), report.verdicts[0]
        )
        matched.events.append(_event(verdict, email, campaign, report, source))
        return matched
    for verdict in report.verdicts:
        found = _last_sent(conn, verdict.recipient) if verdict.recipient else None
        if found is None:
            matched.not_ours.append(verdict.recipient or "(hidden)")
            continue
        matched.events.append(_event(verdict, str(found[1]), str(found[0]), report, source))
    return matched


def _event(verdict: Verdict, email: str, campaign: str, report: Report, source: str) -> Event:
    return Event(
        KIND_OF_CLASS[verdict.kind],
        email,
        source,
        campaign,
        f"{report.report_id}:{email.lower()}",
        verdict.diagnostic,
        str(verdict.reason),
        verdict.status,
        report.report_id,
    )


def _unsubscribe(conn: Connection, report: Report, request: MailtoRequest, source: str) -> Matched:
    matched = Matched()
    found = _last_sent(conn, request.email)
    if request.spoofed or (found is None and not request.signed):
        matched.not_ours.append(request.email)
        return matched
    campaign = request.campaign or (str(found[0]) if found else "")
    matched.events.append(
        Event(
            Kind.UNSUBSCRIBE,
            request.email,
            f"{source} mailto",
            campaign,
            f"{report.report_id}:{request.email}",
            "asked by mail (List-Unsubscribe mailto:)",
            report_id=report.report_id,
        )
    )
    return matched


def _journal_row(conn: Connection, report: Report) -> Row | None:
    """The journal row whose message the report quotes.

    Looked up by the addresses the report names first (the journal is indexed
    by address); a report that hides the address is looked up within the
    campaign the Message-ID names (``<hash>.<campaign>@domain``).
    """
    for address in sorted({v.recipient for v in report.verdicts if v.recipient}):
        row = conn.execute(
            "SELECT campaign_id, email FROM journal WHERE email = ? AND message_id = ?",
            (address, report.original_id),
        ).fetchone()
        if row is not None:
            return row
    campaign = report.original_id.partition(".")[2].rpartition("@")[0]
    if not campaign:
        return None
    return conn.execute(
        "SELECT campaign_id, email FROM journal WHERE campaign_id >= ? AND campaign_id < ?"
        " AND message_id = ? LIMIT 1",
        (campaign, campaign + "\U0010ffff", report.original_id),
    ).fetchone()


def _last_sent(conn: Connection, address: str) -> Row | None:
    """(campaign, email) of the last message delivered to ``address``, or None."""
    return conn.execute(
        "SELECT campaign_id, email FROM journal WHERE email = ? AND status = 'sent'"
        " ORDER BY sent_at DESC LIMIT 1",
        (address,),
    ).fetchone()
