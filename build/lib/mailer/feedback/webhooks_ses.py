"""Amazon SES bounce and complaint notifications, delivered by Amazon SNS.

SNS signs each message with RSA (SHA1 or SHA256) and a certificate at
``SigningCertURL``, which must be on an SNS host; topics are limited to
``MAILER_SNS_TOPICS``; a ``SubscriptionConfirmation`` is confirmed by fetching
its ``SubscribeURL`` (also an SNS host). SES's bounce type and subtype are its
verdict; the diagnostic's words refine it (a "Permanent" bounce for a DMARC
refusal is sender-side, not a dead address).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from mailer.feedback.events import Event, Kind
from mailer.feedback.reasons import Reason
from mailer.feedback.webhook_base import (
    Fetch,
    Refused,
    Request,
    body_json,
    bounce,
    items,
    maybe_obj,
    obj,
    secret,
    text,
)

_SNS_HOST = re.compile(r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")
_SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type",
    ),
}  # fmt: skip
# SES's bounce subtypes that name the reason outright.
_SUBTYPES = {
    "NoEmail": Reason.USER_UNKNOWN,
    "Suppressed": Reason.USER_UNKNOWN,
    "OnAccountSuppressionList": Reason.USER_UNKNOWN,
    "MailboxFull": Reason.MAILBOX_FULL,
    "MessageTooLarge": Reason.TOO_BIG,
    "ContentRejected": Reason.CONTENT,
    "AttachmentRejected": Reason.CONTENT,
}


def _sns_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme != "https" or not _SNS_HOST.match(parts.hostname or ""):
        raise Refused(f"not an Amazon SNS address: {url[:80]}")
    return url


def verify_sns(message: Mapping[str, Any], fetch: Fetch) -> None:
    """Check an SNS message's signature with its (SNS-hosted) certificate; Refused if bad."""
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    kind = text(message.get("Type"))
    if kind not in _SIGNED_FIELDS:
        raise Refused(f"unknown SNS message type {kind[:40]!r}", status=400)
    signed = "".join(
        f"{name}\n{text(message[name])}\n" for name in _SIGNED_FIELDS[kind] if name in message
    )
    try:
        certificate = x509.load_pem_x509_certificate(
            fetch(_sns_url(text(message.get("SigningCertURL"))))
        )
    except ValueError:
        raise Refused("the SNS signing certificate is not a certificate") from None
    public = certificate.public_key()
    algorithm = hashes.SHA256() if text(message.get("SignatureVersion")) == "2" else hashes.SHA1()
    try:
        assert isinstance(public, rsa.RSAPublicKey)
        public.verify(
            base64.b64decode(text(message.get("Signature"))),
            signed.encode(),
            padding.PKCS1v15(),
            algorithm,
        )
    except (InvalidSignature, ValueError, AssertionError):
        raise Refused("bad SNS signature") from None


def ses(request: Request) -> list[Event]:
    """Amazon SES bounce and complaint notifications delivered by SNS."""
    topics = [t.strip() for t in secret(request, "MAILER_SNS_TOPICS").split(",") if t.strip()]
    message = obj(body_json(request.body), "the body")
    if request.fetch is None:
        raise Refused("not an SNS message", status=400)
    if text(message.get("TopicArn")) not in topics:
        raise Refused("this SNS topic is not in MAILER_SNS_TOPICS", status=403)
    verify_sns(message, request.fetch)
    if message["Type"] == "SubscriptionConfirmation":
        request.fetch(_sns_url(text(message.get("SubscribeURL"))))
        return []
    notice = obj(body_json(text(message.get("Message")).encode()), "the SNS Message")
    campaign = ""
    for header in items(maybe_obj(notice.get("mail"), "mail").get("headers"), "mail.headers"):
        if text(header.get("name")).lower() == "feedback-id":  # "<journal key>:<domain>"
            campaign = text(header.get("value")).rpartition(":")[0]
    kind_name = notice.get("notificationType") or notice.get("eventType")
    message_id = text(message.get("MessageId"))
    if kind_name == "Bounce":
        return _bounces(maybe_obj(notice.get("bounce"), "bounce"), campaign, message_id)
    if kind_name == "Complaint":
        complaint = maybe_obj(notice.get("complaint"), "complaint")
        feedback_id = text(complaint.get("feedbackId")) or message_id
        kind = text(complaint.get("complaintFeedbackType")) or "abuse"
        return [
            Event(
                Kind.COMPLAINT,
                email,
                "ses",
                campaign,
                f"{feedback_id}:{email}",
                f"feedback-type: {kind}",
                "complaint",
                report_id=message_id,
            )
            for who in items(complaint.get("complainedRecipients"), "complainedRecipients")
            if "@" in (email := text(who.get("emailAddress")))
        ]
    return []


def _bounces(data: dict[str, Any], campaign: str, message_id: str) -> list[Event]:
    kind, subtype = text(data.get("bounceType")), text(data.get("bounceSubType"))
    feedback_id = text(data.get("feedbackId")) or message_id
    fallback = _SUBTYPES.get(subtype, Reason.USER_UNKNOWN if kind == "Permanent" else Reason.OTHER)
    events = []
    for who in items(data.get("bouncedRecipients"), "bouncedRecipients"):
        email = text(who.get("emailAddress"))
        if "@" not in email:
            continue
        event = bounce(
            email, "ses", campaign, f"{feedback_id}:{email}", text(who.get("diagnosticCode")),
            status=text(who.get("status")), temporary=kind != "Permanent", fallback=fallback,
        )  # fmt: skip
        events.append(event)
    return events
