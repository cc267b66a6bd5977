"""Which field each column of a contact file fills: names in English and Chinese, and a mapping.

Shops export contacts from many tools, in many languages: ``E-Mail``, ``邮箱``,
``电子邮件`` and ``Email Address`` all hold the address; ``姓名`` is the name,
``订单数`` the number of orders. ``plan_columns`` reads a header row once and
says, per column, which built-in field it fills (recognised by name, or mapped
by the user), or which extra field (attribute) it becomes. Two columns for one
field are refused: a silent choice between them would lose one column's data
(or mail the wrong address). Imports and a campaign's CSV audience share
these rules.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from mailer.audience.rfm import RFM_KEYS
from mailer.audience.segments import CORE_FIELDS
from mailer.core.errors import AudienceError

# Built-in fields and the column names (after ``normalize_key``) that fill them.
FIELD_NAMES: dict[str, tuple[str, ...]] = {
    "email": (
        "email", "e_mail", "email_address", "e_mail_address", "mail", "mail_address",
        "邮箱", "电子邮件", "邮件地址", "电子邮箱", "邮箱地址", "电子邮件地址", "电邮",
        "郵箱", "電子郵件", "電子郵箱", "電郵",
    ),
    "first_name": ("first_name", "firstname", "given_name", "first", "fname", "名"),
    "last_name": ("last_name", "lastname", "surname", "family_name", "last", "lname", "姓", "姓氏"),
    "name": ("name", "full_name", "display_name", "姓名", "名字", "全名", "客户姓名", "客戶姓名"),
    "locale": ("locale", "language", "lang", "语言", "語言"),
    "timezone": ("timezone", "time_zone", "tz", "时区", "時區"),
    "birthday": ("birthday", "birth_date", "birthdate", "date_of_birth", "dob", "生日", "出生日期"),
    "tags": ("tags", "tag", "标签", "標籤"),
    "orders": ("orders", "order_count", "订单数", "订单数量", "购买次数", "訂單數", "購買次數"),
    "total_spent": (
        "total_spent", "spent", "消费金额", "消费总额", "累计消费", "总消费", "消費金額",
    ),
    "last_order_at": (
        "last_order_at", "last_order", "last_order_date", "last_purchase",
        "最近购买", "最近购买日期", "最近下单", "最后购买", "最近購買",
    ),
}  # fmt: skip
# Extra fields that go by many names: one name for templates and segments (contact.phone).
EXTRA_NAMES: dict[str, tuple[str, ...]] = {
    "phone": (
        "phone", "mobile", "tel", "telephone", "phone_number", "mobile_phone", "cell",
        "手机", "手机号", "手机号码", "电话", "电话号码", "联系电话", "手機", "電話",
    ),
    "city": ("city", "town", "城市", "所在城市"),
}  # fmt: skip
# A column called "address" holds the email only when no other column does (it may be postal).
AMBIGUOUS = {"address": "email", "地址": "email"}

_FIELD_OF = {alias: name for name, aliases in FIELD_NAMES.items() for alias in aliases}
_EXTRA_OF = {alias: name for name, aliases in EXTRA_NAMES.items() for alias in aliases}
# Computed by mailer; importing them would shadow the computed value.
RESERVED = (set(CORE_FIELDS) - set(FIELD_NAMES)) | {f"rfm_{k}" for k in RFM_KEYS} | {"id"}
SKIP = "-"  # map a column to this to leave it out


def normalize_key(key: str) -> str:
    """Column name as a field name: ``"Postal Code"`` -> ``postal_code``; ``城市`` stays.

    Jinja names may be any Unicode identifier, so Chinese headers need no renaming.
    """
    return re.sub(r"\W+", "_", key.strip().lower()).strip("_")


@dataclass(frozen=True)
class Column:
    """What one column of the file fills."""

    index: int
    header: str  # as written in the file
    kind: str  # "field" (built-in), "attr" (extra field) or "skip"
    name: str  # the field's or extra field's name ("" when skipped)
    how: str  # "recognised", "mapped" or "extra"


def field_for(key: str) -> tuple[str, str] | None:
    """``("field", "email")`` or ``("attr", "phone")`` for a known column name, else None."""
    norm = normalize_key(key)
    if norm in _FIELD_OF:
        return "field", _FIELD_OF[norm]
    if norm in _EXTRA_OF:
        return "attr", _EXTRA_OF[norm]
    return None


def classify(key: str, *, strict: bool = True) -> tuple[str, str]:
    """('field', name) or ('attr', name) for a column name.

    ``strict`` (imports into the database) refuses names that cannot be a
    field (``AudienceError``); otherwise an unknown column keeps its name,
    lower-cased, as a campaign CSV audience always has.
    """
    known = field_for(key)
    if known is not None:
        return known
    norm = normalize_key(key)
    if not strict:
        return "attr", key.strip().lower()
    if norm in RESERVED:
        raise AudienceError(f"column {key!r} is computed by mailer and cannot be imported")
    if not (norm[:1].isalpha() and norm.isidentifier()):
        raise AudienceError(f"column {key!r} cannot be a field name (start it with a letter)")
    return "attr", norm


def plan_columns(
    header: list[str],
    mapping: Mapping[str, str] | None = None,
    *,
    where: str,
    strict: bool = True,
    mappable: bool = True,
) -> list[Column]:
    """Each column's field, by ``mapping`` (column -> field, ``-`` to skip) or by name.

    Raises ``AudienceError`` (with ``where`` and line 1) for a mapping naming
    no column, a column that cannot be a field, two columns for one field, or
    no email column at all. ``mappable``: the caller can map columns (an
    import can; a campaign's CSV audience cannot), so the hint may say so.
    """
    advice = "column-map" if mappable else None
    mapping = _checked_mapping(header, mapping or {}, where)
    columns: list[Column] = []
    try:
        for index, title in enumerate(header):
            wanted = mapping.get(title.strip()) or mapping.get(normalize_key(title))
            if wanted == SKIP:
                columns.append(Column(index, title, "skip", "", "mapped"))
            elif wanted is not None:
                kind, name = classify(wanted, strict=strict)
                columns.append(Column(index, title, kind, name, "mapped"))
            else:
                kind, name = classify(title, strict=strict)
                how = "recognised" if field_for(title) else "extra"
                columns.append(Column(index, title, kind, name, how))
    except AudienceError as exc:
        raise AudienceError(
            exc.message, where=f"{where}:1", hint="rename the column", advice=advice
        ) from None
    columns = _resolve_ambiguous(columns)
    _refuse_duplicates(columns, where, advice)
    if not any(c.kind == "field" and c.name == "email" for c in columns):
        raise AudienceError(
            f"no email column (columns: {', '.join(header)})",
            where=f"{where}:1",
            hint="name the address column 'email' (or 邮箱, E-Mail, ...)",
            advice=advice,
        )
    return columns


def _checked_mapping(header: list[str], mapping: Mapping[str, str], where: str) -> dict[str, str]:
    titles = {h.strip() for h in header} | {normalize_key(h) for h in header}
    unknown = [column for column in mapping if column.strip() not in titles]
    if unknown:
        raise AudienceError(
            f"no column {unknown[0]!r} to map (columns: {', '.join(header)})",
            where=f"{where}:1",
            hint="write the column's name as the file's first row has it",
        )
    return {k.strip(): (v.strip() or SKIP) for k, v in mapping.items()}


def _resolve_ambiguous(columns: list[Column]) -> list[Column]:
    """ "address" is the email only when nothing else is; otherwise an extra field."""
    has_email = any(c.kind == "field" and c.name == "email" for c in columns)
    resolved = []
    for column in columns:
        target = AMBIGUOUS.get(normalize_key(column.header))
        if column.how == "extra" and target and not has_email:
            column = Column(column.index, column.header, "field", target, "recognised")
            has_email = True
        resolved.append(column)
    return resolved


def _refuse_duplicates(columns: list[Column], where: str, advice: str | None) -> None:
    first: dict[tuple[str, str], str] = {}
    for column in columns:
        if column.kind == "skip":
            continue
        key = (column.kind, column.name)
        if key in first:
            what = "field" if column.kind == "field" else "extra field"
            raise AudienceError(
                f"columns {first[key]!r} and {column.header!r} both fill the {what} "
                f"{column.name!r}",
                where=f"{where}:1",
                hint="rename or remove one of them"
                + (", or map one to another field" if advice else ""),
                advice=advice,
            )
        first[key] = column.header


def recognised_names() -> dict[str, tuple[str, ...]]:
    """Each field's recognised column names (English and Chinese), as help lists them."""
    return {**FIELD_NAMES, **EXTRA_NAMES}
