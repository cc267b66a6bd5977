"""The bounce classifier: one returned message in, a verdict per recipient out (pure).

Signals, in the order they are trusted:

1. the message's form: a complaint (ARF and providers' forms), an auto-reply,
   an Amazon SES JSON notification (``complaints``);
2. RFC 3464 delivery-status fields, per recipient (``dsn``): who, the action,
   the RFC 3463 status, the diagnostic;
3. the report's own text (``textbounce``) for bounces without those fields;
4. ``flufl.bounce`` for who, when nothing above named anyone;
5. the quoted original's To, when the report names nobody at all.

The reason comes from the diagnostic's wording (``wording``), then the status
code (``codes``), then the wording of the whole report; a failure the server
called temporary can never be a hard bounce (``reasons.class_of``). Never
raises on bad mail: unreadable input is ``form="other"``.
"""

from __future__ import annotations

import hashlib
import logging
import re
from contextlib import suppress
from dataclasses import dataclass
from email.message import Message

from mailer.feedback import codes, wording
from mailer.feedback.complaints import Complaint, auto_reply, complaint_in, ses_bounces
from mailer.feedback.dsn import StatusBlock, blocks, reply_code, status_in
from mailer.feedback.mailparts import Parts, addresses, header_addresses, parse, split
from mailer.feedback.reasons import Class, Reason, class_of
from mailer.feedback.textbounce import ours, recipients_in

# flufl.bounce logs a traceback when one of its detectors trips over odd mail and
# then goes on with the others: not news for our user.
_FLUFL_LOG = logging.getLogger("flufl.bounce")
_FLUFL_LOG.addHandler(logging.NullHandler())
_FLUFL_LOG.propagate = False

_NOT_FAILED = {"delivered", "relayed", "expanded"}
_BOUNCE_HINT = re.compile(
    r"mailer-daemon|postmaster|undeliver|returned mail|delivery (status|fail)|failure notice"
    r"|could not be delivered|non[- ]?delivery|permanent error|fatal error",
    re.IGNORECASE,
)
DIAGNOSTIC_MAX = 500
_RECIPIENT_SIDE = {
    Reason.USER_UNKNOWN, Reason.HOST_UNKNOWN, Reason.DISABLED, Reason.MAILBOX_FULL, Reason.OTHER,
    Reason.EXPIRED,
}  # fmt: skip
# Wrapper words some relays put around the receiver's reply (SES: "Unknown address error").
_WRAPPERS = re.compile(r"unknown address error|other mail system problem", re.IGNORECASE)
_BEFORE_RECIPIENT = re.compile(
    r"after (initial connection|connect\b|ehlo|helo|mail from)|in reply to (mail from|ehlo|helo)"
    r"|did not like our (mail from|ehlo|helo)|sender was rejected|my name was rejected"
    r"|refused to talk to me",
    re.IGNORECASE,
)
# "<final> (expanded from <address we mailed>)": Postfix and Sendmail name the alias.
_EXPANDED = re.compile(r"<?([^\s<>]+@[^\s<>]+)>?\s*\(expanded from:?\s*<([^\s<>]+@[^\s<>]+)>\)")


@dataclass(frozen=True)
class Verdict:
    """What the report says about one recipient."""

    recipient: str  # lower-cased; "" when the report hides it (match by Message-ID)
    reason: Reason
    kind: Class
    status: str  # RFC 3463 code as reported ("5.1.1"), or ""
    diagnostic: str  # the server's words (at most DIAGNOSTIC_MAX characters)
    decided_by: str  # which signal decided the reason: "wording:postfix", "status", "arf" ...


@dataclass(frozen=True)
class Classified:
    """One message's verdicts, and what ties it to our send."""

    form: str  # "bounce", "complaint", "auto-reply", "other"
    verdicts: tuple[Verdict, ...]
    report_id: str  # the report's own Message-ID (or a hash of it): makes repeats known
    original_id: str  # the Message-ID of our message, when the report quotes it


def classify_bytes(raw: bytes) -> Classified:
    """Classify a raw message (see the module docstring)."""
    try:
        message = parse(raw)
    except Exception:  # the email package does not raise on bad mail; belt and braces
        return Classified("other", (), hashlib.sha256(raw).hexdigest()[:32], "")
    report_id = str(message.get("Message-ID", "")).strip() or hashlib.sha256(raw).hexdigest()[:32]
    return classify(message, report_id)


def classify(message: Message, report_id: str = "") -> Classified:
    """Classify a parsed message: the verdict for each recipient it reports on."""
    report_id = report_id or str(message.get("Message-ID", "")).strip()
    parts = split(message)
    original_id = _original_id(parts)
    complaint = complaint_in(parts)
    if complaint is not None:
        return Classified("complaint", _complained(complaint), report_id, original_id)
    verdicts = _reported(parts)
    forwarded = parts.original
    if (
        not verdicts
        and forwarded is not None
        and forwarded.get_content_type() == "multipart/report"
    ):
        return classify(forwarded, report_id)  # a bounce forwarded as an attachment
    if not verdicts:
        replier = auto_reply(parts)
        if replier is not None:
            verdict = Verdict(replier, Reason.VACATION, Class.IGNORE, "", "", "auto-reply")
            return Classified("auto-reply", (verdict,), report_id, original_id)
        verdicts = _described(parts)
    if verdicts:
        return Classified("bounce", tuple(verdicts), report_id, original_id)
    return Classified("other", (), report_id, original_id)


def _complained(complaint: Complaint) -> tuple[Verdict, ...]:
    reason = Reason.AUTH_FAILED if complaint.sender_side else Reason.COMPLAINT
    kind = class_of(reason)
    detail = f"feedback-type: {complaint.feedback_type}"
    return tuple(
        Verdict(who, reason, kind, "", detail, complaint.form)
        for who in complaint.recipients or ("",)
    )


def _reported(parts: Parts) -> list[Verdict]:
    """The verdicts of a machine-readable bounce (SES JSON, delivery-status fields)."""
    ses = ses_bounces(parts)
    if ses:
        return [
            _verdict(who, diagnostic, status, "" if permanent else "delayed", parts.text, "ses")
            for who, status, diagnostic, permanent in ses
        ]
    found = blocks([*parts.status_parts, parts.text])
    return _from_blocks(parts, found) if found else []


def _described(parts: Parts) -> list[Verdict]:
    """The verdicts of a bounce in words: the text, flufl.bounce, the original's To."""
    mentions = recipients_in(parts)
    if mentions:
        return [_verdict(m.address, m.words, "", "", parts.text, "text") for m in mentions]
    # Exim names the failed recipients in a header of the report.
    failed = header_addresses(parts.message, "X-Failed-Recipients")
    if failed:
        return [_verdict(a, parts.text, "", "", parts.text, "x-failed-recipients") for a in failed]
    return _fallback(parts)


def _from_blocks(parts: Parts, found: list[StatusBlock]) -> list[Verdict]:
    wanted = set(header_addresses(parts.original, "To", "Cc"))
    expanded = {f: o for f, o in _EXPANDED.findall(parts.text.lower()) if o in wanted}
    words = {m.address: m.words for m in recipients_in(parts)}
    verdicts: dict[str, Verdict] = {}
    for block in found:
        # The address we mailed: Original-Recipient (or the address an alias was
        # "expanded from") when the original's To confirms it, else Final-Recipient.
        who = block.original if block.original in wanted else (block.final or block.original)
        who = expanded.get(who, who)
        if not who:
            continue
        about = words.get(who, "")
        diagnostic = block.diagnostic or about
        verdict = _verdict(who, diagnostic, block.status, block.action, parts.text, "dsn", about)
        if who not in verdicts or verdicts[who].reason is Reason.OTHER:
            verdicts[who] = verdict
    return list(verdicts.values())


def _fallback(parts: Parts) -> list[Verdict]:
    """flufl.bounce's addresses, else the original's To when the report names nobody."""
    from flufl.bounce import all_failures

    temporary: frozenset[bytes | str] = frozenset()
    permanent: frozenset[bytes | str] = frozenset()
    # A detector choking on odd mail: this signal then says nothing.
    with suppress(Exception):
        temporary, permanent = all_failures(parts.message)
    own = ours(parts)
    named: dict[str, bool] = {}
    for failed in temporary | permanent:
        for address in addresses(_text(failed)):
            if address not in own:
                named[address] = named.get(address, False) or failed in permanent
    if named:
        return [
            _verdict(a, parts.text, "", "" if p else "delayed", parts.text, "flufl")
            for a, p in sorted(named.items())
        ]
    looks_bounced = _BOUNCE_HINT.search(
        f"{parts.message.get('From', '')} {parts.message.get('Subject', '')}"
    )
    wanted = header_addresses(parts.original, "To")
    if looks_bounced and len(wanted) == 1:
        return [_verdict(wanted[0], parts.text, "", "", parts.text, "original-to")]
    return []


def _verdict(
    who: str, diagnostic: str, status: str, action: str, context: str, by: str, about: str = ""
) -> Verdict:
    """The reason for one recipient, from the words about them, their status, the report.

    ``about`` is the report's text about this recipient when ``diagnostic`` is a
    delivery-status field (it may say at which SMTP step the server refused).
    """
    diagnostic = " ".join(diagnostic.split())
    status = status or status_in(diagnostic)
    code = reply_code(diagnostic)
    temporary = action == "delayed" or codes.temporary(status, code)
    reason, decided = _reason(
        _WRAPPERS.sub("", diagnostic), status, action, " ".join(context.split())
    )
    if reason in _RECIPIENT_SIDE and _BEFORE_RECIPIENT.search(f"{diagnostic} {about}"):
        # Refused before any recipient was named (at connect, EHLO, MAIL FROM): whatever
        # the words, the server refused *us*, not the mailbox.
        reason, decided = Reason.BLOCKED, f"{decided}+stage"
    return Verdict(
        who.lower(),
        reason,
        class_of(reason, temporary=temporary),
        status,
        diagnostic[:DIAGNOSTIC_MAX],
        f"{by}+{decided}",
    )


def judge(
    diagnostic: str, status: str = "", *, temporary: bool = False, fallback: Reason = Reason.OTHER
) -> tuple[Reason, Class]:
    """Reason and class for a bounce a relay reported in its own words (a webhook).

    ``fallback`` is the relay's own verdict (its bounce type), used when the
    server's words and status code say nothing more precise.
    """
    diagnostic = " ".join(diagnostic.split())
    status = status if codes.reason_of(status) or status.startswith(("4", "5")) else ""
    status = status or status_in(diagnostic)
    reason, decided = _reason(diagnostic, status, "", "")
    if decided == "none":
        reason = fallback
    if reason in _RECIPIENT_SIDE and _BEFORE_RECIPIENT.search(diagnostic):
        reason = Reason.BLOCKED
    temporary = temporary or codes.temporary(status, reply_code(diagnostic))
    return reason, class_of(reason, temporary=temporary)


def _reason(diagnostic: str, status: str, action: str, context: str) -> tuple[Reason, str]:
    if action in _NOT_FAILED or status.startswith("2"):
        return Reason.DELIVERED, "action"
    said = wording.reason_in(diagnostic)
    if said is not None and not said[2]:
        return said[0], f"wording:{said[1]}"
    by_status = codes.reason_of(status)
    if by_status is not None and not status.endswith(".0.0"):
        return by_status, "status"
    if said is not None:
        return said[0], f"wording:{said[1]}"
    in_report = wording.reason_in(context)
    if in_report is not None:
        return in_report[0], f"report:{in_report[1]}"
    if action == "delayed" or status.startswith("4"):
        return Reason.EXPIRED if action == "delayed" else Reason.OTHER, "status"
    return Reason.OTHER, "none"


def _original_id(parts: Parts) -> str:
    """The quoted original's Message-ID (ours, when the report is about our mail)."""
    if parts.original is not None:
        found = str(parts.original.get("Message-ID", "")).strip()
        if found:
            return found
    own = str(parts.message.get("Message-ID", "")).strip()
    ids = re.findall(r"^[ \t>]*Message-ID:\s*(<[^<>\s]+>)", parts.text, re.I | re.M)
    ids = [i for i in ids if i != own]
    return ids[-1] if ids else ""


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
