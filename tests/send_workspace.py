"""Workspaces with many contacts for the send tests (built on ``tests/workspace.py``)."""

from __future__ import annotations

from pathlib import Path

from mailer.campaign.prepared import PreparedCampaign, prepare_campaign
from mailer.core.settings import load_settings
from mailer.delivery.report import SendOptions
from tests.workspace import CAMPAIGN, make_workspace

# Short delays so fault-injection tests run in well under a second each.
FAST = {
    "retry_base": 0.01,
    "retry_max": 0.05,
    "reconnect_base": 0.01,
    "reconnect_max": 0.1,
    "backoff_base": 0.01,
    "backoff_max": 0.05,
}


def fast_options(**changes: object) -> SendOptions:
    """SendOptions with test-sized delays."""
    return SendOptions(**{**FAST, **changes})  # type: ignore[arg-type]


def addresses(count: int) -> list[str]:
    """``u0@a.test``, ``u1@b.test``, ... over three domains."""
    return [f"u{i}@{'abc'[i % 3]}.test" for i in range(count)]


def contacts_csv(count: int) -> str:
    """A contacts CSV with ``count`` rows."""
    rows = "".join(f"{email},U{i}\n" for i, email in enumerate(addresses(count)))
    return "email,first_name\n" + rows


def make_send_workspace(root: Path, count: int, *, throttle: str = "") -> Path:
    """A workspace (mailer.toml, template, campaign, contacts) with ``count`` contacts."""
    campaign = CAMPAIGN + (f"\n[throttle]\n{throttle}\n" if throttle else "")
    return make_workspace(root, campaign=campaign, contacts=contacts_csv(count))


def prepared_campaign(root: Path, count: int, *, throttle: str = "") -> PreparedCampaign:
    """Build a workspace and prepare its campaign (settings from that workspace only)."""
    path = make_send_workspace(root, count, throttle=throttle)
    return prepare_campaign(path, load_settings(root, env={}))
