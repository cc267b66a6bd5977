"""The workspace database: versioned schema, migrations that never lose data."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from mailer.audience import store
from mailer.core.errors import StoreError


def _old_database(path: Path, version: int) -> None:
    """A database as an older mailer left it: the first ``version`` migrations, some data."""
    conn = sqlite3.connect(path, isolation_level=None)
    for migration in store.MIGRATIONS[:version]:
        for statement in migration:
            conn.execute(statement)
    conn.execute(f"PRAGMA user_version = {version}")
    conn.execute(
        "INSERT INTO contacts (email, first_name, tags, attributes, created_at, updated_at)"
        " VALUES ('ann@example.com', 'Ann', '[\"vip\"]', '{\"city\": \"Lima\"}', 'then', 'then')"
    )
    conn.execute(
        "INSERT INTO suppressions (email, reason, created_at) VALUES ('bo@example.com', 'bounced', 'then')"
    )
    conn.close()


def test_an_old_database_is_brought_up_to_date_with_its_data(tmp_path: Path) -> None:
    path = tmp_path / "mailer.db"
    _old_database(path, 1)
    conn = store.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == store.SCHEMA_VERSION
    assert tuple(conn.execute("SELECT email, first_name, tags, attributes FROM contacts").fetchone()) == (
        "ann@example.com", "Ann", '["vip"]', '{"city": "Lima"}'
    )  # fmt: skip
    assert conn.execute("SELECT reason FROM suppressions").fetchone()[0] == "bounced"
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"schedule_claims", "schedule_runs"} <= tables
    # connecting again changes nothing
    assert store.migrate(conn) == store.SCHEMA_VERSION


def test_a_failing_migration_leaves_the_database_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "mailer.db"
    _old_database(path, len(store.MIGRATIONS))
    broken = [["CREATE TABLE extra (x)", "INSERT INTO no_such_table VALUES (1)"]]
    monkeypatch.setattr(store, "MIGRATIONS", store.MIGRATIONS + broken)
    monkeypatch.setattr(store, "SCHEMA_VERSION", len(store.MIGRATIONS))
    with pytest.raises(StoreError, match="cannot open the database: no such table: no_such_table"):
        store.connect(path)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(store.MIGRATIONS) - 1
    assert (
        conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'extra'").fetchone()[0] == 0
    )
    assert conn.execute("SELECT count(*) FROM contacts").fetchone()[0] == 1


def test_a_database_from_a_newer_mailer_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "mailer.db"
    _old_database(path, len(store.MIGRATIONS))
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {store.SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError) as caught:
        store.connect(path)
    assert str(caught.value) == (
        f"the database has schema version {store.SCHEMA_VERSION + 1}, newer than this mailer "
        f"({store.SCHEMA_VERSION})\n  hint: upgrade mailer before using this database"
    )


def test_email_uniqueness_ignores_case(tmp_path: Path) -> None:
    conn = store.connect(tmp_path / "mailer.db")
    row = "INSERT INTO contacts (email, created_at, updated_at) VALUES (?, 'now', 'now')"
    conn.execute(row, ("ann@example.com",))
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute(row, ("ANN@Example.COM",))


def test_opening_waits_while_another_connection_holds_a_new_database(tmp_path: Path) -> None:
    # Two cron jobs (or a cron job and a manual send) on a fresh workspace: the second
    # must wait for the first to switch the file to WAL and migrate it. SQLite answers a
    # journal-mode switch under another's lock with "database is locked" at once,
    # without waiting, so `connect` has to wait by itself.
    import threading

    path = tmp_path / "new.db"
    # Still in rollback-journal mode; committed from a timer thread.
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN EXCLUSIVE")
    other.execute("CREATE TABLE busy (x)")
    release = threading.Timer(0.5, other.execute, args=("COMMIT",))
    release.start()
    try:
        conn = store.connect(path)
    finally:
        release.join()
        other.close()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == store.SCHEMA_VERSION


def test_two_connections_opening_a_new_database_at_once_both_succeed(tmp_path: Path) -> None:
    # The same race with no lock held beforehand: before `connect` retried the WAL
    # switch, about 1 in 7 of these pairs failed with "database is locked".
    import threading

    for attempt in range(100):
        path = tmp_path / f"race{attempt}.db"
        start = threading.Barrier(2, timeout=30)
        errors: list[BaseException] = []

        def open_it(
            path: Path = path, start: threading.Barrier = start, errors: list = errors
        ) -> None:
            start.wait()
            try:
                store.connect(path).close()
            except BaseException as exc:  # a thread's exception is otherwise lost
                errors.append(exc)

        threads = [threading.Thread(target=open_it) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert errors == [], f"attempt {attempt}: {errors[0]}"


def test_version_3_rewrites_every_timestamp_in_the_one_format(tmp_path: Path) -> None:
    # Before v3, imports wrote microseconds and +00:00, the scheduler +00:00, the journal Z.
    path = tmp_path / "mailer.db"
    _old_database(path, 2)
    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute(
        "UPDATE contacts SET created_at = '2026-11-22T08:20:38.123456+00:00',"
        " updated_at = '2026-11-22T08:20:38.999999+00:00'"
    )
    raw.execute(
        "INSERT INTO journal (campaign_id, email, status, queued_at, updated_at, sent_at)"
        " VALUES ('x', 'ann@example.com', 'sent', '2026-11-22T08:20:38Z',"
        " '2026-11-22T08:20:39Z', '2026-11-22T08:20:39Z')"
    )
    raw.execute(
        "INSERT INTO schedule_runs (campaign, campaign_id, wave, due_at, started_at, outcome)"
        " VALUES ('x', 'x@2027', 'w', '2027-02-06T01:00:00+00:00', '2027-02-06T01:00:05+00:00',"
        " 'sent')"
    )
    raw.execute(
        "INSERT INTO schedule_claims VALUES ('x@2027', 'w', 'idle', 'me',"
        " '2027-02-06T01:00:00+00:00', '2027-02-06T07:00:00+00:00')"
    )
    raw.close()
    conn = store.connect(path)
    assert tuple(conn.execute("SELECT created_at, updated_at FROM contacts").fetchone()) == (
        "2026-11-22T08:20:38Z",
        "2026-11-22T08:20:38Z",
    )
    assert tuple(conn.execute("SELECT queued_at, sent_at FROM journal").fetchone()) == (
        "2026-11-22T08:20:38Z",
        "2026-11-22T08:20:39Z",
    )
    assert [
        tuple(r) for r in conn.execute("SELECT due_at, started_at, finished_at FROM schedule_runs")
    ] == [("2027-02-06T01:00:00Z", "2027-02-06T01:00:05Z", None)]
    assert tuple(conn.execute("SELECT claimed_at, expires_at FROM schedule_claims").fetchone()) == (
        "2027-02-06T01:00:00Z",
        "2027-02-06T07:00:00Z",
    )
    # A value that is no timestamp at all is left as it was, not lost.
    assert conn.execute("SELECT created_at FROM suppressions").fetchone()[0] == "then"
