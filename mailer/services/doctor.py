"""``mailer doctor``: will Gmail, Yahoo and Outlook accept this sender (and this campaign)?"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from mailer.campaign.prepared import prepare_campaign
from mailer.core.clock import stamp, utc_now
from mailer.core.settings import Settings
from mailer.delivery.provider_volume import sent_per_day
from mailer.doctor.message import PROVIDER_DOMAINS, SentHistory
from mailer.doctor.model import Check, DoctorReport, Status
from mailer.doctor.run import DoctorOptions, diagnose
from mailer.services.workspace import existing_database, workspace_settings

__all__ = ["Check", "DoctorOptions", "DoctorReport", "Status", "run_doctor", "sent_history"]

HISTORY_DAYS = 30  # how far back the busiest day per provider is looked for


def run_doctor(campaign: Path | None, options: DoctorOptions) -> DoctorReport:
    """The workspace's sender (and the campaign's messages and audience, when given)."""
    settings = workspace_settings()
    prepared = prepare_campaign(campaign, settings) if campaign is not None else None
    if prepared is not None:
        settings = prepared.settings
    now = prepared.now() if prepared is not None else utc_now()
    history = sent_history(settings, now)
    return diagnose(settings, prepared, options, now=now, history=history)


def sent_history(settings: Settings, now: datetime) -> SentHistory | None:
    """Real mail per UTC day to each provider family over the last 30 days; None without a store."""
    conn = existing_database(settings)  # the doctor never creates a database
    if conn is None:
        return None
    try:
        since = stamp(now - timedelta(days=HISTORY_DAYS))
        return SentHistory.from_rows(sent_per_day(conn, PROVIDER_DOMAINS, since))
    finally:
        conn.close()
