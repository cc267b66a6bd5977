"""RFC 3464 delivery status fields: one block per recipient, wherever the report put them.

Standard reports carry them in a ``message/delivery-status`` part; many servers
(Amazon WorkMail, old Exchange, some webmails) paste the same fields into the
text instead. Both are read the same way: blocks of ``Name: value`` lines,
folded lines joined, and each block that names a recipient becomes a
``StatusBlock``. RFC 3463 status codes are read here too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mailer.feedback.mailparts import addresses

STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_FIELD = re.compile(r"^([A-Za-z][A-Za-z0-9-]*)[ \t]*:[ \t]*(.*)$")
_RECIPIENT_FIELDS = ("final-recipient", "original-recipient", "x-actual-recipient")


@dataclass(frozen=True)
class StatusBlock:
    """The fields of one recipient's block (names lower-cased)."""

    final: str  # Final-Recipient's address ("" when the field has none)
    original: str  # Original-Recipient's address
    action: str  # failed, delayed, delivered, relayed, expanded (lower-cased)
    status: str  # the RFC 3463 code, "5.1.1"
    diagnostic: str  # Diagnostic-Code without its type ("smtp; ")
    remote_mta: str


def blocks(texts: list[str]) -> list[StatusBlock]:
    """Every recipient block in ``texts`` (delivery-status parts first, then the report's text)."""
    found: list[StatusBlock] = []
    for text in texts:
        for fields in _field_blocks(text):
            block = _block(fields)
            if block is not None:
                found.append(block)
    return found


def _field_blocks(text: str) -> list[dict[str, str]]:
    """``Name: value`` blocks in ``text``; a folded line continues the field before it."""
    result: list[dict[str, str]] = []
    current: dict[str, str] = {}
    last = ""
    for line in text.replace("\r", "").split("\n"):
        if not line.strip():
            if current:
                result.append(current)
            current, last = {}, ""
            continue
        match = _FIELD.match(line)
        if match and not line[0].isspace():
            last = match.group(1).lower()
            if last in current and last in (*_RECIPIENT_FIELDS, "action"):
                result.append(current)  # a new recipient without a blank line between
                current = {}
            current[last] = match.group(2).strip()
        elif last and line[:1].isspace():
            current[last] = (current[last] + " " + line.strip()).strip()
    if current:
        result.append(current)
    return result


def _block(fields: dict[str, str]) -> StatusBlock | None:
    if not any(name in fields for name in _RECIPIENT_FIELDS):
        return None
    final = _address(fields.get("final-recipient", "") or fields.get("x-actual-recipient", ""))
    original = _address(fields.get("original-recipient", ""))
    if not final and not original:
        return None
    status = STATUS.search(fields.get("status", ""))
    return StatusBlock(
        final,
        original,
        fields.get("action", "").split()[0].lower() if fields.get("action", "").split() else "",
        status.group(0) if status else "",
        _without_type(fields.get("diagnostic-code", "")),
        _without_type(fields.get("remote-mta", "")),
    )


def _address(value: str) -> str:
    """``rfc822; a@b`` (or ``<a@b>``, or ``a@b``) → ``a@b``; a quoted local part kept."""
    value = _without_type(value).strip().strip("<>").strip()
    found = addresses(value)
    return found[0] if found else ""


def _without_type(value: str) -> str:
    """``smtp; 550 ...`` → ``550 ...`` (the type is before the first semicolon, if short)."""
    head, sep, rest = value.partition(";")
    if sep and len(head) <= 12 and " " not in head.strip():
        return rest.strip()
    return value.strip()


def status_in(text: str) -> str:
    """The first failure status code (4.x.x or 5.x.x) in ``text``, or "": a 2.x.x in a
    transcript is a step that worked, not the outcome."""
    found = re.search(r"\b[45]\.\d{1,3}\.\d{1,3}\b", text)
    return found.group(0) if found else ""


def reply_code(text: str) -> str:
    """The first SMTP reply code (``550``, ``421``) at the start of a reply in ``text``."""
    found = re.search(r"(?:^|[\s:;'\"(<\[#-])([45][0-5][0-9])(?=[\s:-]|$)", text)
    return found.group(1) if found else ""
