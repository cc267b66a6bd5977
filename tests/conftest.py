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
