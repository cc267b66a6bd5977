"""The report's SQL: counts per journal key, per variant, per receiving domain and per hour.

Every query returns aggregates only (no address leaves this module). A query
given ``key=None`` answers for every journal key at once, grouped by key, so
``mailer report --all`` costs a handful of queries however many campaigns
there are. The statements run on SQLite and, through the store's translation,
on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from mailer.audience.database import Connection
from mailer.feedback.abtest import IN_TEST_SHARE, TEST_SHARE_ROWS

# The receiving domain of an address column, lower case.
_DOMAIN = 'lower(substr({0} COLLATE "BINARY", instr({0} COLLATE "BINARY", \'@\') + 1))'


@dataclass
class KeyCounts:
    """What the overview needs of one journal key, as counts."""

    statuses: dict[str, int] = field(default_factory=dict)
    refused: int = 0  # journal rows refused during the send as unknown (hard bounce)
    reported: dict[str, int] = field(default_factory=dict)  # feedback kind -> addresses
    bounced_after_delivery: int = 0  # hard bounces reported about accepted messages
    soft_bounced: int = 0  # addresses reported soft-bounced, or still deferred
    clicks: int = 0
    clickers: int = 0
    first_sent: str = ""
    last_sent: str = ""


def _where(key: str | None, column: str = "campaign_id") -> tuple[str, tuple[str, ...]]:
    return (f"WHERE {column} = ?", (key,)) if key is not None else ("", ())


def key_counts(conn: Connection, key: str | None) -> dict[str, KeyCounts]:
    """The overview's counts per journal key (only ``key`` when it is given)."""
    found: dict[str, KeyCounts] = {}

    def of(campaign: object) -> KeyCounts:
        return found.setdefault(str(campaign), KeyCounts())

    where, args = _where(key)
    for campaign, status, count, refused, first, last in conn.execute(
        "SELECT campaign_id, status, count(*), count(*) FILTER (WHERE bounce = 1),"
        f" min(sent_at), max(sent_at) FROM journal {where} GROUP BY 1, 2",
        args,
    ):
        counts = of(campaign)
        counts.statuses[str(status)] = int(count)
        counts.refused += int(refused or 0)
        if first and (not counts.first_sent or str(first) < counts.first_sent):
            counts.first_sent = str(first)
        if last and str(last) > counts.last_sent:
            counts.last_sent = str(last)
    for campaign, kind, count in conn.execute(
        f"SELECT campaign_id, kind, count(DISTINCT email) FROM feedback_events {where}"
        " GROUP BY 1, 2",
        args,
    ):
        if str(campaign) in found:
            of(campaign).reported[str(kind)] = int(count)
    jwhere, jargs = _where(key, "j.campaign_id")
    for campaign, count in conn.execute(
        "SELECT j.campaign_id, count(DISTINCT f.email) FROM journal j JOIN feedback_events f"
        " ON f.campaign_id = j.campaign_id AND f.email = j.email"
        f" {jwhere} {'AND' if jwhere else 'WHERE'} j.status = 'sent' AND f.kind = 'hard_bounce'"
        " GROUP BY 1",
        jargs,
    ):
        of(campaign).bounced_after_delivery = int(count)
    for campaign, count in conn.execute(
        "SELECT campaign_id, count(DISTINCT email) FROM ("
        f" SELECT campaign_id, email FROM feedback_events {where}"
        f" {'AND' if where else 'WHERE'} kind = 'soft_bounce'"
        f" UNION SELECT campaign_id, email FROM journal {where}"
        f" {'AND' if where else 'WHERE'} status = 'deferred') soft GROUP BY 1",
        args * 2,
    ):
        if str(campaign) in found:
            of(campaign).soft_bounced = int(count)
    for campaign, clicks, people in conn.execute(
        f"SELECT campaign_id, count(*), count(DISTINCT email) FROM clicks {where} GROUP BY 1",
        args,
    ):
        if str(campaign) in found:
            counts = of(campaign)
            counts.clicks, counts.clickers = int(clicks), int(people)
    return found


def subjects_of(conn: Connection, key: str) -> list[str]:
    """The subject lines (templates, one per A/B variant) of the key's first run."""
    row = conn.execute(
        "SELECT subject FROM campaign_runs WHERE campaign_id = ? ORDER BY id LIMIT 1", (key,)
    ).fetchone()
    return [s for s in str(row[0] or "").split("\n") if s] if row else []


def keys_like(conn: Connection, campaign_id: str) -> list[str]:
    """The journal keys of a campaign id: itself, ``id@outbox`` and scheduled instances
    (``id@2027``, ``id@2027@outbox``), by first send."""
    return [
        str(k)
        for (k,) in conn.execute(
            # A prefix compared as it is: LIKE would read the id's own "_" as a wildcard.
            "SELECT campaign_id FROM journal WHERE campaign_id = ? OR substr(campaign_id, 1, ?) = ?"
            " GROUP BY campaign_id ORDER BY min(coalesce(sent_at, queued_at)), campaign_id",
            (campaign_id, len(campaign_id) + 1, campaign_id + "@"),
        )
    ]


def has_runs(conn: Connection, key: str) -> bool:
    """A send was started under ``key`` (even if it journaled nobody)."""
    row = conn.execute("SELECT 1 FROM campaign_runs WHERE campaign_id = ? LIMIT 1", (key,))
    return row.fetchone() is not None


@dataclass(frozen=True)
class Slice:
    """Counts of one slice of a campaign's recipients (a variant, a language, a domain)."""

    name: str
    sent: int  # accepted by the receiving server (journal ``sent``)
    clickers: int = 0
    clicks: int = 0
    unsubscribed: int = 0
    complained: int = 0
    hard_bounced: int = 0  # refused as unknown during the send, or reported after
    soft_bounced: int = 0
    failed: int = 0  # every journal row that did not end ``sent`` (suppressed ones apart)

    @property
    def click_rate(self) -> float:
        """Recipients who clicked per accepted message."""
        return self.clickers / self.sent if self.sent else 0.0

    @property
    def unsubscribe_rate(self) -> float:
        """Recipients who unsubscribed per accepted message."""
        return self.unsubscribed / self.sent if self.sent else 0.0


def _slice_join(extra: str) -> tuple[str, str]:
    """The journal (with the A/B test's row when ``extra`` needs it) and the rows' filter."""
    joined = "journal j"
    if "t." in extra:
        joined += " LEFT JOIN ab_tests t ON t.campaign_id = j.campaign_id"
    return joined, (extra or "j.campaign_id = ?") + " AND j.status <> 'suppressed'"


def slices(conn: Connection, key: str, by: str, extra: str = "") -> list[Slice]:
    """The key's recipients cut by ``by``: ``"variant"`` (the journal's label, "en A"),
    ``"domain"`` (receiving domain); ``extra`` narrows the rows (SQL on ``j`` and ``t``,
    the A/B test's row).

    Three grouped passes (journal; clicks and feedback, each joined to its journal row by
    the journal's key): no per-row subquery, so 100,000 recipients take well under a second.
    """
    column = "j.variant" if by == "variant" else _DOMAIN.format("j.email")
    joined, where = _slice_join(extra)
    counts: dict[str, dict[str, int]] = {}

    def add(name: object, field_name: str, value: object) -> None:
        slot = counts.setdefault(str(name or ""), {})
        slot[field_name] = slot.get(field_name, 0) + int(value or 0)  # type: ignore[call-overload]

    for name, sent, failed, refused, deferred in conn.execute(
        f"SELECT {column}, count(*) FILTER (WHERE j.status = 'sent'),"
        " count(*) FILTER (WHERE j.status IN ('failed', 'deferred', 'missed')),"
        " count(*) FILTER (WHERE j.bounce = 1), count(*) FILTER (WHERE j.status = 'deferred')"
        f" FROM {joined} WHERE {where} GROUP BY 1",
        (key,),
    ):
        row = {"sent": sent, "failed": failed, "hard_bounced": refused, "soft_bounced": deferred}
        for field_name, value in row.items():
            add(name, field_name, value)
    for name, people, clicks in conn.execute(
        f"SELECT {column}, count(DISTINCT c.email), count(*) FROM {joined} JOIN clicks c"
        f" ON c.campaign_id = j.campaign_id AND c.email = j.email WHERE {where} GROUP BY 1",
        (key,),
    ):
        add(name, "clickers", people)
        add(name, "clicks", clicks)
    fields = {"unsubscribe": "unsubscribed", "complaint": "complained",
              "hard_bounce": "hard_bounced", "soft_bounce": "soft_bounced"}  # fmt: skip
    # A hard bounce already counted as refused during the send (or a soft one for an address
    # still deferred) is the same address: counted once.
    for name, kind, people in conn.execute(
        f"SELECT {column}, f.kind, count(DISTINCT f.email) FROM {joined} JOIN feedback_events f"
        f" ON f.campaign_id = j.campaign_id AND f.email = j.email WHERE {where}"
        " AND f.kind IN ('unsubscribe', 'complaint', 'hard_bounce', 'soft_bounce')"
        " AND NOT (f.kind = 'hard_bounce' AND j.bounce = 1)"
        " AND NOT (f.kind = 'soft_bounce' AND j.status = 'deferred') GROUP BY 1, 2",
        (key,),
    ):
        add(name, fields[str(kind)], people)
    return [
        Slice(name, **{f: c.get(f, 0) for f in (
            "sent", "clickers", "clicks", "unsubscribed", "complained", "hard_bounced",
            "soft_bounced", "failed")})
        for name, c in counts.items()
    ]  # fmt: skip


def test_share_slices(conn: Connection, key: str) -> list[Slice]:
    """Per variant label over the A/B test share's rows only."""
    return slices(conn, key, "variant", TEST_SHARE_ROWS)


def winner_slices(conn: Connection, key: str) -> list[Slice]:
    """Per variant label over the rows sent after the decision (the winner send)."""
    winners = "j.campaign_id = ? AND j.status = 'sent' AND t.decided_at IS NOT NULL"
    return slices(conn, key, "variant", f"{winners} AND NOT {IN_TEST_SHARE}")


@dataclass(frozen=True)
class AbRow:
    """A campaign's ``ab_tests`` row."""

    started_at: str
    decide_after: str
    winner: str | None
    reason: str
    figures: str  # JSON: the test share's figures when decided
    decided_at: str | None
    finished_at: str | None
    rule: str  # JSON: the test's settings (``abtest.rule_of``)


def ab_row(conn: Connection, key: str) -> AbRow | None:
    """The A/B test kept under ``key``, if any."""
    row = conn.execute(
        "SELECT started_at, decide_after, winner, reason, figures, decided_at, finished_at, rule"
        " FROM ab_tests WHERE campaign_id = ?",
        (key,),
    ).fetchone()
    if row is None:
        return None
    return AbRow(
        str(row[0]), str(row[1]), row[2], str(row[3] or ""), str(row[4] or ""), row[5], row[6],
        str(row[7] or ""),
    )  # fmt: skip


def sends_by(conn: Connection, key: str, width: int) -> list[tuple[str, int, int]]:
    """Accepted messages per time slot (``width`` characters of the stamp: 19 a second,
    16 a minute, 13 an hour), with how many of them were deferred first."""
    return [
        (str(slot), int(sent), int(retried))
        for slot, sent, retried in conn.execute(
            f"SELECT substr(sent_at, 1, {int(width)}), count(*),"
            " count(*) FILTER (WHERE attempts > 1) FROM journal"
            " WHERE campaign_id = ? AND status = 'sent' GROUP BY 1 ORDER BY 1",
            (key,),
        )
    ]


def events_by_hour(conn: Connection, key: str) -> dict[str, dict[str, int]]:
    """Per UTC hour (``2027-02-06T01``): clicks, first clicks (people clicking for the first
    time: they add up to the unique clickers), and addresses per kind of feedback; hard
    bounces include those refused during the send (the journal's)."""
    hours: dict[str, dict[str, int]] = {}

    def add(rows: Iterable[tuple[object, ...]], name: str) -> None:
        for hour, count in rows:
            slot = hours.setdefault(str(hour), {})
            slot[name] = slot.get(name, 0) + int(count)  # type: ignore[call-overload]

    add(conn.execute(
        "SELECT substr(clicked_at, 1, 13), count(*) FROM clicks WHERE campaign_id = ?"
        " GROUP BY 1", (key,)), "clicks")  # fmt: skip
    firsts = (
        "SELECT substr(first, 1, 13), count(*) FROM (SELECT min(clicked_at) AS first FROM clicks"
        " WHERE campaign_id = ? GROUP BY email) firsts GROUP BY 1"
    )
    add(conn.execute(firsts, (key,)), "first_clicks")
    for hour, kind, count in conn.execute(
        "SELECT substr(first, 1, 13), kind, count(*) FROM (SELECT kind, min(received_at) AS first"
        " FROM feedback_events WHERE campaign_id = ? GROUP BY kind, email) firsts GROUP BY 1, 2",
        (key,),
    ):
        add([(hour, count)], str(kind))
    add(conn.execute(
        "SELECT substr(updated_at, 1, 13), count(*) FROM journal WHERE campaign_id = ?"
        " AND bounce = 1 GROUP BY 1", (key,)), "hard_bounce")  # fmt: skip
    return hours


def link_counts(conn: Connection, key: str) -> list[tuple[str, int, int]]:
    """(url, clicks, people) per link, most clicked first."""
    return [
        (str(url), int(clicks), int(people))
        for url, clicks, people in conn.execute(
            "SELECT url, count(*), count(DISTINCT email) FROM clicks WHERE campaign_id = ?"
            " GROUP BY url ORDER BY 2 DESC, 1",
            (key,),
        )
    ]
