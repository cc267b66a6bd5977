"""Webhook tokens already used: a signed token is accepted once (``webhook_tokens``).

Mailgun signs the timestamp and a random token, not the body: anyone who saw
one request could send another body under the same signature while the
timestamp is fresh. Each token is therefore remembered for ``KEEP`` — far
longer than the five minutes a timestamp stays fresh — and a second use is
refused. Expired rows are deleted as new ones come.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from mailer.audience.database import Connection
from mailer.audience.store import transaction
from mailer.core.clock import stamp

KEEP = timedelta(days=2)


def remember_tokens(conn: Connection, provider: str, tokens: list[str], now: datetime) -> bool:
    """Record ``tokens`` as used; False (nothing recorded) when one was used before."""
    with transaction(conn):  # the write lock is held: no two requests check at once
        conn.execute("DELETE FROM webhook_tokens WHERE expires_at < ?", (stamp(now),))
        for token in tokens:
            seen = conn.execute(
                "SELECT 1 FROM webhook_tokens WHERE provider = ? AND token = ?",
                (provider, token[:200]),
            ).fetchone()
            if seen is not None:
                return False
        for token in tokens:
            conn.execute(
                "INSERT INTO webhook_tokens (provider, token, expires_at) VALUES (?, ?, ?)",
                (provider, token[:200], stamp(now + KEEP)),
            )
    return True


def forget_tokens(conn: Connection, provider: str, tokens: list[str]) -> None:
    """Forget ``tokens`` (their request could not be applied: the retry must get through)."""
    if not tokens:
        return
    with transaction(conn):
        for token in tokens:
            conn.execute(
                "DELETE FROM webhook_tokens WHERE provider = ? AND token = ?",
                (provider, token[:200]),
            )
