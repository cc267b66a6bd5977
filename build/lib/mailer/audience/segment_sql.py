"""Translate a parsed segment expression into an exact SQL WHERE clause.

Counting a segment over a million contacts row by row in Python takes tens of
seconds; the same test as a WHERE clause takes well under one. This module
translates the common forms (comparisons, ``and``/``or``/``not``, ``in`` on
tags, lists and strings, RFM scores, derived fields) and raises ``NoSQL`` for
anything else, so the caller falls back to the sandboxed row-by-row evaluator.

Both paths must agree on every contact, so the translation follows Python's
rules, not SQL's: every clause is two-valued (never NULL), a missing value
equals only ``none``, ordering comparisons with a missing value are false, and
a form whose Python meaning depends on value types the database does not pin
down (an attribute holding both text and numbers) is not translated at all.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from jinja2 import nodes

# Field kinds: 'text', 'number' (bools count as numbers: True == 1 in Python
# and json true is 1 in SQLite), 'bool' (a 0/1 clause), 'tags' (JSON array),
# 'null' (always missing), 'any' (mixed or unknown types).
TEXT, NUMBER, BOOL, TAGS, NULL, ANY = "text", "number", "bool", "tags", "null", "any"

# SQL for the built-in fields, over the ``contacts`` table aliased ``c``.
# ``:today``, ``:bd1`` and ``:bd2`` are bound by the caller (see segments.py).
CORE_SQL: dict[str, tuple[str, str]] = {
    # The column is COLLATE NOCASE (one contact per address); Python compares
    # strings exactly, so segments must too.
    "email": ("(c.email COLLATE BINARY)", TEXT),
    "first_name": ("c.first_name", TEXT),
    "last_name": ("c.last_name", TEXT),
    "name": (  # see segments.display_name
        "(CASE WHEN lower(substr(coalesce(c.locale, ''), 1, 2)) IN ('zh', 'ja', 'ko')"
        " THEN CASE WHEN c.first_name <> '' AND c.last_name <> '' THEN c.last_name"
        " || (CASE WHEN (c.first_name || c.last_name) GLOB '*[^ -~]*' THEN '' ELSE ' ' END)"
        " || c.first_name ELSE coalesce(nullif(c.last_name, ''), c.first_name, '') END"
        " ELSE trim(coalesce(c.first_name, '') || ' ' || coalesce(c.last_name, '')) END)",
        TEXT,
    ),
    "locale": ("c.locale", TEXT),
    "timezone": ("c.timezone", TEXT),
    "birthday": ("c.birthday", TEXT),
    "last_order_at": ("c.last_order_at", TEXT),
    "orders": ("c.orders", NUMBER),
    "total_spent": ("c.total_spent", NUMBER),
    "customer": ("(coalesce(c.orders, 0) > 0)", BOOL),
    "last_order_days": (
        "CAST(julianday(:today) - julianday(c.last_order_at) AS INTEGER)",
        NUMBER,
    ),
    "birthday_today": ("(substr(coalesce(c.birthday, ''), -5) IN (:bd1, :bd2))", BOOL),
    "tags": ("c.tags", TAGS),
}
# Columns with a declared type: SQLite converts the other operand to the
# column's affinity before comparing, which Python never does.
_AFFINITY = {"email", "first_name", "last_name", "locale", "timezone", "birthday"} | {
    "last_order_at",
    "orders",
    "total_spent",
}
_ORDERING = {"lt": "<", "lteq": "<=", "gt": ">", "gteq": ">="}


class NoSQL(Exception):
    """This expression (or part of it) has no exact SQL translation."""


@dataclass
class Frag:
    """A piece of SQL, the kind of value it yields, and whether a column's affinity applies."""

    sql: str
    kind: str
    affinity: bool = False


@dataclass
class SqlCompiler:
    """Compile one expression.

    ``attribute_kinds`` maps attribute names to the kinds their values had;
    ``rfm_sql`` gives the SQL of each RFM score (see ``segments.RfmCuts``).
    """

    attribute_kinds: dict[str, set[str]]
    rfm_sql: dict[str, str]
    params: dict[str, Any] = field(default_factory=dict)
    # The spellings that differ between engines (segment_pg overrides them).
    core_sql: dict[str, tuple[str, str]] = field(default_factory=lambda: CORE_SQL)
    false: str = "0"

    def where(self, node: nodes.Expr) -> str:
        """Return a two-valued SQL condition equivalent to the expression's truth."""
        return self.truth_of(node)

    # -- values -------------------------------------------------------------
    def _bind(self, value: Any) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return f":{name}"

    def _value(self, node: nodes.Expr) -> Frag:
        if isinstance(node, nodes.Const):
            return self._const(node.value)
        if isinstance(node, nodes.Neg) and isinstance(node.node, nodes.Const):
            value = node.node.value
            if isinstance(value, int | float) and not isinstance(value, bool):
                return self._const(-value)
        if isinstance(node, nodes.Name):
            return self._name(node.name)
        if (
            isinstance(node, nodes.Getattr)
            and isinstance(node.node, nodes.Name)
            and node.node.name == "rfm"
            and node.attr in self.rfm_sql
        ):
            return Frag(self.rfm_sql[node.attr], NUMBER)
        if isinstance(node, nodes.Compare):
            return Frag(self._compare(node), BOOL)
        if isinstance(node, nodes.And | nodes.Or):
            # Only as a condition: Python's `a or b` returns an operand, not a bool.
            raise NoSQL
        if isinstance(node, nodes.Not):
            return Frag(f"(NOT {self.where(node.node)})", BOOL)
        raise NoSQL

    def _const(self, value: Any) -> Frag:
        if value is None:
            return Frag("NULL", NULL)
        if isinstance(value, bool):
            return Frag("1" if value else "0", NUMBER)
        if isinstance(value, int | float):
            return Frag(self._bind(value), NUMBER)
        if isinstance(value, str):
            return Frag(self._bind(value), TEXT)
        raise NoSQL

    def _name(self, name: str) -> Frag:
        if name in self.core_sql:
            sql, kind = self.core_sql[name]
            return Frag(sql, kind, affinity=name in _AFFINITY)
        kinds = self.attribute_kinds.get(name)
        if kinds is None:
            raise NoSQL
        return self._attribute(name, kinds)

    def _attribute(self, name: str, kinds: set[str]) -> Frag:
        path = self._bind(f'$."{name}"')
        sql = f"json_extract(c.attributes, {path})"
        if not kinds:
            return Frag(sql, NULL)
        if kinds <= {TEXT}:
            return Frag(sql, TEXT)
        if kinds <= {NUMBER}:
            return Frag(sql, NUMBER)
        if kinds <= {TEXT, NUMBER}:
            return Frag(sql, ANY)
        raise NoSQL  # JSON objects/arrays: Python compares structures, SQL text

    # -- spellings an engine may change (segment_pg) ---------------------------
    def _ordered_text(self, sql: str) -> str:
        """Text as Python orders it (by code point): SQLite's BINARY collation already does."""
        return sql

    def _has_tag(self, tags: str, needle: str, quoted: str) -> str:
        """The JSON array ``tags`` holds the string bound as ``needle`` (``quoted``: as JSON)."""
        # instr() is a cheap pre-filter; json_each makes the match exact.
        return (
            f"(instr({tags}, {quoted}) > 0 AND EXISTS "
            f"(SELECT 1 FROM json_each({tags}) WHERE value = {needle}))"
        )

    # -- conditions ---------------------------------------------------------
    def _truth(self, frag: Frag) -> str:
        if frag.kind == BOOL:
            return frag.sql
        if frag.kind == TEXT:
            return f"coalesce({frag.sql} <> '', {self.false})"
        if frag.kind == NUMBER:
            return f"coalesce({frag.sql} <> 0, {self.false})"
        if frag.kind == TAGS:
            return f"({frag.sql} <> '[]')"
        if frag.kind == NULL:
            return self.false
        raise NoSQL

    def truth_of(self, node: nodes.Expr) -> str:
        """Condition for a node in boolean position (and/or/not operands)."""
        if isinstance(node, nodes.And):
            return f"({self.truth_of(node.left)} AND {self.truth_of(node.right)})"
        if isinstance(node, nodes.Or):
            return f"({self.truth_of(node.left)} OR {self.truth_of(node.right)})"
        if isinstance(node, nodes.Not):
            return f"(NOT {self.truth_of(node.node)})"
        return self._truth(self._value(node))

    def _compare(self, node: nodes.Compare) -> str:
        # `a < b < c` means `a < b and b < c` in Python, as in Jinja.
        parts = []
        left = node.expr
        for operand in node.ops:
            parts.append(self._compare_pair(left, operand.op, operand.expr))
            left = operand.expr
        return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"

    def _compare_pair(self, left: nodes.Expr, op: str, right: nodes.Expr) -> str:
        if op in ("in", "notin"):
            clause = self._contains(left, right)
            return clause if op == "in" else f"(NOT {clause})"
        a, b = self._value(left), self._value(right)
        if op in ("eq", "ne"):
            return self._equality(a, b, negate=op == "ne")
        if op in _ORDERING:
            if a.kind != b.kind or a.kind not in (TEXT, NUMBER):
                raise NoSQL  # Python raises TypeError or compares structures
            left_sql = self._ordered_text(a.sql) if a.kind == TEXT else a.sql
            return f"coalesce({left_sql} {_ORDERING[op]} {b.sql}, {self.false})"
        raise NoSQL

    def _equality(self, a: Frag, b: Frag, *, negate: bool) -> str:
        kinds = {a.kind, b.kind}
        if TAGS in kinds:
            raise NoSQL
        concrete = {k if k != BOOL else NUMBER for k in kinds}
        if concrete == {TEXT, NUMBER}:
            # Python: 'a' == 1 is simply False, but two missing values are equal.
            both_missing = f"({a.sql} IS NULL AND {b.sql} IS NULL)"
            return f"(NOT {both_missing})" if negate else both_missing
        if ANY in kinds and (a.affinity or b.affinity):
            raise NoSQL  # the column's affinity would convert the other side
        return f"({a.sql} IS {'NOT ' if negate else ''}{b.sql})"

    def _contains(self, left: nodes.Expr, right: nodes.Expr) -> str:
        if isinstance(right, nodes.List | nodes.Tuple):
            item = self._value(left)
            if not right.items:
                return self.false
            options = [self._equality(item, self._value(x), negate=False) for x in right.items]
            return "(" + " OR ".join(options) + ")"
        container = self._value(right)
        if container.kind == TAGS and isinstance(left, nodes.Const):
            if not isinstance(left.value, str):
                return self.false  # tags are strings; 3 in tags is False
            needle = self._bind(left.value)
            quoted = self._bind(json.dumps(left.value, ensure_ascii=False))
            return self._has_tag(container.sql, needle, quoted)
        if container.kind == TEXT and isinstance(left, nodes.Const):
            if not isinstance(left.value, str):
                raise NoSQL  # Python raises TypeError
            found = f"instr({container.sql}, {self._bind(left.value)}) > 0"
            return f"coalesce({found}, {self.false})"
        raise NoSQL
