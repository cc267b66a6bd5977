"""Complaints and other reports that are not bounces: ARF, providers' own forms, auto-replies.

* ARF (RFC 5965): a ``message/feedback-report`` part, or its fields pasted in
  the text. The recipient is in ``Original-Rcpt-To`` (or the older draft's
  ``Removal-Recipient``), else in the quoted original's To. Feedback type
  ``auth-failure`` / ``dmarc`` is a failure report about our authentication,
  not a person's complaint: it is sender-side.
* Microsoft's JMRP without the ARF part: a forwarded copy whose
  ``X-HmXmrOriginalRecipient`` header names the complainer.
* Amazon SES notifications mailed as JSON (``notificationType`` Complaint or
  Bounce).
* Apple Mail's unsubscribe mail ("Apple Mail sent this email to unsubscribe").
* Auto-replies (RFC 3834 ``Auto-Submitted: auto-replied``, ``X-Autoreply``,
  the common out-of-office subjects) when the message is not a bounce.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from mailer.feedback.mailparts import Parts, addresses, decoded, header_addresses

_FIELD = re.compile(r"^(Feedback-Type|Original-Rcpt-To|Removal-Recipient):\s*(.+)$", re.I | re.M)
_SENDER_SIDE_TYPES = {"auth-failure", "dmarc"}
_AUTO_SUBJECT = re.compile(
    r"^(auto(matic)?[ -]?(reply|response|antwort)|out of (the )?office|vacation|abwesen|"
    r"absence|r[ée]ponse automatique|risposta automatica|respuesta autom|autosvar|"
    r"automatisch|自動応答|自动回复|自動回覆|不在|auto:)",
    re.IGNORECASE,
)
_BOUNCE_FROM = re.compile(r"mailer-daemon|postmaster|mail delivery|bounce", re.IGNORECASE)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|returned mail|delivery (status|failure|notification|has failed)|failure notice"
    r"|mail delivery|non[- ]?delivery|could not be delivered|delivery problem|warning:",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Complaint:
    """Who complained (``""`` when the report hides it) and in what form."""

    recipients: tuple[str, ...]
    feedback_type: str  # abuse, fraud, opt-out, auth-failure, ... ("abuse" when unsaid)
    form: str  # "arf", "jmrp", "ses", "apple-unsubscribe"

    @property
    def sender_side(self) -> bool:
        """A report about our authentication, not a person's complaint."""
        return self.feedback_type in _SENDER_SIDE_TYPES


def complaint_in(parts: Parts) -> Complaint | None:
    """The complaint this message is, or None."""
    arf = "\n".join(parts.status_parts)
    fields = _FIELD.findall(arf) or (
        _FIELD.findall(parts.text) if re.search(r"^Feedback-Type:", parts.text, re.I | re.M) else []
    )
    if fields or _is_arf(parts):
        kind = next((v.strip().lower() for k, v in fields if k.lower() == "feedback-type"), "")
        named = [a for k, v in fields if k.lower() != "feedback-type" for a in addresses(v)]
        if not named:
            named = header_addresses(parts.original, "To")
            named = named if len(named) == 1 else []
        return Complaint(tuple(dict.fromkeys(named)), kind or "abuse", "arf")
    jmrp = header_addresses(parts.original, "X-HmXmrOriginalRecipient")
    if jmrp:
        return Complaint(tuple(jmrp), "abuse", "jmrp")
    ses = _ses_json(parts)
    if ses is not None and ses.get("notificationType") == "Complaint":
        complained = _list(ses, "complaint", "complainedRecipients")
        who = [str(r.get("emailAddress", "")) for r in complained]
        kind = str((ses.get("complaint") or {}).get("complaintFeedbackType") or "abuse")
        return Complaint(tuple(a.lower() for a in who if "@" in a), kind, "ses")
    if re.search(r"sent this (e-?mail|message) to unsubscribe", parts.text, re.I):
        sender = tuple(header_addresses(parts.message, "From"))
        return Complaint(sender, "opt-out", "apple-unsubscribe")
    return None


def ses_bounces(parts: Parts) -> list[tuple[str, str, str, bool]] | None:
    """An SES bounce or delivery notification mailed as JSON: (address, status, diagnostic,
    permanent) per recipient; a delivery's status is 2.0.0."""
    ses = _ses_json(parts)
    if ses is not None and ses.get("notificationType") == "Delivery":
        delivery = ses.get("delivery")
        delivery = delivery if isinstance(delivery, dict) else {}
        listed = delivery.get("recipients")
        return [
            (str(a).lower(), "2.0.0", str(delivery.get("smtpResponse", "")), False)
            for a in (listed if isinstance(listed, list) else [])
            if "@" in str(a)
        ]
    if ses is None or ses.get("notificationType") != "Bounce":
        return None
    permanent = (ses.get("bounce") or {}).get("bounceType") == "Permanent"
    return [
        (
            str(r.get("emailAddress", "")).lower(),
            str(r.get("status", "")),
            str(r.get("diagnosticCode", "")),
            permanent,
        )
        for r in _list(ses, "bounce", "bouncedRecipients")
        if "@" in str(r.get("emailAddress", ""))
    ]


def auto_reply(parts: Parts) -> str | None:
    """The replying person's address when the message is an auto-reply (not a bounce)."""
    message = parts.message
    sender = " ".join(str(v) for v in message.get_all("From", []) or [])
    if _BOUNCE_FROM.search(sender) or _BOUNCE_SUBJECT.search(str(message.get("Subject", ""))):
        return None
    automatic = str(message.get("Auto-Submitted", "")).lower().startswith("auto-replied") or any(
        message.get(name) for name in ("X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress")
    )
    precedence = str(message.get("Precedence", "")).lower() == "auto_reply"
    subject = str(message.get("Subject", "")).strip()
    if not (automatic or precedence or _AUTO_SUBJECT.search(subject)):
        return None
    found = header_addresses(message, "From")
    return found[0] if found else ""


def _is_arf(parts: Parts) -> bool:
    message = parts.message
    return (
        message.get_content_type() == "multipart/report"
        and str(message.get_param("report-type", "")).lower() == "feedback-report"
    )


def _ses_json(parts: Parts) -> dict[str, Any] | None:
    if "notificationType" not in parts.text:
        text = decoded(parts.message) if not parts.message.is_multipart() else ""
        if "notificationType" not in text:
            return None
    else:
        text = parts.text
    data = _json_at(text, text.find("{"))
    if isinstance(data, dict) and isinstance(data.get("Message"), str):  # an SNS envelope
        data = _json_at(data["Message"], 0)
    return data if isinstance(data, dict) else None


def _json_at(text: str, start: int) -> object:
    """The JSON value starting at ``start`` (mail folding may have put newlines in it)."""
    if start < 0:
        return None
    try:
        return json.JSONDecoder(strict=False).raw_decode(text[start:])[0]
    except ValueError:
        return None


def _list(data: dict[str, Any], outer: str, inner: str) -> list[dict[str, Any]]:
    section = data.get(outer)
    items = section.get(inner) if isinstance(section, dict) else None
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []
