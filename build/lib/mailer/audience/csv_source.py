"""A campaign audience read straight from a CSV file (no database needed).

The file needs an email column (``email``, ``E-Mail``, ``邮箱`` ... see
``columns.FIELD_NAMES``); every other column becomes a ``contact.*`` field for
templates. The separator (, ; tab |) is read off the header line. Bad
addresses are all reported at once with their line numbers, before anything
is rendered or sent.
"""

from __future__ import annotations

import csv
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mailer.audience.columns import plan_columns
from mailer.audience.selection import DateFilter
from mailer.audience.textfile import Decoding, detect_encoding, oversized, sniff_delimiter
from mailer.core.addresses import InvalidAddress, normalize_address
from mailer.core.errors import AudienceError
from mailer.core.recipient import Recipient


def display_name(fields: dict[str, str]) -> str:
    """The name to show in the To header: ``name``, else first + last name.

    Chinese, Japanese and Korean names are written family name first with no
    space (林晓梅, not "晓梅 林").
    """
    if fields.get("name"):
        return fields["name"].strip()
    first, last = (fields.get("first_name") or "").strip(), (fields.get("last_name") or "").strip()
    if first and last and _is_cjk(first + last):
        return last + first
    return " ".join(p for p in (first, last) if p)


def _is_cjk(text: str) -> bool:
    return all("\u2e80" <= ch <= "\u9fff" or "\uac00" <= ch <= "\ud7af" for ch in text)


@dataclass(frozen=True)
class CsvAudience:
    """A validated CSV audience, read again from the file each time it is iterated.

    Nothing per recipient is kept in memory, so a million-row file costs no
    more than a ten-row one. Iterating checks the file has not changed since
    it was validated (size and modification time), so the rows sent are the
    rows that were checked.
    """

    path: Path
    count: int  # recipients in the file
    signature: tuple[int, int]
    decoding: Decoding

    def __iter__(self) -> Iterator[Recipient]:
        return self.matching(None)

    def matching(self, only: DateFilter | None) -> Iterator[Recipient]:
        """The recipients, or only those whose date field ``only`` accepts."""
        if _signature(self.path) != self.signature:
            raise AudienceError(
                "the audience file changed after it was checked",
                where=str(self.path),
                hint="run the command again: the file is checked afresh",
            )
        for line, row in _rows(self.path, self.decoding):
            if only is not None and not only.matches(row.get(only.column)):
                continue  # decided on the raw cell: no address check, no Recipient
            yield _recipient(self.path, line, row, normalize_address(_bare(row["email"])))

    def unchanged(self) -> bool:
        """True while the file is the one that was validated."""
        return _signature(self.path) == self.signature


def open_csv_audience(path: Path, encoding: str | None = None) -> CsvAudience:
    """Validate every row (one streaming pass); raise ``AudienceError`` listing all bad rows.

    Duplicates are found from a packed array of address hashes (8 bytes a row,
    sorted with numpy and freed before this returns: a Python set would cost
    about 50 bytes a row); only a hash seen twice sends us back to the file, for
    the lines and addresses behind it.
    """
    signature = _signature(path)
    decoding = detect_encoding(path, encoding)
    problems: list[tuple[int, str]] = []
    hashes = array("q")
    for line, row in _rows(path, decoding):
        too_long = oversized(row)
        if too_long is not None:
            problems.append((line, too_long))
            continue
        raw = row["email"]
        try:
            email = normalize_address(_bare(raw))
        except InvalidAddress as exc:
            problems.append((line, f"{raw!r} is not a valid address ({exc})"))
            continue
        hashes.append(hash(email.lower()))
    count = len(hashes)
    repeated = _repeated(hashes)
    del hashes
    if repeated:
        count -= _add_duplicates(path, decoding, repeated, problems)
    if problems:
        problems.sort()
        raise AudienceError(
            f"{len(problems)} bad row(s) in the audience file:\n  "
            + "\n  ".join(f"line {line}: {text}" for line, text in problems),
            where=str(path),
            hint="fix or remove these rows; nothing was sent",
        )
    return CsvAudience(path, count, signature, decoding)


def read_csv_recipients(path: Path) -> list[Recipient]:
    """Every recipient of a CSV audience, validated, as a list (small files: tests, tools)."""
    return list(open_csv_audience(path))


def _repeated(hashes: array[int]) -> set[int]:
    """The hash values that occur more than once (usually none). Sorts ``hashes``."""
    import numpy

    ordered = numpy.frombuffer(hashes, dtype=numpy.int64)
    ordered.sort()  # in place, in the array's own memory: no copy
    return set(ordered[1:][ordered[1:] == ordered[:-1]].tolist())


def _add_duplicates(
    path: Path,
    decoding: Decoding,
    repeated: set[int],
    problems: list[tuple[int, str]],
) -> int:
    """Report each address that appears again, with the line it first appeared on;
    return how many rows were such repeats (rows sharing only a hash are not)."""
    first: dict[str, int] = {}
    duplicates = 0
    for line, row in _rows(path, decoding):
        try:
            email = normalize_address(_bare(row["email"]))
        except InvalidAddress:
            continue
        key = email.lower()
        if hash(key) not in repeated:
            continue
        if key in first:
            problems.append((line, f"{email} already appears on line {first[key]}"))
            duplicates += 1
        else:
            first[key] = line
    return duplicates


def _recipient(path: Path, line: int, row: dict[str, str], email: str) -> Recipient:
    fields: dict[str, object] = dict(row)
    fields["email"] = email
    name = display_name(row)
    fields["name"] = name
    return Recipient(email, name, fields, f"{path.name} line {line}")


def _signature(path: Path) -> tuple[int, int]:
    try:
        info = path.stat()
    except OSError as exc:
        raise AudienceError(
            f"cannot read the audience file: {exc.strerror}", where=str(path)
        ) from None
    return info.st_size, info.st_mtime_ns


def _bare(raw: str) -> str:
    """The address part of ``Name <addr>``."""
    from email.utils import parseaddr

    return parseaddr(raw)[1] or raw if "<" in raw else raw


def _field_names(header: list[str], where: str) -> list[tuple[str, int]]:
    """(name, column) pairs a row's cells go under: recognised columns by their field
    name (邮箱 -> email), and also by their own name when that is another one; other
    columns by their name, lower-cased. Two columns for one field are refused."""
    columns = plan_columns(header, None, where=where, strict=False, mappable=False)
    names = [(c.name, c.index) for c in columns if c.kind != "skip"]
    taken = {name for name, _ in names}
    for column in columns:
        own = column.header.strip().lower()
        if column.how == "recognised" and own and own not in taken:
            names.append((own, column.index))
            taken.add(own)
    return names


def _rows(path: Path, decoding: Decoding) -> Iterator[tuple[int, dict[str, str]]]:
    encoding = "utf-8-sig" if decoding.encoding == "utf-8" else decoding.encoding
    try:
        handle = path.open(encoding=encoding, newline="")
    except OSError as exc:
        raise AudienceError(
            f"cannot read the audience file: {exc.strerror}", where=str(path)
        ) from None
    with handle:
        try:
            first = handle.readline()
        except UnicodeDecodeError:
            raise AudienceError(
                f"the audience file is not {decoding.describe()} text",
                where=f"{path}:1",
                hint='name its encoding under [audience]: encoding = "gb18030" (or utf-16, ...)',
            ) from None
        delimiter = sniff_delimiter(first)
        header = next(csv.reader([first], delimiter=delimiter), [])
        names = _field_names(header, str(path))
        reader = csv.reader(handle, delimiter=delimiter)
        try:
            # A quoted field may span lines: a record starts on the line after the last one ended.
            last_end = 1
            for record in reader:
                if not record:  # a blank line, as DictReader skipped it
                    last_end = reader.line_num + 1
                    continue
                width = len(record)  # a short row's missing cells are empty, as before
                cells = {name: record[i].strip() if i < width else "" for name, i in names}
                yield last_end + 1, cells
                last_end = reader.line_num + 1
        except csv.Error as exc:
            raise AudienceError(
                f"cannot parse the audience file: {exc}", where=f"{path}:{reader.line_num}"
            ) from None
        except UnicodeDecodeError:
            raise AudienceError(
                f"the audience file is not {decoding.describe()} text",
                where=f"{path}:{reader.line_num + 1}",
                hint='name its encoding under [audience]: encoding = "gb18030" (or utf-16, ...)',
            ) from None
