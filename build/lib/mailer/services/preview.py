"""``mailer preview``: the live preview server, serving one campaign on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

from mailer.core.settings import SETTINGS_FILE
from mailer.core.workspace import find_workspace
from mailer.preview.server import PreviewServer, start_preview
from mailer.services.workspace import workspace_settings

__all__ = ["PreviewServer", "preview_campaign"]


def preview_campaign(campaign: Path, *, port: int = 0, fold: bool = True) -> PreviewServer:
    """Start serving the preview of ``campaign`` (settings re-read on every change)."""
    # Watch the workspace's mailer.toml (found upwards), not one in the current folder.
    settings_file = find_workspace().root / SETTINGS_FILE
    return start_preview(
        campaign, lambda: workspace_settings(), port=port, settings_file=settings_file, fold=fold
    )
