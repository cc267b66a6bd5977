"""The relays' event webhooks: who bounced or complained, with each sender's signature checked.

Each reader takes the raw request (headers and body bytes) and returns the
events in it, or raises ``Refused`` (answered 4xx with a one-line reason,
nothing applied):

* ``generic``  — our documented form: ``X-Mailer-Timestamp`` and
  ``X-Mailer-Signature: sha256=<hex HMAC of "timestamp.body">`` with
  ``MAILER_WEBHOOK_SECRET``; a body of ``{"events": [...]}`` or one event;
* ``mailgun``  — HMAC-SHA256 of timestamp + token with ``MAILGUN_WEBHOOK_SIGNING_KEY``.
  The signature does not cover the body, so each token is accepted once: the
  endpoint remembers it well past the freshness window (``webhook_tokens``),
  and a captured request replayed with another body is refused;
* ``postmark`` — HTTP basic auth (``MAILER_POSTMARK_USER`` / ``MAILER_POSTMARK_PASSWORD``),
  which Postmark puts in the webhook URL;
* ``sendgrid`` — ECDSA P-256 signature of timestamp + body with the public key
  ``MAILER_SENDGRID_PUBLIC_KEY`` (base64, from SendGrid's settings page);
* ``ses``      — Amazon SNS (``webhooks_ses``).

Signed timestamps must be finite and within five minutes of now; an event seen
before is recognised by its id and applied once (``events``). Bounces are
judged by the relay's words (``classify.judge``), the relay's type being the
fallback. Secrets come from the environment only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable

from mailer.feedback.events import Event, Kind
from mailer.feedback.reasons import Reason
from mailer.feedback.webhook_base import (
    MAX_SKEW,
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
from mailer.feedback.webhook_base import fresh as _fresh
from mailer.feedback.webhooks_ses import ses, verify_sns

__all__ = ["MAX_SKEW", "READERS", "Fetch", "Refused", "Request", "verify_sns"]

# --- generic -----------------------------------------------------------------------

_GENERIC_KINDS = {k.value: k for k in Kind if k not in (Kind.SENDER_SIDE, Kind.IGNORED)}


def generic(request: Request) -> list[Event]:
    """Our own signed JSON form (see the module docstring and the docs)."""
    key = secret(request, "MAILER_WEBHOOK_SECRET").encode()
    timestamp = request.headers.get("x-mailer-timestamp", "")
    given = request.headers.get("x-mailer-signature", "").removeprefix("sha256=")
    _fresh(request, timestamp)
    expected = hmac.new(key, timestamp.encode() + b"." + request.body, hashlib.sha256)
    if not hmac.compare_digest(given.encode(), expected.hexdigest().encode()):
        raise Refused("bad signature")
    data = body_json(request.body)
    listed = data.get("events", [data]) if isinstance(data, dict) else data
    if not isinstance(listed, list):
        raise Refused("the body is neither an event nor a list of events", status=400)
    events = []
    for item in items(listed, "events"):
        kind = _GENERIC_KINDS.get(text(item.get("type")))
        email = text(item.get("email"))
        if kind is None or "@" not in email:
            raise Refused(f"not an event: {str(item)[:80]}", status=400)
        detail = text(item.get("detail"))
        event = Event(kind, email, "generic", text(item.get("campaign")), text(item.get("id")),
                      detail, text(item.get("reason")), text(item.get("status")))  # fmt: skip
        events.append(event)
    return events


# --- Mailgun -------------------------------------------------------------------------


def mailgun(request: Request) -> list[Event]:
    """Mailgun's JSON webhook (``signature`` + ``event-data``); each token once."""
    key = secret(request, "MAILGUN_WEBHOOK_SIGNING_KEY").encode()
    data = obj(body_json(request.body), "the body")
    signature = maybe_obj(data.get("signature"), "signature")
    timestamp, token = text(signature.get("timestamp")), text(signature.get("token"))
    _fresh(request, timestamp)
    expected = hmac.new(key, (timestamp + token).encode(), hashlib.sha256).hexdigest()
    if not token or not hmac.compare_digest(
        text(signature.get("signature")).encode(), expected.encode()
    ):
        raise Refused("bad signature")
    request.tokens.append(token)
    item = maybe_obj(data.get("event-data"), "event-data")
    name, email = item.get("event"), text(item.get("recipient"))
    status = maybe_obj(item.get("delivery-status"), "delivery-status")
    code = text(status.get("code"))
    detail = f"{code} {text(status.get('message')) or text(status.get('description'))}".strip()
    campaign = text(maybe_obj(item.get("user-variables"), "user-variables").get("mailer_campaign"))
    event_id = text(item.get("id")) or token
    if name == "failed":
        temporary = item.get("severity") != "permanent"
        fallback = Reason.OTHER if temporary else Reason.USER_UNKNOWN
        return [bounce(email, "mailgun", campaign, event_id, detail, status=code,
                       temporary=temporary, fallback=fallback)]  # fmt: skip
    if name == "complained":
        return [Event(Kind.COMPLAINT, email, "mailgun", campaign, event_id, detail, "complaint")]
    if name == "unsubscribed":
        return [Event(Kind.UNSUBSCRIBE, email, "mailgun", campaign, event_id, detail)]
    return []  # delivered, opened ...: nothing to do


# --- Postmark ------------------------------------------------------------------------

# Postmark's bounce types: its verdict, refined by the words of "Details".
_POSTMARK = {
    "HardBounce": (False, Reason.USER_UNKNOWN),
    "BadEmailAddress": (False, Reason.USER_UNKNOWN),
    "ManuallyDeactivated": (False, Reason.USER_UNKNOWN),
    "SoftBounce": (True, Reason.OTHER),
    "Transient": (True, Reason.OTHER),
    "DnsError": (True, Reason.HOST_UNKNOWN),
    "Blocked": (False, Reason.BLOCKED),
    "SpamNotification": (False, Reason.CONTENT),
    "ContentRelated": (False, Reason.CONTENT),
    "VirusNotification": (False, Reason.CONTENT),
    "AutoResponder": (True, Reason.VACATION),
    "ChallengeVerification": (True, Reason.OTHER),
}


def postmark(request: Request) -> list[Event]:
    """Postmark's bounce, spam-complaint and subscription-change webhooks (basic auth)."""
    user = secret(request, "MAILER_POSTMARK_USER")
    password = secret(request, "MAILER_POSTMARK_PASSWORD")
    expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    if not hmac.compare_digest(
        request.headers.get("authorization", "").encode(), expected.encode()
    ):
        raise Refused("bad credentials")
    item = obj(body_json(request.body), "the body")
    record = item.get("RecordType")
    email = text(item.get("Email")) or text(item.get("Recipient"))
    event_id = text(item.get("ID")) or text(item.get("MessageID"))
    campaign = text(maybe_obj(item.get("Metadata"), "Metadata").get("mailer_campaign"))
    if record == "Bounce":
        temporary, fallback = _POSTMARK.get(text(item.get("Type")), (True, Reason.OTHER))
        detail = text(item.get("Details")) or text(item.get("Description"))
        if fallback is Reason.VACATION:
            return [Event(Kind.IGNORED, email, "postmark", campaign, event_id, detail, "vacation")]
        return [bounce(email, "postmark", campaign, event_id, detail, temporary=temporary,
                       fallback=fallback)]  # fmt: skip
    if record == "SpamComplaint":
        return [Event(Kind.COMPLAINT, email, "postmark", campaign, event_id, reason="complaint")]
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

    key_text = secret(request, "MAILER_SENDGRID_PUBLIC_KEY")
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
    events = []
    for item in items(body_json(request.body), "the body"):
        name, email = item.get("event"), text(item.get("email"))
        event_id, campaign = text(item.get("sg_event_id")), text(item.get("mailer_campaign"))
        detail = text(item.get("reason"))
        if name == "bounce":
            blocked = item.get("type") == "blocked"  # SendGrid: refused for the sender's sake
            fallback = Reason.BLOCKED if blocked else Reason.USER_UNKNOWN
            events.append(bounce(email, "sendgrid", campaign, event_id, detail,
                                 status=text(item.get("status")), temporary=False,
                                 fallback=fallback))  # fmt: skip
        elif name == "spamreport":
            events.append(Event(Kind.COMPLAINT, email, "sendgrid", campaign, event_id,
                                reason="complaint"))  # fmt: skip
        elif name in ("unsubscribe", "group_unsubscribe"):
            events.append(Event(Kind.UNSUBSCRIBE, email, "sendgrid", campaign, event_id))
        # delivered, deferred (retried by SendGrid), opens ...: nothing to do
    return events


READERS: dict[str, Callable[[Request], list[Event]]] = {
    "generic": generic,
    "mailgun": mailgun,
    "postmark": postmark,
    "sendgrid": sendgrid,
    "ses": ses,
}
