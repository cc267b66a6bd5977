"""The overview a marketer reads first: seven figures, each with what it means.

One denominator per kind of figure, said in each meaning:

* **sent**: messages we tried to deliver (the journal's ``sent``, ``failed``,
  ``deferred`` and ``sending`` rows; suppressed, held, queued and missed people
  were never mailed);
* **delivered**: accepted by the receiving server and not bounced back after
  (a hard bounce reported about an accepted message undoes its delivery);
* delivered %, hard bounce % and soft bounce % are shares of *sent*; unique
  click rate, clicks per recipient, unsubscribe % and complaint % are shares
  of *delivered* (what the reader could act on).

The figures are plain counts from the journal, the click log and the feedback
events (``mailer.report.queries.KeyCounts``); no address is involved.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailer.report.queries import KeyCounts

COMPLAINT_LINE = 0.003  # Gmail's and Yahoo's bulk-sender rule: keep spam reports under 0.3 %
HARD_BOUNCE_LINE = 0.02  # above 2 % the list has many dead addresses: clean it
TRIED = ("sent", "failed", "deferred", "sending")


@dataclass(frozen=True)
class Metric:
    """One figure of the overview."""

    key: str  # the name in the JSON
    label: str
    count: int  # people or messages (clicks for ``clicks_per_recipient``)
    rate: float  # share of ``of`` (clicks per recipient: a ratio, not a share)
    of: str  # "sent" or "delivered": the denominator
    meaning: str
    limit: float | None = None  # a line it should stay under

    @property
    def over_limit(self) -> bool:
        """Above the line it should stay under."""
        return self.limit is not None and self.rate > self.limit

    def rate_text(self) -> str:
        """The rate for people: "4.2%", "0.15%" (two decimals under 1 %), "1.31" (a ratio)."""
        if self.key == "clicks_per_recipient":
            return f"{self.rate:.2f}"
        return percent(self.rate)


def percent(share: float) -> str:
    """A share as a percentage, precise where it matters: 0.15%, 4.2%, 100%."""
    value = 100 * share
    if value == 0 or value >= 99.95:
        return f"{value:.0f}%"
    return f"{value:.2f}%" if value < 1 else f"{value:.1f}%"


@dataclass(frozen=True)
class Overview:
    """The headline figures of one journal key."""

    sent: int
    delivered: int
    metrics: tuple[Metric, ...]
    first_sent: str  # UTC stamps of the first and last accepted message ("" when none)
    last_sent: str

    def metric(self, key: str) -> Metric:
        """The figure called ``key`` (``"unique_clicks"`` ...)."""
        return next(m for m in self.metrics if m.key == key)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready (the schema is in docs/incoming/issue-31.md)."""
        return {
            "sent": self.sent,
            "delivered": self.delivered,
            "first_sent": self.first_sent or None,
            "last_sent": self.last_sent or None,
            **{
                m.key: {
                    "count": m.count,
                    "rate": round(m.rate, 5),
                    "of": m.of,
                    "meaning": m.meaning,
                    **({"limit": m.limit, "over_limit": m.over_limit} if m.limit else {}),
                }
                for m in self.metrics
            },
        }


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def overview_of(counts: KeyCounts) -> Overview:
    """The overview of one key's counts."""
    statuses = counts.statuses
    sent = sum(statuses.get(s, 0) for s in TRIED)
    accepted = statuses.get("sent", 0)
    delivered = max(0, accepted - counts.bounced_after_delivery)
    reported = counts.reported
    hard = counts.refused + reported.get("hard_bounce", 0)
    metrics = (
        Metric("delivered", "Delivered", delivered, _share(delivered, sent), "sent",
               "accepted by the receiving server, not bounced back"),
        Metric("unique_clicks", "Unique clicks", counts.clickers,
               _share(counts.clickers, delivered), "delivered",
               "people who clicked a link"),
        Metric("clicks_per_recipient", "Clicks per recipient", counts.clicks,
               _share(counts.clicks, delivered), "delivered",
               "all clicks per delivered message, repeat clicks too"),
        Metric("unsubscribes", "Unsubscribed", reported.get("unsubscribe", 0),
               _share(reported.get("unsubscribe", 0), delivered), "delivered",
               "people who unsubscribed"),
        Metric("complaints", "Spam complaints", reported.get("complaint", 0),
               _share(reported.get("complaint", 0), delivered), "delivered",
               "people who reported it as spam; keep under 0.3%",
               limit=COMPLAINT_LINE),
        Metric("hard_bounces", "Hard bounces", hard, _share(hard, sent), "sent",
               "no such address, or refused for good", limit=HARD_BOUNCE_LINE),
        Metric("soft_bounces", "Soft bounces", counts.soft_bounced,
               _share(counts.soft_bounced, sent), "sent",
               "refused for now (mailbox full, greylisting ...)"),
    )  # fmt: skip
    return Overview(sent, delivered, metrics, counts.first_sent, counts.last_sent)
