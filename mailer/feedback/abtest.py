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
Every decision is stored with its figures in ``ab_tests``, with the last run of
the test share (``test_runs_upto``): runs after it sent the winner, so the test
share's figures stay its own however many winner messages follow.
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
from mailer.core.keys import OUTBOX_SUFFIX

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


def rule_of(ab: AbTest) -> str:
    """The test's settings as stored with it (JSON), so a report can state the rule."""
    return json.dumps(
        {
            "test_share": ab.test_share,
            "wait_minutes": round(ab.wait.total_seconds() / 60),
            "pick_by": ab.pick_by,
            "default": ab.default,
            "min_per_variant": ab.min_per_variant,
        }
    )


def test_keys(conn: Connection, campaign_id: str) -> list[str]:
    """The journal keys holding an A/B test of ``campaign_id`` (``id``, ``id@outbox``),
    the most recently started first."""
    return [
        str(key)
        for (key,) in conn.execute(
            "SELECT campaign_id FROM ab_tests WHERE campaign_id IN (?, ?)"
            " ORDER BY started_at DESC, campaign_id",
            (campaign_id, campaign_id + OUTBOX_SUFFIX),
        )
    ]


def start(conn: Connection, key: str, ab: AbTest, now: datetime) -> AbState:
    """Record that the test share is being sent now (once; a resumed run keeps the start)."""
    with transaction(conn):
        conn.execute(
            "INSERT INTO ab_tests (campaign_id, started_at, decide_after, rule) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (campaign_id) DO NOTHING",
            (key, stamp(now), stamp(now + ab.wait), rule_of(ab)),
        )
    return state_of(conn, key)


# The journal rows of the test share: every sent row before a decision; after it, the
# rows sent by runs up to ``test_runs_upto`` (a test decided before v13 kept no run: its
# rows are those sent before the decision).
IN_TEST_SHARE = (
    "(t.decided_at IS NULL OR"
    " (t.test_runs_upto IS NOT NULL AND coalesce(j.run_id, 0) <= t.test_runs_upto) OR"
    " (t.test_runs_upto IS NULL AND j.sent_at <= t.decided_at))"
)
TEST_SHARE_ROWS = f"j.campaign_id = ? AND j.status = 'sent' AND {IN_TEST_SHARE}"
_TEST_JOIN = "journal j LEFT JOIN ab_tests t ON t.campaign_id = j.campaign_id"


def figures(conn: Connection, key: str, pick_by: str) -> list[Figures]:
    """Sent and hits per variant letter over the test share only (a multilingual campaign's
    "en A" counts as A); the winner's later sends are not part of the test."""
    sent: dict[str, int] = {}
    for variant, count in conn.execute(
        f"SELECT j.variant, count(*) FROM {_TEST_JOIN} WHERE {TEST_SHARE_ROWS} GROUP BY 1",
        (key,),
    ):
        letter = letter_of(str(variant))
        sent[letter] = sent.get(letter, 0) + int(count)
    if pick_by == "clicks":
        query = (
            f"SELECT j.variant, count(DISTINCT c.email) FROM {_TEST_JOIN} JOIN clicks c"
            f" ON c.campaign_id = j.campaign_id AND c.email = j.email WHERE {TEST_SHARE_ROWS}"
            " GROUP BY 1"
        )
    else:
        query = (
            f"SELECT j.variant, count(DISTINCT f.email) FROM {_TEST_JOIN} JOIN feedback_events f"
            f" ON f.campaign_id = j.campaign_id AND f.email = j.email WHERE {TEST_SHARE_ROWS}"
            " AND f.kind IN ('unsubscribe', 'complaint') GROUP BY 1"
        )
    hits: dict[str, int] = {}
    for variant, count in conn.execute(query, (key,)):
        letter = letter_of(str(variant))
        hits[letter] = hits.get(letter, 0) + int(count)
    return [Figures(v, sent[v], hits.get(v, 0)) for v in sorted(sent)]


def letter_of(variant: str) -> str:
    """The A/B letter of a journal variant label ("en B" -> "B"; none -> "A")."""
    return variant.split()[-1] if variant.strip() else "A"


@dataclass(frozen=True)
class Comparison:
    """The best variant against the runner-up: the difference of their rates, a 95 %
    confidence interval for it (unpooled normal approximation) and the z-test's p-value."""

    best: Figures
    second: Figures
    p_value: float
    difference: float  # best.rate - second.rate
    low: float
    high: float


def compare(best: Figures, second: Figures) -> Comparison:
    """The two-proportion z-test (pooled, two-sided) and the 95 % interval (Wald)."""
    difference = best.rate - second.rate
    spread = math.sqrt(
        best.rate * (1 - best.rate) / best.sent + second.rate * (1 - second.rate) / second.sent
    )
    return Comparison(
        best,
        second,
        _two_proportion_p(best, second),
        difference,
        difference - Z_95 * spread,
        difference + Z_95 * spread,
    )


Z_95 = 1.959963984540054  # the normal quantile of 0.975


def format_p(p_value: float) -> str:
    """A p-value for people: "p < 0.001" rather than "p = 0.000"; two digits above 0.01."""
    if p_value < 0.001:
        return "p < 0.001"
    if p_value < 0.01:
        return f"p = {p_value:.3f}"
    return f"p = {p_value:.2f}"


@dataclass(frozen=True)
class Decision:
    """The chosen variant, why, and the figures behind it.

    ``comparison``: the test between the best and the runner-up, when one was
    made; ``clear``: the rule found a winner (False: the default goes, or a hand pick).
    """

    winner: str
    reason: str
    figures: list[Figures]
    comparison: Comparison | None = None
    clear: bool = False


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
    comparison = compare(ranked[0], ranked[1])
    what = "clicked" if ab.pick_by == "clicks" else "unsubscribed or complained"
    rates = ", ".join(f"{f.variant} {f.hits}/{f.sent} {what} ({f.rate:.1%})" for f in found)
    p_text = format_p(comparison.p_value)
    if comparison.p_value >= SIGNIFICANCE:
        return Decision(
            ab.default,
            f"no clear difference ({rates}; {p_text} >= {SIGNIFICANCE}): "
            f"the default {ab.default} goes",
            found,
            comparison,
        )
    best = ranked[0].variant
    return Decision(best, f"{best} wins ({rates}; {p_text})", found, comparison, clear=True)


def _two_proportion_p(a: Figures, b: Figures) -> float:
    """Two-sided p-value of the pooled two-proportion z-test."""
    pooled = (a.hits + b.hits) / (a.sent + b.sent)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / a.sent + 1 / b.sent))
    if spread == 0:
        return 1.0
    z = abs(a.rate - b.rate) / spread
    return math.erfc(z / math.sqrt(2))


def record(
    conn: Connection, key: str, decision: Decision, now: datetime, ab: AbTest | None = None
) -> None:
    """Store the decision and its figures (the first decision stands), and where the test
    share ends: the newest run so far; runs after it send the winner."""
    data = json.dumps([f.__dict__ for f in decision.figures])
    with transaction(conn):
        conn.execute(
            "INSERT INTO ab_tests (campaign_id, started_at, decide_after, rule) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (campaign_id) DO NOTHING",
            (key, stamp(now), stamp(now), rule_of(ab) if ab else ""),
        )
        last = conn.execute(
            "SELECT max(id) FROM campaign_runs WHERE campaign_id = ?", (key,)
        ).fetchone()
        conn.execute(
            "UPDATE ab_tests SET winner = ?, reason = ?, figures = ?, decided_at = ?,"
            " test_runs_upto = ?, rule = CASE WHEN rule = '' THEN ? ELSE rule END"
            " WHERE campaign_id = ? AND winner IS NULL",
            (
                decision.winner,
                decision.reason,
                data,
                stamp(now),
                int(last[0] or 0),
                rule_of(ab) if ab else "",
                key,
            ),
        )


def finish(conn: Connection, key: str, now: datetime) -> None:
    """The rest of the audience has the winner: later passes leave the test alone."""
    with transaction(conn):
        conn.execute(
            "UPDATE ab_tests SET finished_at = ? WHERE campaign_id = ? AND finished_at IS NULL",
            (stamp(now), key),
        )
