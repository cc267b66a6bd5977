"""The PostgreSQL store against a real PostgreSQL server (Debian's, on loopback).

The schema must be SQLite's, column for column; the statement rewriter must
keep meaning; addresses must match whatever their case; bad URLs and a server
that is not there must give clear errors, not tracebacks.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mailer.audience import postgres_schema, store
from mailer.audience.database import Connection, is_postgres
from mailer.audience.importer import import_contacts
from mailer.audience.postgres import PgConnection, connect_postgres, redact, translate
from mailer.audience.selection import count_segment, select_recipients
from mailer.audience.suppressions import suppress
from mailer.core.errors import ConfigError, StoreError
from mailer.core.settings import load_settings

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


def _sqlite_columns(path: Path) -> dict[str, list[str]]:
    conn = sqlite3.connect(path)
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    return {t: [r[1] for r in conn.execute(f"PRAGMA table_info({t})")] for t in tables}


def _pg_columns(conn: Connection) -> dict[str, list[str]]:
    rows = conn.execute(
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_schema = 'public' ORDER BY table_name, ordinal_position"
    ).fetchall()
    found: dict[str, list[str]] = {}
    for table, column in rows:
        found.setdefault(table, []).append(column)
    found.pop("mailer_schema")
    return found


def test_both_engines_have_the_same_tables_and_columns(tmp_path: Path, pg_url: str) -> None:
    store.connect(tmp_path / "mailer.db").close()
    pg = store.open_store(tmp_path / "unused.db", pg_url)
    assert _pg_columns(pg) == _sqlite_columns(tmp_path / "mailer.db")
    version = pg.execute("SELECT version FROM mailer_schema").fetchone()[0]
    assert version == store.SCHEMA_VERSION
    # one history: every SQLite migration after the baseline has its PostgreSQL twin
    assert postgres_schema.BASELINE + len(postgres_schema.MIGRATIONS) == store.SCHEMA_VERSION


def test_two_processes_creating_the_schema_at_once_both_succeed(pg_url: str) -> None:
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            connect_postgres(pg_url, store.SCHEMA_VERSION).close()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_a_database_from_a_newer_mailer_is_refused(pg_url: str) -> None:
    connect_postgres(pg_url, store.SCHEMA_VERSION).close()
    with pytest.raises(StoreError, match="newer than this mailer"):
        connect_postgres(pg_url, store.SCHEMA_VERSION - 1)


def test_translate_rewrites_only_what_differs() -> None:
    assert translate("SELECT a FROM t WHERE b = ? AND c IS NOT ? AND d IS :x") == (
        "SELECT a FROM t WHERE b = %s AND c IS DISTINCT FROM %s AND d IS NOT DISTINCT FROM %(x)s"
    )
    assert translate("INSERT OR IGNORE INTO t (a) VALUES (?)") == (
        "INSERT INTO t (a) VALUES (%s) ON CONFLICT DO NOTHING"
    )
    assert translate("SELECT substr(trim(c.birthday), -5), instr(a, 'x?:y')") == (
        "SELECT right(trim(c.birthday), 5), strpos(a, 'x?:y')"  # literals untouched
    )
    assert translate("SELECT value FROM json_each(?) WHERE v LIKE '5%'") == (
        "SELECT value FROM json_array_elements_text(%s) WHERE v LIKE '5%%'"
    )
    assert translate("SELECT '5%'", with_params=False) == "SELECT '5%'"


def test_addresses_match_whatever_their_case(pg_url: str) -> None:
    conn = connect_postgres(pg_url, store.SCHEMA_VERSION)
    conn.execute(
        "INSERT INTO contacts (email, created_at, updated_at) VALUES (?, 'n', 'n')",
        ("Ann@Example.com",),
    )
    with pytest.raises(StoreError, match="duplicate key"):
        conn.execute(
            "INSERT INTO contacts (email, created_at, updated_at) VALUES (?, 'n', 'n')",
            ("ann@example.COM",),
        )
    assert (
        conn.execute("SELECT email FROM contacts WHERE email = ?", ("ANN@EXAMPLE.COM",)).fetchone()[
            "email"
        ]
        == "Ann@Example.com"
    )
    found = conn.execute(
        "SELECT count(*) FROM contacts WHERE email IN (SELECT value FROM json_each(?))",
        (json.dumps(["aNN@example.com"]),),
    ).fetchone()[0]
    assert found == 1
    # a segment compares exactly, as Python does
    assert count_segment(conn, "email == 'ann@example.com'", now=NOW) == 0
    assert count_segment(conn, "email == 'Ann@Example.com'", now=NOW) == 1  # fmt: skip


def test_import_count_stream_and_suppression_agree_across_engines(
    any_store: Connection, tmp_path: Path
) -> None:
    source = tmp_path / "people.csv"
    rows = ["email,first_name,last_name,locale,city,tags,orders,total_spent,last_order_at"]
    for i in range(300):
        rows.append(
            f"user{i}@example.com,F{i},L{i},{'zh-CN' if i % 3 == 0 else 'en'},"
            f"{'Shanghai' if i % 2 else 'Lima'},{'vip' if i % 5 == 0 else ''},{i % 7},{i * 1.5},"
            f"2026-{1 + i % 12:02d}-01"
        )
    rows.append("USER1@EXAMPLE.COM,Again,,,,,,,")  # the same person, other case: an update
    source.write_text("\n".join(rows) + "\n", encoding="utf-8")
    result = import_contacts(any_store, source, now=NOW, list_name="all")
    assert (result.inserted, result.updated, result.merged) == (300, 0, 1)
    assert any_store.execute("SELECT first_name FROM contacts WHERE email = 'user1@example.com'").fetchone()[0] == "Again"  # fmt: skip
    assert count_segment(any_store, "city == 'Shanghai' and 'vip' in tags", "all", now=NOW) == 30
    assert count_segment(any_store, "orders >= 3 and rfm.recency >= 4", now=NOW) == count_segment(
        any_store, "orders >= 3 and rfm.recency >= 4", now=NOW, force_rows=True
    )
    suppress(any_store, "User5@Example.com", "unsubscribed", source="test", now=NOW)
    selection = select_recipients(any_store, list_name="all", segment="'vip' in tags", now=NOW)
    emails = sorted(r.email for r in selection.recipients)
    assert len(emails) == selection.selected == 59 and "user5@example.com" not in emails
    # re-importing updates in place, both engines the same way
    again = import_contacts(any_store, source, now=NOW, list_name="all")
    assert (again.inserted, again.updated) == (0, 300)
    assert any_store.execute("SELECT count(*) FROM list_members").fetchone()[0] == 300


def test_the_url_keeps_passwords_out(tmp_path: Path) -> None:
    (tmp_path / "mailer.toml").write_text('[store]\nurl = "postgresql://ann:hunter2xyz@db/mail"\n')
    with pytest.raises(ConfigError, match="carries a password") as caught:
        load_settings(tmp_path, env={})
    assert "hunter2xyz" not in str(caught.value) and "PGPASSWORD" in caught.value.hint
    (tmp_path / "mailer.toml").write_text('[store]\nurl = "mysql://db/mail"\n')
    with pytest.raises(ConfigError, match="postgresql:// URL"):
        load_settings(tmp_path, env={})
    assert redact("postgresql://ann:secret@db/mail") == "postgresql://ann:***@db/mail"


def test_a_server_that_is_not_there_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot connect to PostgreSQL") as caught:
        store.open_store(tmp_path / "x.db", "postgresql://nobody@127.0.0.1:1/none")
    assert "PGPASSWORD" in caught.value.hint


def test_the_connection_reports_its_engine(any_store: Connection) -> None:
    assert is_postgres(any_store) == isinstance(any_store, PgConnection)


def test_deleting_a_contact_or_a_list_drops_its_memberships(
    any_store: Connection, tmp_path: Path
) -> None:
    source = tmp_path / "people.csv"
    source.write_text("email\nann@example.com\nbo@example.com\n", encoding="utf-8")
    import_contacts(any_store, source, now=NOW, list_name="news")
    import_contacts(any_store, source, now=NOW, list_name="all")
    members = "SELECT count(*) FROM list_members"
    assert any_store.execute(members).fetchone()[0] == 4
    any_store.execute("DELETE FROM contacts WHERE email = 'ANN@example.com'")
    assert any_store.execute(members).fetchone()[0] == 2
    any_store.execute("DELETE FROM lists WHERE name = 'news'")
    assert any_store.execute(members).fetchone()[0] == 1


def test_a_writer_waits_for_another_then_fails_clearly(pg_url: str) -> None:
    holder = connect_postgres(pg_url, store.SCHEMA_VERSION)
    waiter = PgConnection(pg_url, lock_timeout=0.2)
    with store.transaction(holder):
        with pytest.raises(StoreError, match="lock timeout") as caught, store.transaction(waiter):
            pass  # pragma: no cover - the lock is never granted
        assert "another mailer process" in caught.value.hint
    with store.transaction(waiter):  # free again once the holder commits
        waiter.execute("SELECT 1")
