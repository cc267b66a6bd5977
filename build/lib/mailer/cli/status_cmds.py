"""``mailer status``: where a campaign stands in the send journal."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from mailer.cli.app import app, console, err_console, run
from mailer.cli.options import CampaignRefArg, DbOpt

if TYPE_CHECKING:
    from mailer.services.status import Rates, ReasonCount, Status


def _say(text: str, *, err: bool = False) -> None:
    """Print one message without hard wrapping (addresses and SMTP replies stay on one line)."""
    (err_console if err else console).print(Text(text), soft_wrap=True)


@app.command()
def status(
    campaign: CampaignRefArg,
    db: DbOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
) -> None:
    """A campaign's journal: counts and every failure.

    Counts by status, each failure with its SMTP reply, the last run, and the bounce,
    complaint and unsubscribe rates.

    Examples:

    \b
      mailer status campaigns/promotion.toml
      mailer status vip-thanks-2026 --json
    """
    from mailer.services.status import has_rows, status_of

    found = run(lambda: status_of(campaign, db=db))
    real, outbox = found.real, found.outbox
    # Outbox runs are files, not mail (journal key <id>@outbox): shown when nothing
    # real was sent, else mentioned after the real journal.
    result = found.shown
    if as_json:
        data = result.to_dict()
        if result is real and has_rows(outbox):
            data["outbox"] = outbox.to_dict()
        if found.instances:
            data["instances"] = [i.to_dict() for i in found.instances]
        if found.explanations:
            data["explanations"] = found.explanations
        if found.feedback is not None and result is real:
            feedback = _feedback_dict(found.feedback)
            feedback["reasons"] = [
                {"kind": r.kind, "reason": r.reason, "addresses": r.addresses, "example": r.example}
                for r in found.reasons
            ]
            data["feedback"] = feedback
        if found.jobs:
            data["jobs"] = [job.to_dict() for job in found.jobs]
        print(json.dumps(data, ensure_ascii=False, indent=2))
        return
    if not found.anything:
        others = ", ".join(found.known) if found.known else "none yet"
        _say(
            f"nothing has been sent for {result.campaign_id!r} yet "
            f"(campaigns in the journal: {others})",
            err=True,
        )
        return
    if found.instances:
        _print_instances(found.instances, real.campaign_id)
    for line in found.explanations:
        _say(f"why: {line}")
    for job in found.jobs:
        note = f" ({job.note})" if job.note else ""
        _say(f"queued job {job.id} ({job.journal_key}): {job.status}{note}; see mailer jobs")
    if not has_rows(result):
        return
    kind = " (outbox runs: files written, no mail sent)" if result is outbox else ""
    _say(f"{result.campaign_id}{kind}: {result.total} recipient(s) in the journal")
    _print_status(result)
    if found.feedback is not None and result is real:
        _say(_feedback_line(found.feedback))
        _print_reasons(found.reasons)
    if result is real and has_rows(outbox):
        _say(
            f"outbox runs (files, not mail): {outbox.total} recipient(s); "
            f"see mailer status {outbox.campaign_id}"
        )


def reason_line(r: ReasonCount) -> str:
    """One reason row: ``  soft bounce: 2 × mailbox full (…)``; the count alone without one."""
    kind = r.kind.replace("_", " ")
    if not r.reason:
        return f"  {kind}: {r.addresses}"
    return f"  {kind}: {r.addresses} × {r.reason} ({r.description})"


def _print_reasons(reasons: list[ReasonCount]) -> None:
    """What came back by reason; sender-side refusals called out as a problem of ours."""
    for r in reasons:
        if r.kind == "sender_side":
            continue
        _say(reason_line(r))
    sender = [r for r in reasons if r.kind == "sender_side"]
    if sender:
        total = sum(r.addresses for r in sender)
        _say(
            f"sender problem: receivers refused our mail for {total} address(es) — "
            "not the addresses' fault, nobody was suppressed:"
        )
        for r in sender:
            _say(f"  {r.addresses} × {r.reason}: {r.description}; e.g. {r.example}")
        _say("  hint: run mailer doctor (SPF, DKIM, DMARC, reverse DNS, blocklists)")


def _feedback_dict(rates: Rates) -> dict[str, object]:
    return {
        "delivered": rates.delivered,
        "hard_bounces": rates.bounced,
        "bounce_rate": round(rates.bounce_rate, 5),
        "sender_side": rates.sender_side,
        "sender_rate": round(rates.sender_rate, 5),
        "complaints": rates.complained,
        "complaint_rate": round(rates.complaint_rate, 5),
        "unsubscribes": rates.unsubscribed,
    }


def _feedback_line(rates: Rates) -> str:
    """What came back: hard bounces, complaints (Gmail and Yahoo: under 0.3 %), unsubscribes."""
    return (
        f"came back: {rates.bounced} hard bounce(s) ({rates.bounce_rate:.1%}), "
        f"{rates.complained} complaint(s) ({rates.complaint_rate:.2%}; keep under 0.30%), "
        f"{rates.unsubscribed} unsubscribe(s), {rates.sender_side} refused because of our sending"
    )


def _print_instances(instances: list[Status], campaign_id: str) -> None:
    """A scheduled campaign's instances (one journal key per year or birthday year)."""
    statuses = ("sent", "failed", "held", "missed", "suppressed")
    table = Table(title="scheduled instances", title_justify="left")
    table.add_column("journal key", no_wrap=True)
    for name in statuses:
        table.add_column(name, justify="right")
    table.add_column("unknown", justify="right")
    table.add_column("other", justify="right")
    for status in instances:
        shown = sum(status.counts[name] for name in statuses) + len(status.unknown)
        cells = [str(status.counts[name]) for name in statuses]
        cells += [str(len(status.unknown)), str(status.total - shown)]
        table.add_row(status.campaign_id, *cells)
    console.print(table)
    unknown = sum(len(status.unknown) for status in instances)
    if unknown:
        _say(
            f"{unknown} unknown: perhaps delivered (in flight when a run stopped); "
            "run-due --resend-unknown sends them again"
        )
    _say(f"per wave: mailer schedule runs {campaign_id}")


def _print_status(result: Status) -> None:
    table = Table()
    table.add_column("status")
    table.add_column("count", justify="right")
    for name, count in result.counts.items():
        table.add_row(name, str(count))
    console.print(table)
    for entry in result.failures:
        kind = " (hard bounce, suppressed)" if entry.bounce else ""
        _say(f"failed {entry.email}: {entry.last_code or '-'} {entry.last_reply}{kind}")
    for entry in result.in_flight:
        _say(f"in flight {entry.email}: being sent by run #{entry.run_id}, live now")
    for entry in result.unknown:
        why = f" ({entry.last_reply})" if entry.last_reply else ""
        _say(f"unknown {entry.email}: perhaps delivered, since {entry.updated_at}{why}")
    if result.runs:
        last = result.runs[-1]
        forced = " (checks overridden with --force)" if last.forced else ""
        _say(f"last run #{last.id} {last.started_at} via {last.transport}: {last.note}{forced}")
