"""Unsubscribe tokens: who and which campaign, signed, so the unsubscribe server can act alone.

A token is ``<payload>.<mac>``, both URL-safe base64: the payload holds the
address, the campaign's journal key, the day the message was made and, when
the campaign declares it, the email's language (so the unsubscribe page speaks
the language the reader was written to); the
MAC is HMAC-SHA256 over it with ``MAILER_UNSUBSCRIBE_KEY``, cut to 16 bytes.
``mailer serve`` needs no database lookup to know whom a click or a one-click
POST is about, and cannot be fooled into suppressing anyone else: a forged or
altered token fails the MAC, and an old one (past ``max_days``) is refused.
The key lives in the environment, never in a file; without it tokens are
signed with a well-known placeholder, which ``mailer serve`` refuses to use.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from dataclasses import dataclass

KEY_ENV = "MAILER_UNSUBSCRIBE_KEY"
PLACEHOLDER_KEY = "mailer-unkeyed"
MAX_DAYS = 400  # a token works for this long after its message was made
_MAC_BYTES = 16


@dataclass(frozen=True)
class TokenData:
    """What a valid token says."""

    email: str
    campaign: str
    day: int  # days since 1970-01-01 (UTC) when the message was made
    lang: str = ""  # the email's language ("en", "zh-CN"), when the campaign declares one


def signing_key() -> bytes:
    """The key tokens are signed with (the placeholder when the environment has none)."""
    return os.environ.get(KEY_ENV, PLACEHOLDER_KEY).encode()


def has_real_key() -> bool:
    """True when ``MAILER_UNSUBSCRIBE_KEY`` is set (tokens cannot be forged)."""
    return bool(os.environ.get(KEY_ENV))


def make_token(
    email: str, campaign: str, issued: float, key: bytes | None = None, *, lang: str = ""
) -> str:
    """The token for ``email`` in ``campaign``, made at Unix time ``issued``, for an email
    in language ``lang`` (none: the page follows the contact's ``locale``)."""
    day = int(issued // 86400)
    tail = f"\n{lang}" if lang else ""
    return _signed(f"{email.lower()}\n{campaign}\n{day}{tail}".encode(), key)


def read_token(
    token: str, now: float, key: bytes | None = None, max_days: int = MAX_DAYS
) -> TokenData | None:
    """The token's contents if it is genuine and not older than ``max_days``, else None."""
    payload = _verified(token, key)
    if payload is None:
        return None
    try:
        email, campaign, day_text, *rest = payload.decode().split("\n")
        day = int(day_text)
    except ValueError:
        return None
    if len(rest) > 1 or not 0 <= now // 86400 - day <= max_days:
        return None
    return TokenData(email, campaign, day, rest[0] if rest else "")


def _signed(payload: bytes, key: bytes | None) -> str:
    mac = hmac.new(key or signing_key(), payload, hashlib.sha256).digest()[:_MAC_BYTES]
    return f"{_b64(payload)}.{_b64(mac)}"


def _verified(token: str, key: bytes | None) -> bytes | None:
    """The token's payload when its MAC is right, else None."""
    payload_text, _, mac_text = token.partition(".")
    try:
        payload, mac = _unb64(payload_text), _unb64(mac_text)
    except (binascii.Error, ValueError):
        return None
    expected = hmac.new(key or signing_key(), payload, hashlib.sha256).digest()[:_MAC_BYTES]
    return payload if hmac.compare_digest(mac, expected) else None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    if not text or len(text) > 4096:
        raise ValueError("not a token")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# --- click tokens -------------------------------------------------------------


@dataclass(frozen=True)
class LinkData:
    """What a valid click token says: who clicked which of the campaign's links."""

    email: str
    campaign: str
    variant: str
    url: str


def make_link_token(
    email: str, campaign: str, variant: str, url: str, key: bytes | None = None
) -> str:
    """A signed token for one recipient's link: the redirect can only ever go to ``url``."""
    return _signed(f"c\n{email.lower()}\n{campaign}\n{variant}\n{url}".encode(), key)


def read_link_token(token: str, key: bytes | None = None) -> LinkData | None:
    """The token's contents if the signature holds (no expiry: a link in an old email
    keeps working), else None."""
    payload = _verified(token, key)
    if payload is None:
        return None
    try:
        kind, email, campaign, variant, url = payload.decode().split("\n", 4)
    except ValueError:
        return None
    if kind != "c" or not url.startswith(("https://", "http://")):
        return None
    return LinkData(email, campaign, variant, url)
