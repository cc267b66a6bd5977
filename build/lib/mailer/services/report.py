"""``mailer report``: a campaign's report, in the terminal, as JSON or as an HTML page."""

from __future__ import annotations

from pathlib import Path

from mailer.core.clock import stamp, utc_now
from mailer.core.errors import ConfigError
from mailer.report.data import CampaignReport, campaign_report
from mailer.report.page import report_html
from mailer.services.status import campaign_id_of
from mailer.services.workspace import open_database, workspace_settings

__all__ = ["CampaignReport", "report_of", "write_html"]


def report_of(campaign: str, *, db: Path | None = None) -> CampaignReport:
    """The report of a campaign given by file or id."""
    settings = workspace_settings(db=db)
    conn = open_database(settings)
    try:
        key = campaign_id_of(campaign, settings)
        return campaign_report(conn, key, exists=key != campaign)
    finally:
        conn.close()


def write_html(report: CampaignReport, path: Path) -> int:
    """Write the self-contained HTML page; return its size in bytes."""
    page = report_html(report, stamp(utc_now()))
    try:
        path.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"cannot write the report to {path}: {exc.strerror}",
            hint="give a file in a folder that exists and is writable",
        ) from None
    return len(page.encode("utf-8"))
