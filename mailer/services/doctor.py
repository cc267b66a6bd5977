"""``mailer doctor``: will Gmail, Yahoo and Outlook accept this sender (and this campaign)?"""

from __future__ import annotations

from pathlib import Path

from mailer.campaign.prepared import prepare_campaign
from mailer.core.clock import utc_now
from mailer.doctor.model import Check, DoctorReport, Status
from mailer.doctor.run import DoctorOptions, diagnose
from mailer.feedback.history import SenderProblem, sender_problems
from mailer.services.workspace import open_database, workspace_settings

__all__ = ["Check", "DoctorOptions", "DoctorReport", "Status", "run_doctor"]


def run_doctor(campaign: Path | None, options: DoctorOptions) -> DoctorReport:
    """The workspace's sender (and the campaign's messages and audience, when given), and
    what receivers said about our mail lately (sender-side bounces)."""
    settings = workspace_settings()
    prepared = prepare_campaign(campaign, settings) if campaign is not None else None
    report = diagnose(prepared.settings if prepared else settings, prepared, options)
    if settings.store_url or settings.db_path.exists():
        conn = open_database(settings)
        try:
            report.checks.append(sender_check(sender_problems(conn, utc_now())))
        finally:
            conn.close()
    return report


# What to look at for each sender-side reason (mailer.feedback.reasons).
_FIXES = {
    "auth_failed": "make SPF, DKIM and DMARC pass and align with the From domain (see above)",
    "blocked": "look the sending IP and domain up on blocklists (check.spamhaus.org), check "
    "reverse DNS, send less to the receivers that refuse",
    "content_rejected": "run mailer check on the campaign: spammy words, links, attachments, "
    "malformed headers",
}


def sender_check(problems: list[SenderProblem]) -> Check:
    """One check: did receivers refuse our mail for our own sake in the last 30 days?"""
    if not problems:
        reason = "no receiver refused our mail because of our sending in the last 30 days"
        return Check("bounces", Status.PASS, reason)
    top = problems[0]
    total = sum(p.addresses for p in problems)
    parts = "; ".join(f"{p.addresses} × {p.reason}: {p.description}" for p in problems)
    where = f" (campaigns: {', '.join(top.campaigns)})" if top.campaigns else ""
    reason = (
        f"a sender problem: receivers refused our mail for {total} address(es) in the last "
        f"30 days, not for the addresses' fault — {parts}{where}; e.g. {top.example!r}"
    )
    return Check("bounces", Status.WARN, reason, _FIXES.get(top.reason, _FIXES["blocked"]))
