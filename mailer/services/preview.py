"""``mailer preview``: the live preview server, serving one campaign on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

from mailer.preview.server import PreviewServer, start_preview
from mailer.services.workspace import workspace_settings

__all__ = ["PreviewServer", "preview_campaign"]


def preview_campaign(campaign: Path, *, port: int = 0, fold: bool = True) -> PreviewServer:
    """Start serving the preview of ``campaign`` (settings re-read on every change)."""
    return start_preview(campaign, lambda: workspace_settings(), port=port, fold=fold)
