"""Bounce and complaint reports that arrive as mail: what a message says, and about whom.

* Delivery status notifications (RFC 3464) and the many non-standard bounce
  formats (Postfix, Exim, qmail, Exchange, Yahoo, ...) are read by
  ``flufl.bounce``, a maintained parser: it returns the addresses that failed
  for good and for now.
* Complaints are ARF reports (RFC 5965): ``multipart/report;
  report-type=feedback-report``, with the original message or its headers.

A report is tied to our own send by the original ``Message-ID`` it quotes (the
journal keeps each recipient's): that names the campaign and the recipient
exactly, even when the report hides the address (many feedback loops do). A
report without one falls back to the addresses it names, each matched to the
last campaign sent to it. An address we never mailed is skipped, never
suppressed: a bounce of somebody else's mail must not change our list.
"""

from __future__ import annotations

import email
import hashlib
import logging
import re
from dataclasses import dataclass, field
from email.message import Message

from mailer.audience.database import Connection, Row
from mailer.feedback.events import Event, Kind

# flufl.bounce logs a traceback when one of its detectors trips over odd mail and
# then goes on with the others; that is not news for our user (the message is
# counted as unreadable or read by another detector), so it stays out of the terminal.
_FLUFL_LOG = logging.getLogger("flufl.bounce")
_FLUFL_LOG.addHandler(logging.NullHandler())
_FLUFL_LOG.propagate = False

_MESSAGE_ID = re.compile(rb"^[ \t>]*Message-ID:\s*(<[^<>\s]+>)", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class Report:
    """What one incoming message reports."""

    kind: str  # "bounce", "complaint", or "other" (not a report: left alone)
    report_id: str  # the report's own Message-ID, or a hash of it: makes repeats known
    permanent: frozenset[str] = frozenset()  # addresses that failed for good
    temporary: frozenset[str] = frozenset()  # addresses that failed for now
    original_id: str = ""  # the Message-ID of our message, when the report quotes it
    detail: str = ""


@dataclass
class Matched:
    """A report turned into events about our recipients, and what was skipped."""

    events: list[Event] = field(default_factory=list)
    not_ours: list[str] = field(default_factory=list)  # addresses we never mailed


def read_report(raw: bytes) -> Report:
    """Classify one message and pull out who it is about (never raises on bad mail)."""
    from flufl.bounce import all_failures

    msg = email.message_from_bytes(raw)
    report_id = str(msg.get("Message-ID", "")).strip() or hashlib.sha256(raw).hexdigest()[:32]
    original = _original_message_id(msg, raw)
    if _is_arf(msg):
        rcpt = _arf_field(msg, "Original-Rcpt-To") or _original_header(msg, "To")
        addresses = frozenset(a for a in [_bare(rcpt)] if a)
        feedback_type = _arf_field(msg, "Feedback-Type") or "abuse"
        return Report("complaint", report_id, addresses, frozenset(), original, feedback_type)
    try:
        temporary, permanent = all_failures(msg)
    except Exception:  # a detector choking on broken mail: this message is not usable
        return Report("other", report_id, original_id=original, detail="unreadable report")
    if not temporary and not permanent:
        return Report("other", report_id, original_id=original)
    return Report(
        "bounce",
        report_id,
        frozenset(_text(a) for a in permanent),
        frozenset(_text(a) for a in temporary),
        original,
        str(msg.get("Subject", ""))[:200],
    )


def match_report(conn: Connection, report: Report, source: str) -> Matched:
    """The events a report means for our journal (see the module docstring)."""
    matched = Matched()
    if report.kind == "other":
        return matched
    who: list[tuple[str, str, Kind]] = []  # (email, campaign, kind)
    row = _journal_row(conn, report) if report.original_id else None
    if report.kind == "complaint":
        if row is not None:
            who.append((str(row[1]), str(row[0]), Kind.COMPLAINT))
        else:
            who += _by_address(conn, report.permanent, Kind.COMPLAINT, matched)
    elif row is not None:
        # One recipient per message: the quoted Message-ID says who, whatever
        # address form the bouncing server printed.
        kind = Kind.HARD_BOUNCE if report.permanent else Kind.SOFT_BOUNCE
        who.append((str(row[1]), str(row[0]), kind))
    else:
        who += _by_address(conn, report.permanent, Kind.HARD_BOUNCE, matched)
        who += _by_address(conn, report.temporary - report.permanent, Kind.SOFT_BOUNCE, matched)
    for address, campaign, kind in who:
        event_id = f"{report.report_id}:{address.lower()}"
        matched.events.append(Event(kind, address, source, campaign, event_id, report.detail))
    return matched


def _journal_row(conn: Connection, report: Report) -> Row | None:
    """The journal row whose message the report quotes.

    Looked up by the addresses the report names first (the journal is indexed
    by address); a report that hides the address is looked up within the
    campaign the Message-ID names (``<hash>.<campaign>@domain``).
    """
    for address in sorted(report.permanent | report.temporary):
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


def _by_address(
    conn: Connection, addresses: frozenset[str], kind: Kind, matched: Matched
) -> list[tuple[str, str, Kind]]:
    found = []
    for address in sorted(addresses):
        row = conn.execute(
            "SELECT campaign_id, email FROM journal WHERE email = ? AND status = 'sent'"
            " ORDER BY sent_at DESC LIMIT 1",
            (address,),
        ).fetchone()
        if row is None:
            matched.not_ours.append(address)
        else:
            found.append((str(row[1]), str(row[0]), kind))
    return found


def _is_arf(msg: Message) -> bool:
    return (
        msg.get_content_type() == "multipart/report"
        and str(msg.get_param("report-type", "")).lower() == "feedback-report"
    )


def _arf_field(msg: Message, name: str) -> str:
    """A field of the machine-readable part of an ARF report."""
    return _field_in_part(msg, ("message/feedback-report",), name)


def _original_header(msg: Message, name: str) -> str:
    """A header of the original message quoted in a report (message/rfc822 or headers)."""
    return _field_in_part(msg, ("message/rfc822", "text/rfc822-headers"), name)


def _field_in_part(msg: Message, types: tuple[str, ...], name: str) -> str:
    """Header ``name`` of the first part of one of ``types`` that has it.

    The email package parses ``message/*`` parts into a list holding one
    message, whose headers are the fields; other parts are searched as text.
    """
    for part in msg.walk():
        if part.get_content_type() not in types:
            continue
        payload = part.get_payload()
        first = payload[0] if isinstance(payload, list) and payload else None
        if isinstance(first, Message) and first.get(name):
            return str(first.get(name)).strip()
        found = re.search(rb"^" + name.encode() + rb":\s*(.+)$", part.as_bytes(), re.I | re.M)
        if found:
            return _text(found.group(1)).strip()
    return ""


def _original_message_id(msg: Message, raw: bytes) -> str:
    """The quoted original's Message-ID; for plain-text bounces, the last one in the text."""
    quoted = _original_header(msg, "Message-ID").strip()
    if quoted:
        return quoted
    own = str(msg.get("Message-ID", "")).strip()
    quoted_ids = [_text(i) for i in _MESSAGE_ID.findall(raw) if _text(i) != own]
    return quoted_ids[-1] if quoted_ids else ""


def _bare(value: str) -> str:
    """``Name <a@b>`` or ``rfc822; a@b`` → ``a@b``."""
    value = value.split(";", 1)[-1].strip()
    found = re.search(r"<([^<>]+@[^<>]+)>", value)
    address = found.group(1) if found else value
    return address.strip() if "@" in address else ""


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
