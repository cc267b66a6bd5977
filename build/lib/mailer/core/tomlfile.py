"""Reading TOML files with errors that name the file and line.

``tomllib`` reports syntax errors with a line but forgets positions once
parsing succeeds. Validation errors (unknown key, bad value) still deserve a
line number, so ``locate`` finds a key's line by scanning the source: table
headers set the current table, ``key =`` lines name keys in it.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mailer.core.errors import MailerError

_TABLE = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"""^\s*("[^"]*"|'[^']*'|[A-Za-z0-9_.-]+)\s*=""")


@dataclass(frozen=True)
class TomlFile:
    """A parsed TOML document that remembers its path and source text."""

    path: Path
    text: str
    data: dict[str, Any]

    def where(self, *keys: str) -> str:
        """``path:line`` of the dotted key (table path + key), or just ``path``."""
        line = locate(self.text, keys)
        return f"{self.path}:{line}" if line else str(self.path)


def read_toml(path: Path, error: type[MailerError]) -> TomlFile:
    """Parse a TOML file, raising ``error`` with file:line on a syntax error."""
    try:
        # utf-8-sig: Windows Notepad and some editors start the file with a byte-order
        # mark, which TOML itself does not allow ("Invalid statement" on line 1).
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise error(f"file not found: {path}", hint="check the path") from None
    except IsADirectoryError:
        raise error("this is a folder, not a TOML file", where=str(path)) from None
    except OSError as exc:
        raise error(f"cannot read the file: {exc.strerror}", where=str(path)) from None
    except UnicodeDecodeError as exc:
        raise error("the file is not UTF-8 text", where=str(path)) from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", None) or _line_from_message(str(exc))
        where = f"{path}:{line}" if line else str(path)
        message = str(exc).split(" (at line")[0]
        raise error(f"TOML syntax error: {message}", where=where) from None
    return TomlFile(path, text, data)


def _line_from_message(message: str) -> int | None:
    match = re.search(r"at line (\d+)", message)
    return int(match.group(1)) if match else None


def locate(text: str, keys: Iterable[str]) -> int | None:
    """1-based line where dotted ``keys`` is defined, or the closest enclosing table's line."""
    wanted = list(keys)
    table: list[str] = []
    best: int | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        header = _TABLE.match(line)
        if header:
            table = [part.strip().strip("\"'") for part in header.group(1).split(".")]
            if table == wanted:
                return number
            if best is None and wanted[: len(table)] == table:
                best = number
            continue
        key = _KEY.match(line)
        if key:
            parts = [part.strip().strip("\"'") for part in key.group(1).split(".")]
            if table + parts == wanted or (table + parts)[: len(wanted)] == wanted:
                return number
    return best


def check_keys(
    table: Mapping[str, Any],
    allowed: Iterable[str],
    doc: TomlFile,
    error: type[MailerError],
    prefix: tuple[str, ...] = (),
) -> None:
    """Raise ``error`` for the first key of ``table`` not in ``allowed``, with a near match."""
    allowed = list(allowed)
    for key in table:
        if key in allowed:
            continue
        dotted = ".".join((*prefix, key))
        close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
        hint = f"did you mean '{close[0]}'?" if close else "allowed: " + ", ".join(sorted(allowed))
        raise error(f"unknown key '{dotted}'", where=doc.where(*prefix, key), hint=hint)
