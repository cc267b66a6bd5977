"""RFM, the basic rule of database marketing: Recency, Frequency, Monetary value.

Each contact with orders scores 1-5 on each metric by quintile over all
customers; contacts without orders score 0. The database stores only the
quintile boundaries ("cuts", recomputed after each import); scores are derived
when contacts are read, in SQL for segments and in Python for templates, by the
same rule, so they always agree and are never stale.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Any

from mailer.audience.database import Connection

RFM_KEYS = ("recency", "frequency", "monetary")

# What each RFM metric ranks, over ``contacts c``. A missing date ranks lowest.
_METRIC_SQL = {
    "recency": "coalesce(c.last_order_at, '')",
    "frequency": "c.orders",
    "monetary": "coalesce(c.total_spent, 0)",
}


@dataclass(frozen=True)
class RfmCuts:
    """Quintile boundaries per metric: a customer scores 1 + the number of cuts reached.

    With k customers ranking strictly below a value out of n, the score is
    ``min(5, 1 + floor(5 * k / (n - 1)))`` (SQL's percent_rank in fifths), so
    ties share a score. Contacts without orders score 0 on all three.
    """

    recency: tuple[Any, ...] = ()
    frequency: tuple[Any, ...] = ()
    monetary: tuple[Any, ...] = ()

    def scores(self, orders: Any, last_order_at: Any, total_spent: Any) -> dict[str, int]:
        """The three scores of one contact (same rule as ``sql``)."""
        if orders is None or orders <= 0:
            return dict.fromkeys(RFM_KEYS, 0)
        # Cuts ascend, so "how many cuts does the value reach" is a bisection.
        return {
            "recency": 1 + bisect.bisect_right(self.recency, last_order_at or ""),
            "frequency": 1 + bisect.bisect_right(self.frequency, orders),
            "monetary": 1 + bisect.bisect_right(self.monetary, total_spent or 0),
        }

    def sql(self) -> tuple[dict[str, str], dict[str, Any]]:
        """SQL expressions for the three scores, and the parameters they use."""
        exprs: dict[str, str] = {}
        params: dict[str, Any] = {}
        for key in RFM_KEYS:
            terms = ""
            for index, cut in enumerate(getattr(self, key)):
                params[f"rfm_{key}{index}"] = cut
                terms += f" + CASE WHEN {_METRIC_SQL[key]} >= :rfm_{key}{index} THEN 1 ELSE 0 END"
            exprs[key] = f"(CASE WHEN c.orders > 0 THEN 1{terms} ELSE 0 END)"
        return exprs, params


def quintile_cuts(values: list[Any]) -> tuple[Any, ...]:
    """Cuts for scores 2..5 over ``values`` (sorted in place); see ``RfmCuts``."""
    n = len(values)
    if n < 2:
        return ()
    values.sort()
    cuts = []
    for score in range(2, 6):
        needed = -(-(score - 1) * (n - 1) // 5)  # ceil: customers that must rank below
        value = values[needed]
        if bisect.bisect_left(values, value) < needed:  # ties reach back below: next value
            after = bisect.bisect_right(values, value)
            if after >= n:
                break
            value = values[after]
        cuts.append(value)
    return tuple(cuts)


def refresh_rfm(conn: Connection) -> RfmCuts:
    """Recompute the RFM quintile cuts from the customers (contacts with orders > 0).

    Called after every import and forget. Scores are derived from the cuts when
    contacts are read, so they always match the stored cuts.
    """
    cuts = {}
    for key, expr in _METRIC_SQL.items():
        column = [r[0] for r in conn.execute(f"SELECT {expr} FROM contacts c WHERE c.orders > 0")]
        cuts[key] = quintile_cuts(column)
    conn.execute("DELETE FROM rfm_cuts")
    conn.executemany(
        "INSERT INTO rfm_cuts (metric, score, cut) VALUES (?, ?, ?)",
        [(k, i + 2, cut) for k, values in cuts.items() for i, cut in enumerate(values)],
    )
    return RfmCuts(**cuts)


def load_cuts(conn: Connection) -> RfmCuts:
    """The stored RFM cuts (empty before the first import)."""
    cuts: dict[str, list[Any]] = {k: [] for k in RFM_KEYS}
    for metric, cut in conn.execute("SELECT metric, cut FROM rfm_cuts ORDER BY metric, score"):
        # SQLite keeps each cut's own type; PostgreSQL's column is text (dates and numbers).
        if metric != "recency" and isinstance(cut, str):
            cut = float(cut) if any(ch in cut for ch in ".eE") else int(cut)
        cuts[metric].append(cut)
    return RfmCuts(**{k: tuple(v) for k, v in cuts.items()})


@dataclass
class RfmGrid:
    """Contacts per (recency, frequency) score pair; ``unscored`` have no orders."""

    counts: dict[tuple[int, int], int]
    unscored: int

    def cell(self, recency: int, frequency: int) -> int:
        """Number of contacts with these two scores."""
        return self.counts.get((recency, frequency), 0)


def rfm_grid(conn: Connection) -> RfmGrid:
    """Count contacts in the 5x5 recency x frequency grid."""
    exprs, params = load_cuts(conn).sql()
    counts: dict[tuple[int, int], int] = {}
    unscored = 0
    sql = f"SELECT {exprs['recency']}, {exprs['frequency']}, count(*) FROM contacts c GROUP BY 1, 2"
    for r, f, n in conn.execute(sql, params):
        if r == 0:
            unscored += n
        else:
            counts[(r, f)] = n
    return RfmGrid(counts, unscored)
