"""How much real mail went out per UTC day to given recipient domains (the journal, all campaigns).

The doctor counts the mailbox providers' bulk-sender thresholds across
campaigns with it. One small grouped query; outbox runs never count.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from mailer.audience.database import Connection
from mailer.audience.frequency import REAL_MAIL

# The address column ignores case on PostgreSQL (a nondeterministic collation, which refuses
# substring searches): byte-wise "BINARY" (SQLite's own; a copy of "C" there) allows them.
_EMAIL = 'email COLLATE "BINARY"'
_DOMAIN = f"lower(substr({_EMAIL}, instr({_EMAIL}, '@') + 1))"


def sent_per_day(
    conn: Connection, domains: Sequence[str], since: str
) -> list[tuple[str, str, int]]:
    """(UTC day ``YYYY-MM-DD``, recipient domain, messages) sent since the stamp ``since``."""
    rows = conn.execute(
        f"SELECT substr(sent_at, 1, 10), {_DOMAIN}, count(*) FROM journal"
        f" WHERE status = 'sent' AND sent_at >= :since AND {REAL_MAIL}"
        f" AND {_DOMAIN} IN (SELECT value FROM json_each(:domains))"
        f" GROUP BY substr(sent_at, 1, 10), {_DOMAIN}",
        {"since": since, "domains": json.dumps([d.lower() for d in domains])},
    )
    return [(str(day), str(domain), int(count)) for day, domain, count in rows]
