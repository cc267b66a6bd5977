"""The frequency cap: at most N campaign emails per contact in D days, counted from the journal.

One rule serves both places that apply it: segment selection (a contact held
back is not selected) and send planning (a recipient held back is not sent).
Outbox runs (journal keys ending in ``@outbox``) write files, not mail: they
count towards no cap, quota or repetition check.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from mailer.audience.database import Connection
from mailer.core.clock import stamp
from mailer.core.errors import AudienceError
from mailer.core.keys import OUTBOX_SUFFIX

# SQL condition on a journal or campaign_runs row: real mail, not outbox files.
REAL_MAIL = f"campaign_id NOT LIKE '%{OUTBOX_SUFFIX}'"
# SQL condition on a journal row that counts towards the frequency cap: real mail
# sent since :cap_since, not of the campaign being sent (:campaign_id), so a resumed
# run does not cap itself.
CAP_COUNTED = (
    f"status = 'sent' AND sent_at >= :cap_since AND campaign_id <> :campaign_id AND {REAL_MAIL}"
)


class CapLike(Protocol):
    """Anything with the two numbers of a cap (``settings.FrequencyCapSetting`` too)."""

    @property
    def max_messages(self) -> int: ...

    @property
    def days(self) -> int: ...


@dataclass(frozen=True)
class FrequencyCap:
    """At most ``max_messages`` campaign emails per contact in any ``days`` days."""

    max_messages: int
    days: int

    def __post_init__(self) -> None:
        if self.max_messages < 1 or self.days < 1:
            raise AudienceError(
                f"frequency cap must be at least 1 message in 1 day, got "
                f"{self.max_messages} in {self.days}"
            )


def cap_since(now: datetime, days: int) -> str:
    """The start of a frequency-cap window, as a journal timestamp."""
    return stamp(now - timedelta(days=days))


def capped_addresses(
    conn: Connection, *, max_messages: int, days: int, exclude: str, now: datetime
) -> set[str]:
    """Lower-cased addresses that got ``max_messages`` campaign emails in the last ``days``.

    Rows of ``exclude`` (the campaign being sent) do not count, so a resumed
    run does not cap itself; outbox runs never count.
    """
    rows = conn.execute(
        f"SELECT lower(email) FROM journal WHERE {CAP_COUNTED} "
        "GROUP BY lower(email) HAVING count(*) >= :cap_max",
        {"cap_since": cap_since(now, days), "campaign_id": exclude, "cap_max": max_messages},
    )
    return {row[0] for row in rows}


def capped_among(
    conn: Connection,
    emails: Sequence[str],
    *,
    max_messages: int,
    days: int,
    exclude: str,
    now: datetime,
) -> set[str]:
    """Which of ``emails`` (lower-cased) the cap holds back (see ``capped_addresses``)."""
    rows = conn.execute(
        f"SELECT lower(email) FROM journal WHERE {CAP_COUNTED}"
        " AND email IN (SELECT value FROM json_each(:emails))"
        " GROUP BY lower(email) HAVING count(*) >= :cap_max",
        {
            "cap_since": cap_since(now, days),
            "campaign_id": exclude,
            "cap_max": max_messages,
            "emails": json.dumps(list(emails)),
        },
    )
    return {row[0] for row in rows}
