"""Repetition: warn when a campaign nearly repeats one sent to the same audience lately.

Marketing practice: mind the frequency, and vary a message that is sent again.
The run log (``campaign_runs``) keeps each run's subjects and an impersonal
copy of its text; a new campaign to the same audience within ``REPEAT_DAYS``
whose subject or body is at least ``REPEAT_RATIO`` similar gets a warning.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from datetime import datetime, timedelta

from mailer.audience.database import Connection
from mailer.audience.frequency import REAL_MAIL
from mailer.checks.findings import Finding, warning
from mailer.core.clock import parse_stamp

REPEAT_RATIO = 0.85
REPEAT_DAYS = 30


def check_repetition(
    conn: Connection,
    *,
    campaign_id: str,
    audience: str,
    subjects: Sequence[str],
    body_text: str,
    now: datetime,
) -> list[Finding]:
    """Warn when a run sent to the same audience in the last 30 days had nearly this content.

    ``subjects`` are this campaign's (rendered) subject variants; any of them
    resembling the earlier subject counts.
    """
    cutoff = now - timedelta(days=REPEAT_DAYS)
    # The campaign's own runs do not count, nor those of its scheduled instances
    # (``<id>@2027``, ``<id>@birthday-2027``): a yearly greeting repeats itself on purpose.
    own = campaign_id.partition("@")[0] + "@"
    rows = conn.execute(
        "SELECT campaign_id, started_at, subject, body_text FROM campaign_runs "
        f"WHERE audience = ? AND campaign_id != ? AND substr(campaign_id, 1, ?) != ?"
        f" AND {REAL_MAIL} ORDER BY started_at DESC",
        (audience, campaign_id, len(own), own),
    ).fetchall()
    findings: list[Finding] = []
    for other_id, started, old_subject, old_body in rows:
        when = _parse_time(started)
        if when is None or when < cutoff:
            continue
        day = when.date().isoformat()
        where = f"sent {day} as {other_id}"
        # A run stores its subject variants one per line (templates or rendered).
        old_subjects = [line for line in (old_subject or "").splitlines() if line.strip()]
        close = [s for s in subjects if any(_similar(s, old) for old in old_subjects)]
        if close:
            message = (
                f"the subject {close[0]!r} is nearly the same as one {other_id!r} "
                f"used ({day}); vary it"
            )
            findings.append(warning("repeat-subject", message, where))
        if _similar(body_text, old_body):
            message = f"the body is nearly the same as {other_id!r} ({day}); vary the message"
            findings.append(warning("repeat-body", message, where))
    return findings


def _similar(a: str, b: str) -> bool:
    if not a.strip() or not b.strip():
        return False
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    # The cheap upper bounds first: most pairs are plainly different.
    return (
        matcher.real_quick_ratio() >= REPEAT_RATIO
        and matcher.quick_ratio() >= REPEAT_RATIO
        and matcher.ratio() >= REPEAT_RATIO
    )


def _parse_time(value: str) -> datetime | None:
    try:
        return parse_stamp(value)
    except (TypeError, ValueError):
        return None
