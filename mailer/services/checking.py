"""``mailer check``: the pre-send checks of one campaign file, as a report."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from mailer.campaign.prepared import prepare_campaign
from mailer.checks.findings import Finding, warning
from mailer.checks.fold import FoldOptions, FoldResult, Viewport
from mailer.checks.gate import CheckReport, run_checks
from mailer.doctor.model import DoctorReport, Status
from mailer.doctor.run import DoctorOptions, diagnose
from mailer.services.scheduled import schedule_of
from mailer.services.workspace import workspace_settings

__all__ = ["CheckReport", "FoldResult", "Viewport", "check_campaign"]


def check_campaign(
    campaign: Path,
    *,
    browser: bool = True,
    viewports: tuple[Viewport, ...] | None = None,
    shots: Path | None = None,
    chromium: str | None = None,
    fetch_images: bool = False,
    sample: int = 3,
    offline: bool = False,
    resolver: str | None = None,
) -> CheckReport:
    """Run every check on a campaign file; a typo in its ``[schedule]`` stops the check too.

    Unless ``offline``, the sender's DNS is checked as ``mailer doctor`` does
    (SPF, DKIM, DMARC, MX, reverse DNS, TLS); what fails there is a warning
    here (``mailer doctor`` says why and how to fix it).
    """
    options = FoldOptions(shots=shots, allow_network=fetch_images)
    if viewports is not None:
        options = replace(options, viewports=viewports)
    if chromium:
        options = replace(options, executable_path=chromium)
    prepared = prepare_campaign(campaign, workspace_settings())
    if prepared.campaign.schedule_table is not None:
        schedule_of(prepared.campaign, prepared.settings, prepared.now().date())
    report = run_checks(prepared, browser=browser, fold_options=options, sample_size=sample)
    if not offline:
        doctor = diagnose(
            prepared.settings, None, DoctorOptions(resolver=resolver), now=prepared.now()
        )
        report.findings += doctor_findings(doctor)
    return report


def doctor_findings(doctor: DoctorReport) -> list[Finding]:
    """The doctor's failures, warnings and unknowns as check warnings (not its passes, skips)."""
    found = []
    for check in doctor.checks:
        if check.status in (Status.FAIL, Status.WARN, Status.UNKNOWN):
            message = check.reason + (f"; fix: {check.fix}" if check.fix else "")
            found.append(warning(f"sender-{check.area.lower().replace(' ', '-')}", message, "DNS"))
    return found
