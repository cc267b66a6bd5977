"""Who a campaign goes to, from the contacts in the workspace database.

``select_recipients`` is what the prepared campaign calls: a list and/or a
segment, minus suppressed addresses, minus contacts the frequency cap holds
back, streamed from SQLite in batches. Import lives in ``importer``, segment
expressions in ``segments``, suppression in ``suppressions``, lists, export
and forget in ``admin``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from mailer.audience.database import Connection, Row, dialect
from mailer.audience.frequency import CAP_COUNTED, CapLike, FrequencyCap, cap_since
from mailer.audience.rfm import RfmCuts, load_cuts
from mailer.audience.segments import (
    ContactRow,
    SegmentPlan,
    attribute_kinds,
    contact_fields,
    plan_segment,
    resolve_segment,
)
from mailer.core.clock import aware
from mailer.core.errors import AudienceError
from mailer.core.recipient import Recipient

BATCH = 1000
CONTACT_COLUMNS = (
    "c.id, c.email, c.first_name, c.last_name, c.locale, c.timezone, c.birthday, c.tags, "
    "c.attributes, c.orders, c.total_spent, c.last_order_at"
)
_SUPPRESSED = "EXISTS (SELECT 1 FROM suppressions s WHERE s.email = c.email)"
_SUPPRESSED_01 = f"CASE WHEN {_SUPPRESSED} THEN 1 ELSE 0 END"


@dataclass
class Selection:
    """The recipients of a send, and what was held back.

    The counters are computed up front, when ``select_recipients`` returns:
    ``matched`` contacts are in the list and segment; of those,
    ``suppressed_skipped`` are suppressed, ``capped`` (not suppressed) are held
    back by the frequency cap, and ``selected`` will be yielded by
    ``recipients``, a generator that reads the database in batches of 1000.
    Each batch re-checks suppression and the cap, so an address suppressed
    while a send runs (a hard bounce) is not mailed even though it was counted.
    """

    recipients: Iterator[Recipient]
    matched: int = 0
    suppressed_skipped: int = 0
    capped: int = 0

    @property
    def selected(self) -> int:
        """How many recipients the iterator yields."""
        return self.matched - self.suppressed_skipped - self.capped


@dataclass(frozen=True)
class DateFilter:
    """Only contacts whose date ``column`` is one of ``keys``: what a cron pass needs.

    A birthday campaign's pass cares about the contacts whose birthday is
    within a few days of now; reading the other 98 % of the audience every
    five minutes would be most of its cost. ``column`` is ``birthday`` (keys
    ``MM-DD``, so ``1988-02-14`` and ``--02-14`` both match ``02-14``) or
    ``last_order_at`` (keys ``YYYY-MM-DD``).
    """

    column: str
    keys: frozenset[str]

    def key_of(self, value: object) -> str:
        """The part of a stored date the keys are compared with."""
        text = str(value or "").strip()
        return text[-5:] if self.column == "birthday" else text[:10]

    def matches(self, value: object) -> bool:
        """True when ``value`` (a contact's field as written) is one of the keys."""
        return self.key_of(value) in self.keys

    def sql(self) -> str:
        """The same test as SQL on ``contacts c`` (keys bound as ``:only_keys``)."""
        part = (
            "substr(trim(c.birthday), -5)"
            if self.column == "birthday"
            else ("substr(trim(c.last_order_at), 1, 10)")
        )
        return f"{part} IN (SELECT value FROM json_each(:only_keys))"


@dataclass
class _Query:
    plan: SegmentPlan
    list_id: int | None
    cap: FrequencyCap | None
    params: dict[str, Any]
    attribute_names: list[str]
    today: date
    cuts: RfmCuts
    only: DateFilter | None = None

    def base(self) -> str:
        """The condition for 'in the list and (SQL part of) the segment'."""
        where = f"({self.plan.where})"
        if self.only is not None:
            where += f" AND {self.only.sql()}"
        if self.list_id is not None:
            # EXISTS, not IN (subquery): IN would rebuild the whole member set
            # for every batch; EXISTS is one primary-key probe per contact.
            where += (
                " AND EXISTS (SELECT 1 FROM list_members m"
                " WHERE m.list_id = :list_id AND m.contact_id = c.id)"
            )
        return where

    def capped_sql(self) -> str:
        """A 0/1 expression: this contact already got its share of campaign emails."""
        if self.cap is None:
            return "0"
        # Unqualified columns in CAP_COUNTED resolve to journal j, the innermost table.
        return (
            f"(CASE WHEN (SELECT count(*) FROM journal j WHERE j.email = c.email AND "
            f"{CAP_COUNTED}) >= :cap_max THEN 1 ELSE 0 END)"
        )

    def fields(self, row: ContactRow) -> dict[str, Any]:
        """The contact's fields (see ``segments.contact_fields``)."""
        return contact_fields(row, self.today, self.attribute_names, self.cuts)

    def passes(self, row: ContactRow) -> bool:
        """Apply the row test of a segment SQL could not express."""
        if self.plan.predicate is None:
            return True
        try:
            return self.plan.predicate(self.fields(row))
        except Exception as exc:  # the sandbox raises many kinds; all mean the same
            raise AudienceError(
                f"{self.plan.expression!r} failed on contact #{row['id']}: {exc}",
                where="segment",
                hint="compare values of the same type, or test the field first "
                "(e.g. city is defined and city == 'Shanghai')",
            ) from None


def list_id(conn: Connection, name: str) -> int:
    """The id of an existing list; AudienceError naming the known lists otherwise."""
    row = conn.execute("SELECT id FROM lists WHERE name = ?", (name,)).fetchone()
    if row is None:
        names = [r[0] for r in conn.execute("SELECT name FROM lists ORDER BY name")]
        raise AudienceError(
            f"no list named {name!r}",
            hint=("lists: " + ", ".join(names)) if names else "no lists exist yet",
            advice=None if names else "import-to-list",
        )
    return int(row[0])


def _prepare(
    conn: Connection,
    list_name: str | None,
    segment: str | None,
    cap: FrequencyCap | None,
    now: datetime,
    campaign_id: str | None,
    force_rows: bool = False,
    only: DateFilter | None = None,
) -> _Query:
    kinds = attribute_kinds(conn)
    today = aware(now).date()
    # Only None means everyone: a blank expression (an empty shell variable)
    # is an error, never a silent "all contacts".
    expression = resolve_segment(conn, segment) if segment is not None else None
    cuts = load_cuts(conn)
    plan = plan_segment(expression, kinds, today, cuts, force_rows=force_rows, engine=dialect(conn))
    lid = list_id(conn, list_name) if list_name else None
    # "" excludes no campaign: no journal key is empty.
    params = {**plan.params, "list_id": lid, "campaign_id": campaign_id or ""}
    if cap is not None:
        params.update(cap_since=cap_since(aware(now), cap.days), cap_max=cap.max_messages)
    if only is not None:
        params["only_keys"] = json.dumps(sorted(only.keys))
    return _Query(plan, lid, cap, params, sorted(kinds), today, cuts, only)


def _batches(conn: Connection, query: _Query, extra: str = "") -> Iterator[Row]:
    """Rows matching the query's SQL, by id, fetched BATCH at a time (keyset paging).

    Each batch is a fresh statement, so no read transaction stays open while
    the caller writes journal rows between batches.
    """
    sql = (
        f"SELECT {CONTACT_COLUMNS}, {_SUPPRESSED_01} AS suppressed, {query.capped_sql()} AS capped "
        f"FROM contacts c WHERE c.id > :after AND {query.base()}{extra} ORDER BY c.id LIMIT {BATCH}"
    )
    after = 0
    while True:
        rows = conn.execute(sql, {**query.params, "after": after}).fetchall()
        if not rows:
            return
        yield from rows
        after = rows[-1]["id"]


def _count(conn: Connection, query: _Query) -> tuple[int, int, int]:
    if query.plan.predicate is None:
        row = conn.execute(
            f"SELECT count(*), coalesce(sum(suppressed), 0), "
            f"coalesce(sum(capped * (1 - suppressed)), 0) FROM (SELECT {_SUPPRESSED_01} AS "
            f"suppressed, {query.capped_sql()} AS capped FROM contacts c "
            f"WHERE {query.base()}) AS t",
            query.params,
        ).fetchone()
        return int(row[0]), int(row[1]), int(row[2])
    matched = suppressed = capped = 0
    for row in _batches(conn, query):
        if query.passes(row):
            matched += 1
            suppressed += row["suppressed"]
            capped += bool(row["capped"] and not row["suppressed"])
    return matched, suppressed, capped


def _stream(conn: Connection, query: _Query) -> Iterator[Recipient]:
    extra = f" AND NOT {_SUPPRESSED}" + (f" AND {query.capped_sql()} = 0" if query.cap else "")
    for row in _batches(conn, query, extra):
        if not query.passes(row):
            continue
        fields = query.fields(row)
        yield Recipient(
            email=row["email"],
            name=fields["name"],
            fields=fields,
            source=f"contact #{row['id']}",
            contact_id=row["id"],
        )


def select_recipients(
    conn: Connection,
    *,
    list_name: str | None,
    segment: str | None,
    frequency_cap: CapLike | None = None,
    now: datetime,
    campaign_id: str | None = None,
    only: DateFilter | None = None,
) -> Selection:
    """Select a campaign's recipients: a list and/or segment, never suppressed, capped.

    ``segment`` is an expression or a saved segment's name; ``None`` means
    everyone (in the list). ``now`` fixes "today" for derived fields and the
    cap window. ``frequency_cap`` may be a
    ``FrequencyCap`` or the workspace's ``settings.frequency_cap``. Journal
    rows of ``campaign_id`` do not count towards the cap, so resuming a
    campaign does not cap itself.
    ``only`` narrows the selection to contacts with a date near now (see ``DateFilter``).
    Raises AudienceError for an unknown list or a bad segment, before any
    recipient is yielded.
    """
    cap = FrequencyCap(frequency_cap.max_messages, frequency_cap.days) if frequency_cap else None
    query = _prepare(conn, list_name, segment, cap, now, campaign_id, only=only)
    matched, suppressed, capped = _count(conn, query)
    return Selection(_stream(conn, query), matched, suppressed, capped)


def count_segment(
    conn: Connection,
    expression: str,
    list_name: str | None = None,
    *,
    now: datetime,
    force_rows: bool = False,
) -> int:
    """Number of contacts a segment (expression or saved name) would send to.

    Suppressed addresses are not counted. ``force_rows`` evaluates every
    contact in the sandbox instead of SQL (to compare the two paths).
    """
    query = _prepare(conn, list_name, expression, None, now, None, force_rows)
    matched, suppressed, _ = _count(conn, query)
    return matched - suppressed
