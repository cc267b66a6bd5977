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
import re
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


# When several encodings read a file equally well (a few short Chinese names read as
# well in GB18030 as in Korean CP949), the one most likely for a Chinese shop's contacts wins.
_PREFERRED = (
    "gb18030", "big5", "utf_16", "cp932", "shift_jis", "euc_jis_2004", "euc_jp",
    "cp949", "euc_kr", "cp1252",
)  # fmt: skip
_FAMILY = {
    "cp932": "ja", "shift_jis": "ja", "shift_jis_2004": "ja", "shift_jisx0213": "ja",
    "euc_jp": "ja", "euc_jis_2004": "ja", "euc_jisx0213": "ja", "iso2022_jp": "ja",
    "cp949": "ko", "euc_kr": "ko", "johab": "ko",
    "gb18030": "zh-hans", "gbk": "zh-hans", "gb2312": "zh-hans", "hz": "zh-hans",
    "big5": "zh-hant", "big5hkscs": "zh-hant", "cp950": "zh-hant",
}  # fmt: skip
# Where the contacts are: an address's domain, or a locale cell, says which language.
_HINTS = (
    (re.compile(r"@[\w.-]+\.jp\b|[,;]ja(?:[-_]JP)?[,;\r\n]", re.I), "ja"),
    (re.compile(
        r"@[\w.-]+\.kr\b|@(?:naver|daum|hanmail|nate|kakao)\.|[,;]ko(?:[-_]KR)?[,;\r\n]", re.I
    ), "ko"),
    (re.compile(
        r"@[\w.-]+\.cn\b|@(?:qq|163|126|sina|sohu|foxmail|yeah)\.|[,;]zh(?:[-_](?:CN|SG|Hans))?"
        r"[,;\r\n]", re.I
    ), "zh-hans"),
    (re.compile(r"@[\w.-]+\.(?:tw|hk|mo)\b|[,;]zh[-_](?:TW|HK|MO|Hant)[,;\r\n]", re.I), "zh-hant"),
)  # fmt: skip
_SAMPLE = 1 << 18  # bytes read to weigh candidate encodings


def _best_guess(path: Path) -> str | None:
    """charset-normalizer's candidates, weighed by how plausible each decoded text is.

    Shift-JIS, EUC-JP, EUC-KR, GBK and Big5 reuse the same byte ranges, so one
    file often decodes "cleanly" in several: 山田 in Shift-JIS reads as 뫞쁚 in
    CP949. Each candidate is scored on its own text (``plausibility``: common
    characters of its language, kana for Japanese) and on hints in the file
    (``.jp``/``.kr`` addresses, ``ja``/``ko`` locales); ties go to ``_PREFERRED``.
    """
    from charset_normalizer import from_path

    matches = list(from_path(path))
    if not matches:
        return None
    cleanest = min(m.chaos for m in matches)
    candidates = [m.encoding for m in matches if m.chaos <= cleanest + 0.1]
    with path.open("rb") as handle:
        sample = handle.read(_SAMPLE)
    # The East Asian encodings share byte ranges: weigh each one that reads the file.
    candidates += [name for name in _EAST_ASIAN if _decodes(sample, name)]
    candidates = list(dict.fromkeys(candidates))
    hints = _hints(sample.decode("ascii", errors="ignore"))
    scored = {
        name: plausibility(sample, name) + hints.get(_FAMILY.get(name, ""), 0.0)
        for name in candidates
    }
    top = max(scored.values())
    tied = [name for name, score in scored.items() if score >= top - 0.05]
    for name in _PREFERRED:
        if name in tied:
            return name
    return tied[0]


_EAST_ASIAN = ("gb18030", "big5", "cp932", "euc_jis_2004", "cp949")


def _decodes(data: bytes, encoding: str) -> bool:
    """``data`` is valid in ``encoding`` (a multi-byte character cut at the end aside)."""
    try:
        codecs.getincrementaldecoder(encoding)().decode(data, final=False)
    except UnicodeDecodeError:
        return False
    return True


def _hints(text: str) -> dict[str, float]:
    """Share of hints per language family found in the file's ASCII text."""
    counts = {family: len(pattern.findall(text)) for pattern, family in _HINTS}
    total = sum(counts.values())
    return {family: count / total for family, count in counts.items()} if total else {}


def plausibility(data: bytes, encoding: str) -> float:
    """How much ``data`` decoded as ``encoding`` reads like real text of its language.

    Per non-ASCII character: kana count double for Japanese; a Hangul syllable counts
    if it is one of the 2,350 in everyday use (KS X 1001, what EUC-KR holds);
    a Han character counts if it is among its encoding's common level (JIS
    level 1, GB2312 level 1, Big5's frequent set). Mis-decoded text lands on
    rare characters.
    """
    family = _FAMILY.get(encoding)
    if family is None:
        return 0.0
    text = data.decode(encoding, errors="ignore")
    total = score = 0.0
    for char in text:
        if char.isascii() or not char.isalpha():
            continue
        total += 1
        score += _char_score(char, family)
    return score / total if total else 0.0


def _char_score(char: str, family: str) -> float:
    code = ord(char)
    if 0x3040 <= code <= 0x30FF:  # hiragana, katakana: only Japanese writes them
        return 2.0 if family == "ja" else -1.0
    if 0xFF61 <= code <= 0xFF9F:  # half-width katakana: mostly mis-decoded bytes
        return -1.0
    if 0xAC00 <= code <= 0xD7A3:  # Hangul syllables
        return (1.0 if _everyday_hangul(char) else -1.0) if family == "ko" else -1.0
    if 0x4E00 <= code <= 0x9FFF:
        return _han_score(char, family)
    return -0.5  # other letters (compatibility forms, extensions): rare in names


def _han_score(char: str, family: str) -> float:
    if family == "ko":
        return -0.5  # Hanja in a Korean contact list: possible, not likely
    codec, low, high = {
        "ja": ("cp932", 0x889F, 0x9872),
        "zh-hans": ("gb2312", 0xB0A1, 0xD7F9),
        "zh-hant": ("big5", 0xA440, 0xC67E),
    }[family]
    try:
        value = int.from_bytes(char.encode(codec), "big")
    except UnicodeEncodeError:
        return -1.0
    return 1.0 if low <= value <= high else 0.0


def _everyday_hangul(char: str) -> bool:
    """One of KS X 1001's 2,350 syllables: two bytes in EUC-KR (Python's codec spells
    the other 8,822 as eight-byte jamo sequences)."""
    try:
        return len(char.encode("euc_kr")) == 2
    except UnicodeEncodeError:
        return False


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
