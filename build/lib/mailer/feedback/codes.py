"""RFC 3463 enhanced status codes (and RFC 7372's, RFC 7505's) mapped to reasons.

Read after the wording (``wording``): a code is exact about its class (2, 4,
5) but often vague about its subject — ``5.7.1`` is used for "no such user"
as often as for "blocked" — so it decides only when no phrase did.
"""

from __future__ import annotations

from mailer.feedback.reasons import Reason

# "subject.detail" -> reason; the most specific first, then the subject alone ("7").
_DETAIL = {
    "1.1": Reason.USER_UNKNOWN,
    "1.2": Reason.HOST_UNKNOWN,
    "1.3": Reason.USER_UNKNOWN,
    "1.6": Reason.USER_UNKNOWN,
    "1.7": Reason.BLOCKED,  # our sender address is refused
    "1.8": Reason.BLOCKED,
    "1.10": Reason.HOST_UNKNOWN,  # the domain publishes a null MX (RFC 7505)
    "2.1": Reason.DISABLED,
    "2.2": Reason.MAILBOX_FULL,
    "2.3": Reason.TOO_BIG,
    "3.1": Reason.MAILBOX_FULL,
    "3.2": Reason.HOST_UNKNOWN,
    "3.4": Reason.TOO_BIG,
    "4.1": Reason.EXPIRED,
    "4.2": Reason.EXPIRED,
    "4.4": Reason.HOST_UNKNOWN,
    "4.7": Reason.EXPIRED,
    "7.1": Reason.BLOCKED,
    "7.7": Reason.CONTENT,
    "7.8": Reason.AUTH_FAILED,
    "7.9": Reason.BLOCKED,
    "7.13": Reason.DISABLED,
    "7.20": Reason.AUTH_FAILED,
    "7.21": Reason.AUTH_FAILED,
    "7.22": Reason.AUTH_FAILED,
    "7.23": Reason.AUTH_FAILED,
    "7.24": Reason.AUTH_FAILED,
    "7.25": Reason.BLOCKED,  # no reverse DNS for our IP
    "7.26": Reason.AUTH_FAILED,
    "7.27": Reason.BLOCKED,  # our sender domain has a null MX
}
_SUBJECT = {
    "6": Reason.CONTENT,
    "7": Reason.BLOCKED,
}


def reason_of(status: str) -> Reason | None:
    """The reason an enhanced status code names, or None when it names none (X.0.0)."""
    parts = status.split(".")
    if len(parts) != 3:
        return None
    kind, subject, detail = parts
    if kind == "2":
        return Reason.DELIVERED
    return _DETAIL.get(f"{subject}.{detail}") or _SUBJECT.get(subject)


def temporary(status: str, code: str) -> bool:
    """True when the server called the failure temporary (4.x.x or a 4xx reply)."""
    return status.startswith("4") or (not status and code.startswith("4"))
