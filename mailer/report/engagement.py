"""Engagement cut three ways: by language version, by receiving domain, and over time.

* By language: the journal labels a multilingual campaign's messages with the
  version ("en A"); a single-language campaign's labels are the A/B letters.
* By domain: the ten receiving domains with most recipients, the rest summed.
* Over time: the first 48 hours after the first message hour by hour (most
  clicks come then), then day by day, so a campaign read a week later still
  fits one chart; and the sending itself in slots sized to its length (a
  one-minute send is shown by the second, not as one block).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from mailer.core.clock import parse_stamp, stamp
from mailer.report.queries import Slice

TOP_DOMAINS = 10
HOURLY = 48  # hours shown one by one before the chart goes day by day
# Slot sizes for the sending chart, in seconds: the first that gives at most 60 slots.
_SLOTS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 86400)


def slice_dict(row: Slice, name: str = "name") -> dict[str, object]:
    """JSON-ready, with the rates."""
    return {
        name: row.name,
        "sent": row.sent,
        "clickers": row.clickers,
        "click_rate": round(row.click_rate, 5),
        "clicks": row.clicks,
        "unsubscribed": row.unsubscribed,
        "unsubscribe_rate": round(row.unsubscribe_rate, 5),
        "complained": row.complained,
        "hard_bounced": row.hard_bounced,
        "soft_bounced": row.soft_bounced,
        "failed": row.failed,
    }


def _summed(name: str, rows: list[Slice]) -> Slice:
    return Slice(
        name,
        *(
            sum(getattr(r, f) for r in rows)
            for f in ("sent", "clickers", "clicks", "unsubscribed", "complained",
                      "hard_bounced", "soft_bounced", "failed")
        ),
    )  # fmt: skip


def by_language(variants: list[Slice]) -> list[Slice]:
    """Per language version ("en", "zh-CN"); one row "all" for a single-language campaign."""
    groups: dict[str, list[Slice]] = {}
    for row in variants:
        parts = row.name.split()
        groups.setdefault(parts[0] if len(parts) > 1 else "all", []).append(row)
    return [_summed(name, rows) for name, rows in sorted(groups.items())]


def by_domain(domains: list[Slice]) -> list[Slice]:
    """The top receiving domains by recipients, then "other domains" summed."""
    ranked = sorted(domains, key=lambda r: (-(r.sent + r.failed), r.name))
    top, rest = ranked[:TOP_DOMAINS], ranked[TOP_DOMAINS:]
    return top + ([_summed(f"{len(rest)} other domains", rest)] if rest else [])


@dataclass(frozen=True)
class Bin:
    """One slot of a time chart: its start (UTC stamp), length and counts."""

    start: str
    seconds: int
    counts: dict[str, int] = field(default_factory=dict)

    def label(self, origin: datetime) -> str:
        """ "+5 h" within the hourly part, "day 3" after it, relative to ``origin``."""
        offset = parse_stamp(self.start) - origin
        if self.seconds < 86400:
            return f"+{round(offset.total_seconds() / 3600)} h"
        return f"day {offset.days + 1}"

    def to_dict(self) -> dict[str, object]:
        """JSON-ready."""
        return {"start": self.start, "seconds": self.seconds, **self.counts}


def engagement_over_time(hours: dict[str, dict[str, int]], first_sent: str) -> list[Bin]:
    """Hourly bins for the first 48 hours from the first message's hour, then daily bins,
    up to the last hour with an event. ``hours``: counts per ``YYYY-MM-DDTHH``."""
    if not first_sent or not hours:
        return []
    # An event stamped before the first message (clocks apart) starts the chart instead.
    earliest = min(parse_stamp(h + ":00:00Z") for h in hours)
    origin = min(parse_stamp(first_sent).replace(minute=0, second=0), earliest)
    last = max(parse_stamp(h + ":00:00Z") for h in hours)
    bins: list[Bin] = []
    moment = origin
    while moment <= last:
        width = timedelta(hours=1) if moment < origin + timedelta(hours=HOURLY) else timedelta(1)
        bins.append(Bin(stamp(moment), int(width.total_seconds())))
        moment += width
    for hour, counts in hours.items():
        when = parse_stamp(hour + ":00:00Z")
        index = _bin_index(bins, when)
        for name, count in counts.items():
            bins[index].counts[name] = bins[index].counts.get(name, 0) + count
    return bins


def _bin_index(bins: list[Bin], when: datetime) -> int:
    for i in range(len(bins) - 1, -1, -1):
        if parse_stamp(bins[i].start) <= when:
            return i
    return 0


def slot_seconds(first_sent: str, last_sent: str) -> int:
    """The sending chart's slot: the smallest of ``_SLOTS`` giving at most 60 slots."""
    if not first_sent or not last_sent:
        return 60
    span = (parse_stamp(last_sent) - parse_stamp(first_sent)).total_seconds()
    return next((s for s in _SLOTS if span / s < 60), _SLOTS[-1])


def stamp_width(seconds: int) -> int:
    """How many characters of a stamp to group by for slots of ``seconds``."""
    return 19 if seconds < 60 else 16 if seconds < 3600 else 13


def sending_bins(rows: list[tuple[str, int, int]], first_sent: str, seconds: int) -> list[Bin]:
    """Accepted messages per slot of ``seconds``, from counts per second/minute/hour."""
    if not rows or not first_sent:
        return []
    pad = {19: "Z", 16: ":00Z", 13: ":00:00Z"}
    origin = parse_stamp(first_sent)
    origin -= timedelta(seconds=origin.timestamp() % seconds)
    counts: dict[int, list[int]] = {}
    for slot, sent, retried in rows:
        when = parse_stamp(slot + pad[len(slot)])
        index = max(0, int((when - origin).total_seconds() // seconds))
        entry = counts.setdefault(index, [0, 0])
        entry[0] += sent
        entry[1] += retried
    return [
        Bin(
            stamp(origin + timedelta(seconds=i * seconds)),
            seconds,
            {"sent": counts.get(i, [0, 0])[0], "deferred_first": counts.get(i, [0, 0])[1]},
        )
        for i in range(max(counts) + 1)
    ]


def time_to_clicks(
    bins: list[Bin], shares: tuple[float, ...] = (0.5, 0.9)
) -> list[tuple[float, str]]:
    """When each share of the clicking people had clicked: [(0.5, "+2 h"), (0.9, "day 3")],
    the bin (hour, then day after the first 48) in which the running count reached it."""
    total = sum(b.counts.get("first_clicks", 0) for b in bins)
    if not total:
        return []
    origin = parse_stamp(bins[0].start)
    found: list[tuple[float, str]] = []
    running = 0
    for b in bins:
        running += b.counts.get("first_clicks", 0)
        for share in shares:
            if running >= share * total and share not in {s for s, _ in found}:
                hours = (parse_stamp(b.start) - origin).total_seconds() / 3600
                label = (
                    f"within {round(hours) + 1} h" if b.seconds < 86400 else f"by {b.label(origin)}"
                )
                found.append((share, label))
    return found
