"""The workspace a command runs in: its settings (mailer.toml, environment, flags), its database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mailer.audience.database import Connection
from mailer.audience.store import connect_store
from mailer.core.settings import Settings, load_settings
from mailer.delivery.report import SendOptions


def workspace_settings(
    *,
    db: Path | None = None,
    smtp_url: str | None = None,
    smtp_profile: str | None = None,
    root: Path | None = None,
) -> Settings:
    """The settings of the workspace in ``root`` (default: the current folder), flags applied."""
    return load_settings(root, db=db, smtp_url=smtp_url, smtp_profile=smtp_profile)


def send_options(settings: Settings, **changes: Any) -> SendOptions:
    """Send options with the workspace's retry schedule (``[retry]``), feedback limits
    (``[feedback]``) and ``[send]`` settings, plus ``changes``."""
    retry, sending = settings.retry, settings.sending
    return SendOptions(
        **{
            "retry_base": retry.base_seconds,
            "retry_max": retry.max_seconds,
            "max_attempts": retry.attempts,
            "feedback": settings.feedback,
            "max_unknown": sending.max_unknown,
            "max_unknown_share": sending.max_unknown_share,
            "stop_grace": sending.stop_grace,
            "relay_down_limit": sending.relay_down_limit,
            **changes,
        }
    )


def open_database(settings: Settings) -> Connection:
    """The workspace database, created and migrated if needed."""
    return connect_store(settings)


def existing_database(settings: Settings) -> Connection | None:
    """The workspace database when it exists (listing must not create one), else None."""
    if settings.store_url is None and not settings.db_path.exists():
        return None
    return connect_store(settings)
