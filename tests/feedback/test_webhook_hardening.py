"""Webhooks against an attacker and against odd bodies, over real HTTP (uvicorn on loopback).

* A captured Mailgun webhook replayed — as sent, or with another body under the
  same signature — changes nothing: the token is remembered past the freshness
  window.
* Authenticated bodies of unexpected shapes get 400 and a one-line reason, never 500.
* Timestamps that are not finite numbers are refused.
* X-Forwarded-For counts for the rate limit only from ``[serve] trusted_proxies``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from mailer.audience.store import connect
from mailer.core.settings import Serve, Settings
from mailer.feedback.server import Endpoint, Limiter
from tests.feedback.served import serving
from tests.feedback.test_webhooks import NOW, settings, state  # noqa: F401 (fixture)

KEY = "mg-signing-key"

# A Mailgun "failed" webhook as Mailgun posts it (its documented JSON shape), signed below.
CAPTURED: dict[str, Any] = {
    "signature": {"timestamp": "", "token": "", "signature": ""},
    "event-data": {
        "id": "CPgfbmQMTCKtHW6uIWtuVe",
        "timestamp": NOW,
        "log-level": "error",
        "event": "failed",
        "severity": "permanent",
        "reason": "bounce",
        "recipient": "alice@example.com",
        "recipient-domain": "example.com",
        "delivery-status": {
            "attempt-no": 1,
            "code": 550,
            "message": "5.1.1 The email account that you tried to reach does not exist.",
            "description": "",
            "mx-host": "gmail-smtp-in.l.google.com",
        },
        "message": {"headers": {"message-id": "20130503182626.18666.16540@example.com"}},
        "user-variables": {"mailer_campaign": "spring"},
    },
}


def signed(body: dict[str, Any], token: str, when: float = NOW) -> dict[str, Any]:
    """``body`` with a valid Mailgun signature for ``token`` at ``when``."""
    stamp = str(int(when))
    mac = hmac.new(KEY.encode(), (stamp + token).encode(), hashlib.sha256).hexdigest()
    return {**body, "signature": {"timestamp": stamp, "token": token, "signature": mac}}


def generic_post(base: str, body: bytes, stamp: str) -> httpx.Response:
    mac = hmac.new(b"s3cret", stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    headers = {"X-Mailer-Timestamp": stamp, "X-Mailer-Signature": f"sha256={mac}"}
    return httpx.post(f"{base}/hooks/generic", content=body, headers=headers)


def test_a_replayed_mailgun_webhook_changes_nothing(
    settings: Settings,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MAILGUN_WEBHOOK_SIGNING_KEY", KEY)
    clock = [NOW]
    captured = signed(CAPTURED, "5d6b5f3a2b8e4c1f9a0e7d6c5b4a3928")
    forged = json.loads(json.dumps(captured))
    forged["event-data"]["recipient"] = "victim@example.com"  # the body is not signed
    forged["event-data"]["id"] = "another-event-id"
    endpoint = Endpoint(settings, now=lambda: clock[0], log=lambda _: None)
    with serving(endpoint) as base:
        first = httpx.post(f"{base}/hooks/mailgun", json=captured)
        after_first = state(settings)
        replayed = httpx.post(f"{base}/hooks/mailgun", json=captured)
        clock[0] = NOW + 200  # still within the five fresh minutes
        other_body = httpx.post(f"{base}/hooks/mailgun", json=forged)
        clock[0] = NOW + 3600  # later: stale anyway
        late = httpx.post(f"{base}/hooks/mailgun", json=forged)
    assert first.status_code == 200 and first.json()["applied"] == 1
    assert after_first == ({"alice@example.com": "bounced"}, 1)
    assert replayed.status_code == other_body.status_code == 406
    assert "replay" in other_body.json()["error"]
    assert late.status_code == 401
    assert state(settings) == after_first  # the victim is still subscribed
    conn = connect(settings.db_path)
    (reason, status) = conn.execute("SELECT reason, status FROM feedback_events").fetchone()
    (remembered,) = conn.execute("SELECT count(*) FROM webhook_tokens").fetchone()
    conn.close()
    assert (reason, status, remembered) == ("user_unknown", "550", 1)


def test_old_tokens_expire_from_memory(
    settings: Settings,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mailer.feedback.tokens_seen import KEEP, remember_tokens

    conn = connect(settings.db_path)
    start = datetime.fromtimestamp(NOW, UTC)
    assert remember_tokens(conn, "mailgun", ["t1"], start)
    assert not remember_tokens(conn, "mailgun", ["t1"], start + KEEP / 2)
    assert remember_tokens(conn, "mailgun", ["t2"], start + KEEP + timedelta(seconds=1))
    (left,) = conn.execute("SELECT group_concat(token) FROM webhook_tokens").fetchone()
    conn.close()
    assert left == "t2"  # t1 expired and was deleted


BAD_GENERIC = [b"[1]", b'{"events": [1]}', b'{"events": "x"}', b'"text"', b"7", b"null",
               b'{"events": [{"type": "complaint", "email": {"a": 1}}]}',
               b'{"events": [{"type": ["complaint"], "email": "a@x.test"}]}']  # fmt: skip


def test_unexpected_shapes_get_400_and_one_line_never_500(
    settings: Settings,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MAILER_WEBHOOK_SECRET", "s3cret")
    monkeypatch.setenv("MAILGUN_WEBHOOK_SIGNING_KEY", KEY)
    monkeypatch.setenv("MAILER_POSTMARK_USER", "pm")
    monkeypatch.setenv("MAILER_POSTMARK_PASSWORD", "pw")
    auth = {"Authorization": "Basic " + base64.b64encode(b"pm:pw").decode()}
    mailgun_bodies = [
        signed({"event-data": []}, "a1"),
        signed({"event-data": {"event": "failed", "delivery-status": [1]}}, "a2"),
        signed({"event-data": {"event": "failed", "user-variables": "x"}}, "a3"),
        {"signature": [1, 2]},
        [1],
    ]
    postmark_bodies = [[1], {"RecordType": "Bounce", "Metadata": 5}, "x"]
    log: list[str] = []
    with serving(Endpoint(settings, now=lambda: NOW, log=log.append)) as base:
        answers = [generic_post(base, body, str(int(NOW))) for body in BAD_GENERIC]
        answers += [httpx.post(f"{base}/hooks/mailgun", json=b) for b in mailgun_bodies]
        answers += [
            httpx.post(f"{base}/hooks/postmark", json=b, headers=auth) for b in postmark_bodies
        ]
    for answer in answers:
        assert answer.status_code in (400, 401), answer.text
        error = answer.json()["error"]
        assert "\n" not in error and 0 < len(error) <= 200 and "Traceback" not in error
    assert [a.status_code for a in answers[: len(BAD_GENERIC)]] == [400] * len(BAD_GENERIC)
    assert state(settings) == ({}, 0)
    assert not any('"status": 500' in line for line in log)


@pytest.mark.parametrize("stamp", ["nan", "NaN", "-nan", "inf", "-inf", "1e309", "", "12ab"])
def test_non_finite_or_garbled_timestamps_are_refused(
    settings: Settings,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    stamp: str,
) -> None:
    monkeypatch.setenv("MAILER_WEBHOOK_SECRET", "s3cret")
    body = b'{"type": "complaint", "email": "a@x.test"}'
    with serving(Endpoint(settings, now=lambda: NOW, log=lambda _: None)) as base:
        answer = generic_post(base, body, stamp)
    assert answer.status_code == 401
    assert state(settings) == ({}, 0)


def test_x_forwarded_for_counts_only_from_trusted_proxies(
    settings: Settings,  # noqa: F811
) -> None:
    def spoofed_requests(trusted: tuple[str, ...]) -> list[int]:
        endpoint = Endpoint(
            replace(settings, serve=Serve(trusted)), now=lambda: NOW, log=lambda _: None
        )
        endpoint.limiter = Limiter(rate=1.0, burst=2.0, clock=lambda: 0.0)  # time stands still
        with serving(endpoint) as base:
            return [
                httpx.get(
                    f"{base}/healthz", headers={"X-Forwarded-For": f"203.0.113.{i}"}
                ).status_code
                for i in range(4)
            ]

    # Untrusted peer: the header is ignored, all four come from 127.0.0.1's bucket.
    assert spoofed_requests(()) == [200, 200, 429, 429]
    # Our proxy on 127.0.0.1 vouches for four different clients: four buckets.
    assert spoofed_requests(("127.0.0.1",)) == [200, 200, 200, 200]


def test_the_client_is_the_hop_next_to_the_trusted_proxies() -> None:
    import ipaddress

    from mailer.feedback.guard import client_address

    trusted = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("127.0.0.1/32")]

    def scope(peer: str, forwarded: str) -> dict[str, Any]:
        return {"client": (peer, 1), "headers": [(b"x-forwarded-for", forwarded.encode())]}

    # A client writing its own X-Forwarded-For cannot choose its bucket: the proxy appends.
    assert client_address(scope("127.0.0.1", "6.6.6.6, 198.51.100.7, 10.1.1.1"), trusted) == (
        "198.51.100.7"
    )
    assert client_address(scope("192.0.2.9", "6.6.6.6"), trusted) == "192.0.2.9"
    assert client_address(scope("127.0.0.1", ""), trusted) == "127.0.0.1"
