"""``mailer report``: a campaign's report, in the terminal, as JSON or as an HTML page.

Which journal key a campaign is found under: a manual send through a relay
journals under the campaign id, an outbox send under ``id@outbox``, a
scheduled campaign under one key per instance (``qixi@2027``). A campaign file
(or id) is matched to what was really sent: the relay send first, else the
outbox send (said so in a note); a scheduled campaign reports its instances
as an index, one row each.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mailer.audience.database import Connection
from mailer.core.campaign import load_campaign
from mailer.core.clock import stamp, utc_now
from mailer.core.errors import ConfigError, SendError
from mailer.core.keys import OUTBOX_SUFFIX
from mailer.report.abreport import AbSection
from mailer.report.data import CampaignReport, IndexRow, campaign_report, index_rows, keys_of
from mailer.report.overview import percent
from mailer.report.page import index_html, report_html
from mailer.report.queries import Slice
from mailer.services.workspace import open_database, workspace_settings

__all__ = [
    "AbSection",
    "CampaignReport",
    "ReportIndex",
    "Slice",
    "all_campaigns",
    "percent",
    "report_of",
    "write_html",
]


@dataclass(frozen=True)
class ReportIndex:
    """Several journal keys, one row each (``--all``, or a scheduled campaign's instances)."""

    title: str
    rows: list[IndexRow]
    note: str = ""

    def to_dict(self) -> dict[str, object]:
        """JSON-ready."""
        return {
            "schema": "mailer-report-index/1",
            "title": self.title,
            "note": self.note or None,
            "campaigns": [r.to_dict() for r in self.rows],
        }


def report_of(campaign: str, *, db: Path | None = None) -> CampaignReport | ReportIndex:
    """The report of a campaign given by file or journal key."""
    settings = workspace_settings(db=db)
    path = Path(campaign)
    is_file = path.suffix == ".toml" or "/" in campaign
    if is_file and not path.is_file():
        raise SendError(
            f"campaign file not found: {campaign}",
            hint="give an existing campaign file, or a campaign id",
            advice="status-argument",
        )
    loaded = load_campaign(path, settings) if is_file else None
    conn = open_database(settings)
    try:
        if loaded is not None and loaded.schedule_table is not None:
            return _instances(conn, loaded.id)
        return _one(conn, loaded.id if loaded else campaign, exists=loaded is not None)
    finally:
        conn.close()


def _one(conn: Connection, key: str, *, exists: bool) -> CampaignReport | ReportIndex:
    """The key itself when it was sent; else its only other key (the outbox send); else
    an index of its keys; else an empty report (a known file) or an error."""
    keys = keys_of(conn, key)
    found = [k for k in keys if k != key]
    if key in keys or not found:
        return campaign_report(conn, key, exists=exists)
    if len(found) == 1:
        other = found[0]
        note = (
            f"{key} has no send through a relay; this is its outbox send ({other}): "
            "messages written to files, not mailed"
            if other.endswith(OUTBOX_SUFFIX)
            else f"{key} was sent as {other}"
        )
        return campaign_report(conn, other, note=note)
    return ReportIndex(f"{key}: {len(found)} sends", index_rows(conn, found))


def _instances(conn: Connection, campaign_id: str) -> ReportIndex:
    keys = [k for k in keys_of(conn, campaign_id) if k != campaign_id]
    note = "" if keys else "no instance has been sent yet"
    return ReportIndex(f"{campaign_id}: scheduled instances", index_rows(conn, keys), note)


def all_campaigns(*, db: Path | None = None) -> ReportIndex:
    """Every campaign and scheduled instance in the journal, newest first."""
    settings = workspace_settings(db=db)
    conn = open_database(settings)
    try:
        rows = index_rows(conn)
    finally:
        conn.close()
    return ReportIndex("all campaigns", rows, "" if rows else "nothing has been sent yet")


def write_html(report: CampaignReport | ReportIndex, path: Path) -> int:
    """Write the self-contained HTML page; return its size in bytes."""
    made = stamp(utc_now())
    if isinstance(report, ReportIndex):
        page = index_html(report.title, report.rows, made, report.note)
    else:
        page = report_html(report, made)
    try:
        path.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"cannot write the report to {path}: {exc.strerror}",
            hint="give a file in a folder that exists and is writable",
        ) from None
    return len(page.encode("utf-8"))
