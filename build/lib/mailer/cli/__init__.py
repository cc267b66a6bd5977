"""cli: the ``mailer`` command line. Imports services (and core's errors, keys); nothing imports it.

Typer commands parse flags, call one service and word its result; see ``app.py`` for
how command modules plug in, ``advice.py`` for how remedies are worded.
"""

from __future__ import annotations

from mailer.cli import (
    ab_cmds,  # noqa: F401  (registers commands)
    bounces_cmds,  # noqa: F401  (registers commands)
    calendar_cmds,  # noqa: F401  (registers commands)
    campaign_cmds,  # noqa: F401  (registers commands)
    check_cmds,  # noqa: F401  (registers commands)
    contacts_cmds,  # noqa: F401  (registers commands)
    doctor_cmds,  # noqa: F401  (registers commands)
    init_cmds,  # noqa: F401  (registers commands)
    preview_cmds,  # noqa: F401  (registers commands)
    report_cmds,  # noqa: F401  (registers commands)
    schedule_cmds,  # noqa: F401  (registers commands)
    send_cmds,  # noqa: F401  (registers commands)
    serve_cmds,  # noqa: F401  (registers commands)
    status_cmds,  # noqa: F401  (registers commands)
    template_cmds,  # noqa: F401  (registers commands)
    worker_cmds,  # noqa: F401  (registers commands)
)
from mailer.cli.app import app


def main() -> None:
    """Entry point of the ``mailer`` console script."""
    app()
