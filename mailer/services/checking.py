"""``mailer check``: the pre-send checks of one campaign file, as a report."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from mailer.campaign.prepared import prepare_campaign
from mailer.checks.fold import FoldOptions, FoldResult, Viewport
from mailer.checks.gate import CheckReport, run_checks
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
) -> CheckReport:
    """Run every check on a campaign file; a typo in its ``[schedule]`` stops the check too."""
    options = FoldOptions(shots=shots, allow_network=fetch_images)
    if viewports is not None:
        options = replace(options, viewports=viewports)
    if chromium:
        options = replace(options, executable_path=chromium)
    prepared = prepare_campaign(campaign, workspace_settings())
    if prepared.campaign.schedule_table is not None:
        schedule_of(prepared.campaign, prepared.settings, prepared.now().date())
    return run_checks(prepared, browser=browser, fold_options=options, sample_size=sample)
