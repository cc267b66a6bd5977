"""Segment expressions over contact fields, RFM scores and saved segments.

A segment is a Jinja expression (the template language marketers already
write), e.g. ``'vip' in tags and rfm.monetary >= 4``. It is parsed by Jinja's
parser, checked here (unknown fields get a "did you mean", anything reaching
for Python internals is refused) and then either translated to an exact SQL
WHERE clause (``segment_sql``) or, for forms SQL cannot express, evaluated row
by row with Jinja's immutable sandbox. Never with Python ``eval``.

Missing values (a contact without a city) are ``Missing``: falsy, equal only to
``none``/other missing values, and every ordering comparison with them is false,
so ``orders >= 3`` simply does not match a prospect instead of crashing.
"""

from __future__ import annotations

import copy
import difflib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from typing import Any

from jinja2 import StrictUndefined, Undefined, nodes
from jinja2.environment import TemplateExpression
from jinja2.exceptions import TemplateError
from jinja2.parser import Parser

from mailer.audience.database import POSTGRESQL, SQLITE, Connection, Row
from mailer.audience.rfm import RFM_KEYS, RfmCuts
from mailer.audience.segment_pg import PgSqlCompiler
from mailer.audience.segment_sql import NoSQL, SqlCompiler
from mailer.core.errors import AudienceError
from mailer.core.sandbox import LimitedSandbox, limits

# Fields every contact has; free attributes (city, tier...) come on top.
CORE_FIELDS = (
    "email", "first_name", "last_name", "name", "locale", "timezone", "birthday",
    "tags", "orders", "total_spent", "last_order_at", "last_order_days",
    "customer", "birthday_today", "rfm",
)  # fmt: skip
# Names that only serve to climb out of the sandbox. The sandbox blocks them at
# run time too; refusing them up front gives a clear message instead.
UNSAFE_NAMES = frozenset(
    {
        "mro", "globals", "builtins", "subclasses", "format", "format_map",
        "func_globals", "func_code", "gi_frame", "gi_code", "cr_frame", "cr_code",
        "ag_frame", "f_globals", "f_locals", "f_back", "f_builtins", "tb_frame",
        "im_class", "im_func", "attr", "self", "environment", "namespace",
    }
)  # fmt: skip
_EXAMPLE = "a segment compares contact fields, e.g. city == 'Shanghai' and orders >= 3"
_DUNDER = re.compile(r"__\w+__")
_NOT_PLAIN_ASCII = re.compile(r"[^ -~]")  # same class as the SQL GLOB '*[^ -~]*'
SEGMENT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
# How big a segment may be. Long flat chains (`city == 'a' or city == 'b' or ...`)
# are rebalanced into shallow trees, so MAX_TERMS is about work, not recursion;
# MAX_DEPTH bounds real nesting (not, parentheses around and/or, filters in filters).
MAX_TERMS = 2000
MAX_DEPTH = 40
_TOO_BIG_HINT = (
    "for many values of one field use a list: city in ['Hangzhou', 'Shanghai', ...]; "
    "or save parts as named segments"
)


class Missing(Undefined):
    """A field this contact has no value for: falsy, and never 'less' or 'more'."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        return other is None or isinstance(other, Missing)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return 0

    def __lt__(self, other: object) -> bool:  # type: ignore[override]
        return False

    def __le__(self, other: object) -> bool:  # type: ignore[override]
        return False

    def __gt__(self, other: object) -> bool:  # type: ignore[override]
        return False

    def __ge__(self, other: object) -> bool:  # type: ignore[override]
        return False

    def __contains__(self, item: object) -> bool:
        return False


# A contact row from the database (Row) or an equivalent mapping.
ContactRow = Row | Mapping[str, Any]

# How long a segment may take on one contact.
SEGMENT_SECONDS = 1.0

MISSING = Missing(hint="a field used here has no value for this contact")


@cache
def _env() -> LimitedSandbox:
    # Immutable: `tags.append(...)` cannot modify a contact. No globals: a
    # segment sees contact fields and nothing else (no range, cycler...).
    env = LimitedSandbox(undefined=StrictUndefined)
    env.globals.clear()
    return env


def parse_segment(expression: str) -> nodes.Expr:
    """Parse a segment with Jinja's expression parser; syntax errors become AudienceError."""
    if not expression.strip():
        raise AudienceError("the segment expression is empty", where="segment", hint=_EXAMPLE)
    try:
        parser = Parser(_env(), expression, state="variable")
        try:
            node = parser.parse_expression()
        except RecursionError:  # Jinja's parser recurses once per nesting level
            raise _too_deep(expression) from None
        if not parser.stream.eos:
            token = parser.stream.current
            raise AudienceError(
                f"unexpected {token.value!r} in segment {expression!r}",
                where="segment",
                hint="write one expression; combine tests with and / or / not",
            )
    except TemplateError as exc:
        raise AudienceError(
            f"segment {expression!r} is not a valid expression: {exc.message}",
            where="segment",
            hint=_EXAMPLE,
        ) from None
    return rebalance(node, expression)


def _too_deep(expression: str) -> AudienceError:
    shown = expression if len(expression) <= 60 else expression[:57] + "..."
    return AudienceError(
        f"segment {shown!r} is nested more than {MAX_DEPTH} levels deep "
        "(not, parentheses, filters inside each other)",
        where="segment",
        hint="write it flatter: not (a or b) is the same as not a and not b; " + _TOO_BIG_HINT,
    )


def rebalance(node: nodes.Expr, expression: str = "") -> nodes.Expr:
    """The tree with every and/or chain rebuilt balanced, and its size checked.

    Jinja parses ``a or b or c or d`` as ``((a or b) or c) or d``: 1,200 terms
    make a tree 1,200 deep, which overflows Python's recursion (walking it,
    compiling it) and SQLite's parser (its parentheses). ``and`` and ``or``
    are associative, also in what they return, so ``(a or b) or (c or d)`` is
    the same expression, 11 levels deep for 2,000 terms.
    Raises ``AudienceError`` past ``MAX_TERMS`` terms or ``MAX_DEPTH`` levels.
    """
    terms = [0]
    try:
        result = _rebalanced(node, 0, terms)
    except _TooDeep:
        raise _too_deep(expression) from None
    if terms[0] > MAX_TERMS:
        raise AudienceError(
            f"the segment has {terms[0]} and/or terms; at most {MAX_TERMS} are allowed",
            where="segment",
            hint=_TOO_BIG_HINT,
        )
    return result


def _rebalanced(node: nodes.Node, depth: int, terms: list[int]) -> Any:
    if depth > MAX_DEPTH:
        raise _TooDeep
    if isinstance(node, nodes.And | nodes.Or):
        kind = type(node)
        items = [_rebalanced(i, depth + 1, terms) for i in _chain(node, kind)]
        terms[0] += len(items)
        while len(items) > 1:  # pair neighbours: order (and short-circuiting) is kept
            pairs = [
                kind(items[i], items[i + 1], lineno=node.lineno)
                for i in range(0, len(items) - 1, 2)
            ]
            items = pairs + items[len(pairs) * 2 :]
        return items[0]
    for name in node.fields:
        value = getattr(node, name)
        if isinstance(value, nodes.Node):
            setattr(node, name, _rebalanced(value, depth + 1, terms))
        elif isinstance(value, list):
            setattr(
                node,
                name,
                [
                    _rebalanced(v, depth + 1, terms) if isinstance(v, nodes.Node) else v
                    for v in value
                ],
            )
    return node


class _TooDeep(Exception):
    """Raised inside the walk; ``rebalance`` turns it into the user's message."""


def _chain(node: nodes.Node, kind: type[nodes.Node]) -> list[nodes.Node]:
    """The operands of a chain of ``kind`` (and or or), left to right, without recursion."""
    operands: list[nodes.Node] = []
    stack = [node]
    while stack:
        current = stack.pop()
        if type(current) is kind:
            stack += [current.right, current.left]  # type: ignore[attr-defined]
        else:
            operands.append(current)
    return operands


def compile_segment(node: nodes.Expr, *, undefined_to_none: bool = True) -> TemplateExpression:
    """Compile a (rebalanced) segment tree as Jinja's ``compile_expression`` compiles text.

    A copy is compiled: Jinja's optimizer folds constants in place (``['a', 'b']``
    becomes one constant), and the SQL compiler reads the tree as written.
    """
    body = [nodes.Assign(nodes.Name("result", "store"), copy.deepcopy(node), lineno=1)]
    template = _env().from_string(nodes.Template(body, lineno=1))
    return TemplateExpression(template, undefined_to_none)


def _walk(node: nodes.Node, kind: type[nodes.Node] | tuple[type[nodes.Node], ...]) -> list[Any]:
    # find_all() skips the node itself; the root matters (`().__class__`, `citty`).
    found = [node] if isinstance(node, kind) else []
    return found + list(node.find_all(kind))


def _refuse_internals(node: nodes.Expr) -> None:
    names: list[str] = []
    for sub in _walk(node, (nodes.Name, nodes.Getattr, nodes.Getitem, nodes.Filter)):
        if isinstance(sub, nodes.Name | nodes.Filter):
            names.append(sub.name)
        elif isinstance(sub, nodes.Getattr):
            names.append(sub.attr)
        elif isinstance(sub.arg, nodes.Const) and isinstance(sub.arg.value, str):
            names.append(sub.arg.value)
    # Dunder strings anywhere (`tags|map(attribute='__class__')`) have one use,
    # also as one step of a dotted attribute path (`map(attribute='x.__class__')`).
    names += [
        part
        for c in _walk(node, nodes.Const)
        if isinstance(c.value, str)
        for part in c.value.split(".")
        if _DUNDER.match(part)
    ]
    for name in names:
        if name.startswith("_") or name in UNSAFE_NAMES:
            raise AudienceError(
                f"segment expressions cannot reach Python internals ({name!r})",
                where="segment",
                hint=_EXAMPLE,
            )


def known_fields(attributes: Iterable[str] = ()) -> list[str]:
    """Every field name a segment may use, for messages and "did you mean"."""
    core = [f for f in CORE_FIELDS if f != "rfm"] + [f"rfm.{k}" for k in RFM_KEYS]
    return core + sorted(set(attributes) - set(CORE_FIELDS))


def _unknown(name: str, attributes: Iterable[str]) -> AudienceError:
    known = known_fields(attributes)
    match = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if match:
        hint = f"did you mean '{match[0]}'?"
    else:
        shown = ", ".join(known[:30]) + (", ..." if len(known) > 30 else "")
        hint = f"known fields: {shown}"
    return AudienceError(f"unknown field '{name}'", where="segment", hint=hint)


def check_segment(expression: str, attributes: Iterable[str] = ()) -> nodes.Expr:
    """Parse and check a segment; return its syntax tree. See ``validate_segment``."""
    node = parse_segment(expression)
    _refuse_internals(node)
    attributes = set(attributes)
    allowed = set(CORE_FIELDS) | attributes
    for sub in _walk(node, nodes.Name):
        if sub.name not in allowed:
            raise _unknown(sub.name, attributes)
    for sub in _walk(node, nodes.Getattr):
        is_rfm = isinstance(sub.node, nodes.Name) and sub.node.name == "rfm"
        if is_rfm and sub.attr not in RFM_KEYS:
            raise _unknown(f"rfm.{sub.attr}", attributes)
    try:  # unknown filters and tests are reported at compile time
        compile_segment(node)
    except TemplateError as exc:
        raise AudienceError(
            f"segment {expression!r} cannot be compiled: {exc.message}",
            where="segment",
            hint=_EXAMPLE,
        ) from None
    return node


def validate_segment(expression: str, attributes: Iterable[str] = ()) -> None:
    """Raise AudienceError if the segment is malformed, unsafe or names an unknown field.

    ``attributes`` are the free attribute names known in the database
    (the keys of ``attribute_kinds(conn)``); core fields are always known.
    """
    check_segment(expression, attributes)


# -- fields -------------------------------------------------------------------
def attribute_kinds(conn: Connection) -> dict[str, set[str]]:
    """Attribute names seen on import, with the kinds of values they held."""
    rows = conn.execute("SELECT name, kinds FROM attribute_fields ORDER BY name")
    return {name: {k for k in kinds.split(",") if k} for name, kinds in rows}


@cache  # called for every contact read; the answer only changes daily
def birthday_keys(today: date) -> tuple[str, str]:
    """The MM-DD keys that count as 'birthday today' (29 Feb is kept on 28 Feb)."""
    key = today.strftime("%m-%d")
    leap = today.year % 4 == 0 and (today.year % 100 != 0 or today.year % 400 == 0)
    if key == "02-28" and not leap:
        return key, "02-29"
    return key, key


def date_params(today: date) -> dict[str, str]:
    """Named SQL parameters the derived fields need (see ``segment_sql.CORE_SQL``)."""
    bd1, bd2 = birthday_keys(today)
    return {"today": today.isoformat(), "bd1": bd1, "bd2": bd2}


def display_name(first: str | None, last: str | None, locale: str | None) -> str:
    """The name to greet and address someone by: family name first for zh/ja/ko.

    Must stay in step with ``name`` in ``segment_sql.CORE_SQL``.
    """
    if (locale or "").lower()[:2] in ("zh", "ja", "ko"):
        if first and last:  # 王 + 美 -> 王美, but Wang + Mei -> Wang Mei
            return last + ("" if _NOT_PLAIN_ASCII.search(first + last) else " ") + first
        return last or first or ""
    return " ".join(part for part in (first, last) if part)


def contact_fields(
    row: ContactRow,
    today: date,
    attribute_names: Iterable[str] = (),
    cuts: RfmCuts | None = None,
) -> dict[str, Any]:
    """Everything a template sees as ``contact.*`` and a segment sees as fields.

    Every known attribute is present (``None`` when this contact has none), so
    a template's ``{% if contact.city %}`` works under StrictUndefined.
    """
    fields: dict[str, Any] = dict.fromkeys(attribute_names)
    attributes = row["attributes"]
    if attributes != "{}":
        fields.update(json.loads(attributes))
    first, last, orders = row["first_name"], row["last_name"], row["orders"]
    last_order, birthday = row["last_order_at"], row["birthday"]
    fields.update(
        email=row["email"],
        first_name=first,
        last_name=last,
        name=display_name(first, last, row["locale"]),
        locale=row["locale"],
        timezone=row["timezone"],
        birthday=birthday,
        tags=json.loads(row["tags"]) if row["tags"] != "[]" else [],
        orders=orders,
        total_spent=row["total_spent"],
        last_order_at=last_order,
        last_order_days=(today - date.fromisoformat(last_order)).days if last_order else None,
        customer=(orders or 0) > 0,
        birthday_today=bool(birthday) and birthday[-5:] in birthday_keys(today),
        rfm=(cuts or RfmCuts()).scores(orders, last_order, row["total_spent"]),
    )
    return fields


# -- plans --------------------------------------------------------------------
EVERYONE = "1 = 1"  # a condition every engine reads as true (PostgreSQL has no 0/1 truth)


@dataclass
class SegmentPlan:
    """How to select a segment: a SQL condition, plus a row test when SQL cannot say it all.

    ``where`` is always valid SQL over ``contacts c`` with ``params``; when
    ``predicate`` is set, ``where`` is ``EVERYONE`` and each row's fields must pass it.
    """

    expression: str
    where: str
    params: dict[str, Any] = field(default_factory=dict)
    predicate: Callable[[Mapping[str, Any]], bool] | None = None


def plan_segment(
    expression: str | None,
    kinds: dict[str, set[str]],
    today: date,
    cuts: RfmCuts,
    *,
    force_rows: bool = False,
    engine: str = SQLITE,
) -> SegmentPlan:
    """Check a segment and compile it to SQL, or to a sandboxed row test as a fallback.

    ``force_rows`` skips the SQL translation (tests use it to compare the two paths).
    ``engine`` is the database's (``database.dialect``): each has its own generator.
    """
    rfm_sql, rfm_params = cuts.sql()
    params: dict[str, Any] = {**date_params(today), **rfm_params}
    if expression is None:
        return SegmentPlan("", EVERYONE, params)
    node = check_segment(expression, kinds)
    if not force_rows:
        compiler = (PgSqlCompiler if engine == POSTGRESQL else SqlCompiler)(kinds, rfm_sql)
        try:
            where = compiler.where(node)
        except NoSQL:
            pass
        else:
            return SegmentPlan(expression, where, {**params, **compiler.params})
    return SegmentPlan(expression, EVERYONE, params, _row_test(node))


def _row_test(node: nodes.Expr) -> Callable[[Mapping[str, Any]], bool]:
    compiled = compile_segment(node, undefined_to_none=False)

    def test(fields: Mapping[str, Any]) -> bool:
        context = {k: MISSING if v is None else v for k, v in fields.items()}
        with limits(SEGMENT_SECONDS):  # per contact: a segment is a test, not a program
            return bool(compiled(**context))

    return test


# -- saved segments -------------------------------------------------------------
def resolve_segment(conn: Connection, text: str) -> str:
    """Return the expression of a saved segment named ``text``, or ``text`` itself."""
    text = text.strip()
    if SEGMENT_NAME.fullmatch(text):
        row = conn.execute("SELECT expression FROM segments WHERE name = ?", (text,)).fetchone()
        if row:
            return str(row[0])
    return text


def save_segment(conn: Connection, name: str, expression: str, now: str) -> None:
    """Check a segment against the database's fields and save (or replace) it by name."""
    if not SEGMENT_NAME.fullmatch(name):
        raise AudienceError(
            f"{name!r} is not a usable segment name",
            hint="start with a letter; use letters, digits, '-' and '_' (at most 64)",
        )
    kinds = attribute_kinds(conn)
    if name in CORE_FIELDS or name in kinds:
        raise AudienceError(
            f"segment name {name!r} is already a contact field",
            hint="pick another name, e.g. " + f"{name}-segment",
        )
    validate_segment(expression, kinds)
    conn.execute(
        "INSERT INTO segments (name, expression, created_at) VALUES (?, ?, ?) "
        "ON CONFLICT(name) DO UPDATE SET expression = excluded.expression",
        (name, expression, now),
    )


def list_segments(conn: Connection) -> list[tuple[str, str]]:
    """Saved segments as (name, expression), by name."""
    return [(r[0], r[1]) for r in conn.execute("SELECT name, expression FROM segments ORDER BY 1")]
