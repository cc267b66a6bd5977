"""``mailer check``: the pre-send checks of one campaign file, as a report."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from mailer.campaign.prepared import prepare_campaign
from mailer.checks.findings import SEVERITIES, Finding, info, warning
from mailer.checks.fold import FoldOptions, FoldResult, Viewport
from mailer.checks.gate import CheckReport, pick_samples, run_checks
from mailer.checks.spamscore import check_spam
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
    spam: bool = True,
) -> CheckReport:
    """Run every check on a campaign file; a typo in its ``[schedule]`` stops the check too.

    Unless ``offline``, the sender's DNS is checked as ``mailer doctor`` does
    (SPF, DKIM, DMARC, MX, reverse DNS, TLS); what fails there is a warning
    here (``mailer doctor`` says why and how to fix it). Unless ``spam`` is
    False, one sample per A/B variant goes through SpamAssassin (``[spam]`` in
    mailer.toml); without it installed the report says the score was not checked.
    """
    options = FoldOptions(shots=shots, allow_network=fetch_images)
    if viewports is not None:
        options = replace(options, viewports=viewports)
    if chromium:
        options = replace(options, executable_path=chromium)
    prepared = prepare_campaign(campaign, workspace_settings())
    if prepared.campaign.schedule_table is not None:
        schedule_of(prepared.campaign, prepared.settings, prepared.now().date())
    samples, failures = pick_samples(prepared, sample)
    report = run_checks(
        prepared, samples or None, browser=browser, fold_options=options, sample_size=sample
    )
    if samples:
        report.findings = failures + report.findings
        labels = [f"sample {i} ({s.variant_name})" for i, s in enumerate(samples, 1)]
        if spam:
            found, scores = check_spam(prepared, samples, labels)
            report.findings += found
            report.spam = [s.to_dict() for s in scores]
        else:
            message = "skipped on request: the spam-filter score was NOT checked"
            report.findings.append(info("spam-score-not-run", message, "spam filter"))
    if not offline:
        doctor = diagnose(
            prepared.settings, None, DoctorOptions(resolver=resolver), now=prepared.now()
        )
        report.findings += doctor_findings(doctor)
    report.findings.sort(key=lambda f: SEVERITIES.index(f.severity))
    return report


def doctor_findings(doctor: DoctorReport) -> list[Finding]:
    """The doctor's failures, warnings and unknowns as check warnings (not its passes, skips)."""
    found = []
    for check in doctor.checks:
        if check.status in (Status.FAIL, Status.WARN, Status.UNKNOWN):
            message = check.reason + (f"; fix: {check.fix}" if check.fix else "")
            found.append(warning(f"sender-{check.area.lower().replace(' ', '-')}", message, "DNS"))
    return found
