"""Shared pytest fixtures (each helper keeps its part self-contained)."""

# --- SMTP server fixture (send helper: tests/smtp_server.py) -----------------
import pytest as _smtp_pytest


@_smtp_pytest.fixture
def smtp_server():
    """A recording aiosmtpd server on 127.0.0.1 (port 0) with fault injection; stopped after."""
    from tests.smtp_server import SmtpServer

    server = SmtpServer().start()
    yield server
    server.close()


# --- the unsubscribe key ---------------------------------------------------------
@_smtp_pytest.fixture(autouse=True)
def _unsubscribe_key(monkeypatch: _smtp_pytest.MonkeyPatch) -> None:
    """Every test runs as a configured sender does: with MAILER_UNSUBSCRIBE_KEY set.

    Tests of the missing-key warning and of ``mailer serve``'s refusal delete it.
    """
    monkeypatch.setenv("MAILER_UNSUBSCRIBE_KEY", "tests-unsubscribe-key-0123456789abcdef")


# --- PostgreSQL (tests/pg_server.py) -----------------------------------------------
@_smtp_pytest.fixture(scope="session")
def pg_server():
    """One PostgreSQL cluster (Debian's) on loopback for the whole session; fails if missing."""
    from tests.pg_server import PgServer, pg_bin

    if pg_bin() is None:
        _smtp_pytest.fail("PostgreSQL is missing: run scripts/servers-setup")
    server = PgServer().start()
    yield server
    server.stop()


@_smtp_pytest.fixture
def pg_url(pg_server) -> str:
    """The URL of a new, empty database on the session's PostgreSQL server."""
    return pg_server.database()


@_smtp_pytest.fixture(params=["sqlite", "postgresql"])
def any_store(request, tmp_path):
    """An open store connection, once per engine: tests that must hold on both."""
    from mailer.audience.store import open_store

    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else None
    conn = open_store(tmp_path / "mailer.db", url)
    yield conn
    conn.close()
