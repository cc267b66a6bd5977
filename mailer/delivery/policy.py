"""How to read an SMTP reply: pure functions of (code, text), no I/O.

* ``is_hard_bounce`` — a 5xx that says the address does not exist: the
  address goes on the suppression list for good.
* ``is_slow_down`` — a reply that asks us to slow down (421/450/451/452, "too
  many connections", "rate limit"): the throttle backs off.
"""

from __future__ import annotations

import re

# Relay replies that mean "slow down", not "this message is bad".
SLOW_DOWN_CODES = frozenset({421, 450, 451, 452})
_SLOW_DOWN_WORDS = ("too many connections", "too many messages", "rate limit", "try again later")

# "No such user" and friends (RFC 3463): 5.1.0-5.1.3 bad destination mailbox, system or
# syntax, 5.1.6 mailbox moved, 5.1.10 null MX. Not 5.1.7/5.1.8: those blame *our* sender.
_BAD_MAILBOX = re.compile(r"\b5\.1\.(?:[0-36]|10)\b")
_NO_SUCH_USER = re.compile(
    r"user unknown|no such (?:user|mailbox|recipient)|unknown (?:user|recipient)|"
    r"mailbox (?:not found|does not exist|unavailable)|does not exist|invalid recipient",
    re.IGNORECASE,
)


# Replies that blame our sender address, not the recipient's ("553 5.1.0 <news@...>: Sender
# address rejected: User unknown"): suppressing the recipient for those would be wrong.
_ABOUT_SENDER = re.compile(r"\bsender\b|\bmail from\b", re.IGNORECASE)


def is_hard_bounce(code: int, reply: str) -> bool:
    """True when a 5xx reply says the address does not exist (suppress it for good)."""
    if not 500 <= code < 600 or _ABOUT_SENDER.search(reply):
        return False
    if _BAD_MAILBOX.search(reply):
        return True
    return (
        code in (550, 551, 553)
        and not re.search(r"\b5\.\d\.\d", reply)
        and bool(_NO_SUCH_USER.search(reply))
    )


def is_slow_down(code: int | None, reply: str) -> bool:
    """True when a reply asks us to slow down (back off) rather than rejecting the message."""
    if code in SLOW_DOWN_CODES:
        return True
    lowered = reply.lower()
    return code is not None and 400 <= code < 500 and any(w in lowered for w in _SLOW_DOWN_WORDS)
