"""Long and deep segments: flat and/or chains of any size up to MAX_TERMS work in SQL and
in the sandbox (real SQLite); beyond the documented limits the error says what to write."""

from __future__ import annotations

import sqlite3

import pytest

from mailer.audience.rfm import load_cuts
from mailer.audience.segments import MAX_DEPTH, MAX_TERMS, attribute_kinds, plan_segment
from mailer.audience.selection import count_segment
from mailer.core.errors import AudienceError
from tests.audience.test_segments import NOW, conn, names  # conn: the fixture

__all__ = ["conn"]


def chain(word: str, count: int, term: str) -> str:
    return f" {word} ".join(term.format(i) for i in range(count))


@pytest.mark.parametrize("count", [80, 300, 1200, MAX_TERMS])
def test_long_or_chains_run_in_sql_and_agree_with_the_sandbox(conn: sqlite3.Connection, count):
    # The real cities sit at the far end of the chain, where a left-deep tree is deepest.
    segment = chain("or", count - 2, "city == 'c{}'") + " or city == 'Beijing' or city == 'Suzhou'"
    plan = plan_segment(segment, attribute_kinds(conn), NOW.date(), load_cuts(conn))
    assert plan.predicate is None, "a flat chain is plain SQL"
    assert names(conn, segment) == ["cy", "gus"]
    assert count_segment(conn, segment, now=NOW, force_rows=True) == 2


@pytest.mark.parametrize("count", [80, 300, 1200])
def test_long_and_chains_work_too(conn: sqlite3.Connection, count):
    # Nobody has 100+ orders: the chain means "orders >= 1".
    segment = "orders >= 1 and " + chain("and", count - 1, "orders != 1{:02d}")
    assert names(conn, segment) == names(conn, "orders >= 1")
    assert count_segment(conn, segment, now=NOW, force_rows=True) == len(names(conn, segment))


def test_a_chain_past_the_limit_is_a_clear_error():
    segment = chain("or", MAX_TERMS + 1, "city == 'c{}'")
    with pytest.raises(AudienceError) as caught:
        plan_segment(segment, {"city": {"text"}}, NOW.date(), load_cuts_empty())
    assert f"at most {MAX_TERMS}" in caught.value.message
    assert "city in [" in (caught.value.hint or "")


@pytest.mark.parametrize("segment", [
    "not " * 200 + "customer",
    "(" * 300 + "customer" + ")" * 300,
    "not (" * 120 + "customer" + ")" * 120,
])  # fmt: skip
def test_deep_nesting_is_a_clear_error_not_a_traceback(segment: str):
    with pytest.raises(AudienceError) as caught:
        plan_segment(segment, {}, NOW.date(), load_cuts_empty())
    assert f"more than {MAX_DEPTH} levels" in caught.value.message


def test_nesting_within_the_limit_works(conn: sqlite3.Connection):
    segment = "not " * 10 + "customer"  # an even count: customers
    assert count_segment(conn, segment, now=NOW) == count_segment(conn, "customer", now=NOW)
    parens = "(" * 30 + "city == 'Beijing'" + ")" * 30
    assert names(conn, parens) == ["cy"]


def load_cuts_empty():
    from mailer.audience.rfm import RfmCuts

    return RfmCuts()
