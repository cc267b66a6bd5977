"""Who a plain-text bounce is about, and the words it says about each of them.

Bounces without delivery-status fields (qmail, Exim, old Sendmail, Domino,
webmails, Japanese carriers ...) name the failed recipients in their text in a
handful of shapes: an address alone on a line, ``<address>:`` before the
remote reply, "delivering your mail to <address>", ``RCPT TO:<address>``,
``address... User unknown``. Any address of the report that is not one of ours
(the sender, the reporting server, a message id) is a candidate; a candidate
found in one of those shapes, or in the quoted original's To/Cc, is a
recipient. The words about a recipient are its line and the lines after it,
up to the next recipient.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mailer.feedback.mailparts import ADDRESS_TEXT, Parts, addresses, header_addresses

_ROLE = re.compile(
    r"^(mailer-daemon|postmaster|double-bounce|bounces?|no-?reply|abuse|root|daemon|nobody)"
    r"([+=-].*)?$"
)
_NOT_A_RECIPIENT_BEFORE = re.compile(
    r"(mail\s+from|envelope-from|generated\s+from|sent\s+by|from:|sender|return-path|"
    r"message-id|smtp\.mailfrom|reply-to|contact|send\s+mail\s+as|help|visit|e-?mail\s+us"
    r"|originator|header\.from|on behalf of|to the address)\W{0,6}$",
    re.IGNORECASE,
)
# Shapes that name a failed recipient beyond doubt (they may name the report's own To:
# a test message to oneself bounces to the same address).
_STRONG = [
    r"^[ \t>*\u2022-]*<?\"?(ADDR)\"?>?:?[ \t]*$",  # alone on its line (or "  * address")
    r"^[ \t>]*<(ADDR)>:",  # <address>: host said ... (Postfix, qmail)
    r"^[ \t>]*\"(ADDR)\":",  # "address": (GMX)
    r"(?:deliver\w*|sent|send|relay\w*|forward\w*|transmit\w*)\s+(?:\w+\s+){0,3}to:?\s*"
    r"<(ADDR)>",
    r"following\s+(?:recipient|address|user|destination)\w*(?:\(s\)|\(es\))?\W{0,40}?"
    r"<?(ADDR)",
    r"^\s*[45]\d\d[ -]<?(ADDR)>?\.\.\.",  # Sendmail's transcript: 554 <address>... why
]
# Shapes that usually name one: trusted when the address is not one of ours.
_LOOSE = [
    r"^[ \t>]*(ADDR)(?:[:,]|\.\.\.|\s+\(|\s+[A-Z<\[])",  # address: reason / address... reason
    r"^[ \t>]*(ADDR)\s+on\s+\w{3},",  # Exchange 2003: address on <date>
    r"(?:deliver\w*|sent|send|relay\w*|forward\w*|transmit\w*)\s+(?:\w+\s+){0,3}to:?\s*"
    r"<?(ADDR)",
    r"rcpt(?:\s+to)?:\s*<?(ADDR)",
    r"user\s*id:?\s*<?(ADDR)",
    r"recipients?(?:\s+address(?:es)?)?\s*(?:[:=]|is|was)?\s*<?(ADDR)",
    r"(?:to|an|for|in|list)\s+<(ADDR)>",
    r"(?:user|mailbox|address|addressee|account)\s+['\"<(]?(ADDR)",
    r"(ADDR)>?['\")]?\s*(?:\.\.\.|:)?\s*(?:user|mailbox|recipient|address|account)"
    r"\s+(?:unknown|not|does|is|invalid|rejected|unavailable|disabled)",
]
_ADDR = ADDRESS_TEXT


def _compiled(shapes: list[str]) -> list[re.Pattern[str]]:
    return [re.compile(s.replace("ADDR", _ADDR), re.IGNORECASE | re.MULTILINE) for s in shapes]


_STRONG_SHAPES = _compiled(_STRONG)
_LOOSE_SHAPES = _compiled(_LOOSE)


@dataclass(frozen=True)
class Mention:
    """One recipient the text names, with what it says about them."""

    address: str
    words: str


def senders(parts: Parts) -> set[str]:
    """Addresses that are the sender's or the reporting server's, never a failed recipient."""
    own = header_addresses(parts.message, "From", "Return-Path", "Reply-To", "Sender", "Errors-To")
    own += header_addresses(parts.original, "From", "Return-Path", "Sender", "Reply-To")
    for text in (str(parts.message.get("Message-ID", "")), _original_ids(parts)):
        own += addresses(text)
    return set(own)


def ours(parts: Parts) -> set[str]:
    """``senders`` and the report's own recipient (our bounce address)."""
    return senders(parts) | set(header_addresses(parts.message, "To", "Delivered-To"))


def recipients_in(parts: Parts) -> list[Mention]:
    """The recipients the report's text names (see the module docstring)."""
    text = parts.text
    wanted = set(header_addresses(parts.original, "To", "Cc", "Bcc"))
    mentioned = [a for a in addresses(text) if not _only_after_sender_words(text, a)]
    strong = [a for a in mentioned if _candidate(a, senders(parts), wanted)]
    chosen = [a for a in strong if a in _shaped(text, strong, _STRONG_SHAPES)]
    candidates = [a for a in mentioned if _candidate(a, ours(parts), wanted)]
    loose = _shaped(text, candidates, _LOOSE_SHAPES)
    chosen += [a for a in candidates if a in loose and a not in chosen]
    if not chosen:
        chosen = [a for a in candidates if a in wanted]
    if not chosen and len(candidates) == 1:
        chosen = candidates
    return [Mention(a, _words_about(text, a, chosen)) for a in chosen]


def _candidate(address: str, own: set[str], wanted: set[str]) -> bool:
    if address in wanted:
        return True
    local = address.partition("@")[0]
    if address in own or _ROLE.match(local):
        return False
    # Message ids and VERP return paths look like addresses: long hex or many separators.
    return not (re.fullmatch(r"[0-9a-f=._-]{24,}", local) or local.count("=") > 1)


def _shaped(text: str, candidates: list[str], shapes: list[re.Pattern[str]]) -> set[str]:
    found: set[str] = set()
    for pattern in shapes:
        for match in pattern.finditer(text):
            address = match.group(1).lower().strip("<>").rstrip(".")
            if address in candidates and not _sender_context(text, match.start(1)):
                found.add(address)
    return found


def _sender_context(text: str, at: int) -> bool:
    """True when the words just before ``at`` say the address is a sender."""
    return bool(_NOT_A_RECIPIENT_BEFORE.search(text[max(0, at - 40) : at].rstrip("<\"' ")))


def _only_after_sender_words(text: str, address: str) -> bool:
    lowered, spots, at = text.lower(), [], 0
    while (at := lowered.find(address, at)) >= 0:  # plain search: no pattern per address
        spots.append(at)
        at += len(address)
    return bool(spots) and all(_sender_context(text, spot) for spot in spots)


def _words_about(text: str, address: str, chosen: list[str]) -> str:
    """What the report says about ``address``: its line and the paragraph after it.

    The line is the one that starts with the address (the report's list of failed
    recipients) if there is one, else its first mention. A Sendmail transcript line
    (``554 <address>... reason``) takes the server's replies above it instead.
    """
    lines = text.split("\n")
    lowered = [line.lower() for line in lines]
    starts = [i for i, line in enumerate(lowered) if _LINE_START.match(line) and address in line]
    start = (
        starts[0]
        if starts
        else next((i for i, text in enumerate(lowered) if address in text), None)
    )
    if start is None:
        return text.strip()
    if _TRANSCRIPT.match(lowered[start]):
        above = start
        while above > 0 and lowered[above - 1].lstrip().startswith(("<<<", ">>>")):
            above -= 1
        return "\n".join(lines[above : start + 1]).strip()
    others = [a for a in chosen if a != address]
    taken = [lines[start]]
    for line in lines[start + 1 : start + 14]:
        if any(other in line.lower() for other in others):
            break
        if not line.strip() and any(t.strip() for t in taken[1:]):
            break
        taken.append(line)
    return "\n".join(taken).strip()


_LINE_START = re.compile(r"^[ \t>*\"<-]*(?:[45]\d\d[ -]<?)?[^\s@<>\"]+@")
_TRANSCRIPT = re.compile(r"^\s*[45]\d\d[ -]<?[^\s@]+@\S+\.\.\.")


def _original_ids(parts: Parts) -> str:
    if parts.original is None:
        return ""
    return " ".join(str(v) for v in parts.original.get_all("Message-ID", []) or [])
