"""What every pre-send check returns: ``Finding``s, plus the pattern lists they match against.

Kept apart from ``checks.py`` so the rule modules (``subject``, ``content_checks``,
``fold``) can share these without importing the orchestrator that imports them.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Literal

Severity = Literal["error", "warning", "info"]
SEVERITIES: tuple[Severity, ...] = ("error", "warning", "info")


@dataclass(frozen=True, slots=True)
class Finding:
    """One result of a check: how bad, which rule (a stable ``code``), what, and where."""

    severity: Severity
    code: str
    message: str
    where: str = ""

    def to_dict(self) -> dict[str, str]:
        """Plain data for ``--json``."""
        return {
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "where": self.where,
        }


def error(code: str, message: str, where: str = "") -> Finding:
    """Shorthand for an error finding."""
    return Finding("error", code, message, where)


def warning(code: str, message: str, where: str = "") -> Finding:
    """Shorthand for a warning finding."""
    return Finding("warning", code, message, where)


def info(code: str, message: str, where: str = "") -> Finding:
    """Shorthand for an informational finding."""
    return Finding("info", code, message, where)


def display_width(text: str) -> int:
    """Columns ``text`` takes on screen: wide/full-width (CJK) characters count two.

    Combining marks, format characters (zero-width space and joiner, soft
    hyphen), variation selectors and emoji skin-tone modifiers take none, so an
    accented letter or a joined emoji sequence (👩‍💻) is not over-counted. A
    flag (two regional-indicator letters) takes two columns, as one emoji does,
    and so does a narrow symbol in emoji presentation (❤️).
    """
    width = 0
    flag_half = False
    previous_width = 0
    previous = ""
    for char in text:
        code = ord(char)
        joined, previous = previous == "\u200d", char
        if code == 0xFE0F and previous_width == 1:
            width += 1  # ❤ + VS16 is drawn as a wide emoji
            previous_width = 2
            continue
        if (
            joined
            or unicodedata.category(char) in _ZERO_WIDTH
            or 0xFE00 <= code <= 0xFE0F
            or 0x1F3FB <= code <= 0x1F3FF
        ):
            continue
        if 0x1F1E6 <= code <= 0x1F1FF:
            flag_half = not flag_half
            width += 2 if flag_half else 0
            continue
        flag_half = False
        previous_width = 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
        width += previous_width
    return width


_ZERO_WIDTH = frozenset(("Mn", "Me", "Cf"))


# ASCII letters/digits only: CJK text has no spaces between words, so a Chinese
# phrase must match inside a sentence, while "free" must not match "freedom".
_BEFORE = r"(?<![A-Za-z0-9])"
_AFTER = r"(?![A-Za-z0-9])"


@dataclass(frozen=True)
class PatternList:
    """Phrases from a data file, compiled; ``find`` returns the distinct matches in a text."""

    name: str
    patterns: tuple[tuple[str, re.Pattern[str]], ...]

    def find(self, text: str) -> list[str]:
        """The matched snippets (as written in ``text``), first occurrence each, in order."""
        seen: dict[str, None] = {}
        for _label, pattern in self.patterns:
            match = pattern.search(text)
            if match:
                seen.setdefault(match.group(0), None)
        # "100% FREE" also matches "free" and "100%": report the longest phrase only.
        found = list(seen)
        return [m for m in found if not any(m != o and m.lower() in o.lower() for o in found)]


def compile_patterns(name: str, lines: list[str]) -> PatternList:
    """Compile data-file lines: ``#`` comments and blanks skipped, ``re:`` lines are regexes."""
    compiled: list[tuple[str, re.Pattern[str]]] = []
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        source = line[3:] if line.startswith("re:") else _BEFORE + re.escape(line) + _AFTER
        try:
            compiled.append((line, re.compile(source, re.IGNORECASE)))
        except re.error as exc:
            # A typo in a user-edited list must name the line, not crash later.
            from mailer.core.errors import CheckError

            raise CheckError(
                f"bad pattern {line!r}: {exc}",
                where=f"mailer/data/{name}:{number}",
                hint="fix the regular expression or drop the 're:' prefix",
            ) from None
    return PatternList(name, tuple(compiled))


@cache
def patterns(name: str) -> PatternList:
    """The packaged pattern list ``mailer/data/<name>`` (``spam_en.txt``, ``claims.txt`` ...)."""
    text = resources.files("mailer.checks").joinpath("data", name).read_text(encoding="utf-8")
    return compile_patterns(name, text.splitlines())


def spam_patterns(text: str) -> list[str]:
    """Spam-trigger and pressure phrases (English and Chinese lists) found in ``text``."""
    return patterns("spam_en.txt").find(text) + patterns("spam_zh.txt").find(text)


def claim_patterns(text: str) -> list[str]:
    """Absolute or exaggerated claims found in ``text``."""
    return patterns("claims.txt").find(text)
