"""Why a message came back, and what that means for the recipient (the reason taxonomy).

Every bounce, complaint or auto-reply the classifier reads gets one ``Reason``;
the reason decides the ``Verdict`` class, and the class decides what happens:

========================  ==========  ==================================================
reason                    class       what happens
========================  ==========  ==================================================
``user_unknown``          hard        suppressed at once (the mailbox does not exist)
``host_unknown``          hard        suppressed at once (the domain takes no mail)
``mailbox_full``          soft        counted; suppressed after N soft bounces in D days
``mailbox_disabled``      soft        (a suspended or locked account may come back)
``message_too_big``       soft
``rate_limited``          soft        the receiver slows us down; try again later
``greylisted``            soft
``expired``               soft        the relay gave up after retrying for days
``other``                 soft        anything else: never suppressed on first sight
``blocked``               sender      policy, reputation, blocklists, reverse DNS: our
``auth_failed``           sender      SPF, DKIM, DMARC, SMTP AUTH: our setup
``content_rejected``      sender      spam, virus, malformed message: our message
``complaint``             complaint   suppressed at once (ARF and providers' own forms)
``vacation``              ignore      an auto-reply: the message *was* delivered
``delivered``             ignore      a delivery (or relay) notice
========================  ==========  ==================================================

A hard reason reported as a temporary failure (status 4.x.x, a 4xx reply, an
``Action: delayed``) is soft: a server that says "try again" is not believed
when it adds "no such user". Sender-side reasons never suppress the recipient:
they count against the campaign and can pause its send.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """Why a message came back (see the module docstring)."""

    USER_UNKNOWN = "user_unknown"
    HOST_UNKNOWN = "host_unknown"
    MAILBOX_FULL = "mailbox_full"
    DISABLED = "mailbox_disabled"
    TOO_BIG = "message_too_big"
    RATE_LIMITED = "rate_limited"
    GREYLISTED = "greylisted"
    EXPIRED = "expired"
    BLOCKED = "blocked"
    AUTH_FAILED = "auth_failed"
    CONTENT = "content_rejected"
    COMPLAINT = "complaint"
    VACATION = "vacation"
    DELIVERED = "delivered"
    OTHER = "other"


class Class(StrEnum):
    """What a reason means for the recipient."""

    HARD = "hard"
    SOFT = "soft"
    SENDER = "sender"
    COMPLAINT = "complaint"
    IGNORE = "ignore"


_CLASS = {
    Reason.USER_UNKNOWN: Class.HARD,
    Reason.HOST_UNKNOWN: Class.HARD,
    Reason.BLOCKED: Class.SENDER,
    Reason.AUTH_FAILED: Class.SENDER,
    Reason.CONTENT: Class.SENDER,
    Reason.COMPLAINT: Class.COMPLAINT,
    Reason.VACATION: Class.IGNORE,
    Reason.DELIVERED: Class.IGNORE,
}

SENDER_SIDE = frozenset(r for r, c in _CLASS.items() if c is Class.SENDER)

# What a person reads next to each reason (contacts show, report, status, doctor).
DESCRIPTIONS = {
    Reason.USER_UNKNOWN: "the mailbox does not exist",
    Reason.HOST_UNKNOWN: "the domain takes no mail",
    Reason.MAILBOX_FULL: "the mailbox is full",
    Reason.DISABLED: "the mailbox is disabled or locked",
    Reason.TOO_BIG: "the message is too big for the receiver",
    Reason.RATE_LIMITED: "the receiver is slowing us down",
    Reason.GREYLISTED: "greylisted: the receiver asks to try again later",
    Reason.EXPIRED: "the relay gave up delivering after retrying",
    Reason.BLOCKED: "the receiver blocks our mail (policy, reputation, blocklist, rDNS)",
    Reason.AUTH_FAILED: "our mail failed authentication (SPF, DKIM, DMARC or SMTP AUTH)",
    Reason.CONTENT: "the receiver refused our message's content (spam, virus, format)",
    Reason.COMPLAINT: "the recipient reported the message as spam",
    Reason.VACATION: "an auto-reply",
    Reason.DELIVERED: "a delivery notice",
    Reason.OTHER: "another failure",
}


def class_of(reason: Reason, *, temporary: bool = False) -> Class:
    """The class of ``reason``; a hard reason reported as temporary is soft."""
    kind = _CLASS.get(reason, Class.SOFT)
    if kind is Class.HARD and temporary:
        return Class.SOFT
    return kind


def reason_named(name: str) -> Reason | None:
    """The reason called ``name`` (as stored), or None for an unknown name."""
    try:
        return Reason(name)
    except ValueError:
        return None
