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
from mailer.feedback.history import SenderProblem, sender_problems
from mailer.services.workspace import existing_database, workspace_settings

__all__ = ["Check", "DoctorOptions", "DoctorReport", "Status", "run_doctor", "sent_history"]

HISTORY_DAYS = 30  # how far back the busiest day per provider is looked for


def run_doctor(campaign: Path | None, options: DoctorOptions) -> DoctorReport:
    """The workspace's sender (and the campaign's messages and audience, when given), and
    what receivers said about our mail lately (sender-side bounces)."""
    settings = workspace_settings()
    prepared = prepare_campaign(campaign, settings) if campaign is not None else None
    if prepared is not None:
        settings = prepared.settings
    now = prepared.now() if prepared is not None else utc_now()
    history, problems = _from_the_store(settings, now)
    report = diagnose(settings, prepared, options, now=now, history=history)
    if problems is not None:
        report.checks.append(sender_check(problems))
    return report


def _from_the_store(
    settings: Settings, now: datetime
) -> tuple[SentHistory | None, list[SenderProblem] | None]:
    """What the journal and the feedback say; (None, None) without a store (never made here)."""
    conn = existing_database(settings)  # the doctor never creates a database
    if conn is None:
        return None, None
    try:
        since = stamp(now - timedelta(days=HISTORY_DAYS))
        history = SentHistory.from_rows(sent_per_day(conn, PROVIDER_DOMAINS, since))
        return history, sender_problems(conn, now)
    finally:
        conn.close()


def sent_history(settings: Settings, now: datetime) -> SentHistory | None:
    """Real mail per UTC day to each provider family over the last 30 days; None without a store."""
    return _from_the_store(settings, now)[0]


# What to look at for each sender-side reason (mailer.feedback.reasons).
_FIXES = {
    "auth_failed": "make SPF, DKIM and DMARC pass and align with the From domain (see above)",
    "blocked": "look the sending IP and domain up on blocklists (check.spamhaus.org), check "
    "reverse DNS, send less to the receivers that refuse",
    "content_rejected": "run mailer check on the campaign: spammy words, links, attachments, "
    "malformed headers",
}


def sender_check(problems: list[SenderProblem]) -> Check:
    """One check: did receivers refuse our mail because of our sending in the last 30 days?"""
    if not problems:
        reason = "no receiver refused our mail because of our sending in the last 30 days"
        return Check("bounces.sender-side", "bounces", Status.PASS, reason)
    top = problems[0]
    total = sum(p.addresses for p in problems)
    parts = "; ".join(f"{p.addresses} × {p.reason}: {p.description}" for p in problems)
    where = f" (campaigns: {', '.join(top.campaigns)})" if top.campaigns else ""
    reason = (
        f"a sender problem: receivers refused our mail for {total} address(es) in the last "
        f"30 days, not for the addresses' fault — {parts}{where}; e.g. {top.example!r}"
    )
    fix = _FIXES.get(top.reason, _FIXES["blocked"])
    return Check("bounces.sender-side", "bounces", Status.WARN, reason, fix)
