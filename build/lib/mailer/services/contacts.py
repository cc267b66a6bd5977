"""Audience use cases: import, list, show, export and forget contacts; suppress; lists; segments.

Each function opens the workspace database the settings point at (``db``
beats ``MAILER_DB``, which beats ``[store] path``, which beats ``mailer.db``),
does one thing and returns data for the CLI to print.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mailer.audience.admin import (
    ContactInfo,
    ForgetResult,
    ListInfo,
    contact_rows,
    count_contacts,
    export_contacts,
    forget_contact,
    get_contact,
    list_lists,
)
from mailer.audience.columns import recognised_names
from mailer.audience.contact_address import normalize_email
from mailer.audience.database import Connection
from mailer.audience.frequency import FrequencyCap
from mailer.audience.importer import (
    ColumnView,
    FileLayout,
    ImportResult,
    import_contacts,
    inspect_contacts,
)
from mailer.audience.rfm import RfmGrid, load_cuts, rfm_grid
from mailer.audience.segments import contact_fields, list_segments, save_segment
from mailer.audience.selection import count_segment, select_recipients
from mailer.audience.suppressions import SuppressResult, suppress, suppress_file
from mailer.core.clock import stamp, utc_now
from mailer.core.errors import AudienceError
from mailer.core.recipient import Recipient
from mailer.delivery.transport import outbox_filename
from mailer.services.workspace import open_database, workspace_settings

__all__ = [
    "ColumnView",
    "ContactInfo",
    "FileLayout",
    "ImportResult",
    "ListInfo",
    "RfmGrid",
    "SuppressResult",
    "contact_record",
    "export_file",
    "forget",
    "import_file",
    "inspect_file",
    "list_contacts",
    "lists",
    "recognised_names",
    "rfm",
    "saved_segments",
    "segment_count",
    "segment_sample",
    "segment_save",
    "suppress_target",
]


def _open(db: Path | None) -> Connection:
    return open_database(workspace_settings(db=db))


def inspect_file(
    file: Path, *, encoding: str | None = None, mapping: Mapping[str, str] | None = None
) -> FileLayout:
    """How an import would read ``file``: encoding, separator, each column's field and
    three sample values. Reads the file's head only; touches no database."""
    return inspect_contacts(file, encoding=encoding, mapping=mapping)


def import_file(
    file: Path,
    *,
    list_name: str | None = None,
    rejects: Path | None = None,
    db: Path | None = None,
    encoding: str | None = None,
    mapping: Mapping[str, str] | None = None,
    dry_run: bool = False,
) -> ImportResult:
    """Import a CSV or JSON Lines file (one transaction); bad rows are rejected with reasons.

    ``dry_run`` reads and checks every row and writes nothing. A failed import
    leaves no trace: the file's header is checked before the database is
    opened, and a database the import created is removed again if it fails.
    """
    if dry_run:
        return import_contacts(
            None, file, now=utc_now(), encoding=encoding, mapping=mapping, dry_run=True
        )
    inspect_contacts(file, encoding=encoding, mapping=mapping)  # file problems, before any db
    settings = workspace_settings(db=db)
    fresh = settings.store_url is None and not settings.db_path.exists()
    try:
        conn = open_database(settings)
        try:
            return import_contacts(
                conn,
                file,
                now=utc_now(),
                list_name=list_name,
                rejects_path=rejects,
                encoding=encoding,
                mapping=mapping,
            )
        finally:
            conn.close()
    except BaseException:
        if fresh:
            _remove_database(settings.db_path)
        raise


def _remove_database(path: Path) -> None:
    """Remove a SQLite database file (and its journal files) this command created."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)


@dataclass(frozen=True)
class ContactLine:
    """One contact as ``contacts list`` shows it."""

    id: int
    email: str
    name: str
    tags: list[str]
    orders: int | None
    rfm: str  # recency, frequency and monetary scores: "543"


def list_contacts(
    *, list_name: str | None = None, limit: int = 20, db: Path | None = None
) -> tuple[list[ContactLine], int]:
    """The first ``limit`` contacts (of a list) and how many the database holds."""
    conn = _open(db)
    today, cuts = utc_now().date(), load_cuts(conn)
    lines = []
    for row in contact_rows(conn, list_name, limit=limit):
        f = contact_fields(row, today, (), cuts)
        rfm = "{recency}{frequency}{monetary}".format(**f["rfm"])
        lines.append(ContactLine(row["id"], f["email"], f["name"], f["tags"], f["orders"], rfm))
    return lines, count_contacts(conn)


def contact_record(email: str, *, db: Path | None = None) -> ContactInfo:
    """Everything mailer knows about one address: fields, lists, suppression, sends, and
    what came back about it (each bounce or complaint with its reason and report)."""
    from dataclasses import replace

    from mailer.feedback.history import history

    conn = _open(db)
    info = get_contact(conn, email, now=utc_now())
    return replace(info, feedback=[entry.to_dict() for entry in history(conn, info.email)])


def export_file(
    out: Path, *, fmt: str, list_name: str | None = None, db: Path | None = None
) -> int:
    """Export contacts (re-importable) to ``out``; return how many."""
    return export_contacts(_open(db), out, list_name=list_name, fmt=fmt)


def person_record(email: str, *, db: Path | None = None) -> dict[str, Any]:
    """One person's full record as JSON-ready data (right of access)."""
    info = contact_record(email, db=db)
    return {
        "email": info.email,
        "fields": info.fields,
        "lists": info.lists,
        "suppression": info.suppression,
        "sends": info.sends,
        "feedback": info.feedback,
    }


@dataclass(frozen=True)
class ForgetOutcome:
    """What ``forget`` erased: the database's part, and the outbox files."""

    result: ForgetResult
    files: list[Path]


def forget(email: str, *, db: Path | None = None) -> ForgetOutcome:
    """Erase a person's data (right to erasure); a suppressed address stays suppressed."""
    settings = workspace_settings(db=db)
    result = forget_contact(open_database(settings), email)
    return ForgetOutcome(result, erase_outbox_files(settings.outbox, result.email))


def erase_outbox_files(folder: Path, email: str) -> list[Path]:
    """Delete the ``.eml``/``.html`` files written for this address under an outbox folder.

    Sends to the outbox and ``render`` keep one file per recipient
    (``outbox/<campaign>/<address>.eml``); they hold the person's name and
    address, so forgetting the person removes them too.
    """
    if not folder.is_dir():
        return []
    # CSV audiences keep the local part's case in the file name.
    stem = outbox_filename(normalize_email(email)).lower()
    removed = []
    for path in sorted(folder.rglob("*")):
        if path.suffix in (".eml", ".html") and path.stem.lower() == stem and path.is_file():
            try:
                path.unlink()
            except OSError as exc:
                raise AudienceError(
                    f"cannot delete {path}: {exc.strerror or exc}",
                    hint="delete it by hand; the database record is already erased",
                ) from None
            removed.append(path)
    return removed


@dataclass(frozen=True)
class SuppressOutcome:
    """``suppress`` of one address (``address``, ``added``) or of a file (``file_result``)."""

    address: str | None = None
    added: bool = False
    file_result: SuppressResult | None = None


def suppress_target(target: str, reason: str, *, db: Path | None = None) -> SuppressOutcome:
    """Suppress one address, or every address in a file."""
    conn = _open(db)
    path = Path(target)
    if "@" not in target and not path.is_file():
        raise AudienceError(
            f"{target!r} is neither an address nor a file", hint="give an address or a file"
        )
    if path.is_file():
        result = suppress_file(conn, path, reason, source=f"cli:{path.name}", now=utc_now())
        return SuppressOutcome(file_result=result)
    address = normalize_email(target)
    return SuppressOutcome(address, suppress(conn, address, reason, "cli", now=utc_now()))


def lists(*, db: Path | None = None) -> list[ListInfo]:
    """The contact lists with their member counts."""
    return list_lists(_open(db))


def segment_save(name: str, expression: str, *, db: Path | None = None) -> int:
    """Check and save a segment by name; return how many contacts match it today."""
    conn = _open(db)
    now = utc_now()
    save_segment(conn, name, expression, stamp(now))
    return count_segment(conn, name, now=now)


def segment_count(segment: str, *, list_name: str | None = None, db: Path | None = None) -> int:
    """How many contacts (not suppressed) match a segment."""
    return count_segment(_open(db), segment, list_name, now=utc_now())


@dataclass(frozen=True)
class SegmentSample:
    """A sample of the recipients a segment selects, and who is held back."""

    sample: list[Recipient]
    selected: int
    suppressed: int
    capped: int
    cap: FrequencyCap | None


def segment_sample(
    segment: str, *, list_name: str | None = None, limit: int = 10, db: Path | None = None
) -> SegmentSample:
    """The first ``limit`` recipients of a segment, with the counts held back."""
    settings = workspace_settings(db=db)
    setting = settings.frequency_cap
    cap = FrequencyCap(setting.max_messages, setting.days) if setting else None
    selection = select_recipients(
        open_database(settings),
        list_name=list_name,
        segment=segment,
        frequency_cap=cap,
        now=utc_now(),
    )
    sample = list(itertools.islice(selection.recipients, limit))
    return SegmentSample(
        sample, selection.selected, selection.suppressed_skipped, selection.capped, cap
    )


def saved_segments(*, db: Path | None = None) -> list[tuple[str, str]]:
    """Saved segments as (name, expression)."""
    return list_segments(_open(db))


def rfm(*, db: Path | None = None) -> RfmGrid:
    """The 5x5 recency x frequency grid of contact counts."""
    return rfm_grid(_open(db))
