"""``mailer send``: a dry run by default; checks, confirmation, progress and the report.

The decisions (schedule refusal, transport, checks, journal keys) are made by
``mailer.services.send``; this module turns flags into a ``SendRequest`` and
words what comes back.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.text import Text

from mailer.cli.advice import ADVICE
from mailer.cli.app import app, console, err_console, fail, print_error, run
from mailer.cli.options import (
    ConcurrencyOpt,
    DbOpt,
    InsecureOpt,
    JsonOpt,
    SmtpOpt,
    SmtpProfileOpt,
)
from mailer.cli.send_views import confirm_send, print_report, say, show_dry_run
from mailer.core.errors import MailerError, StoreError

if TYPE_CHECKING:
    from mailer.core.process import StopSignals
    from mailer.services.send import CampaignSend, SendReport, Transport

# The default of --max-failures (mailer.services.send.MAX_FAILURES, not imported at start-up).
MAX_FAILURES = 25


# Longer than most functions: Typer declares every flag in the signature.
@app.command()
def send(
    campaign: Annotated[
        Path, typer.Argument(help="campaign file (TOML)", metavar="CAMPAIGN", show_default=False)
    ],
    live: Annotated[
        bool, typer.Option("--live", help="really send (without it: a dry run that sends nothing)")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask for confirmation")] = False,
    test: Annotated[
        str | None,
        typer.Option(
            "--test", metavar="ADDRESS", help="send each variant once to ADDRESS, marked [TEST]"
        ),
    ] = None,
    smtp: SmtpOpt = None,
    smtp_profile: SmtpProfileOpt = None,
    insecure_skip_tls_verify: InsecureOpt = False,
    resend_unknown: Annotated[
        bool,
        typer.Option(
            "--resend-unknown",
            help="send again to recipients a crashed run left unknown (perhaps delivered)",
        ),
    ] = False,
    retry_failed: Annotated[
        bool, typer.Option("--retry-failed", help="retry failed recipients (never hard bounces)")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="send despite pre-send check errors (recorded)")
    ] = False,
    no_browser: Annotated[
        bool,
        typer.Option(
            "--no-browser", help="skip the fold check in headless Chromium (reported as NOT run)"
        ),
    ] = False,
    concurrency: ConcurrencyOpt = None,
    max_failures: Annotated[
        int, typer.Option("--max-failures", min=1, help="pause after this many failures in a row")
    ] = MAX_FAILURES,
    db: DbOpt = None,
    ignore_schedule: Annotated[
        bool,
        typer.Option(
            "--ignore-schedule",
            help="send a campaign that has a [schedule] now, to everyone (run-due may send again)",
        ),
    ] = False,
    enqueue_only: Annotated[
        bool,
        typer.Option(
            "--enqueue-only",
            help="with --live: check and queue the send for `mailer worker` processes",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Send a campaign (a dry run unless --live).

    Resumes where an earlier run stopped: nobody gets it twice. A live send runs the checks
    first and asks for confirmation (--yes answers it). Without a relay (--smtp,
    MAILER_SMTP_URL or [smtp] in mailer.toml) messages go to the outbox folder.

    Examples:

    \b
      mailer send campaigns/promotion.toml
      mailer send campaigns/promotion.toml --test me@example.com
      mailer send campaigns/promotion.toml --live
      mailer send campaigns/promotion.toml --live --enqueue-only
    """
    from mailer.services.send import SendRequest, open_send

    request = SendRequest(
        campaign,
        db=db,
        smtp=smtp,
        smtp_profile=smtp_profile,
        insecure_skip_tls_verify=insecure_skip_tls_verify,
        resend_unknown=resend_unknown,
        retry_failed=retry_failed,
        force=force,
        browser=not no_browser,
        concurrency=concurrency,
        max_failures=max_failures,
        ignore_schedule=ignore_schedule,
    )
    if enqueue_only and (not live or test):
        run(_enqueue_needs_live)
    opened = run(lambda: open_send(request, live=live and not test))
    if test:
        _test_send(opened, test, as_json)
        return
    if not live:
        show_dry_run(opened, as_json)
        return
    transport = run(opened.transport)
    _warn_unverified(transport)
    checked = run(opened.pre_send_checks)
    if checked.forced:
        say(
            Text(f"--force: sending despite {checked.errors} check error(s) (recorded)", "yellow"),
            err=True,
        )
    if opened.ab_note and not as_json:
        say(Text(f"A/B: {opened.ab_note}"))
    confirm_send(opened, transport, checked, yes, as_json, queue=enqueue_only)
    if enqueue_only:
        _enqueue(opened, transport, as_json)
        return
    resume = _resume_command(
        campaign,
        [
            ("--smtp", smtp),
            ("--smtp-profile", smtp_profile),
            ("--insecure-skip-tls-verify", insecure_skip_tls_verify),
            ("--no-browser", no_browser),
            ("--concurrency", concurrency),
            ("--max-failures", max_failures if max_failures != MAX_FAILURES else None),
            ("--db", db),
            ("--ignore-schedule", ignore_schedule),
        ],
    )
    _warn_disk(opened)
    from mailer.core.process import StopSignals

    with StopSignals() as stop:
        try:
            report = _send(opened, transport, as_json, stop.event)
        except StoreError as error:  # a locked or full database: the send stopped midway
            print_error(error)
            say(f"  resume with: {resume}", err=True)
            raise typer.Exit(1) from None
        except MailerError as error:  # the relay refused the first connection, ...
            fail(error)
        except KeyboardInterrupt:  # Ctrl-C twice: stop at once
            say(
                "interrupted: messages in flight are unknown (mailer status lists them); "
                f"resume with: {resume}",
                err=True,
            )
            raise typer.Exit(130) from None
    _finish(report, resume, as_json, stop)


def _warn_disk(opened: CampaignSend) -> None:
    """Say so before sending when the database's disk has less room than the journal needs."""
    room = run(lambda: opened.disk_room(opened.planned))
    if room is None:
        return
    say(
        Text(
            f"warning: the disk holding {room.path} has {_size(room.free)} free; "
            f"journalling this send needs about {_size(room.need)}. A full disk "
            "stops the send; free space first.",
            "bold yellow",
        ),
        err=True,
    )


def _size(count: int) -> str:
    return f"{count / 2**10:.0f} KB" if count < 2**20 else f"{count / 2**20:.0f} MB"


def _enqueue_needs_live() -> None:
    from mailer.core.errors import SendError

    raise SendError(
        "--enqueue-only queues a live send: it goes with --live (and not with --test)",
        hint="mailer send CAMPAIGN --live --enqueue-only",
    )


def _enqueue(opened: CampaignSend, transport: Transport, as_json: bool) -> None:
    from mailer.services.worker import enqueue_send

    job = run(lambda: enqueue_send(opened, transport))
    if as_json:
        print(json.dumps(job.to_dict(), ensure_ascii=False, indent=2))
        return
    say(f"queued as job {job.id} ({job.journal_key}, {job.status}); nothing was sent here.")
    where = "on any host using this database" if opened.settings.store_url else "on this machine"
    say(f"Send it with one or more `mailer worker` processes {where} (see: mailer jobs)")


def _warn_unverified(transport: Transport) -> None:
    from mailer.services.send import unverified

    where = unverified(transport)
    if where is not None:
        say(
            Text(
                f"warning: the certificate of {where} will NOT be verified "
                "(--insecure-skip-tls-verify / smtp.insecure_skip_verify): anyone on the "
                "path could read the mail and the password; use this with a local test "
                "relay only",
                "bold yellow",
            ),
            err=True,
        )


def _resume_command(campaign: Path, given: list[tuple[str, Any]]) -> str:
    """The command that resumes this run: same campaign, relay and database (no --yes).

    ``given`` pairs each flag with its value: ``True`` for a switch that was
    set, ``None`` or ``False`` for one that was not.
    """
    import shlex

    words = ["mailer", "send", str(campaign), "--live"]
    for flag, value in given:
        if value is True:
            words.append(flag)
        elif value is not None and value is not False:
            words += [flag, str(value)]
    return shlex.join(words)


def _send(
    opened: CampaignSend, transport: Transport, as_json: bool, stop: threading.Event
) -> SendReport:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn("[bold]sending"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(
            "sent {task.fields[sent]} · failed {task.fields[failed]} · {task.fields[rate]}/s"
        ),
        TimeRemainingColumn(),
        # Not markup: the text quotes the relay, whose replies may hold [brackets].
        TextColumn("{task.fields[waiting]}", style="yellow", markup=False),
        console=err_console,
        disable=as_json or not err_console.is_terminal,
    )
    state: dict[str, Any] = {"task": None}

    def progress(report: SendReport) -> None:
        if state["task"] is None:
            state["task"] = bar.add_task(
                "send", total=report.planned, sent=0, failed=0, rate="0", waiting=""
            )
        bar.update(
            state["task"],
            completed=report.sent + report.failed + report.skipped_other_run,
            sent=report.sent,
            failed=report.failed,
            waiting=report.waiting,
            rate=f"{report.sent / max(bar.get_time() - bar.tasks[0].start_time, 0.001):.0f}"
            if bar.tasks and bar.tasks[0].start_time
            else "0",
        )

    if opened.settings.store_url is None or opened.prepared.campaign.ab is not None:
        with bar:
            return opened.send(transport, progress, stop=stop)
    # The shared (PostgreSQL) store: queued as a job that workers on any host may join.
    from mailer.services.worker import send_as_job

    opened.options.stop = stop
    with bar:
        done = send_as_job(opened, transport, progress)
    if not as_json:
        note = f" — {done.note}" if done.note else ""
        say(f"job {done.job.id} ({done.job.journal_key}): {done.outcome}, {done.sent} sent by "
            f"this process{note}", err=True)  # fmt: skip
    return done.reports[0]


_RELAY_HINT = "fix the relay, then"
# Feedback pauses name their cause (mailer.feedback.rates.pause_cause): the advice differs.
_PAUSE_HINTS = {
    "complaints": "find out why people report the mail (where the list came from, consent, "
    "how often you send); then",
    "bounces": "remove the dead addresses (mailer contacts, mailer report shows the bounces); then",
    "sender": "fix what the receivers refuse (mailer doctor checks SPF, DKIM, DMARC, reverse "
    "DNS and blocklists; mailer status lists the reasons); then",
}


def _finish(report: SendReport, resume: str, as_json: bool, stop: StopSignals) -> None:
    if as_json:
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        print_report(report)
    if report.stopped:
        cut = len(report.new_unknown)
        finished = (
            f"{cut} message(s) still in flight at the end of the grace period are unknown"
            if cut
            else "In-flight messages finished"
        )
        say(
            f"Stopped ({stop.name}). {finished}; {report.pending} not sent yet. "
            f"Resume with: {resume}",
            err=True,
        )
        raise typer.Exit(stop.exit_code)
    if report.paused:
        again = ""
        if report.resume_in is not None:
            again = f"; run `mailer send` again in about {report.resume_in / 3600:.1f} h"
        say(Text("error: ", "bold red") + Text(report.paused + again), err=True)
        if report.pause_cause == "unknown":
            _unknown_advice(report, resume)
            raise typer.Exit(1)
        hint = ADVICE.get(report.advice or "") or report.hint
        if hint:
            say(f"  hint: {hint}", err=True)
            say(f"  then resume with: {resume}", err=True)
        else:
            first = _PAUSE_HINTS.get(report.pause_cause, _RELAY_HINT)
            if report.resume_in is not None:
                first = "when the quota allows,"
            say(f"  hint: {first} resume with: {resume}", err=True)
        raise typer.Exit(1)


def _unknown_advice(report: SendReport, resume: str) -> None:
    """What to do when the run paused on unknowns: the likely cause first, no blind re-send."""
    if "timed out" in report.unknown_reason:
        cause = (
            "the relay answers the end of a message more slowly than [smtp] timeout allows: "
            "raise timeout in mailer.toml (the messages probably arrived)"
        )
    else:
        cause = (
            "connections dropped right after messages were handed over: the relay or the "
            "network is unstable (the messages may well have arrived)"
        )
    say(f"  likely cause: {cause}", err=True)
    say(
        "  hint: do not re-send blindly — check the relay's log for the addresses in "
        "`mailer status`; fix the cause, then resume (unknown recipients are skipped) "
        f"with: {resume}",
        err=True,
    )


def _test_send(opened: CampaignSend, address: str, as_json: bool) -> None:
    results = run(lambda: opened.test_send(address))
    if as_json:
        print(json.dumps([r.to_dict() for r in results], ensure_ascii=False, indent=2))
        return
    for result in results:
        say(f"variant {result.variant}: {result.code} {result.subject}  → {address}")
        if not opened.settings.smtp_configured:  # no relay: the outbox says where the file went
            say(f"  {result.reply} (no relay configured: nothing was mailed)")
    console.print("Test messages are not recorded in the journal.")
