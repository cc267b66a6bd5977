"""Unsubscribe requests that arrive as mail: the ``mailto:`` of our List-Unsubscribe header.

Every message we send offers ``<mailto:ADDRESS?subject=unsubscribe>`` (RFC
2369); mail clients send it when a reader clicks their "unsubscribe" button.
A message is such a request when it is addressed to the unsubscribe address
(``unsubscribe@example.com``, or ``unsubscribe+TOKEN@example.com`` carrying a
signed token of ``core.tokens``) and either carries a token or has
"unsubscribe" in its subject. Who asks is the token's address, else the
message's From — which anyone can write, so the caller suppresses it only when
it is a recipient we mailed, and a request whose sender failed DMARC at the
receiving server (``Authentication-Results: dmarc=fail``) is not one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message

from mailer.core.tokens import read_token
from mailer.feedback.mailparts import header_addresses

_SUBJECT = re.compile(r"unsubscribe|opt[- ]?out|退订|退訂|取消订阅|配信停止", re.IGNORECASE)


@dataclass(frozen=True)
class MailtoRequest:
    """An unsubscribe request by mail."""

    email: str  # who asks: the token's address, else the From address
    campaign: str  # the token's campaign ("" without a token)
    signed: bool  # True when a genuine token names the address (no journal check needed)
    spoofed: bool  # the receiving server says the From failed DMARC


def mailto_request(message: Message, address: str | None, now: float) -> MailtoRequest | None:
    """The unsubscribe request ``message`` is, or None (see the module docstring)."""
    if not address or "@" not in address:
        return None
    local, _, domain = address.lower().partition("@")
    for rcpt in header_addresses(message, "To", "Cc", "Delivered-To", "X-Original-To"):
        r_local, _, r_domain = rcpt.partition("@")
        base, plus, tag = r_local.partition("+")
        if r_domain != domain or base != local:
            continue
        token = read_token(_original_case(message, tag), now) if plus else None
        if token is not None:
            return MailtoRequest(token.email.lower(), token.campaign, True, False)
        if not _SUBJECT.search(str(message.get("Subject", ""))):
            continue
        senders = header_addresses(message, "From")
        if senders:
            return MailtoRequest(senders[0], "", False, _dmarc_failed(message))
    return None


def _original_case(message: Message, tag: str) -> str:
    """The token as written (header_addresses lower-cases; tokens are case-sensitive)."""
    for value in message.get_all("To", []) + message.get_all("Delivered-To", []):
        found = re.search(r"\+(" + re.escape(tag) + r")@", str(value), re.IGNORECASE)
        if found:
            return found.group(1)
    return tag


def _dmarc_failed(message: Message) -> bool:
    results = " ".join(str(v) for v in message.get_all("Authentication-Results", []) or [])
    return bool(re.search(r"\bdmarc=fail", results, re.IGNORECASE))
