"""``mailer doctor``: will Gmail, Yahoo and Outlook accept this sender (and this campaign)?"""

from __future__ import annotations

from pathlib import Path

from mailer.campaign.prepared import prepare_campaign
from mailer.doctor.model import Check, DoctorReport, Status
from mailer.doctor.run import DoctorOptions, diagnose
from mailer.services.workspace import workspace_settings

__all__ = ["Check", "DoctorOptions", "DoctorReport", "Status", "run_doctor"]


def run_doctor(campaign: Path | None, options: DoctorOptions) -> DoctorReport:
    """The workspace's sender (and the campaign's messages and audience, when given)."""
    settings = workspace_settings()
    prepared = prepare_campaign(campaign, settings) if campaign is not None else None
    return diagnose(prepared.settings if prepared else settings, prepared, options)
