"""Looking after contacts: lists, one contact's record, export, and forget (right to erasure)."""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from mailer.audience.contact_address import normalize_email
from mailer.audience.database import Connection, Row
from mailer.audience.rfm import load_cuts, refresh_rfm
from mailer.audience.segments import attribute_kinds, contact_fields
from mailer.audience.selection import CONTACT_COLUMNS, list_id
from mailer.audience.store import transaction
from mailer.core.clock import aware
from mailer.core.errors import AudienceError

# Exported columns: exactly what import reads back (computed fields left out).
EXPORT_FIELDS = (
    "email", "first_name", "last_name", "locale", "timezone", "birthday", "tags",
    "orders", "total_spent", "last_order_at",
)  # fmt: skip


@dataclass
class ListInfo:
    """A contact list and how many contacts are in it."""

    name: str
    members: int
    created_at: str


def list_lists(conn: Connection) -> list[ListInfo]:
    """All lists with their member counts, by name."""
    rows = conn.execute(
        "SELECT l.name, count(m.contact_id), l.created_at FROM lists l "
        "LEFT JOIN list_members m ON m.list_id = l.id GROUP BY l.id ORDER BY l.name"
    )
    return [ListInfo(name, members, created) for name, members, created in rows]


def contact_rows(
    conn: Connection, list_name: str | None = None, *, limit: int | None = None
) -> list[Row]:
    """Contacts (of a list), by id; ``limit`` None means all."""
    where, params = "1 = 1", {}
    if list_name:
        where = "c.id IN (SELECT contact_id FROM list_members WHERE list_id = :lid)"
        params["lid"] = list_id(conn, list_name)
    sql = f"SELECT {CONTACT_COLUMNS} FROM contacts c WHERE {where} ORDER BY c.id"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return conn.execute(sql, params).fetchall()


def count_contacts(conn: Connection) -> int:
    """How many contacts the database holds."""
    return int(conn.execute("SELECT count(*) FROM contacts").fetchone()[0])


@dataclass
class ContactInfo:
    """Everything mailer knows about one address."""

    email: str
    contact_id: int | None
    fields: dict[str, Any]
    lists: list[str]
    suppression: dict[str, str] | None
    sends: list[dict[str, Any]] = field(default_factory=list)
    # What came back about the address (filled in by the service: feedback.history).
    feedback: list[dict[str, Any]] = field(default_factory=list)


def get_contact(conn: Connection, email: str, *, now: datetime) -> ContactInfo:
    """One person's record: fields, lists, suppression and send history."""
    key = normalize_email(email)
    row = conn.execute(f"SELECT {CONTACT_COLUMNS} FROM contacts c WHERE c.email = ?", (key,))
    contact = row.fetchone()
    suppression = conn.execute(
        "SELECT reason, created_at, source FROM suppressions WHERE email = ?", (key,)
    ).fetchone()
    if contact is None and suppression is None:
        raise AudienceError(f"no contact with address {key}", advice="list-contacts")
    fields: dict[str, Any] = {}
    lists: list[str] = []
    if contact is not None:
        fields = contact_fields(contact, aware(now).date(), (), load_cuts(conn))
        lists = [
            r[0]
            for r in conn.execute(
                "SELECT l.name FROM lists l JOIN list_members m ON m.list_id = l.id "
                "WHERE m.contact_id = ? ORDER BY l.name",
                (contact["id"],),
            )
        ]
    sends = [
        dict(r)
        for r in conn.execute(
            "SELECT campaign_id, status, sent_at, variant FROM journal WHERE email = ? "
            "ORDER BY queued_at",
            (key,),
        )
    ]
    return ContactInfo(
        key,
        contact["id"] if contact else None,
        fields,
        lists,
        dict(suppression) if suppression else None,
        sends,
    )


def _export_record(row: Row) -> dict[str, Any]:
    record: dict[str, Any] = {k: row[k] for k in EXPORT_FIELDS if row[k] is not None}
    record["tags"] = json.loads(row["tags"])
    record.update(json.loads(row["attributes"]))
    return record


def export_contacts(
    conn: Connection, target: Path, *, list_name: str | None = None, fmt: str = "jsonl"
) -> int:
    """Write contacts to a JSON Lines or CSV file that ``contacts import`` reads back."""
    if fmt not in ("jsonl", "csv"):
        raise AudienceError(f"unknown export format {fmt!r}", hint="use jsonl or csv")
    rows = contact_rows(conn, list_name)
    try:
        return _write_export(conn, target, rows, fmt)
    except OSError as exc:
        raise AudienceError(
            f"cannot write the export to {target}: {exc.strerror or exc}",
            hint="give a file in a folder that exists and that you may write to",
        ) from None


def _write_export(conn: Connection, target: Path, rows: list[Row], fmt: str) -> int:
    with target.open("w", encoding="utf-8", newline="") as out:
        if fmt == "jsonl":
            for row in rows:
                out.write(json.dumps(_export_record(row), ensure_ascii=False) + "\n")
            return len(rows)
        columns = [*EXPORT_FIELDS, *sorted(attribute_kinds(conn))]
        writer = csv.DictWriter(out, columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            record = _export_record(row)
            record["tags"] = ";".join(record["tags"])
            # Nested JSON attributes (from JSON Lines) stay JSON, not Python repr.
            writer.writerow(
                {k: json.dumps(v, ensure_ascii=False) if isinstance(v, dict | list) else v
                 for k, v in record.items()}
            )  # fmt: skip
    return len(rows)


@dataclass
class ForgetResult:
    """What ``forget`` erased. ``suppressed`` says the address stays on the suppression list."""

    email: str
    contact_erased: bool
    journal_rows: int
    suppressed: bool


def forget_contact(conn: Connection, email: str) -> ForgetResult:
    """Erase a person's data: contact row, list memberships, address in the send journal,
    in the feedback events and in the clicks.

    The suppression entry (if any) stays, so a forgotten person who opted out
    is never mailed again. In the journal the address is replaced by a one-way
    token, which keeps the campaign counts right without keeping the address.
    """
    key = normalize_email(email)
    # Overwrite the freed space, so the erased data does not linger in free
    # pages of the file (some SQLite builds leave this off by default).
    conn.execute("PRAGMA secure_delete = ON")
    with transaction(conn):
        erased = conn.execute("DELETE FROM contacts WHERE email = ?", (key,)).rowcount
        journal = conn.execute(
            "UPDATE journal SET email = ?, last_reply = NULL WHERE email = ?",
            (forget_token(key), key),
        ).rowcount
        # What came back about them (bounces, complaints, clicks) keeps its counts, not
        # the address; the report details (the relay's words) go.
        conn.execute(
            "UPDATE feedback_events SET email = ?, detail = '' WHERE email = ?",
            (forget_token(key), key),
        )
        conn.execute("UPDATE clicks SET email = ? WHERE email = ?", (forget_token(key), key))
        if erased:
            refresh_rfm(conn)
    suppressed = (
        conn.execute("SELECT 1 FROM suppressions WHERE email = ?", (key,)).fetchone() is not None
    )
    if not erased and not journal and not suppressed:
        raise AudienceError(f"no contact with address {key}", advice="list-contacts")
    return ForgetResult(key, bool(erased), journal, suppressed)


def forget_token(email: str) -> str:
    """What a forgotten address becomes in the send journal: stable, not reversible."""
    return "forgotten-" + hashlib.sha256(email.lower().encode()).hexdigest()[:24]
