"""Import contacts from CSV or JSON Lines into the workspace database.

Rows are validated one by one (``contact_parse``): a bad row is rejected with
its line number and reason (and copied to a rejects file) while the good rows
go in. The whole import is one transaction, so an interrupted import leaves the
database as it was. Re-importing updates contacts (matched by address,
case-insensitively): non-empty values win, attributes are merged, tags are
replaced when given.
"""

from __future__ import annotations

import csv
import itertools
import json
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from mailer.audience.columns import classify, field_for
from mailer.audience.database import POSTGRESQL, SQLITE, Connection, dialect
from mailer.audience.parse import (
    Row,
    RowBuilder,
    RowError,
    csv_layout,
    csv_rows,
    is_jsonl,
    jsonl_rows,
    open_lines,
)
from mailer.audience.postgres import PgConnection
from mailer.audience.rfm import refresh_rfm
from mailer.audience.store import transaction
from mailer.audience.textfile import Decoding, detect_encoding, sniff_delimiter
from mailer.core.clock import stamp
from mailer.core.errors import AudienceError

BATCH_SIZE = 5000
_UPSERT = """INSERT INTO contacts (email, first_name, last_name, locale, timezone, birthday,
    tags, attributes, orders, total_spent, last_order_at, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (email) DO UPDATE SET
    {names},
    locale = coalesce(excluded.locale, contacts.locale),
    timezone = coalesce(excluded.timezone, contacts.timezone),
    birthday = coalesce(excluded.birthday, contacts.birthday),
    tags = CASE WHEN excluded.tags = '[]' THEN contacts.tags ELSE excluded.tags END,
    attributes = CASE WHEN excluded.attributes = '{}' THEN contacts.attributes
                 ELSE {merge} END,
    orders = coalesce(excluded.orders, contacts.orders),
    total_spent = coalesce(excluded.total_spent, contacts.total_spent),
    last_order_at = coalesce(excluded.last_order_at, contacts.last_order_at),
    updated_at = excluded.updated_at"""
# Attributes merge key by key (RFC 7396 merge patch: a null removes the key).
_MERGE = {
    SQLITE: "json_patch(contacts.attributes, excluded.attributes)",
    POSTGRESQL: "jsonb_strip_nulls(contacts.attributes::jsonb || excluded.attributes::jsonb)::text",
}
# Names given as such (first_name / last_name columns) replace the stored ones;
# names split from a full name ("Ann Lee <ann@x>", a name column) only fill a
# contact that has none, so they never garble a properly split name.
_STRONG = (
    "first_name = coalesce(excluded.first_name, contacts.first_name),\n"
    "    last_name = coalesce(excluded.last_name, contacts.last_name)"
)
_WEAK = (
    "first_name = CASE WHEN contacts.first_name IS NULL AND contacts.last_name IS NULL\n"
    "        THEN excluded.first_name ELSE contacts.first_name END,\n"
    "    last_name = CASE WHEN contacts.first_name IS NULL AND contacts.last_name IS NULL\n"
    "        THEN excluded.last_name ELSE contacts.last_name END"
)


def upsert_sql(conn: Connection, *, weak_names: bool) -> str:
    """The contact upsert for this connection's engine."""
    names = _WEAK if weak_names else _STRONG
    return _UPSERT.replace("{names}", names).replace("{merge}", _MERGE[dialect(conn)])


# The contacts of one written batch (a JSON array of their addresses) join the list.
ADD_MEMBERS = (
    "INSERT OR IGNORE INTO list_members (list_id, contact_id) "
    "SELECT ?, id FROM contacts WHERE email IN (SELECT value FROM json_each(?))"
)


@dataclass(frozen=True)
class Reject:
    """A row that was not imported: where it was, why, and its original values."""

    line: int
    reason: str
    record: list[str] | str = ""


@dataclass
class ImportResult:
    """What an import did. Counts are of distinct addresses unless named ``rows``."""

    path: Path
    rows: int = 0
    inserted: int = 0
    updated: int = 0
    merged: int = 0  # extra rows for an address already seen in this file
    rejected: list[Reject] = field(default_factory=list)
    rejects_file: Path | None = None
    list_name: str | None = None
    encoding: Decoding | None = None  # how the file's bytes were read
    dry_run: bool = False  # checked only: nothing was written
    valid: int = 0  # distinct addresses that were (or, in a dry run, would be) imported


@dataclass(frozen=True)
class ColumnView:
    """One column as the import will read it, with a few of its values."""

    header: str
    kind: str  # "field", "attr" (an extra field) or "skip"
    name: str
    how: str  # "recognised", "mapped" or "extra"
    samples: list[str]


@dataclass(frozen=True)
class FileLayout:
    """What the import understood of a file before reading it all."""

    path: Path
    encoding: Decoding
    jsonl: bool
    delimiter: str | None  # CSV only
    columns: list[ColumnView]

    @property
    def decimal_comma(self) -> bool:
        """Numbers such as 1260,5 are read with a decimal comma (a ; or tab separated CSV)."""
        return self.delimiter is not None and self.delimiter != ","


SAMPLE_ROWS = 200  # rows looked at for sample values


def inspect_contacts(
    path: Path | str,
    *,
    encoding: str | None = None,
    mapping: Mapping[str, str] | None = None,
    samples: int = 3,
) -> FileLayout:
    """Each column's field and its first ``samples`` values, reading only the file's head.

    Raises ``AudienceError`` for what would stop the import (no email column,
    two columns for one field, a mapping that names no column ...).
    """
    path = _existing(Path(path))
    decoding = detect_encoding(path, encoding)
    jsonl = is_jsonl(path)
    bad: set[int] = set()
    with open_lines(path, bad, decoding) as lines:
        stream = iter(lines)
        if jsonl:
            return _jsonl_layout(path, decoding, stream, bad, mapping, samples)
        first = next(stream, "")
        layout, header = csv_layout(first, str(path), mapping)
        reader = csv.reader(itertools.chain([first], stream), delimiter=layout.delimiter)
        next(reader)
        found: list[list[str]] = [[] for _ in header]
        for record in itertools.islice(reader, SAMPLE_ROWS):
            for index, cell in enumerate(record[: len(header)]):
                if cell.strip() and len(found[index]) < samples:
                    found[index].append(cell.strip())
    columns = [ColumnView(c.header, c.kind, c.name, c.how, found[c.index]) for c in layout.columns]
    return FileLayout(path, decoding, False, layout.delimiter, columns)


def _jsonl_layout(
    path: Path,
    decoding: Decoding,
    lines: Iterator[str],
    bad: set[int],
    mapping: Mapping[str, str] | None,
    samples: int,
) -> FileLayout:
    seen: dict[str, list[str]] = {}
    for _line, parsed, record in itertools.islice(jsonl_rows(lines, str(path), bad), SAMPLE_ROWS):
        if isinstance(parsed, RowError) or not isinstance(record, str):
            continue
        for key, value in json.loads(record).items():
            found = seen.setdefault(str(key), [])
            if value not in (None, "") and len(found) < samples:
                found.append(value if isinstance(value, str) else json.dumps(value))
    columns = []
    for key, found in seen.items():
        wanted = (mapping or {}).get(key)
        kind, name = ("skip", "") if wanted == "-" else classify(wanted or key)
        how = "mapped" if wanted else "recognised" if field_for(key) else "extra"
        columns.append(ColumnView(key, kind, name, how, found))
    return FileLayout(path, decoding, True, None, columns)


def ensure_list(conn: Connection, name: str, now: str) -> int:
    """Return the id of the list called ``name``, creating it if needed."""
    name = name.strip()
    if not name:
        raise AudienceError("a list name cannot be empty")
    conn.execute("INSERT OR IGNORE INTO lists (name, created_at) VALUES (?, ?)", (name, now))
    return int(conn.execute("SELECT id FROM lists WHERE name = ?", (name,)).fetchone()[0])


def _write_batch(conn: Connection, batch: list[tuple[Any, ...]], list_id: int | None) -> None:
    if isinstance(conn, PgConnection) and _distinct(batch):
        _copy_batch(conn, batch, list_id)
        return
    # The last item of a row says whether its names are weak; consecutive runs
    # keep the file's order (a later row for the same address wins).
    for weak, run in itertools.groupby(batch, key=lambda row: row[-1]):
        conn.executemany(upsert_sql(conn, weak_names=weak), [row[:-1] for row in run])
    if list_id is not None:
        conn.execute(ADD_MEMBERS, (list_id, json.dumps([row[0] for row in batch])))


_COPY_COLUMNS = (
    "email, first_name, last_name, locale, timezone, birthday, tags, attributes, orders,"
    " total_spent, last_order_at, created_at, updated_at"
)
_VALUES = "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"


def _distinct(batch: list[tuple[Any, ...]]) -> bool:
    """True when no address occurs twice in the batch (``RowBuilder`` lower-cases them)."""
    return len({row[0] for row in batch}) == len(batch)


def _copy_batch(conn: PgConnection, batch: list[tuple[Any, ...]], list_id: int | None) -> None:
    """PostgreSQL: COPY the batch into a temp table, then one upsert per name kind.

    One statement per row costs a round trip each (1,000,000 rows: minutes);
    COPY and INSERT ... SELECT cost two per batch. A batch with an address twice
    takes the row-by-row path instead, where a later row sees the earlier one.
    """
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS import_rows (email text COLLATE mailer_nocase,"
        " first_name text,"
        " last_name text, locale text, timezone text, birthday text, tags text,"
        " attributes text, orders bigint, total_spent double precision, last_order_at text,"
        " created_at text, updated_at text, weak boolean) ON COMMIT DROP"
    )
    conn.execute("TRUNCATE import_rows")
    conn.copy_rows("import_rows", [*_COPY_COLUMNS.split(", "), "weak"], batch)
    for weak in sorted({bool(row[-1]) for row in batch}):
        select = f"SELECT {_COPY_COLUMNS} FROM import_rows WHERE weak = {weak}"
        upsert = upsert_sql(conn, weak_names=weak).replace(_VALUES, select)
        if list_id is None:
            conn.execute(upsert)
        else:  # the upserted rows' ids join the list in the same statement
            conn.execute(
                f"WITH written AS ({upsert} RETURNING id) INSERT INTO list_members"
                " (list_id, contact_id) SELECT ?, id FROM written ON CONFLICT DO NOTHING",
                (list_id,),
            )


def _save_kinds(conn: Connection, kinds: dict[str, set[str]]) -> None:
    for name, found in kinds.items():
        row = conn.execute("SELECT kinds FROM attribute_fields WHERE name = ?", (name,)).fetchone()
        merged = found | ({k for k in row[0].split(",") if k} if row else set())
        conn.execute(
            "INSERT INTO attribute_fields (name, kinds) VALUES (?, ?) "
            "ON CONFLICT(name) DO UPDATE SET kinds = excluded.kinds",
            (name, ",".join(sorted(merged))),
        )


def import_contacts(
    conn: Connection | None,
    path: Path | str,
    *,
    now: datetime,
    list_name: str | None = None,
    rejects_path: Path | None = None,
    encoding: str | None = None,
    mapping: Mapping[str, str] | None = None,
    dry_run: bool = False,
) -> ImportResult:
    """Import a CSV or JSON Lines file in one transaction and report what happened.

    ``now`` stamps the contacts it creates or updates (and a list it creates).
    ``encoding`` (default: detected, see ``textfile.detect_encoding``) reads the file.
    ``mapping`` names the field of a column (``{"手机号": "phone"}``, ``"-"`` to
    leave one out); other columns are recognised by name (``columns.FIELD_NAMES``).
    Rejected rows go to ``rejects_path`` (default: ``<file>.rejects.csv`` or
    ``.rejects.jsonl`` next to the input) when there are any. ``dry_run``:
    every row is read and checked, nothing is written (``conn`` may be None).
    """
    path = _existing(Path(path))
    decoding = detect_encoding(path, encoding)
    result = ImportResult(path, list_name=list_name, encoding=decoding, dry_run=dry_run)
    jsonl = is_jsonl(path)
    bad: set[int] = set()
    builder = RowBuilder(stamp(now))
    if dry_run or conn is None:
        with open_lines(path, bad, decoding) as lines:
            rows = _rows(lines, path, bad, jsonl, mapping)
            result.valid = _load(None, rows, builder, result, None)
        result.dry_run = True
        return result
    with open_lines(path, bad, decoding) as lines, transaction(conn):
        before = conn.execute("SELECT count(*) FROM contacts").fetchone()[0]
        list_id = ensure_list(conn, list_name, stamp(now)) if list_name else None
        rows = _rows(lines, path, bad, jsonl, mapping)
        unique = _load(conn, rows, builder, result, list_id)
        _save_kinds(conn, builder.kinds)
        refresh_rfm(conn)
        after = conn.execute("SELECT count(*) FROM contacts").fetchone()[0]
        if result.rejected:
            # Written before the commit: if the rejects cannot be saved, nothing
            # is imported, so no rejected row is lost without a trace.
            result.rejects_file = rejects_path or path.with_name(
                path.stem + (".rejects.jsonl" if jsonl else ".rejects.csv")
            )
            _write_rejects(result.rejects_file, result.rejected, jsonl, path, decoding)
    result.valid = unique
    result.inserted = after - before
    result.updated = unique - result.inserted
    return result


def _existing(path: Path) -> Path:
    if not path.is_file():
        problem = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise AudienceError(f"{path} {problem}", hint="give a CSV or JSON Lines file")
    return path


def _rows(
    lines: Iterable[str], path: Path, bad: set[int], jsonl: bool, mapping: Mapping[str, str] | None
) -> Iterator[Row]:
    if jsonl:
        return jsonl_rows(lines, str(path), bad, mapping)
    return csv_rows(lines, str(path), bad, mapping)


def _load(
    conn: Connection | None,
    rows: Iterator[Row],
    builder: RowBuilder,
    result: ImportResult,
    list_id: int | None,
) -> int:
    seen: set[str] = set()
    batch: list[tuple[Any, ...]] = []
    with _writer(conn, list_id) as write:
        for line, parsed, record in rows:
            result.rows += 1
            try:
                if isinstance(parsed, RowError):
                    raise parsed
                values = builder.build(*parsed)
            except RowError as exc:
                result.rejected.append(Reject(line, str(exc), record))
                continue
            if values[0] in seen:
                result.merged += 1
            else:
                seen.add(values[0])
            batch.append(values)
            if len(batch) >= BATCH_SIZE:
                write(batch)
                batch = []
        if batch:
            write(batch)
    return len(seen)


@contextmanager
def _writer(
    conn: Connection | None, list_id: int | None
) -> Iterator[Callable[[list[tuple[Any, ...]]], None]]:
    """Where parsed batches go: straight to the database, or (PostgreSQL) to a thread.

    Parsing is Python work and writing is the server's: on PostgreSQL a writer
    thread sends one batch while the next is parsed (1,000,000 rows: the two
    overlap instead of adding up). One batch waits at most, so memory stays flat.
    A dry run (no connection) drops them.
    """
    if conn is None:
        yield lambda batch: None
        return
    if not isinstance(conn, PgConnection):
        yield lambda batch: _write_batch(conn, batch, list_id)
        return
    waiting: queue.Queue[list[tuple[Any, ...]] | None] = queue.Queue(maxsize=1)
    failed: list[BaseException] = []

    def drain() -> None:
        while (batch := waiting.get()) is not None:
            if not failed:
                try:
                    _write_batch(conn, batch, list_id)
                except BaseException as exc:  # handed to the importing thread
                    failed.append(exc)

    def write(batch: list[tuple[Any, ...]]) -> None:
        if failed:
            raise failed[0]
        waiting.put(batch)

    thread = threading.Thread(target=drain, name="mailer-import-writer", daemon=True)
    thread.start()
    try:
        yield write
    finally:
        waiting.put(None)
        thread.join()
    if failed:
        raise failed[0]


def _write_rejects(
    target: Path, rejects: list[Reject], jsonl: bool, source: Path, decoding: Decoding
) -> None:
    try:
        _write_rejects_to(target, rejects, jsonl, source, decoding)
    except OSError as exc:
        raise AudienceError(
            f"cannot write the rejects file {target}: {exc.strerror or exc}",
            hint="nothing was imported; choose another place for the rejects file",
            advice="rejects-file",
        ) from None


def _write_rejects_to(
    target: Path, rejects: list[Reject], jsonl: bool, source: Path, decoding: Decoding
) -> None:
    with target.open("w", encoding="utf-8", newline="") as out:
        if jsonl:
            for r in rejects:
                out.write(json.dumps({"line": r.line, "reason": r.reason, "record": r.record}))
                out.write("\n")
            return
        encoding = "utf-8-sig" if decoding.encoding == "utf-8" else decoding.encoding
        with source.open(encoding=encoding, errors="replace", newline="") as src:
            first = src.readline()
            header = next(csv.reader([first], delimiter=sniff_delimiter(first)), [])
        writer = csv.writer(out)
        writer.writerow(["line", "reason", *header])
        for r in rejects:
            writer.writerow([r.line, r.reason, *(r.record if isinstance(r.record, list) else [])])
