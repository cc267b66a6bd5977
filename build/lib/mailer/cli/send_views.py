"""What ``mailer send`` shows: the dry run, the confirmation summary and the final report.

Presentation only: every function here prints data the core returned.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import typer
from rich.text import Text

from mailer.cli.app import console, err_console, print_rows, run
from mailer.cli.progress import phase_bar
from mailer.core.errors import SendError
from mailer.core.keys import without_outbox

if TYPE_CHECKING:
    from mailer.services.send import (
        CampaignSend,
        CheckOutcome,
        DryRun,
        Plan,
        SendReport,
        Transport,
    )


def say(text: str | Text, *, err: bool = False) -> None:
    """Print one message without hard wrapping (addresses and SMTP replies stay on one line)."""
    (err_console if err else console).print(
        text if isinstance(text, Text) else Text(text), soft_wrap=True
    )


def is_interactive() -> bool:
    """True when there is a person at a terminal to answer the confirmation question."""
    return sys.stdin.isatty()


def _variant_rows(result: DryRun) -> list[tuple[str, str]]:
    total = sum(result.variants.values()) or 1
    rows = []
    for label, count in sorted(result.variants.items()):
        example = result.examples.get(label, "")
        rows.append(
            (f"subject {label}", f"{count} ({round(count * 100 / total)}%) e.g. “{example}”")
        )
    return rows


def _skip_rows(result: DryRun) -> list[tuple[str, str]]:
    plan = result.plan
    rows = [("audience", str(plan.audience)), ("to send", str(plan.todo))]
    for label, count in (
        ("already sent", plan.skipped_sent),
        ("failed before", plan.skipped_failed),
        ("suppressed", plan.suppressed),
        ("held back (frequency cap)", plan.capped),
        ("unknown (skipped)", len(plan.unknown)),
        ("being sent by another run", len(plan.in_flight)),
    ):
        if count:
            rows.append((label, str(count)))
    if plan.resend:
        rows.append(("unknown, sent again", _resend_text(plan)))
    return rows


def show_dry_run(opened: CampaignSend, as_json: bool) -> None:
    """Print what a live send would do now (recipients, variants, size, checks); send nothing."""
    with phase_bar("checking", quiet=as_json) as tick:
        view = run(lambda: opened.dry_run(tick))
    result = view.result
    if as_json:
        print(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
        return
    rows = _skip_rows(result) + _variant_rows(result)
    if result.plan.todo:
        size = f"{result.total_bytes / 1024:.0f} KB in all, largest {result.largest / 1024:.1f} KB"
        rows.append(("rendered", size))
    # The checks a live send runs first (the fold needs Chromium: `mailer check` measures it).
    warnings = [f for f in view.checks.warnings if f.code != "fold-not-run"]  # said in the row
    rows.append(
        (
            "checks",
            f"{len(view.checks.errors)} error(s), {len(warnings)} warning(s) "
            f"without the fold (details: mailer check {opened.prepared.campaign.path})",
        )
    )
    if view.schedule:
        rows.append(("schedule", f"{view.schedule}: `mailer run-due` sends it"))
    if view.ab:
        rows.append(("A/B", view.ab))
    print_rows(f"dry run: {opened.prepared.campaign.id} (nothing was sent)", rows)
    _print_unknown(result.plan.unknown)
    if view.schedule:
        console.print("To send it by hand now anyway: add --live --ignore-schedule.")
    else:
        console.print("To send for real: add --live (you will be asked to confirm).")


def confirm_send(
    opened: CampaignSend,
    transport: Transport,
    checked: CheckOutcome,
    yes: bool,
    as_json: bool,
    *,
    queue: bool = False,
) -> None:
    """Show the summary of the send about to start and ask (unless ``--yes``); exit 1 on no.

    ``queue``: the send is queued for workers rather than sent here.
    """
    from mailer.services.send import describe_transport

    with phase_bar("checking", quiet=as_json) as tick:
        result = run(lambda: opened.confirmation(transport, tick))
    rows = _skip_rows(result) + _variant_rows(result)
    rows.append(("from", checked.sender))
    rows.append(("transport", describe_transport(transport)))
    rows.append(("checks", checked.summary))
    if opened.options.fold_skipped:
        rows.append(("fold check", "NOT run (--no-browser): key blocks unverified; recorded"))
    plan = result.plan
    if not as_json:
        print_rows(f"about to send {opened.prepared.campaign.id}", rows)
        for line in checked.warnings:  # each one named, not just counted
            say(f"    {line}")
        _print_unknown(plan.unknown)
    if plan.resend and not yes:
        run(lambda: _refuse_resend(plan))
    if yes or not plan.todo:
        return
    if as_json or not is_interactive():
        run(_refuse)
    question = "Queue {} message(s) for workers?" if queue else "Send {} message(s) now?"
    if not typer.confirm(question.format(result.plan.todo), default=False):
        console.print("Nothing was sent.")
        raise typer.Exit(1)


def _resend_text(plan: Plan) -> str:
    first, last = plan.resend_first or "?", plan.resend_last or "?"
    when = f"at {first}" if first == last else f"between {first} and {last}"
    return f"{plan.resend} (handed to the relay {when}: they may have arrived)"


def _refuse_resend(plan: Plan) -> None:
    raise SendError(
        f"--resend-unknown would send {plan.resend} message(s) again that were handed to the "
        "relay before and may well have arrived (their replies were lost)",
        hint="check the relay's log for them first; to send them again anyway, add --yes",
    )


def _refuse() -> None:
    raise SendError(
        "refusing to send without confirmation: there is no terminal to ask on",
        hint="check the dry run (mailer send CAMPAIGN), then add --yes to confirm",
    )


def _failed_text(report: SendReport) -> str:
    if not report.bounced:
        return str(report.failed)
    return f"{report.failed} ({report.bounced} hard bounce(s), now on the suppression list)"


def print_report(report: SendReport) -> None:
    """The final report of a send run, then each failure with its SMTP reply.

    A run that left messages unknown says so first: the relay may have them,
    and a blind re-send mails people twice. Each paragraph is printed once
    (unknowns left by earlier runs were listed before the confirmation).
    """
    rows = []
    if report.new_unknown:
        why = report.unknown_reason or "no reply after the message was handed over"
        rows.append(("UNKNOWN", f"{len(report.new_unknown)} — perhaps delivered ({why})"))
    rows += [
        ("transport", report.transport),
        ("sent", str(report.sent)),
        ("failed", _failed_text(report)),
        ("retries", str(report.retries)),
        ("left for later", str(report.pending)),
        (
            "skipped",
            f"{report.skipped_sent} already sent, {report.skipped_suppressed} suppressed, "
            f"{report.skipped_failed} failed before, "
            f"{len(report.unknown) - len(report.new_unknown)} unknown"
            + (f", {report.skipped_other_run} by another run" if report.skipped_other_run else "")
            + (f", {report.skipped_capped} by the frequency cap" if report.skipped_capped else ""),
        ),
        ("time", f"{report.elapsed:.1f} s ({report.rate:.1f} messages/s)"),
    ]
    cap = report.connections.get("cap")
    if report.connections.get("reconnects") or cap:
        rows.append(
            (
                "connections",
                f"{report.connections.get('opened')} opened; the relay allows {cap} "
                "message(s) per connection (learnt: connections are renewed before that)"
                if cap
                else f"{report.connections.get('opened')} opened",
            )
        )
    rows += [(f"subject {k}", str(v)) for k, v in sorted(report.variants.items())]
    verb = "paused" if report.paused else "stopped" if report.stopped else "sent"
    if report.new_unknown and not report.paused and not report.stopped:
        verb = "sent, with unknowns:"
    print_rows(f"{verb} {without_outbox(report.campaign_id)}", rows)
    for note in report.notes:
        say(Text(f"note: {note}", "yellow"), err=True)
    for failure in report.failures[:20]:
        say(f"  failed {failure.email}: {failure.code or '-'} {failure.reply}")
    if len(report.failures) > 20:
        console.print(f"  ... and {len(report.failures) - 20} more (see mailer status)")
    if report.new_unknown:
        _print_unknown(report.new_unknown, this_run=True)


def _print_unknown(unknown: list[str], *, this_run: bool = False) -> None:
    if not unknown:
        return
    shown = ", ".join(unknown[:20]) + (
        f" and {len(unknown) - 20} more" if len(unknown) > 20 else ""
    )
    why = (
        "this run handed them to the relay but heard no reply"
        if this_run
        else "in flight when a run stopped, or the connection was lost after the message was sent"
    )
    say(
        Text(
            f"{len(unknown)} recipient(s) are unknown — perhaps delivered ({why}): {shown}. "
            "They are not re-sent; --resend-unknown sends them again (it shows when they "
            "were handed over, and asks for --yes).",
            "yellow",
        ),
        err=True,
    )
