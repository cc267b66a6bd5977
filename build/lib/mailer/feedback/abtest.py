"""A/B tests with a test share: who is in it, when it is decided, and which variant won.

The test share is a deterministic slice of the audience (a hash of the
campaign and the address), split between the variants as every send is. After
``wait``, the variant with the best rate wins — most recipients who clicked
(``pick_by = "clicks"``) or fewest who unsubscribed or complained
(``"unsubscribes"``) — but only when the difference is clear: a two-sided
two-proportion z-test between the best and the runner-up at p < 0.05, with at
least ``min_per_variant`` sends each. Otherwise the stated ``default`` is sent,
and the decision says why. Why this test: the outcome per recipient is yes/no,
the samples are independent and (with >= 100 per variant) large enough for the
normal approximation; it is the test Mailchimp and most A/B calculators use.
Every decision is stored with its figures in ``ab_tests``.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from datetime import datetime

from mailer.audience.database import Connection
from mailer.audience.store import transaction
from mailer.core.campaign import AbTest
from mailer.core.clock import parse_stamp, stamp

SIGNIFICANCE = 0.05


def in_test_share(campaign: str, email: str, share: float) -> bool:
    """Whether ``email`` belongs to the campaign's test share (stable, independent of A/B)."""
    digest = hashlib.sha256(f"{campaign}\0ab-share\0{email.lower()}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


@dataclass(frozen=True)
class Figures:
    """One variant's test-share figures."""

    variant: str
    sent: int
    hits: int  # recipients who clicked (or unsubscribed/complained, by pick_by)

    @property
    def rate(self) -> float:
        """Hits per sent message."""
        return self.hits / self.sent if self.sent else 0.0


@dataclass(frozen=True)
class AbState:
    """Where a campaign's A/B test stands."""

    started_at: datetime | None  # None: the test share has not been sent yet
    decide_after: datetime | None
    winner: str | None
    reason: str = ""
    finished: bool = False  # the winner has reached the rest of the audience

    def due(self, now: datetime) -> bool:
        """The wait is over and nobody has decided yet."""
        return self.winner is None and self.decide_after is not None and now >= self.decide_after


def state_of(conn: Connection, key: str) -> AbState:
    """The A/B state of a journal key."""
    row = conn.execute(
        "SELECT started_at, decide_after, winner, reason, finished_at FROM ab_tests"
        " WHERE campaign_id = ?",
        (key,),
    ).fetchone()
    if row is None:
        return AbState(None, None, None)
    started, decide_after = parse_stamp(row[0]), parse_stamp(row[1])
    return AbState(started, decide_after, row[2], str(row[3] or ""), row[4] is not None)


def start(conn: Connection, key: str, ab: AbTest, now: datetime) -> AbState:
    """Record that the test share is being sent now (once; a resumed run keeps the start)."""
    with transaction(conn):
        conn.execute(
            "INSERT INTO ab_tests (campaign_id, started_at, decide_after) VALUES (?, ?, ?)"
            " ON CONFLICT (campaign_id) DO NOTHING",
            (key, stamp(now), stamp(now + ab.wait)),
        )
    return state_of(conn, key)


def figures(conn: Connection, key: str, pick_by: str) -> list[Figures]:
    """Sent and hits per variant letter (a multilingual campaign's "en A" counts as A)."""
    sent: dict[str, int] = {}
    for variant, count in conn.execute(
        "SELECT variant, count(*) FROM journal WHERE campaign_id = ? AND status = 'sent'"
        " GROUP BY variant",
        (key,),
    ):
        letter = str(variant).split()[-1] if variant else "A"
        sent[letter] = sent.get(letter, 0) + int(count)
    if pick_by == "clicks":
        query = "SELECT variant, count(DISTINCT email) FROM clicks WHERE campaign_id = ? GROUP BY 1"
    else:
        query = (
            "SELECT j.variant, count(DISTINCT f.email) FROM feedback_events f JOIN journal j"
            " ON j.campaign_id = f.campaign_id AND j.email = f.email WHERE f.campaign_id = ?"
            " AND f.kind IN ('unsubscribe', 'complaint') GROUP BY 1"
        )
    hits: dict[str, int] = {}
    for variant, count in conn.execute(query, (key,)):
        letter = str(variant).split()[-1] if variant else "A"
        hits[letter] = hits.get(letter, 0) + int(count)
    return [Figures(v, sent[v], hits.get(v, 0)) for v in sorted(sent)]


@dataclass(frozen=True)
class Decision:
    """The chosen variant, why, and the figures behind it."""

    winner: str
    reason: str
    figures: list[Figures]


def choose(found: list[Figures], ab: AbTest) -> Decision:
    """The rule of the module docstring, applied to the figures."""
    if ab.pick_by == "manual":
        return Decision(ab.default, "pick_by is manual: nobody picked, the default goes", found)
    if len(found) < 2:
        return Decision(ab.default, "fewer than two variants were sent: the default goes", found)
    small = [f for f in found if f.sent < ab.min_per_variant]
    if small:
        sizes = ", ".join(f"{f.variant} {f.sent}" for f in found)
        return Decision(
            ab.default,
            f"too few sends to tell ({sizes}; at least {ab.min_per_variant} each): "
            f"the default {ab.default} goes",
            found,
        )
    lower_is_better = ab.pick_by == "unsubscribes"
    ranked = sorted(found, key=lambda f: f.rate, reverse=not lower_is_better)
    best, second = ranked[0], ranked[1]
    p_value = _two_proportion_p(best, second)
    what = "clicked" if ab.pick_by == "clicks" else "unsubscribed or complained"
    rates = ", ".join(f"{f.variant} {f.hits}/{f.sent} {what} ({f.rate:.1%})" for f in found)
    if p_value >= SIGNIFICANCE:
        return Decision(
            ab.default,
            f"no clear difference ({rates}; p = {p_value:.2f} >= {SIGNIFICANCE}): "
            f"the default {ab.default} goes",
            found,
        )
    return Decision(best.variant, f"{best.variant} wins ({rates}; p = {p_value:.3f})", found)


def _two_proportion_p(a: Figures, b: Figures) -> float:
    """Two-sided p-value of the pooled two-proportion z-test."""
    pooled = (a.hits + b.hits) / (a.sent + b.sent)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / a.sent + 1 / b.sent))
    if spread == 0:
        return 1.0
    z = abs(a.rate - b.rate) / spread
    return math.erfc(z / math.sqrt(2))


def record(conn: Connection, key: str, decision: Decision, now: datetime) -> None:
    """Store the decision and its figures (the first decision stands)."""
    data = json.dumps([f.__dict__ for f in decision.figures])
    with transaction(conn):
        conn.execute(
            "INSERT INTO ab_tests (campaign_id, started_at, decide_after) VALUES (?, ?, ?)"
            " ON CONFLICT (campaign_id) DO NOTHING",
            (key, stamp(now), stamp(now)),
        )
        conn.execute(
            "UPDATE ab_tests SET winner = ?, reason = ?, figures = ?, decided_at = ?"
            " WHERE campaign_id = ? AND winner IS NULL",
            (decision.winner, decision.reason, data, stamp(now), key),
        )


def finish(conn: Connection, key: str, now: datetime) -> None:
    """The rest of the audience has the winner: later passes leave the test alone."""
    with transaction(conn):
        conn.execute(
            "UPDATE ab_tests SET finished_at = ? WHERE campaign_id = ? AND finished_at IS NULL",
            (stamp(now), key),
        )
