"""A campaign audience read straight from a CSV file (no database needed).

The file needs an ``email`` column; every other column becomes a ``contact.*``
field for templates. Bad addresses are all reported at once with their line
numbers, before anything is rendered or sent.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

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


def read_csv_recipients(path: Path) -> list[Recipient]:
    """Read and validate every row; raise ``AudienceError`` listing all bad rows."""
    from mailer.core.addresses import InvalidAddress, normalize_address

    recipients: list[Recipient] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    for line, row in _rows(path):
        raw = (row.get("email") or "").strip()
        try:
            email = normalize_address(_bare(raw))
        except InvalidAddress as exc:
            problems.append(f"line {line}: {raw!r} is not a valid address ({exc})")
            continue
        if email.lower() in seen:
            problems.append(f"line {line}: {email} already appears on line {seen[email.lower()]}")
            continue
        seen[email.lower()] = line
        fields: dict[str, object] = {k: v for k, v in row.items() if k}
        fields["email"] = email
        name = display_name(row)
        fields["name"] = name
        recipients.append(Recipient(email, name, fields, f"{path.name} line {line}"))
    if problems:
        raise AudienceError(
            f"{len(problems)} bad row(s) in the audience file:\n  " + "\n  ".join(problems),
            where=str(path),
            hint="fix or remove these rows; nothing was sent",
        )
    return recipients


def _bare(raw: str) -> str:
    """The address part of ``Name <addr>``."""
    from email.utils import parseaddr

    return parseaddr(raw)[1] or raw if "<" in raw else raw


def _rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise AudienceError(
            f"cannot read the audience file: {exc.strerror}", where=str(path)
        ) from None
    with handle:
        reader = csv.DictReader(handle)
        headers = [h.strip().lower() for h in reader.fieldnames or []]
        if "email" not in headers:
            raise AudienceError(
                "the audience file has no 'email' column",
                where=f"{path}:1",
                hint="the first row must name the columns, one of them 'email'",
            )
        reader.fieldnames = headers
        try:
            # A quoted field may span lines: a record starts on the line after the last one ended.
            last_end = 1
            for row in reader:
                yield last_end + 1, {k: (v or "").strip() for k, v in row.items() if k}
                last_end = reader.line_num
        except (csv.Error, UnicodeDecodeError) as exc:
            raise AudienceError(
                f"cannot parse the audience file: {exc}", where=f"{path}:{reader.line_num}"
            ) from None
