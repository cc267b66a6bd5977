"""Relay webhooks over real HTTP, each with its provider's real signature scheme.

Keys are made here (HMAC secrets, an ECDSA P-256 key for SendGrid, an RSA key and
a self-signed certificate for Amazon SNS); the SNS certificate "download" is the
one thing not on the network: ``fetch`` hands back our certificate for an SNS URL
and records what it was asked for (we never send traffic off this machine).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from mailer.audience.store import connect
from mailer.core.settings import Settings
from mailer.feedback.server import Endpoint
from tests.feedback.served import serving
from tests.workspace import example_settings

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC).timestamp()
TOPIC = "arn:aws:sns:eu-west-1:123456789012:ses-feedback"
CERT_URL = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-abc.pem"


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    return example_settings(tmp_path)


def state(settings: Settings) -> tuple[dict[str, str], int]:
    """The suppression list and the number of recorded events."""
    conn = connect(settings.db_path)
    try:
        listed = {r[0]: r[1] for r in conn.execute("SELECT email, reason FROM suppressions")}
        (count,) = conn.execute("SELECT count(*) FROM feedback_events").fetchone()
        return listed, count
    finally:
        conn.close()


# --- generic -------------------------------------------------------------------------


def generic_post(base: str, body: bytes, secret: str, when: float = NOW) -> httpx.Response:
    stamp = str(int(when))
    mac = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    headers = {"X-Mailer-Timestamp": stamp, "X-Mailer-Signature": f"sha256={mac}"}
    return httpx.post(f"{base}/hooks/generic", content=body, headers=headers)


def test_generic_events_are_verified_applied_and_applied_once(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAILER_WEBHOOK_SECRET", "s3cret")
    body = json.dumps(
        {
            "events": [
                {"type": "hard_bounce", "email": "a@x.test", "id": "e1", "campaign": "spring"},
                {"type": "complaint", "email": "b@x.test", "id": "e2"},
                {"type": "soft_bounce", "email": "c@x.test", "id": "e3"},
            ]
        }
    ).encode()
    with serving(Endpoint(settings, now=lambda: NOW, log=lambda _: None)) as base:
        first = generic_post(base, body, "s3cret")
        replayed = generic_post(base, body, "s3cret")  # the relay retried: same ids
        forged = generic_post(base, body.replace(b"a@x", b"z@x"), "wrong")
        stale = generic_post(base, body, "s3cret", when=NOW - 301)
        unknown = httpx.post(f"{base}/hooks/nope", content=b"{}")
    assert first.json() == {"applied": 3, "repeats": 0}
    assert replayed.json() == {"applied": 0, "repeats": 3}
    assert (forged.status_code, stale.status_code, unknown.status_code) == (401, 401, 404)
    listed, count = state(settings)
    assert listed == {"a@x.test": "bounced", "b@x.test": "complained"}  # one soft: not yet
    assert count == 3


def test_a_webhook_without_its_secret_is_off(settings: Settings) -> None:
    with serving(Endpoint(settings, now=lambda: NOW, log=lambda _: None)) as base:
        answer = generic_post(base, b'{"type": "complaint", "email": "a@x.test"}', "")
    assert answer.status_code == 404 and "MAILER_WEBHOOK_SECRET" in answer.text
    assert state(settings) == ({}, 0)


def test_soft_bounces_suppress_after_the_limit_within_the_window(settings: Settings) -> None:
    from mailer.feedback.events import Event, Kind, apply_event

    rules = settings.feedback  # 3 within 30 days
    start = datetime.fromtimestamp(NOW, UTC)
    conn = connect(settings.db_path)
    spread = [apply_event(conn, Event(Kind.SOFT_BOUNCE, "slow@x.test", "dsn", event_id=f"s{i}"),
                          rules, start + timedelta(days=16 * i)) for i in range(3)]  # fmt: skip
    close = [apply_event(conn, Event(Kind.SOFT_BOUNCE, "full@x.test", "dsn", event_id=f"f{i}"),
                         rules, start + timedelta(days=i)) for i in range(3)]  # fmt: skip
    conn.close()
    assert [a.suppressed for a in spread] == [False, False, False]  # 16 days apart: 2 in 30
    assert [a.suppressed for a in close] == [False, False, True]
    assert state(settings)[0] == {"full@x.test": "bounced"}


# --- Mailgun, Postmark, SendGrid -------------------------------------------------------


def test_mailgun_signature_and_severity(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAILGUN_WEBHOOK_SIGNING_KEY", "mg-key")

    def event(recipient: str, severity: str, token: str, key: str = "mg-key") -> dict[str, object]:
        stamp = str(int(NOW))
        mac = hmac.new(key.encode(), (stamp + token).encode(), hashlib.sha256).hexdigest()
        return {
            "signature": {"timestamp": stamp, "token": token, "signature": mac},
            "event-data": {
                "event": "failed",
                "severity": severity,
                "recipient": recipient,
                "id": token,
                "delivery-status": {"code": 550, "message": "5.1.1 no such user"},
            },
        }

    with serving(Endpoint(settings, now=lambda: NOW, log=lambda _: None)) as base:
        hard = httpx.post(f"{base}/hooks/mailgun", json=event("gone@x.test", "permanent", "t1"))
        soft = httpx.post(f"{base}/hooks/mailgun", json=event("busy@x.test", "temporary", "t2"))
        bad = httpx.post(f"{base}/hooks/mailgun", json=event("c@x.test", "permanent", "t3", "no"))
    assert hard.json()["applied"] == soft.json()["applied"] == 1 and bad.status_code == 401
    assert state(settings) == ({"gone@x.test": "bounced"}, 2)


def test_postmark_basic_auth(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILER_POSTMARK_USER", "pm")
    monkeypatch.setenv("MAILER_POSTMARK_PASSWORD", "pw")
    complaint = {"RecordType": "SpamComplaint", "Email": "angry@x.test", "ID": 42}
    with serving(Endpoint(settings, now=lambda: NOW, log=lambda _: None)) as base:
        good = httpx.post(f"{base}/hooks/postmark", json=complaint, auth=("pm", "pw"))
        bad = httpx.post(f"{base}/hooks/postmark", json=complaint, auth=("pm", "guess"))
    assert good.json()["applied"] == 1 and bad.status_code == 401
    assert state(settings) == ({"angry@x.test": "complained"}, 1)


def test_sendgrid_ecdsa_signature(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    monkeypatch.setenv("MAILER_SENDGRID_PUBLIC_KEY", base64.b64encode(public).decode())
    body = json.dumps(
        [
            {"event": "bounce", "email": "gone@x.test", "sg_event_id": "g1", "type": "bounce"},
            {"event": "spamreport", "email": "angry@x.test", "sg_event_id": "g2"},
            {"event": "delivered", "email": "fine@x.test", "sg_event_id": "g3"},
        ]
    ).encode()
    stamp = str(int(NOW))
    signature = base64.b64encode(key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256())))
    headers = {
        "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
        "X-Twilio-Email-Event-Webhook-Signature": signature.decode(),
    }
    with serving(Endpoint(settings, now=lambda: NOW, log=lambda _: None)) as base:
        good = httpx.post(f"{base}/hooks/sendgrid", content=body, headers=headers)
        tampered = httpx.post(
            f"{base}/hooks/sendgrid", content=body.replace(b"g1", b"g9"), headers=headers
        )
    assert good.json() == {"applied": 2, "repeats": 0} and tampered.status_code == 401
    assert state(settings) == ({"gone@x.test": "bounced", "angry@x.test": "complained"}, 2)


# --- Amazon SES through SNS -------------------------------------------------------------


class FakeSns:
    """An RSA key, its self-signed certificate, and a ``fetch`` that serves it."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
        start = datetime(2026, 1, 1, tzinfo=UTC)
        self.pem = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(1)
            .not_valid_before(start)
            .not_valid_after(start + timedelta(days=730))
            .sign(self.key, hashes.SHA256())
            .public_bytes(serialization.Encoding.PEM)
        )
        self.fetched: list[str] = []

    def fetch(self, url: str) -> bytes:
        self.fetched.append(url)
        return self.pem if url == CERT_URL else b"confirmed"

    def message(self, kind: str, fields: dict[str, str]) -> dict[str, str]:
        message = {"Type": kind, "MessageId": "m-1", "TopicArn": TOPIC, "Timestamp": "t", **fields}
        names = ["Message", "MessageId", "Subject", "SubscribeURL", "Timestamp", "Token"]
        text = "".join(f"{n}\n{message[n]}\n" for n in [*names, "TopicArn", "Type"] if n in message)
        signature = self.key.sign(text.encode(), padding.PKCS1v15(), hashes.SHA256())
        message |= {
            "SignatureVersion": "2",
            "Signature": base64.b64encode(signature).decode(),
            "SigningCertURL": CERT_URL,
        }
        return message


def test_ses_notifications_through_sns(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILER_SNS_TOPICS", TOPIC)
    sns = FakeSns()
    bounce = {
        "notificationType": "Bounce",
        "bounce": {
            "bounceType": "Permanent",
            "feedbackId": "fb-1",
            "bouncedRecipients": [{"emailAddress": "gone@x.test", "diagnosticCode": "5.1.1"}],
        },
        "mail": {"headers": [{"name": "Feedback-ID", "value": "spring:tea.test"}]},
    }
    notification = sns.message("Notification", {"Message": json.dumps(bounce)})
    confirm = sns.message(
        "SubscriptionConfirmation",
        {
            "Message": "confirm",
            "Token": "tok",
            "SubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription",
        },
    )
    altered = dict(notification, Message=json.dumps(bounce).replace("gone@", "other@"))
    elsewhere = dict(notification, SigningCertURL="https://evil.test/cert.pem")
    other_topic = sns.message("Notification", {"Message": "{}"}) | {"TopicArn": "arn:other"}
    endpoint = Endpoint(settings, now=lambda: NOW, fetch=sns.fetch, log=lambda _: None)
    with serving(endpoint) as base:
        codes = [
            httpx.post(f"{base}/hooks/ses", json=body).status_code
            for body in (confirm, notification, notification, altered, elsewhere, other_topic)
        ]
    assert codes == [200, 200, 200, 401, 401, 403]
    assert confirm["SubscribeURL"] in sns.fetched  # the subscription was confirmed
    assert "https://evil.test/cert.pem" not in sns.fetched  # never fetched off SNS
    listed, count = state(settings)
    assert listed == {"gone@x.test": "bounced"} and count == 1  # the repeat applied once
    conn = connect(settings.db_path)
    (campaign,) = conn.execute("SELECT campaign_id FROM feedback_events").fetchone()
    conn.close()
    assert campaign == "spring"
