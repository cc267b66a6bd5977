"""How to read an SMTP reply: one pure function of (stage, code, text), no I/O.

An SMTP reply means different things at different steps. ``550`` to ``RCPT
TO`` says this address is unknown; the same ``550`` to ``MAIL FROM`` says the
relay refuses *us*, and failing every recipient one by one would be wrong. A
connection that dies before the final "." delivered nothing; one that dies
after it may well have delivered the message, and sending it again is how
people get it twice. So every reply (and every lost connection) is judged by
``classify`` with the ``Stage`` it answers, and the send loop does what the
returned ``Action`` says:

=============  ==============================================================
``SENT``       delivered
``RETRY``      this recipient, later (back-off); the others go on at full pace
``FAIL``       this recipient failed for good
``BOUNCE``     failed for good, and the address goes on the suppression list
``UNKNOWN``    perhaps delivered: recorded as unknown, never re-sent by itself
``SLOW_DOWN``  the relay asks everyone to slow down; the recipient is retried
``BACK_OFF``   the relay is busy as a whole for a moment (``452 4.5.3``): everyone
               waits briefly, the rate stays, the recipient is retried, not charged
``RECONNECT``  the relay closes this connection after some messages (``421`` or a
               close on a connection that has carried mail): open a new one and
               send again at once; no slow-down, nothing charged
``PAUSE``      the relay refuses this campaign; stop, no recipient charged
=============  ==============================================================

Only relay-wide signals slow the run down (``421`` on a fresh connection, "too
many connections", explicit rate limits, 4.3.x/4.4.x system trouble). A
greylisted recipient (``451 4.7.1``), a busy or full mailbox (``450``/``452``)
is simply retried later while the others go on. A ``421`` on a connection that
has already carried messages is the relay's per-connection cap, not a request to
slow down (``used``, the messages it carried, tells the two apart).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class Stage(StrEnum):
    """The step of an SMTP transaction a reply (or a lost connection) answers."""

    CONNECT = "connect"  # the greeting, or no connection at all
    EHLO = "ehlo"
    STARTTLS = "starttls"
    AUTH = "auth"
    MAIL = "mail"
    RCPT = "rcpt"
    DATA_START = "data-start"  # the reply to DATA (354 expected)
    DATA_END = "data-end"  # the reply to the final "."
    LOST_BEFORE_END = "lost-before-end"  # the connection died before the final "." was sent
    LOST_AFTER_END = "lost-after-end"  # ... after it was sent: the message may be there


class Verdict(StrEnum):
    """What the send loop does with a recipient (and the run) after a reply."""

    SENT = "sent"
    RETRY = "retry"
    FAIL = "fail"
    BOUNCE = "bounce"
    UNKNOWN = "unknown"
    SLOW_DOWN = "slow-down"
    BACK_OFF = "back-off"
    RECONNECT = "reconnect"
    PAUSE = "pause"


@dataclass(frozen=True)
class Action:
    """The verdict on one reply, with the facts behind it.

    ``charged``: the attempt counts towards the recipient's maximum (a refusal
    that is about the relay or the campaign does not). ``policy``: a 5.7.x
    refusal that may be about this recipient or about the campaign (its
    content, our IP's reputation): several in a row for different recipients
    mean the campaign, and the loop pauses.
    """

    verdict: Verdict
    reason: str
    charged: bool = True
    policy: bool = False


_ENHANCED = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
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
# Relay-wide "slow down": explicit rate limits and connection limits, whatever the step.
_SLOW_DOWN_WORDS = re.compile(
    r"too many (?:connections|messages|mails|emails|sessions)|rate[ -]?limit|throttl|"
    r"sending rate|(?:rate|limit|quota) exceeded|exceeded .*(?:rate|limit|quota)|slow down",
    re.IGNORECASE,
)
# Words that ask for a lower *rate*, not just a new connection: a 421 saying these is a
# slow-down even on a connection that has carried mail.
_RATE_WORDS = re.compile(
    r"rate[ -]?limit|throttl|sending rate|(?:rate|quota) exceeded|exceeded .*(?:rate|quota)|"
    r"slow down|too many connections",
    re.IGNORECASE,
)
# Steps before the message data: a connection lost here carried nothing of this message.
_BEFORE_DATA = ("ehlo", "mail", "rcpt")
# 5.7.x refusals that are about us (authentication, reputation, relaying), never about one
# recipient: Gmail 5.7.23-5.7.30 (SPF, DKIM, DMARC, PTR, bulk-sender rules), Outlook 5.7.515,
# blocklists, "relay access denied".
_CAMPAIGN_WIDE_57 = re.compile(r"\b5\.7\.(?:2[3-9]|30|515|0)\b")
_ABOUT_US = re.compile(
    r"dmarc|\bspf\b|dkim|authenticat|reputation|block ?list|black ?list|spamhaus|"
    r"relay(?:ing)? (?:access )?denied|not permitted to relay|sender|\bip\b|ptr|reverse dns|"
    r"bulk|unauthenticated",
    re.IGNORECASE,
)


def enhanced_code(text: str) -> str | None:
    """The RFC 3463 enhanced status code in a reply text (``5.1.1``), or None."""
    match = _ENHANCED.search(text)
    return match.group(0) if match else None


def classify(stage: Stage, code: int | None, text: str = "", *, used: int = 0) -> Action:
    """Judge one reply (``code`` None: no reply, the connection was lost or timed out).

    ``used``: messages the connection had carried before this one. A ``421`` (or a
    connection lost before the message data) on a used connection is the relay's
    cap on messages per connection: ``RECONNECT``.
    """
    if stage is Stage.LOST_AFTER_END:
        return Action(
            Verdict.UNKNOWN,
            "the connection was lost after the message was sent: it may have been delivered",
        )
    if used > 0 and _closes_connection(stage, code, text):
        return Action(
            Verdict.RECONNECT,
            f"the relay closed the connection after {used} message(s)",
            charged=False,
        )
    if code is None:
        return _no_reply(stage)
    if 200 <= code < 300:
        return Action(Verdict.SENT, f"{code} {text}".strip())
    reason = f"{code} {text}".strip()
    if code == 452 and (enhanced_code(text) or "") == "4.5.3":
        # "Too many recipients" with one recipient per message: a relay-wide limit on
        # recipients per time, met by every message alike; waiting a moment is the cure.
        return Action(Verdict.BACK_OFF, reason, charged=False)
    if code == 421 or (code < 500 and _SLOW_DOWN_WORDS.search(text)):
        return Action(Verdict.SLOW_DOWN, reason, charged=False)
    if _SLOW_DOWN_WORDS.search(text):
        # A permanent "too many" (a daily quota spent): stop, and resume another time.
        return Action(Verdict.PAUSE, reason, charged=False)
    if stage in (Stage.CONNECT, Stage.EHLO, Stage.STARTTLS, Stage.AUTH, Stage.MAIL):
        # Before any recipient is named, a refusal is about the relay, the login or us.
        verdict = Verdict.SLOW_DOWN if code < 500 else Verdict.PAUSE
        return Action(verdict, reason, charged=False)
    if code < 500:
        return _temporary(code, text, reason)
    return _permanent(stage, code, text, reason)


def _closes_connection(stage: Stage, code: int | None, text: str) -> bool:
    """A 421 without a request for a lower rate, or a connection lost before DATA."""
    if code is None:
        return stage.value in _BEFORE_DATA
    return code == 421 and stage is not Stage.CONNECT and not _RATE_WORDS.search(text)


def _no_reply(stage: Stage) -> Action:
    if stage in (Stage.CONNECT, Stage.EHLO, Stage.STARTTLS, Stage.AUTH):
        # Nothing was sent for this recipient: the relay is away, try again when it is back.
        return Action(Verdict.SLOW_DOWN, "the relay could not be reached", charged=False)
    return Action(Verdict.RETRY, "the connection was lost before the message was sent")


def _temporary(code: int, text: str, reason: str) -> Action:
    enhanced = enhanced_code(text) or ""
    if enhanced.startswith(("4.3.", "4.4.")):
        # System or network trouble at the relay: every recipient would meet it.
        return Action(Verdict.SLOW_DOWN, reason, charged=False)
    # Greylisting (4.7.1), a busy or full mailbox (450, 452 4.2.2), a temporary local
    # rule: about this recipient, so only this recipient waits.
    return Action(Verdict.RETRY, reason)


def _permanent(stage: Stage, code: int, text: str, reason: str) -> Action:
    if is_hard_bounce(code, text):
        return Action(Verdict.BOUNCE, reason)
    if _ABOUT_SENDER.search(text):
        # "Sender address rejected": about our From, for every recipient alike.
        return Action(Verdict.PAUSE, reason, charged=False)
    enhanced = enhanced_code(text) or ""
    if enhanced.startswith("5.7.") or code == 554:
        if _CAMPAIGN_WIDE_57.search(text) or _ABOUT_US.search(text):
            return Action(Verdict.PAUSE, reason, charged=False)
        return Action(Verdict.FAIL, reason, policy=True)
    if enhanced in ("5.3.4", "5.2.3") or (code == 552 and stage is Stage.DATA_END and not enhanced):
        # The message is too big for this relay: it is too big for every recipient.
        return Action(Verdict.PAUSE, reason, charged=False)
    return Action(Verdict.FAIL, reason)


_STARTTLS_FIRST = re.compile(r"starttls|must issue|tls (?:is )?required|encryption required", re.I)
_AUTH_FIRST = re.compile(r"authenticat", re.IGNORECASE)


def pause_hint(stage: Stage, code: int | None, text: str) -> str | None:
    """What to do about a reply that paused the run (``PAUSE``), when its cause says it."""
    if code is None:
        return None
    if code == 530 and _STARTTLS_FIRST.search(text):
        return (
            "the relay wants TLS first: use smtp+starttls://HOST:587 (or leave [smtp] tls "
            'at "auto", so that smtp:// upgrades when the relay offers STARTTLS)'
        )
    if code in (530, 535) or (stage is Stage.MAIL and _AUTH_FIRST.search(text)):
        return (
            "the relay wants a login: put the user in the URL (smtp+starttls://USER@HOST:587) "
            "and the password in the variable [smtp] password_env names"
        )
    if _ABOUT_SENDER.search(text) or stage is Stage.MAIL:
        return (
            "the relay does not accept the sender: check [sender] email, and that the relay "
            "may send for its domain"
        )
    if _SLOW_DOWN_WORDS.search(text):
        return "a quota of the relay is spent: resume when it allows sending again"
    if (enhanced_code(text) or "") in ("5.3.4", "5.2.3") or code == 552:
        return "the message is too big for this relay: make it smaller"
    if _CAMPAIGN_WIDE_57.search(text) or _ABOUT_US.search(text):
        return (
            "the relay refuses mail like this from us (authentication, reputation or a "
            "block list): check the sender domain's SPF, DKIM and DMARC, and the reply"
        )
    return None


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
    """True when a reply asks the whole run to slow down (see ``classify``)."""
    if code is None:
        return False
    return classify(Stage.RCPT, code, reply).verdict is Verdict.SLOW_DOWN
