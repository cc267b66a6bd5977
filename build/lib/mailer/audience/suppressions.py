"""The suppression list: addresses never mailed again (unsubscribed, bounced, complained, manual).

Every send reads it once per run (``suppressed_set``) and again per batch of a
database audience, so an address suppressed mid-run is not mailed either.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from email_validator import EmailNotValidError

from mailer.audience.contact_address import address_key, contact_address
from mailer.audience.database import Connection
from mailer.audience.importer import Reject
from mailer.audience.store import SUPPRESSION_REASONS, transaction
from mailer.core.clock import stamp
from mailer.core.errors import AudienceError


def is_suppressed(conn: Connection, email: str) -> bool:
    """True if the address must never be mailed (unsubscribed, bounced, complained, manual)."""
    return (
        conn.execute("SELECT 1 FROM suppressions WHERE email = ?", (address_key(email),)).fetchone()
        is not None
    )


def suppress(
    conn: Connection,
    email: str,
    reason: str,
    source: str = "",
    *,
    now: datetime,
) -> bool:
    """Add an address to the suppression list; return False if it was already there.

    An address that is already suppressed keeps its first reason and date. The
    address does not need to be a contact (or even valid: a bounce is a bounce).
    """
    _check_reason(reason)
    key = address_key(email)
    if not key:
        raise AudienceError("cannot suppress an empty address")
    cursor = conn.execute(
        "INSERT OR IGNORE INTO suppressions (email, reason, created_at, source) VALUES (?,?,?,?)",
        (key, reason, stamp(now), source),
    )
    return cursor.rowcount == 1


def _check_reason(reason: str) -> None:
    if reason not in SUPPRESSION_REASONS:
        raise AudienceError(
            f"unknown suppression reason {reason!r}",
            hint="use one of: " + ", ".join(SUPPRESSION_REASONS),
        )


@dataclass
class SuppressResult:
    """Outcome of suppressing the addresses in a file."""

    added: int = 0
    already: int = 0
    rejected: list[Reject] = field(default_factory=list)


def suppress_file(
    conn: Connection, path: Path, reason: str, source: str = "", *, now: datetime
) -> SuppressResult:
    """Suppress every address in a file: one per line, or a CSV whose first column holds them.

    A header line without an '@' is skipped; invalid lines are reported, not added.
    """
    _check_reason(reason)
    result = SuppressResult()
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise AudienceError(f"cannot read {path}: {exc}", hint="give a UTF-8 text file") from None
    with transaction(conn):
        for number, line in enumerate(lines, start=1):
            # CSV rules, not split(","): '"Lee, Ann" <ann@example.com>' is one
            # cell. Line by line, so a stray quote cannot swallow the lines after it.
            cell = next(csv.reader([line]), [""])[0].strip() if line.strip() else ""
            if not cell or (number == 1 and "@" not in cell):
                continue
            try:
                address = contact_address(cell)[0]
            except EmailNotValidError as exc:
                result.rejected.append(Reject(number, f"invalid email address: {exc}"))
                continue
            if suppress(conn, address, reason, source or str(path), now=now):
                result.added += 1
            else:
                result.already += 1
    return result


def suppressed_reason(conn: Connection, email: str) -> str | None:
    """The suppression reason for an address, or None when it may be mailed."""
    row = conn.execute(
        "SELECT reason FROM suppressions WHERE email = ?", (address_key(email),)
    ).fetchone()
    return row[0] if row else None


def suppressed_set(conn: Connection) -> dict[str, str]:
    """Every suppressed address (lower-cased) with its reason: one query for a whole run."""
    return {
        email.lower(): reason
        for email, reason in conn.execute("SELECT email, reason FROM suppressions")
    }


def suppressed_among(conn: Connection, emails: Sequence[str]) -> set[str]:
    """Which of ``emails`` (lower-cased) are on the suppression list: one query per batch."""
    rows = conn.execute(
        "SELECT lower(email) FROM suppressions WHERE email IN (SELECT value FROM json_each(?))",
        (json.dumps(list(emails)),),
    )
    return {row[0] for row in rows}
