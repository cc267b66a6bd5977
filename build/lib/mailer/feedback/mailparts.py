"""The parts of a returned message the classifier reads: its own text, and the original it quotes.

A bounce is a report (text written by the reporting server, sometimes a
machine-readable ``message/delivery-status`` part) followed by the original
message or its headers, attached (``message/rfc822``, ``text/rfc822-headers``)
or pasted inline after a marker line ("----- Original message -----"). The
report's text is what says why; the original says to whom we wrote it and with
which Message-ID. Everything here is tolerant: broken MIME, unknown charsets,
CR-only line ends give less text, never an exception.
"""

from __future__ import annotations

import email
import re
from dataclasses import dataclass
from email.message import Message

# A line that starts the quoted original in a plain-text bounce. Order does not matter:
# the earliest one found wins.
_ORIGINAL_MARKERS = re.compile(
    r"^[ \t>]*(?:"
    r"-+\s*(?:original|unsent|returned|undelivered|the\s+original)\s+(?:message|mail)"
    r"|-+\s*(?:this\s+is\s+a\s+copy|below\s+this\s+line|message\s+text\s+follows)"
    r"|-+\s*(?:the\s+)?header(?:s)?\s+of\s+(?:the\s+)?(?:original|your)"
    r"|-+\s*original\s+message\s+header"
    r"|-+\s*(?:returned|unsent)\s+message\s+follows"
    r"|message\s+headers\s+follow"
    r"|original\s+(?:message|mail)\s+(?:follows|as\s+follows)"
    r"|original\s+message\s+headers?:?\s*$"
    r"|-+\s*forwarded\s+message"
    r"|the\s+(?:original\s+)?message\s+(?:headers?\s+)?(?:was|were|is)\s+(?:as\s+follows|attached)"
    r"|-+\s*(?:original|your)\s+message\s+(?:follows|was)"
    r"|-+\s*message\s+(?:headers|text)\s+follow"
    r"|-+\s*The\s+body\s+of\s+the\s+message\s+is"
    r"|\|-+\s*(?:Original|Message\s+text|Message\s+body)"
    r"|Included\s+is\s+a\s+copy\s+of\s+the\s+message"
    r"|-+\s*Original\s+mail\s+as\s+received"
    r")",
    re.IGNORECASE | re.MULTILINE,
)
_STATUS_TYPES = (
    "message/delivery-status",
    "message/global-delivery-status",
    "message/feedback-report",
)
_HEADER_LINE = re.compile(r"^([A-Za-z][A-Za-z0-9-]*):[ \t]*(.*)$")
# An address in running text (no capture groups: shapes embed it); a quoted local part too.
ADDRESS_TEXT = (
    r"(?<![\w.+=!#$%&'*/?^`{|}~-])"
    r"(?:\"[^\"\s@]+\"|[\w.+=!#$%&'*/?^`{|}~-]+)@(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"
    r"(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+)"
)
ADDRESS = re.compile(ADDRESS_TEXT, re.IGNORECASE)


@dataclass(frozen=True)
class Parts:
    """What the classifier reads of one returned message."""

    message: Message
    text: str  # the report's own words (its text parts, the quoted original cut off)
    status_parts: tuple[str, ...]  # message/delivery-status and feedback-report bodies
    original: Message | None  # the quoted original's headers, when there are any


def parse(raw: bytes) -> Message:
    """The message, with CR-only line ends (old Mac mail) made LF first."""
    if b"\r" in raw and b"\n" not in raw:
        raw = raw.replace(b"\r", b"\n")
    return email.message_from_bytes(raw)


def split(message: Message) -> Parts:
    """The report's text, its machine-readable parts, and the original's headers."""
    texts: list[str] = []
    html: list[str] = []
    fields: list[str] = []
    original: Message | None = None
    for part, inside_original in _walk(message):
        kind = part.get_content_type()
        if inside_original:
            continue
        if kind in _STATUS_TYPES:
            fields.append(_status_text(part))
        elif kind in ("message/rfc822", "message/global", "message/partial"):
            original = original or _attached(part)
        elif kind in ("text/rfc822-headers", "text/global-headers", "message/rfc822-headers"):
            original = original or _headers_of(decoded(part))
        elif kind == "text/plain" or (kind.startswith("text/") and kind != "text/html"):
            texts.append(decoded(part))
        elif kind == "text/html":
            html.append(_html_text(decoded(part)))
        elif kind.startswith("multipart/") and isinstance(part.get_payload(), str):
            texts.append(str(part.get_payload()))  # a boundary the parser could not find
    text = "\n".join(texts) if any(t.strip() for t in texts) else "\n".join(html)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    cut = _ORIGINAL_MARKERS.search(text)
    if cut is not None:
        if original is None:
            original = _headers_of(text[cut.end() :])
        text = text[: cut.start()]
    elif original is None:
        original = _inline_headers(text)
    return Parts(message, text, tuple(fields), original)


def _walk(message: Message) -> list[tuple[Message, bool]]:
    """Every part with whether it lies inside an attached original (not the report's own)."""
    found: list[tuple[Message, bool]] = []

    def visit(part: Message, inside: bool) -> None:
        found.append((part, inside))
        payload = part.get_payload()
        if isinstance(payload, list):
            inner = inside or part.get_content_type() in ("message/rfc822", "message/global")
            for child in payload:
                if isinstance(child, Message):
                    visit(child, inner)

    visit(message, False)
    return found


def decoded(part: Message) -> str:
    """A part's payload as text, whatever its transfer encoding and charset claim."""
    try:
        payload = part.get_payload(decode=True)
    except Exception:  # a broken base64 or quoted-printable body: read it raw
        payload = None
    if not isinstance(payload, bytes):
        raw = part.get_payload()
        return raw if isinstance(raw, str) else ""
    charset = part.get_content_charset() or "utf-8"
    # A wrong or missing charset is common in bounces; Japanese carriers' are the usual
    # case, so their encodings are tried before falling back to Latin-1.
    guesses = ("iso-2022-jp",) if b"\x1b$" in payload else ("euc-jp", "shift_jis", "gb18030")
    for name in (charset, "utf-8", *guesses, "latin-1"):
        try:
            return payload.decode(name)
        except (LookupError, UnicodeDecodeError):
            continue
    return payload.decode("latin-1")


def _status_text(part: Message) -> str:
    """A delivery-status or feedback-report body as text (the email package splits it into
    header blocks, one per recipient)."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return "\n\n".join(
            "\n".join(f"{k}: {v}" for k, v in block.items())
            for block in payload
            if isinstance(block, Message)
        )
    return decoded(part)


def _attached(part: Message) -> Message | None:
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        return payload[0]
    if isinstance(payload, str):
        return _headers_of(payload)
    return None


def _headers_of(text: str) -> Message | None:
    """The first header block in ``text`` (blank lines before it skipped), or None."""
    lines = text.replace("\r\n", "\n").lstrip("\n").split("\n")
    start = next((i for i, line in enumerate(lines[:40]) if _HEADER_LINE.match(line)), None)
    if start is None:
        return None
    block: list[str] = []
    for line in lines[start:]:
        if not line.strip():
            break
        block.append(line.lstrip(">").rstrip() if line.startswith(">") else line.rstrip())
    parsed = email.message_from_string("\n".join(block) + "\n\n")
    return parsed if len(parsed.keys()) else None


def _inline_headers(text: str) -> Message | None:
    """Headers pasted into a bounce's text without a marker (a Received: or Message-ID: line)."""
    found = re.search(r"^(?:Return-Path|Received|Message-I[Dd]|From|Date):", text, re.MULTILINE)
    if found is None or found.start() == 0:
        return None
    return _headers_of(text[found.start() :])


def _html_text(source: str) -> str:
    """Rough text of an HTML bounce (Office 365 and others send only HTML)."""
    source = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", source)
    source = re.sub(r"(?i)<br\s*/?>|</p>|</div>|</tr>|</h\d>", "\n", source)
    source = re.sub(r"<[^>]+>", " ", source)
    import html

    return html.unescape(source)


def addresses(text: str) -> list[str]:
    """The addresses in ``text``, lower-cased, in order, each once."""
    seen: dict[str, None] = {}
    for found in ADDRESS.findall(text):
        seen.setdefault(found.lower().rstrip("."), None)
    return list(seen)


def header_addresses(message: Message | None, *names: str) -> list[str]:
    """The addresses in some headers of ``message`` (lower-cased, each once)."""
    if message is None:
        return []
    found: list[str] = []
    for name in names:
        for value in message.get_all(name, []) or []:
            found += addresses(_header_text(value))
    return list(dict.fromkeys(found))


def _header_text(value: object) -> str:
    """A header value as text, RFC 2047 words decoded (the address may sit in one)."""
    from email.header import decode_header, make_header

    try:
        return str(make_header(decode_header(str(value))))
    except Exception:  # a malformed encoded word: the raw text still has the address
        return str(value)
