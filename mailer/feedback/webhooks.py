"""The relays' event webhooks: who bounced or complained, with each sender's signature checked.

Each reader takes the raw request (headers and body bytes) and returns the
events in it, or raises ``Refused`` (answered 401/400, nothing applied):

* ``generic``  — our documented form: ``X-Mailer-Timestamp`` and
  ``X-Mailer-Signature: sha256=<hex HMAC of "timestamp.body">`` with
  ``MAILER_WEBHOOK_SECRET``; a body of ``{"events": [...]}`` or one event;
* ``mailgun``  — HMAC-SHA256 of timestamp + token with ``MAILGUN_WEBHOOK_SIGNING_KEY``;
* ``postmark`` — HTTP basic auth (``MAILER_POSTMARK_USER`` / ``MAILER_POSTMARK_PASSWORD``),
  which Postmark puts in the webhook URL;
* ``sendgrid`` — ECDSA P-256 signature of timestamp + body with the public key
  ``MAILER_SENDGRID_PUBLIC_KEY`` (base64, from SendGrid's settings page);
* ``ses``      — Amazon SNS: the message's RSA signature (SHA1 or SHA256) with the
  certificate at ``SigningCertURL``, which must be an SNS host; topics limited to
  ``MAILER_SNS_TOPICS``; a ``SubscriptionConfirmation`` is confirmed by fetching its
  ``SubscribeURL`` (also an SNS host).

Signed timestamps older than five minutes are refused (a replayed request);
an event seen before is recognised by its id and applied once (``events``).
Secrets come from the environment only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from mailer.feedback.events import Event, Kind

MAX_SKEW = 300.0  # seconds a signed timestamp may be off
_SNS_HOST = re.compile(r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")

Fetch = Callable[[str], bytes]  # GET a URL (https only), return the body


class Refused(Exception):
    """The request is not a genuine, fresh event post; ``status`` is the HTTP answer."""

    def __init__(self, message: str, status: int = 401):
        super().__init__(message)
        self.status = status


@dataclass
class Request:
    """What a reader sees of the HTTP request."""

    headers: Mapping[str, str]  # lower-cased names
    body: bytes
    now: float
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    fetch: Fetch | None = None  # for SNS certificates and subscription confirmations


def _secret(request: Request, name: str) -> str:
    value = request.env.get(name, "")
    if not value:
        raise Refused(f"{name} is not set: this webhook is turned off", status=404)
    return value


def _fresh(request: Request, timestamp: str) -> None:
    try:
        moment = float(timestamp)
    except ValueError:
        raise Refused("bad timestamp") from None
    if abs(request.now - moment) > MAX_SKEW:
        raise Refused("stale or future timestamp (a replay?)")


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise Refused("the body is not JSON", status=400) from None


# --- generic -----------------------------------------------------------------------

_GENERIC_KINDS = {k.value: k for k in Kind}


def generic(request: Request) -> list[Event]:
    """Our own signed JSON form (see the module docstring and the README)."""
    secret = _secret(request, "MAILER_WEBHOOK_SECRET").encode()
    timestamp = request.headers.get("x-mailer-timestamp", "")
    given = request.headers.get("x-mailer-signature", "").removeprefix("sha256=")
    _fresh(request, timestamp)
    expected = hmac.new(secret, timestamp.encode() + b"." + request.body, hashlib.sha256)
    if not hmac.compare_digest(given, expected.hexdigest()):
        raise Refused("bad signature")
    data = _json(request.body)
    items = data.get("events", [data]) if isinstance(data, dict) else data
    events = []
    for item in items if isinstance(items, list) else []:
        kind = _GENERIC_KINDS.get(str(item.get("type", "")))
        email = str(item.get("email", ""))
        if kind is None or "@" not in email:
            raise Refused(f"not an event: {str(item)[:80]}", status=400)
        campaign, event_id = str(item.get("campaign", "")), str(item.get("id", ""))
        events.append(
            Event(kind, email, "generic", campaign, event_id, str(item.get("detail", "")))
        )
    return events


# --- Mailgun -------------------------------------------------------------------------


def mailgun(request: Request) -> list[Event]:
    """Mailgun's JSON webhook (``signature`` + ``event-data``)."""
    key = _secret(request, "MAILGUN_WEBHOOK_SIGNING_KEY").encode()
    data = _json(request.body)
    signature = data.get("signature", {}) if isinstance(data, dict) else {}
    timestamp, token = str(signature.get("timestamp", "")), str(signature.get("token", ""))
    _fresh(request, timestamp)
    expected = hmac.new(key, (timestamp + token).encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(str(signature.get("signature", "")), expected):
        raise Refused("bad signature")
    item = data.get("event-data", {})
    name, email = item.get("event"), str(item.get("recipient", ""))
    status = item.get("delivery-status", {}) or {}
    detail = f"{status.get('code', '')} {status.get('message') or status.get('description', '')}"
    if name == "failed":
        kind = Kind.HARD_BOUNCE if item.get("severity") == "permanent" else Kind.SOFT_BOUNCE
    elif name == "complained":
        kind = Kind.COMPLAINT
    elif name == "unsubscribed":
        kind = Kind.UNSUBSCRIBE
    else:
        return []  # delivered, opened ...: nothing to do
    campaign = str((item.get("user-variables") or {}).get("mailer_campaign", ""))
    return [Event(kind, email, "mailgun", campaign, str(item.get("id", token)), detail.strip())]


# --- Postmark ------------------------------------------------------------------------

_POSTMARK_SOFT = {"SoftBounce", "Transient", "DnsError", "AutoResponder", "ChallengeVerification"}


def postmark(request: Request) -> list[Event]:
    """Postmark's bounce, spam-complaint and subscription-change webhooks (basic auth)."""
    user = _secret(request, "MAILER_POSTMARK_USER")
    password = _secret(request, "MAILER_POSTMARK_PASSWORD")
    expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    if not hmac.compare_digest(request.headers.get("authorization", ""), expected):
        raise Refused("bad credentials")
    item = _json(request.body)
    if not isinstance(item, dict):
        raise Refused("not a Postmark event", status=400)
    record = item.get("RecordType")
    email = str(item.get("Email") or item.get("Recipient") or "")
    event_id = str(item.get("ID") or item.get("MessageID") or "")
    campaign = str((item.get("Metadata") or {}).get("mailer_campaign", ""))
    if record == "Bounce":
        kind = Kind.SOFT_BOUNCE if item.get("Type") in _POSTMARK_SOFT else Kind.HARD_BOUNCE
        detail = str(item.get("Details") or item.get("Description") or "")
        return [Event(kind, email, "postmark", campaign, event_id, detail)]
    if record == "SpamComplaint":
        return [Event(Kind.COMPLAINT, email, "postmark", campaign, event_id)]
    if record == "SubscriptionChange" and item.get("SuppressSending"):
        return [Event(Kind.UNSUBSCRIBE, email, "postmark", campaign, event_id)]
    return []


# --- SendGrid ------------------------------------------------------------------------


def sendgrid(request: Request) -> list[Event]:
    """SendGrid's signed Event Webhook (a JSON array of events)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    key_text = _secret(request, "MAILER_SENDGRID_PUBLIC_KEY")
    timestamp = request.headers.get("x-twilio-email-event-webhook-timestamp", "")
    signature = request.headers.get("x-twilio-email-event-webhook-signature", "")
    _fresh(request, timestamp)
    try:
        public = load_der_public_key(base64.b64decode(key_text))
        assert isinstance(public, ec.EllipticCurvePublicKey)
        public.verify(
            base64.b64decode(signature),
            timestamp.encode() + request.body,
            ec.ECDSA(hashes.SHA256()),
        )
    except (InvalidSignature, ValueError, AssertionError):
        raise Refused("bad signature") from None
    items = _json(request.body)
    events = []
    for item in items if isinstance(items, list) else []:
        name, email = item.get("event"), str(item.get("email", ""))
        event_id = str(item.get("sg_event_id", ""))
        campaign = str(item.get("mailer_campaign", ""))
        detail = str(item.get("reason", ""))
        if name == "bounce":
            kind = Kind.SOFT_BOUNCE if item.get("type") == "blocked" else Kind.HARD_BOUNCE
        elif name == "spamreport":
            kind = Kind.COMPLAINT
        elif name in ("unsubscribe", "group_unsubscribe"):
            kind = Kind.UNSUBSCRIBE
        else:
            continue  # delivered, deferred (retried by SendGrid), opens ...
        events.append(Event(kind, email, "sendgrid", campaign, event_id, detail))
    return events


# --- Amazon SES through SNS -----------------------------------------------------------

_SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type",
    ),
}  # fmt: skip


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

    kind = str(message.get("Type", ""))
    if kind not in _SIGNED_FIELDS:
        raise Refused(f"unknown SNS message type {kind!r}", status=400)
    text = "".join(f"{name}\n{message[name]}\n" for name in _SIGNED_FIELDS[kind] if name in message)
    certificate = x509.load_pem_x509_certificate(fetch(_sns_url(str(message["SigningCertURL"]))))
    public = certificate.public_key()
    algorithm = hashes.SHA256() if str(message.get("SignatureVersion")) == "2" else hashes.SHA1()
    try:
        assert isinstance(public, rsa.RSAPublicKey)
        public.verify(
            base64.b64decode(str(message.get("Signature", ""))),
            text.encode(),
            padding.PKCS1v15(),
            algorithm,
        )
    except (InvalidSignature, ValueError, AssertionError):
        raise Refused("bad SNS signature") from None


def ses(request: Request) -> list[Event]:
    """Amazon SES bounce and complaint notifications delivered by SNS."""
    topics = [t for t in _secret(request, "MAILER_SNS_TOPICS").split(",") if t.strip()]
    message = _json(request.body)
    if not isinstance(message, dict) or request.fetch is None:
        raise Refused("not an SNS message", status=400)
    if str(message.get("TopicArn", "")) not in [t.strip() for t in topics]:
        raise Refused("this SNS topic is not in MAILER_SNS_TOPICS", status=403)
    verify_sns(message, request.fetch)
    if message["Type"] == "SubscriptionConfirmation":
        request.fetch(_sns_url(str(message.get("SubscribeURL", ""))))
        return []
    notice = _json(str(message.get("Message", "")).encode())
    campaign = ""
    for header in (notice.get("mail") or {}).get("headers", []) or []:
        if str(header.get("name", "")).lower() == "feedback-id":  # "<journal key>:<domain>"
            campaign = str(header.get("value", "")).rpartition(":")[0]
    kind_name = notice.get("notificationType") or notice.get("eventType")
    events = []
    if kind_name == "Bounce":
        bounce = notice.get("bounce", {})
        kind = Kind.HARD_BOUNCE if bounce.get("bounceType") == "Permanent" else Kind.SOFT_BOUNCE
        feedback_id = str(bounce.get("feedbackId", message["MessageId"]))
        for who in bounce.get("bouncedRecipients", []):
            email = str(who.get("emailAddress", ""))
            detail = str(who.get("diagnosticCode", ""))
            events.append(Event(kind, email, "ses", campaign, f"{feedback_id}:{email}", detail))
    elif kind_name == "Complaint":
        complaint = notice.get("complaint", {})
        feedback_id = str(complaint.get("feedbackId", message["MessageId"]))
        for who in complaint.get("complainedRecipients", []):
            email = str(who.get("emailAddress", ""))
            events.append(Event(Kind.COMPLAINT, email, "ses", campaign, f"{feedback_id}:{email}"))
    return events


READERS: dict[str, Callable[[Request], list[Event]]] = {
    "generic": generic,
    "mailgun": mailgun,
    "postmark": postmark,
    "sendgrid": sendgrid,
    "ses": ses,
}
