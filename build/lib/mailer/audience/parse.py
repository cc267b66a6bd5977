"""Reading contact rows: addresses, field values, CSV and JSON Lines readers.

Everything here is pure (no database): a reader yields, per row, its line
number and either the parsed values or the reason the row is rejected. The
code is written for a million rows a minute, hence the precomputed column maps
and the address fast path.
"""

from __future__ import annotations

import codecs
import csv
import itertools
import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any

from email_validator import EmailNotValidError

from mailer.audience.columns import SKIP, Column, classify, plan_columns
from mailer.audience.contact_address import contact_address
from mailer.audience.textfile import Decoding, oversized, sniff_delimiter
from mailer.core.errors import AudienceError

_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?")
# 1260,5 in a file whose cells are separated by ; or tabs (Excel in a decimal-comma locale).
_DECIMAL_COMMA = re.compile(r"-?(?:0|[1-9][0-9]*),[0-9]+")
_TAG_SPLIT = re.compile(r"[;,|]")
_MONTH_DAY = re.compile(r"(?:--)?(\d\d-\d\d)")
# One encoder, built once: json.dumps(..., ensure_ascii=False) builds a new one per call.
encode_json = json.JSONEncoder(ensure_ascii=False).encode

EAST_ASIAN = ("zh", "ja", "ko")  # locales whose names read family name first, unspaced


class RowError(Exception):
    """One row is invalid; the message is the reason shown to the user."""


@cache
def _timezones() -> frozenset[str]:
    import zoneinfo

    return frozenset(zoneinfo.available_timezones())


# -- field values: each takes a cell (str in CSV, any JSON value in JSON Lines) ---------
def _text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(value).strip() or None


def _orders(value: Any) -> int | None:
    if value is None or value == "":
        return None
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        raise RowError(f"orders {text[:20]!r} is not a whole number") from None
    if not number.is_integer() or number < 0:
        raise RowError(f"orders {text[:20]!r} is not a whole number >= 0")
    return int(number)


def _money(value: Any) -> float | None:
    if value is None or value == "":
        return None
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise RowError(f"total_spent {text[:20]!r} is not a number")
    return number


def _birthday(value: Any) -> str | None:
    text = _text(value)
    if text is None:
        return None
    month_day = _MONTH_DAY.fullmatch(text)
    try:
        if month_day:  # year unknown: 2000 is a leap year, so 02-29 is fine
            date.fromisoformat(f"2000-{month_day[1]}")
            return f"--{month_day[1]}"
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise RowError(f"birthday {text[:20]!r} is not YYYY-MM-DD or --MM-DD") from None


def _order_date(value: Any) -> str | None:
    text = _text(value)
    if text is None:
        return None
    try:
        if len(text) == 10:
            return date.fromisoformat(text).isoformat()
        return datetime.fromisoformat(text.replace("Z", "+00:00")).date().isoformat()
    except ValueError:
        raise RowError(f"last_order_at {text[:25]!r} is not an ISO date") from None


def _timezone(value: Any) -> str | None:
    text = _text(value)
    if text is not None and text not in _timezones():
        raise RowError(f"unknown time zone {text[:40]!r} (use an IANA name like Asia/Shanghai)")
    return text


def _tags(value: Any) -> str:
    if not value:
        return "[]"
    items = value if isinstance(value, list) else _TAG_SPLIT.split(str(value))
    tags = dict.fromkeys(t for t in (str(i).strip() for i in items) if t)
    return encode_json(list(tags)) if tags else "[]"


def csv_cell(value: str, decimal_comma: bool = False) -> Any:
    """An attribute cell from CSV: plainly written numbers become numbers.

    So ``orders_2024 > 3`` works; leading zeros (zip codes) stay text. With
    ``decimal_comma`` (a ; or tab separated file), ``1260,5`` is 1260.5 too.
    """
    value = value.strip()
    if _NUMBER.fullmatch(value):
        return float(value) if "." in value else int(value)
    if decimal_comma and _DECIMAL_COMMA.fullmatch(value):
        return float(value.replace(",", "."))
    return value


def decimal_point(value: str) -> str:
    """``1260,5`` -> ``1260.5`` (a number written with a decimal comma); anything else as is."""
    return value.replace(",", ".") if _DECIMAL_COMMA.fullmatch(value.strip()) else value


def _kind(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return "text"
    if isinstance(value, bool | int | float):
        return "number"
    return "json"


@dataclass
class RowBuilder:
    """Turns one row's field values and attributes into a tuple for the contacts UPSERT.

    The tuple's last item is not a column: True when the names were split from
    a full name (see ``audience_import._write_batch``).
    """

    now: str
    kinds: dict[str, set[str]] = field(default_factory=dict)

    def build(self, values: dict[str, Any], attributes: dict[str, Any]) -> tuple[Any, ...]:
        """Validate one row (RowError if invalid); record the kinds of its attributes."""
        raw = _text(values.get("email"))
        if raw is None:
            raise RowError("no email address")
        try:
            email, display = contact_address(raw)
        except EmailNotValidError as exc:
            raise RowError(f"invalid email address: {exc}") from None
        if not email.isascii() and not email.rpartition("@")[0].isascii():
            # An internationalised domain is fine (sent as xn--...); a non-ASCII
            # local part needs SMTPUTF8, which the send path refuses.
            raise RowError(
                "the part before the @ has non-ASCII characters (it needs SMTPUTF8, "
                "which mailer cannot send to)"
            )
        first, last = _text(values.get("first_name")), _text(values.get("last_name"))
        locale = _text(values.get("locale"))
        full = _text(values.get("name")) or display
        for label, name in (("first_name", first), ("last_name", last), ("name", full)):
            if name and ("\n" in name or "\r" in name):
                # A name goes into the To header: a line break there would end the header.
                raise RowError(f"the {label} has a line break in it; put it on one line")
        weak = bool(full and not first and not last)
        if weak and full:
            # "Ann Lee" -> Ann / Lee, so "Hi {{ contact.first_name }}" works; an
            # East Asian name is kept whole (its order and spacing differ).
            east_asian = (locale or "").lower()[:2] in EAST_ASIAN
            first, _, rest = (full, "", "") if east_asian else full.partition(" ")
            last = rest.strip() or None
        kinds = self.kinds
        for name, value in attributes.items():
            kind = _kind(value)
            seen = kinds.get(name)
            if seen is None:
                kinds[name] = {kind} if kind else set()
            elif kind and kind not in seen:
                seen.add(kind)
        return (
            email, first, last,
            locale.replace("_", "-") if locale else None,
            _timezone(values.get("timezone")),
            _birthday(values.get("birthday")),
            _tags(values.get("tags")),
            encode_json(attributes) if attributes else "{}",
            _orders(values.get("orders")),
            _money(values.get("total_spent")),
            _order_date(values.get("last_order_at")),
            self.now, self.now,
            weak,  # names split from a full name: see importer.upsert_sql
        )  # fmt: skip


# -- readers: yield (line, (values, attributes) or RowError, original record) ----------
Parsed = tuple[dict[str, Any], dict[str, Any]]
Row = tuple[int, Parsed | RowError, list[str] | str]


def _checked_lines(path: Path, bad: set[int], encoding: str) -> Iterator[str]:
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if number == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[3:]
            try:
                yield raw.decode(encoding)
            except UnicodeDecodeError:
                bad.add(number)
                yield raw.decode(encoding, "replace")


@contextmanager
def open_lines(path: Path, bad: set[int], decoding: Decoding) -> Iterator[Iterable[str]]:
    """The file's lines as text (BOM dropped). Lines that do not decode go in ``bad``.

    A file known to decode (valid UTF-8, or a byte-order mark) is read by
    Python's C decoder; otherwise it is decoded line by line, to name the
    lines that do not decode. UTF-16 cannot be split into lines as bytes.
    """
    encoding = decoding.encoding
    if (
        decoding.how in ("UTF-8", "byte-order mark")
        or encoding.startswith("utf-16")
        or encoding.startswith("utf-32")
    ):
        with path.open(encoding=encoding, errors="replace", newline="") as handle:
            yield handle
    else:
        yield _checked_lines(path, bad, encoding)


@dataclass(frozen=True)
class CsvLayout:
    """How a CSV file is laid out: its separator and what each column fills."""

    delimiter: str
    columns: list[Column]

    @property
    def decimal_comma(self) -> bool:
        """Cells separated by ; or tabs come from a locale that writes 1260,5."""
        return self.delimiter != ","


def csv_layout(
    first_line: str, where: str, mapping: Mapping[str, str] | None = None
) -> tuple[CsvLayout, list[str]]:
    """The separator (guessed from the header line) and each column's field; and the header."""
    delimiter = sniff_delimiter(first_line)
    header = next(csv.reader([first_line], delimiter=delimiter), [])
    if not header or not any(h.strip() for h in header):
        raise AudienceError("the file is empty", where=where, hint="the first row names columns")
    return CsvLayout(delimiter, plan_columns(header, mapping, where=where)), header


def csv_rows(
    lines: Iterable[str],
    where: str,
    bad: set[int],
    mapping: Mapping[str, str] | None = None,
) -> Iterator[Row]:
    """Rows of a CSV file with a header row; file-level problems raise AudienceError.

    The separator (comma, semicolon, tab, |) is read off the header line, so
    Excel's semicolon CSV and its tab-separated "Unicode text" read as well.
    """
    stream = iter(lines)
    first = next(stream, "")
    if 1 in bad:
        raise AudienceError(
            "the file's first line cannot be read as text in this encoding",
            where=f"{where}:1",
            hint="save it as 'CSV UTF-8' (Excel), or name the encoding: --encoding gb18030",
        )
    layout, header = csv_layout(first, where, mapping)
    reader = csv.reader(itertools.chain([first], stream), delimiter=layout.delimiter)
    next(reader)
    yield from _csv_records(reader, header, layout, bad)


def _csv_records(reader: Any, names: list[str], layout: CsvLayout, bad: set[int]) -> Iterator[Row]:
    fields = [(c.index, c.name) for c in layout.columns if c.kind == "field"]
    attrs = [(c.index, c.name) for c in layout.columns if c.kind == "attr"]
    comma = layout.decimal_comma
    numeric = [(i, n) for i, n in fields if n in ("orders", "total_spent")] if comma else []
    width = len(names)
    last_line = reader.line_num
    for record in reader:
        line, last_line = last_line + 1, reader.line_num
        if not record or record == [""]:
            continue
        if bad and any(n in bad for n in range(line, last_line + 1)):
            yield line, RowError("not valid text in the file's encoding"), record
        elif (too_long := oversized(record, names)) is not None:
            yield line, RowError(too_long), ["(cell too long to copy)"]
        elif last_line > line and _broken_quote(record, width, fields):
            reason = f"a quoted cell runs from line {line} to line {last_line}"
            yield line, RowError(reason + ': is a closing quote (") missing?'), record
        elif len(record) != width:
            yield line, RowError(f"{len(record)} fields where the header has {width}"), record
        else:
            values = {name: record[i] for i, name in fields}
            for i, name in numeric:
                values[name] = decimal_point(record[i])
            attributes = {name: csv_cell(record[i], comma) for i, name in attrs if record[i]}
            yield line, (values, attributes), record


def _broken_quote(record: list[str], width: int, fields: list[tuple[int, str]]) -> bool:
    # A record over several lines is fine when a quoted cell (a note, an
    # address) holds line breaks; an address cell with one, or a wrong number
    # of cells, means a quote was left open and swallowed the lines after it.
    if len(record) != width:
        return True
    return any(name == "email" and "\n" in record[i] for i, name in fields)


def jsonl_rows(
    lines: Iterable[str], where: str, bad: set[int], mapping: Mapping[str, str] | None = None
) -> Iterator[Row]:
    """Rows of a JSON Lines file: one object per line, blank lines skipped.

    A file that is one JSON array (``[{...}, {...}]``) raises AudienceError:
    read line by line, every line of it would be rejected.
    """
    first = True
    kinds: dict[str, tuple[str, str] | AudienceError] = {}  # keys repeat: judge each once
    mapping = {k.strip(): v.strip() or SKIP for k, v in (mapping or {}).items()}
    for line, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        if first and text.lstrip().startswith("["):
            raise AudienceError(
                "the file is a JSON array; contacts are read as JSON Lines",
                where=f"{where}:{line}",
                hint="write one JSON object per line, e.g. jq -c '.[]' in.json > in.jsonl",
            )
        first = False
        record = text.rstrip("\r\n")
        try:
            data = json.loads(text) if line not in bad else None
        except ValueError:
            data = None
        if not isinstance(data, dict):
            reason = "not valid text in the file's encoding" if line in bad else "not a JSON object"
            yield line, RowError(reason), record
            continue
        too_long = oversized({str(k): v for k, v in data.items() if isinstance(v, str)})
        if too_long is not None:
            yield line, RowError(too_long), "(record too long to copy)"
            continue
        try:
            parsed = _json_record(data, kinds, mapping)
        except RowError as exc:
            yield line, exc, record
            continue
        yield line, parsed, record


def _json_record(
    data: dict[str, Any], kinds: dict[str, tuple[str, str] | AudienceError], mapping: dict[str, str]
) -> Parsed:
    """One JSON object's values and attributes; RowError for a key that fills nothing valid."""
    values: dict[str, Any] = {}
    attributes: dict[str, Any] = {}
    sources: dict[tuple[str, str], str] = {}
    for key, value in data.items():
        key = str(key)
        if key not in kinds:
            wanted = mapping.get(key)
            try:
                kinds[key] = ("skip", "") if wanted == SKIP else classify(wanted or key)
            except AudienceError as exc:
                kinds[key] = exc
        kind = kinds[key]
        if isinstance(kind, AudienceError):
            raise RowError(kind.message)
        if kind[0] == "skip":
            continue
        if kind in sources:
            raise RowError(f"keys {sources[kind]!r} and {key!r} both fill the field {kind[1]!r}")
        sources[kind] = key
        (values if kind[0] == "field" else attributes)[kind[1]] = value
    return values, attributes


def is_jsonl(path: Path) -> bool:
    """JSON Lines by extension, or by a first character of '{'."""
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        return True
    with path.open("rb") as handle:
        head = handle.read(64)
    return head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{")
