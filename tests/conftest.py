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
