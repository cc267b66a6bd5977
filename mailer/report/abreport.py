"""The A/B section: the test share and the winner send apart, and the decision with its figures.

Per-variant rates are taken over the test share only: once a winner is
picked, the rest of the audience gets the winner, and adding those messages to
its column would compare a 20 % slice with the whole list (B 25/221 instead of
25/76). The decision is restated from what was stored when it was made (the
test share's figures then, and the rule), so the report says exactly why a
variant won, or why the default went out: the p-value ("p < 0.001"), the sample
sizes, and a 95 % confidence interval for the difference between the best
variant and the runner-up.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta

from mailer.core.campaign import AbTest
from mailer.feedback.abtest import (
    SIGNIFICANCE,
    Comparison,
    Figures,
    choose,
    format_p,
    letter_of,
)
from mailer.report.overview import percent
from mailer.report.queries import AbRow, Slice

_DEFAULT_RULE = AbTest(0.0, timedelta(0), "clicks", "A", 100)


@dataclass(frozen=True)
class VariantShare:
    """One variant's figures over a group of recipients (the test share, or the winner send)."""

    variant: str
    sent: int
    clickers: int
    unsubscribed: int
    complained: int

    @property
    def click_rate(self) -> float:
        """Recipients who clicked per accepted message."""
        return self.clickers / self.sent if self.sent else 0.0

    def to_dict(self) -> dict[str, object]:
        """JSON-ready."""
        return {
            "variant": self.variant,
            "sent": self.sent,
            "clickers": self.clickers,
            "click_rate": round(self.click_rate, 5),
            "unsubscribed": self.unsubscribed,
            "complained": self.complained,
        }


@dataclass(frozen=True)
class AbDecision:
    """What was decided, on which figures, by which rule."""

    winner: str
    how: str  # "rule" (a clear winner), "default" (no clear winner), "hand" (picked by hand)
    reason: str  # as stored when decided
    decided_at: str
    figures: tuple[Figures, ...]  # the test share when decided: sent and hits per variant
    comparison: Comparison | None  # best against runner-up, on those figures

    @property
    def p_text(self) -> str:
        """ "p < 0.001", "p = 0.03" (empty without a comparison)."""
        return format_p(self.comparison.p_value) if self.comparison else ""

    def headline(self, default: str) -> str:
        """One line: "B wins: 32.9 % vs 11.3 % clicked (p < 0.001)" or "no clear winner → A"."""
        c = self.comparison
        if self.how == "rule" and c is not None:
            return (
                f"{self.winner} wins: {percent(c.best.rate)} vs {percent(c.second.rate)} "
                f"({c.second.variant}), {self.p_text}"
            )
        if self.how == "hand":
            return f"{self.winner} picked by hand"
        return f"no clear winner → the default, {default}"

    def interval_text(self) -> str:
        """ "+21.6 points (95% CI +12.1 to +31.1)" for the best minus the runner-up."""
        c = self.comparison
        if c is None:
            return ""
        return (
            f"{100 * c.difference:+.1f} points (95% CI {100 * c.low:+.1f} to {100 * c.high:+.1f})"
        )

    def to_dict(self) -> dict[str, object]:
        """JSON-ready."""
        c = self.comparison
        return {
            "winner": self.winner,
            "how": self.how,
            "reason": self.reason,
            "decided_at": self.decided_at,
            "figures": [
                {"variant": f.variant, "sent": f.sent, "hits": f.hits, "rate": round(f.rate, 5)}
                for f in self.figures
            ],
            "comparison": None
            if c is None
            else {
                "best": c.best.variant,
                "runner_up": c.second.variant,
                "p_value": c.p_value,
                "p": format_p(c.p_value),
                "significant": c.p_value < SIGNIFICANCE,
                "difference": round(c.difference, 5),
                "ci95": [round(c.low, 5), round(c.high, 5)],
            },
        }


@dataclass(frozen=True)
class AbSection:
    """A campaign's A/B test as the report shows it."""

    rule: AbTest
    started_at: str
    decide_after: str
    test_share: tuple[VariantShare, ...]  # now, over the test share only
    decision: AbDecision | None
    winner_send: VariantShare | None  # the rest of the audience, after the decision
    finished: bool

    def rule_text(self) -> str:
        """The rule in words."""
        r = self.rule
        if r.pick_by == "manual":
            return f"picked by hand (pick_by manual); without a pick the default, {r.default}"
        what = (
            "the highest share of recipients who clicked"
            if r.pick_by == "clicks"
            else "the lowest share who unsubscribed or complained"
        )
        return (
            f"{what} wins when a two-sided two-proportion z-test against the runner-up gives "
            f"p < {SIGNIFICANCE} with at least {r.min_per_variant} sends per variant; "
            f"otherwise the default, {r.default}"
        )

    def to_dict(self) -> dict[str, object]:
        """JSON-ready."""
        r = self.rule
        return {
            "rule": {
                "test_share": r.test_share,
                "wait_minutes": round(r.wait.total_seconds() / 60),
                "pick_by": r.pick_by,
                "default": r.default,
                "min_per_variant": r.min_per_variant,
                "significance": SIGNIFICANCE,
                "text": self.rule_text(),
            },
            "started_at": self.started_at,
            "decide_after": self.decide_after,
            "test_share": [v.to_dict() for v in self.test_share],
            "decision": self.decision.to_dict() if self.decision else None,
            "winner_send": self.winner_send.to_dict() if self.winner_send else None,
            "finished": self.finished,
        }


def by_letter(rows: list[Slice]) -> tuple[VariantShare, ...]:
    """Slices per journal label ("en A", "zh A") summed per A/B letter."""
    found: dict[str, list[int]] = {}
    for row in rows:
        sums = found.setdefault(letter_of(row.name), [0, 0, 0, 0])
        for i, value in enumerate((row.sent, row.clickers, row.unsubscribed, row.complained)):
            sums[i] += value
    return tuple(VariantShare(letter, *found[letter]) for letter in sorted(found))


def rule_from(text: str) -> AbTest:
    """The rule stored with a test (the defaults for a test stored before v13)."""
    try:
        data = json.loads(text) if text else {}
        return AbTest(
            float(data["test_share"]),
            timedelta(minutes=int(data["wait_minutes"])),
            str(data["pick_by"]),
            str(data["default"]),
            int(data["min_per_variant"]),
        )
    except (ValueError, KeyError, TypeError):
        return _DEFAULT_RULE


def _stored_figures(text: str) -> tuple[Figures, ...]:
    try:
        rows = json.loads(text) if text else []
        return tuple(Figures(str(r["variant"]), int(r["sent"]), int(r["hits"])) for r in rows)
    except (ValueError, KeyError, TypeError):
        return ()


def decision_of(row: AbRow, rule: AbTest) -> AbDecision | None:
    """The stored decision restated: the rule run again on the stored figures says whether
    it was the rule's clear winner, the default for want of one, or a pick by hand."""
    if row.winner is None:
        return None
    stored = _stored_figures(row.figures)
    again = choose(list(stored), rule)
    if again.winner == row.winner and again.clear:
        how = "rule"
    elif row.winner == rule.default and not again.clear and "by hand" not in row.reason:
        how = "default"
    else:
        how = "hand"
    comparison = again.comparison
    return AbDecision(row.winner, how, row.reason, str(row.decided_at or ""), stored, comparison)


def ab_section(row: AbRow, test_rows: list[Slice], winner_rows: list[Slice]) -> AbSection:
    """The section from the stored test and the slices of the journal."""
    rule = rule_from(row.rule)
    winners = by_letter(winner_rows)
    return AbSection(
        rule,
        row.started_at,
        row.decide_after,
        by_letter(test_rows),
        decision_of(row, rule),
        _together(winners),
        row.finished_at is not None,
    )


def _together(shares: tuple[VariantShare, ...]) -> VariantShare | None:
    """The winner send as one row (one letter, unless a pick changed between runs)."""
    if not shares:
        return None
    if len(shares) == 1:
        return shares[0]
    sums = [sum(getattr(s, name) for s in shares)
            for name in ("sent", "clickers", "unsubscribed", "complained")]  # fmt: skip
    return VariantShare("+".join(s.variant for s in shares), *sums)
