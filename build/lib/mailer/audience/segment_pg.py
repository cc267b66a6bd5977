"""The segment compiler's PostgreSQL generator (see ``segment_sql`` for the rules).

Same contract as the SQLite one: a two-valued condition that agrees with the
sandboxed Python evaluator on every contact, or ``NoSQL``. What differs is
typing. PostgreSQL has real booleans (a comparison is not a 0/1 number), JSON
values come out of ``jsonb`` as text or ``jsonb`` and must be cast by kind,
``=`` between text and a number is an error rather than false, and text is
ordered by the database's collation unless told ``COLLATE "C"`` (Python orders
by code point). So: booleans become 0/1 only where used as numbers, an
attribute with mixed kinds is not translated (the row test decides), and text
ordering uses the "C" collation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mailer.audience.segment_sql import (
    ANY,
    BOOL,
    CORE_SQL,
    NULL,
    NUMBER,
    TAGS,
    TEXT,
    Frag,
    NoSQL,
    SqlCompiler,
)

# The built-in fields over ``contacts c``: segment_sql.CORE_SQL, respelled where it differs.
CORE_SQL_PG: dict[str, tuple[str, str]] = {
    **CORE_SQL,
    # The column's collation ignores case (one contact per address); Python compares
    # strings exactly, so segments must too.
    "email": ('(c.email COLLATE "C")', TEXT),
    "name": (CORE_SQL["name"][0].replace("GLOB '*[^ -~]*'", "~ '[^ -~]'"), TEXT),
    "last_order_days": ("(CAST(:today AS date) - CAST(c.last_order_at AS date))", NUMBER),
    "birthday_today": ("(right(coalesce(c.birthday, ''), 5) IN (:bd1, :bd2))", BOOL),
}
_ORDERING = {"lt": "<", "lteq": "<=", "gt": ">", "gteq": ">="}


def _number(frag: Frag) -> str:
    """A fragment as a value: a boolean clause counts as 0/1, as in Python."""
    return f"(CASE WHEN {frag.sql} THEN 1 ELSE 0 END)" if frag.kind == BOOL else frag.sql


@dataclass
class PgSqlCompiler(SqlCompiler):
    """Compile one segment expression to a PostgreSQL condition over ``contacts c``."""

    core_sql: dict[str, tuple[str, str]] = field(default_factory=lambda: CORE_SQL_PG)
    false: str = "false"

    def _attribute(self, name: str, kinds: set[str]) -> Frag:
        key = self._bind(name)
        value = f"(c.attributes::jsonb -> {key})"
        if not kinds:
            return Frag("NULL", NULL)
        if kinds <= {TEXT}:
            return Frag(f"(c.attributes::jsonb ->> {key})", TEXT)
        if kinds <= {NUMBER}:
            # JSON true/false count as 1/0 (Python: True == 1), like SQLite's json_extract.
            return Frag(
                f"(CASE jsonb_typeof({value}) WHEN 'number' THEN ({value} #>> '{{}}')::numeric"
                f" WHEN 'boolean' THEN (CASE WHEN {value} = 'true'::jsonb THEN 1 ELSE 0 END)"
                " END)",
                NUMBER,
            )
        raise NoSQL  # mixed kinds: '=' across types is an error here, not False

    def _ordered_text(self, sql: str) -> str:
        return f'{sql} COLLATE "C"'

    def _equality(self, a: Frag, b: Frag, *, negate: bool) -> str:
        kinds = {a.kind, b.kind}
        if TAGS in kinds or ANY in kinds:
            raise NoSQL
        concrete = {k if k != BOOL else NUMBER for k in kinds}
        if concrete == {TEXT, NUMBER}:
            both_missing = f"({a.sql} IS NULL AND {b.sql} IS NULL)"
            return f"(NOT {both_missing})" if negate else both_missing
        operator = "IS DISTINCT FROM" if negate else "IS NOT DISTINCT FROM"
        return f"({_number(a)} {operator} {_number(b)})"

    def _has_tag(self, tags: str, needle: str, quoted: str) -> str:
        # strpos is a cheap pre-filter; jsonb_exists on an array of strings is exact.
        return f"(strpos({tags}, {quoted}) > 0 AND jsonb_exists({tags}::jsonb, {needle}))"
