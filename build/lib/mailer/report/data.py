"""The figures of one campaign's report, read from the journal, the feedback events and clicks.

Everything is an aggregate: counts per status, per minute, per receiving
domain, per day and kind of feedback, per link and per A/B variant. No
address leaves this module.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from mailer.audience.database import Connection
from mailer.core.errors import SendError
from mailer.feedback.history import ReasonCount, campaign_reasons
from mailer.feedback.rates import Rates, campaign_rates


@dataclass(frozen=True)
class VariantFigures:
    """One A/B variant (per language in a multilingual campaign): sent, clicked, rate."""

    variant: str
    sent: int
    clickers: int  # recipients who clicked at least once

    @property
    def click_rate(self) -> float:
        """Clicking recipients per sent message."""
        return self.clickers / self.sent if self.sent else 0.0


@dataclass
class CampaignReport:
    """Everything ``mailer report`` shows."""

    campaign: str
    statuses: dict[str, int]
    rates: Rates
    per_minute: list[tuple[str, int, int]] = field(default_factory=list)  # minute, sent, retried
    domains: list[tuple[str, dict[str, int]]] = field(default_factory=list)  # top domains
    feedback: list[tuple[str, str, int]] = field(default_factory=list)  # day, kind, addresses
    links: list[tuple[str, int, int]] = field(default_factory=list)  # url, clicks, clickers
    variants: list[VariantFigures] = field(default_factory=list)
    reasons: list[ReasonCount] = field(default_factory=list)  # what came back, by reason

    @property
    def empty(self) -> bool:
        """Nothing was sent (or even queued) for this campaign yet."""
        return not any(self.statuses.values())

    def to_dict(self) -> dict[str, object]:
        """JSON-ready."""
        return {
            "campaign": self.campaign,
            "statuses": self.statuses,
            "rates": {
                "delivered": self.rates.delivered,
                "hard_bounces": self.rates.bounced,
                "bounce_rate": round(self.rates.bounce_rate, 5),
                "complaints": self.rates.complained,
                "complaint_rate": round(self.rates.complaint_rate, 5),
                "unsubscribes": self.rates.unsubscribed,
                "sender_side": self.rates.sender_side,
                "sender_rate": round(self.rates.sender_rate, 5),
            },
            "reasons": [
                {"kind": r.kind, "reason": r.reason, "addresses": r.addresses, "example": r.example}
                for r in self.reasons
            ],
            "per_minute": [{"minute": m, "sent": s, "retried": r} for m, s, r in self.per_minute],
            "domains": [{"domain": d, **counts} for d, counts in self.domains],
            "feedback": [{"day": d, "kind": k, "count": c} for d, k, c in self.feedback],
            "links": [{"url": u, "clicks": c, "clickers": p} for u, c, p in self.links],
            "variants": [
                {**asdict(v), "click_rate": round(v.click_rate, 5)} for v in self.variants
            ],
        }


TOP_DOMAINS = 10


def campaign_report(conn: Connection, campaign: str, *, exists: bool = False) -> CampaignReport:
    """The report of one journal key; an unknown one is an error naming the known ones.

    ``exists``: the campaign is known to exist (its file was given), so no sends
    yet makes an empty report that says so, not an error.
    """
    statuses = {
        str(status): int(count)
        for status, count in conn.execute(
            "SELECT status, count(*) FROM journal WHERE campaign_id = ? GROUP BY status",
            (campaign,),
        )
    }
    if not statuses:
        known = [str(r[0]) for r in conn.execute("SELECT DISTINCT campaign_id FROM journal")]
        runs = conn.execute(
            "SELECT 1 FROM campaign_runs WHERE campaign_id = ? LIMIT 1", (campaign,)
        ).fetchone()
        if runs is None and not exists:
            raise SendError(
                f"no campaign {campaign!r} in the journal",
                hint="campaigns in the journal: " + (", ".join(sorted(known)) or "none yet"),
            )
    report = CampaignReport(campaign, statuses, campaign_rates(conn, campaign))
    report.reasons = campaign_reasons(conn, campaign)
    report.per_minute = [
        (str(minute), int(sent), int(retried))
        for minute, sent, retried in conn.execute(
            "SELECT substr(sent_at, 1, 16), count(*), count(*) FILTER (WHERE attempts > 1)"
            " FROM journal WHERE campaign_id = ? AND status = 'sent' GROUP BY 1 ORDER BY 1",
            (campaign,),
        )
    ]
    by_domain: dict[str, dict[str, int]] = {}
    for domain, status, count in conn.execute(
        'SELECT lower(substr(email COLLATE "BINARY", instr(email COLLATE "BINARY", \'@\') + 1)),'
        " status, count(*) FROM journal"
        " WHERE campaign_id = ? GROUP BY 1, 2",
        (campaign,),
    ):
        by_domain.setdefault(str(domain), {})[str(status)] = int(count)
    ranked = sorted(by_domain.items(), key=lambda item: -sum(item[1].values()))
    report.domains = ranked[:TOP_DOMAINS]
    report.feedback = [
        (str(day), str(kind), int(count))
        for day, kind, count in conn.execute(
            "SELECT substr(received_at, 1, 10), kind, count(DISTINCT email) FROM feedback_events"
            " WHERE campaign_id = ? GROUP BY 1, 2 ORDER BY 1, 2",
            (campaign,),
        )
    ]
    report.links = [
        (str(url), int(clicks), int(people))
        for url, clicks, people in conn.execute(
            "SELECT url, count(*), count(DISTINCT email) FROM clicks WHERE campaign_id = ?"
            " GROUP BY url ORDER BY 2 DESC",
            (campaign,),
        )
    ]
    clickers = {
        str(variant): int(count)
        for variant, count in conn.execute(
            "SELECT variant, count(DISTINCT email) FROM clicks WHERE campaign_id = ?"
            " GROUP BY variant",
            (campaign,),
        )
    }
    report.variants = [
        VariantFigures(str(variant), int(sent), clickers.get(str(variant), 0))
        for variant, sent in conn.execute(
            "SELECT variant, count(*) FROM journal WHERE campaign_id = ? AND status = 'sent'"
            " GROUP BY variant ORDER BY variant",
            (campaign,),
        )
    ]
    return report
