"""The figures of one campaign's report, read from the journal, the feedback events and clicks.

Everything is an aggregate: the overview (``mailer.report.overview``), the A/B
section (``mailer.report.abreport``), engagement by language, receiving domain
and over time (``mailer.report.engagement``), clicks per link and what came
back by reason. No address leaves this module. The SQL is in
``mailer.report.queries``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mailer.audience.database import Connection
from mailer.core.errors import SendError
from mailer.feedback.history import ReasonCount, campaign_reasons
from mailer.feedback.rates import Rates, campaign_rates
from mailer.report import queries
from mailer.report.abreport import AbSection, ab_section
from mailer.report.engagement import (
    Bin,
    by_domain,
    by_language,
    engagement_over_time,
    sending_bins,
    slice_dict,
    slot_seconds,
    stamp_width,
    time_to_clicks,
)
from mailer.report.overview import Overview, overview_of
from mailer.report.queries import KeyCounts, Slice

SCHEMA = "mailer-report/2"


@dataclass
class CampaignReport:
    """Everything ``mailer report`` shows about one journal key."""

    campaign: str
    statuses: dict[str, int]
    rates: Rates
    overview: Overview
    subjects: list[str] = field(default_factory=list)
    sending: list[Bin] = field(default_factory=list)  # accepted messages per slot
    timeline: list[Bin] = field(default_factory=list)  # clicks and feedback, hourly then daily
    domains: list[Slice] = field(default_factory=list)
    languages: list[Slice] = field(default_factory=list)
    variants: list[Slice] = field(default_factory=list)  # per journal label ("A", "en B")
    links: list[tuple[str, int, int]] = field(default_factory=list)  # url, clicks, clickers
    reasons: list[ReasonCount] = field(default_factory=list)  # what came back, by reason
    ab: AbSection | None = None
    note: str = ""  # how the key was found ("the outbox send: no real send yet")

    def click_times(self) -> list[tuple[float, str]]:
        """When half and nine tenths of the clicking people had clicked ("within 3 h")."""
        return time_to_clicks(self.timeline)

    @property
    def empty(self) -> bool:
        """Nothing was sent (or even queued) for this campaign yet."""
        return not any(self.statuses.values())

    def to_dict(self) -> dict[str, object]:
        """JSON-ready; the schema is documented in docs/incoming/issue-31.md."""
        return {
            "schema": SCHEMA,
            "campaign": self.campaign,
            "note": self.note or None,
            "subjects": self.subjects,
            "overview": self.overview.to_dict(),
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
            "ab": self.ab.to_dict() if self.ab else None,
            "languages": [slice_dict(s, "language") for s in self.languages],
            "domains": [slice_dict(s, "domain") for s in self.domains],
            "variants": [slice_dict(s, "variant") for s in self.variants],
            "timeline": [b.to_dict() for b in self.timeline],
            "click_times": [{"share": s, "when": w} for s, w in self.click_times()],
            "sending": [b.to_dict() for b in self.sending],
            "links": [{"url": u, "clicks": c, "clickers": p} for u, c, p in self.links],
            "reasons": [
                {"kind": r.kind, "reason": r.reason, "addresses": r.addresses, "example": r.example}
                for r in self.reasons
            ],
        }


def campaign_report(
    conn: Connection, campaign: str, *, exists: bool = False, note: str = ""
) -> CampaignReport:
    """The report of one journal key; an unknown one is an error naming the known ones.

    ``exists``: the campaign is known to exist (its file was given), so no sends
    yet makes an empty report that says so, not an error.
    """
    counts = queries.key_counts(conn, campaign).get(campaign, KeyCounts())
    if not counts.statuses and not exists and not queries.has_runs(conn, campaign):
        known = sorted(queries.key_counts(conn, None))
        raise SendError(
            f"no campaign {campaign!r} in the journal",
            hint="campaigns in the journal: " + (", ".join(known) or "none yet"),
        )
    report = CampaignReport(
        campaign, counts.statuses, campaign_rates(conn, campaign), overview_of(counts), note=note
    )
    if report.empty:
        return report
    report.subjects = queries.subjects_of(conn, campaign)
    report.reasons = campaign_reasons(conn, campaign)
    seconds = slot_seconds(counts.first_sent, counts.last_sent)
    report.sending = sending_bins(
        queries.sends_by(conn, campaign, stamp_width(seconds)), counts.first_sent, seconds
    )
    report.timeline = engagement_over_time(queries.events_by_hour(conn, campaign),
                                           counts.first_sent)  # fmt: skip
    report.domains = by_domain(queries.slices(conn, campaign, "domain"))
    report.variants = sorted(queries.slices(conn, campaign, "variant"), key=lambda s: s.name)
    report.languages = by_language(report.variants)
    report.links = queries.link_counts(conn, campaign)
    report.ab = ab_of(conn, campaign)
    return report


def ab_of(conn: Connection, key: str) -> AbSection | None:
    """The A/B section of a journal key (None without a test)."""
    row = queries.ab_row(conn, key)
    if row is None:
        return None
    return ab_section(row, queries.test_share_slices(conn, key), queries.winner_slices(conn, key))


@dataclass(frozen=True)
class IndexRow:
    """One journal key in ``mailer report --all``: its headline figures."""

    key: str
    overview: Overview

    def to_dict(self) -> dict[str, object]:
        """JSON-ready: the key and its overview."""
        return {"campaign": self.key, **self.overview.to_dict()}


def index_rows(conn: Connection, keys: list[str] | None = None) -> list[IndexRow]:
    """Every journal key (or ``keys``) with its overview, newest first send first."""
    counts = queries.key_counts(conn, None)
    wanted = keys if keys is not None else list(counts)
    rows = [IndexRow(k, overview_of(counts.get(k, KeyCounts()))) for k in wanted]
    if keys is None:
        rows.sort(key=lambda r: (r.overview.first_sent, r.key), reverse=True)
    return rows


def keys_of(conn: Connection, campaign_id: str) -> list[str]:
    """The journal keys a campaign id was sent under (itself, ``@outbox``, instances)."""
    return queries.keys_like(conn, campaign_id)
