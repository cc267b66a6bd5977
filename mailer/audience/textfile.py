"""Reading contact files as text: which encoding, said out loud, and cells of sane size.

Spreadsheets in China save CSV as GBK unless told otherwise; Excel's "Unicode
text" is UTF-16. ``detect_encoding`` takes, in order: the encoding the user
gave (``--encoding``, ``[audience] encoding``), a byte-order mark, UTF-8 when
every byte of the file is valid UTF-8, and otherwise the best guess of
``charset-normalizer`` (GBK/GB2312 read as GB18030, their superset; when
several encodings read the file equally well, GB18030 and Big5 come first). The
result says whether it was given, certain or guessed, so commands can say
which encoding they used and how to override it.
"""

from __future__ import annotations

import codecs
import csv
import sys
from dataclasses import dataclass
from pathlib import Path

from mailer.core.errors import AudienceError

# A cell longer than this is refused (with its row); the rest of the file is read.
# Far above any real name, note or address, far below what would exhaust memory.
MAX_CELL = 65_536

# Python's csv module refuses cells over 131,072 characters with an exception that
# ends the whole read; lift that limit and judge each row by MAX_CELL instead.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))

_SUPERSETS = {"gbk": "gb18030", "gb2312": "gb18030", "ascii": "utf-8"}
_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


@dataclass(frozen=True)
class Decoding:
    """How a file's bytes become text."""

    encoding: str  # a Python codec name
    how: str  # "given", "UTF-8", "byte-order mark" or "guessed"

    @property
    def guessed(self) -> bool:
        """True when the encoding is charset-normalizer's best guess."""
        return self.how == "guessed"

    def describe(self) -> str:
        """``GB18030 (guessed; give --encoding if that is wrong)`` and the like."""
        name = self.encoding.replace("_", "-").upper().removesuffix("-SIG")
        if self.guessed:
            return f"{name} (guessed: the file is not UTF-8)"
        return name if self.how in ("UTF-8", "byte-order mark") else f"{name} (given)"


def detect_encoding(path: Path, given: str | None = None) -> Decoding:
    """The encoding to read ``path`` with (see the module docstring)."""
    if given:
        try:
            name = codecs.lookup(given).name
        except LookupError:
            raise AudienceError(
                f"unknown encoding {given!r}",
                where=str(path),
                hint="for example utf-8, gb18030 (GBK), big5, utf-16, latin-1",
            ) from None
        return Decoding(_SUPERSETS.get(name, name), "given")
    try:
        with path.open("rb") as handle:
            head = handle.read(4)
    except OSError as exc:
        raise AudienceError(f"cannot read the file: {exc.strerror}", where=str(path)) from None
    for bom, name in _BOMS:
        if head.startswith(bom):
            return Decoding(name, "byte-order mark")
    if is_valid_utf8(path):
        return Decoding("utf-8", "UTF-8")
    best = _best_guess(path)
    if best is None:
        raise AudienceError(
            "the file is not UTF-8 text, and its encoding cannot be told",
            where=str(path),
            hint="save it as 'CSV UTF-8' (Excel), or name the encoding "
            '(--encoding gb18030, or encoding = "gb18030" under [audience])',
        )
    name = codecs.lookup(best).name
    return Decoding(_SUPERSETS.get(name, name), "guessed")


# When several encodings read a file equally cleanly (a few short Chinese names read as
# well in GB18030 as in Korean CP949), the one most likely for a Chinese shop's contacts wins.
_PREFERRED = ("gb18030", "big5", "utf_16", "shift_jis", "cp949", "euc_kr", "cp1252")


def _best_guess(path: Path) -> str | None:
    """charset-normalizer's guess, ties broken by ``_PREFERRED``."""
    from charset_normalizer import from_path

    matches = list(from_path(path))
    if not matches:
        return None
    cleanest = min(m.chaos for m in matches)
    tied = {m.encoding for m in matches if m.chaos <= cleanest + 0.01}
    for name in _PREFERRED:
        if name in tied:
            return name
    best = from_path(path).best()
    return best.encoding if best is not None else None


def is_valid_utf8(path: Path) -> bool:
    """True when every byte of the file is valid UTF-8 (read in 1 MiB chunks)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    with path.open("rb") as handle:
        try:
            while chunk := handle.read(1 << 20):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return False
    return True


def oversized(cells: list[str] | dict[str, str], names: list[str] | None = None) -> str | None:
    """Why a row is refused for a cell longer than ``MAX_CELL``, or None."""
    items = cells.items() if isinstance(cells, dict) else zip(names or [], cells, strict=False)
    for name, value in items:
        if value is not None and len(value) > MAX_CELL:
            return (
                f"the {name!r} cell is {len(value):,} characters long (the limit is {MAX_CELL:,})"
            )
    return None


DELIMITERS = (",", ";", "\t", "|")


def sniff_delimiter(header_line: str) -> str:
    """The cell separator of a CSV file, read off its header line.

    Excel writes ``;`` where the decimal mark is a comma (most of Europe) and
    tabs in "Unicode text"; column names seldom hold a separator, so the one
    that splits the header into the most columns wins (a comma on a tie).
    """
    best, most = ",", 1
    for delimiter in DELIMITERS:
        cells = next(csv.reader([header_line], delimiter=delimiter), [])
        if len(cells) > most:
            best, most = delimiter, len(cells)
    return best
