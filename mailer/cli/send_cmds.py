"""``mailer send``: a dry run by default; checks, confirmation, progress and the report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.text import Text

from mailer.cli.app import app, console, err_console, run
from mailer.cli.send_views import confirm_send, print_report, say, show_dry_run
from mailer.core.errors import SendError

if TYPE_CHECKING:
    import sqlite3

    from mailer.campaign.prepared import PreparedCampaign
    from mailer.compose.dkim import DkimSigner
    from mailer.core.settings import Settings
    from mailer.delivery.plan import TestSend
    from mailer.delivery.report import SendOptions, SendReport
    from mailer.delivery.transport import Transport


MAX_FAILURES = 25  # the default of --max-failures


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
    smtp: Annotated[
        str | None, typer.Option("--smtp", metavar="URL", help="relay URL (beats MAILER_SMTP_URL)")
    ] = None,
    smtp_profile: Annotated[
        str | None, typer.Option("--smtp-profile", help="named [smtp.profiles.NAME] in mailer.toml")
    ] = None,
    insecure_skip_tls_verify: Annotated[
        bool,
        typer.Option(
            "--insecure-skip-tls-verify",
            help="DANGEROUS: accept any relay certificate (local test relays only)",
        ),
    ] = False,
    resend_unknown: Annotated[
        bool,
        typer.Option("--resend-unknown", help="re-send recipients left in flight by a crash"),
    ] = False,
    retry_failed: Annotated[
        bool, typer.Option("--retry-failed", help="retry failed recipients (never hard bounces)")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="send despite pre-send check errors (recorded)")
    ] = False,
    no_browser: Annotated[
        bool, typer.Option("--no-browser", help="skip the fold check in the pre-send checks")
    ] = False,
    concurrency: Annotated[
        int | None, typer.Option("--concurrency", min=1, max=64, help="messages in flight")
    ] = None,
    max_failures: Annotated[
        int, typer.Option("--max-failures", min=1, help="pause after this many failures in a row")
    ] = MAX_FAILURES,
    db: Annotated[
        Path | None, typer.Option("--db", help="database file [default: mailer.db]")
    ] = None,
    ignore_schedule: Annotated[
        bool,
        typer.Option(
            "--ignore-schedule",
            help="send a campaign that has a [schedule] now, to everyone (run-due may send again)",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
) -> None:
    """Send a campaign: a dry run unless --live; resumes where an earlier run stopped."""
    from mailer.campaign.prepared import prepare_campaign
    from mailer.core.settings import load_settings
    from mailer.delivery.report import SendOptions

    def prepare() -> tuple[PreparedCampaign, str | None]:
        settings = load_settings(db=db, smtp_url=smtp, smtp_profile=smtp_profile)
        prepared = prepare_campaign(campaign, settings)
        scheduled = None  # the schedule's description, when the campaign has one
        if prepared.campaign.schedule_table is not None:
            scheduled = _check_scheduled(prepared, live and not test and not ignore_schedule)
        return prepared, scheduled

    prepared, scheduled = run(prepare)
    settings = prepared.settings
    from mailer.compose.dkim import signer_from_settings

    signer = run(lambda: signer_from_settings(settings))
    options = SendOptions(
        dkim=signer,
        concurrency=concurrency,
        max_consecutive_failures=max_failures,
        resend_unknown=resend_unknown,
        retry_failed=retry_failed,
        handle_sigint=True,
    )
    if test:
        _test_send(prepared, settings, test, insecure_skip_tls_verify, as_json, signer)
        return
    conn = run(lambda: _database(settings))
    prepared.conn = prepared.conn or conn  # database audiences read through the same connection
    if not live:
        show_dry_run(prepared, conn, options, scheduled, as_json)
        return
    transport = run(lambda: _transport(prepared, settings, insecure_skip_tls_verify, concurrency))
    # The outbox is a folder, not a relay: there is no quota to protect.
    options.unthrottled = transport.name == "outbox"
    options.forced, checked = run(lambda: _pre_send_checks(prepared, conn, force, no_browser))
    options.fold_skipped = no_browser
    confirm_send(prepared, conn, options, transport, checked, yes, as_json)
    report = run(lambda: _send(prepared, conn, transport, options, as_json))
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
    _finish(report, resume, as_json)


def _check_scheduled(prepared: PreparedCampaign, refuse: bool) -> str:
    """Validate a campaign's [schedule]; refuse a live manual send of it unless told to.

    A scheduled greeting sent by hand reaches everyone now, under another
    journal key than `run-due` uses, so the same people would get it again on
    the day.
    """
    from mailer.services.run_due import schedule_of

    schedule = schedule_of(prepared.campaign, prepared.settings)  # a typo is an error here too
    if refuse:
        raise SendError(
            "this campaign has a [schedule]: `mailer run-due` sends it to each recipient "
            "at the scheduled local time; sending it by hand mails everyone now, and "
            "run-due would greet them again on the day",
            where=prepared.campaign.where("schedule"),
            hint="see what is coming with `mailer schedule list`; to send now anyway, "
            "add --ignore-schedule",
        )
    return schedule.describe()


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


def _database(settings: Settings) -> sqlite3.Connection:
    from mailer.audience.store import connect

    return connect(settings.db_path)


def _transport(
    prepared: PreparedCampaign, settings: Settings, insecure: bool, concurrency: int | None = None
) -> Transport:
    """SMTP when a relay is configured, else the outbox folder ``<outbox>/<campaign id>``.

    ``--concurrency N`` grows the connection pool to N: messages in flight are
    at most one per connection.
    """
    if settings.smtp_configured:
        from dataclasses import replace

        from mailer.delivery.smtp import SmtpTransport, relay_from_settings

        relay = relay_from_settings(settings, insecure_skip_verify=insecure)
        if concurrency and concurrency > relay.pool:
            relay = replace(relay, pool=concurrency)
        if not relay.verify and (relay.starttls or relay.implicit_tls):
            say(
                Text(
                    f"warning: the certificate of {relay.where} will NOT be verified "
                    "(--insecure-skip-tls-verify / smtp.insecure_skip_verify): anyone on the "
                    "path could read the mail and the password; use this with a local test "
                    "relay only",
                    "bold yellow",
                ),
                err=True,
            )
        return SmtpTransport(relay)
    from mailer.delivery.transport import OutboxTransport

    return OutboxTransport(settings.outbox / prepared.campaign.id)


def _pre_send_checks(
    prepared: PreparedCampaign, conn: sqlite3.Connection, force: bool, no_browser: bool
) -> tuple[bool, str]:
    """Run the pre-send checks; errors stop the send unless ``--force``.

    Returns whether the send is forced, and one line for the confirmation summary.
    """
    from mailer.checks.gate import refuse_on_errors, run_checks

    report = run_checks(prepared, browser=not no_browser, conn=conn)
    # A skipped fold has a summary row of its own (--no-browser), so not a warning here.
    warnings = [f for f in report.warnings if f.code != "fold-not-run"]
    line = f"{len(report.errors)} error(s), {len(warnings)} warning(s)"
    if report.fold_ran:
        line += "; fold " + report.fold_note
    if report.ok:
        return False, line
    if not force:
        refuse_on_errors(report)
    say(
        Text(f"--force: sending despite {len(report.errors)} check error(s) (recorded)", "yellow"),
        err=True,
    )
    return True, line


def _send(
    prepared: PreparedCampaign,
    conn: sqlite3.Connection,
    transport: Transport,
    options: SendOptions,
    as_json: bool,
) -> SendReport:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from mailer.delivery.engine import send_campaign

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

    with bar:
        return send_campaign(
            prepared, conn=conn, transport=transport, options=options, progress=progress
        )


def _finish(report: SendReport, resume: str, as_json: bool) -> None:
    if as_json:
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        print_report(report)
    if report.stopped:
        say(
            f"Stopped. In-flight messages finished; {report.pending} not sent yet. "
            f"Resume with: {resume}",
            err=True,
        )
        raise typer.Exit(130)
    if report.paused:
        say(Text("error: ", "bold red") + Text(report.paused), err=True)
        first = "when the quota allows," if "quota" in report.paused else "fix the relay, then"
        say(f"  hint: {first} resume with: {resume}", err=True)
        raise typer.Exit(1)


def _test_send(
    prepared: PreparedCampaign,
    settings: Settings,
    address: str,
    insecure: bool,
    as_json: bool,
    signer: DkimSigner | None,
) -> None:
    from mailer.core.campaign import check_address
    from mailer.delivery.plan import send_tests

    def action() -> list[TestSend]:
        target = check_address(address, "--test", "the test address")
        transport = _transport(prepared, settings, insecure)
        return send_tests(prepared, target, transport, dkim=signer)

    results = run(action)
    if as_json:
        print(json.dumps([r.to_dict() for r in results], ensure_ascii=False, indent=2))
        return
    for result in results:
        say(f"variant {result.variant}: {result.code} {result.subject}  → {address}")
        if not settings.smtp_configured:  # no relay: the outbox says where the file went
            say(f"  {result.reply} (no relay configured: nothing was mailed)")
    console.print("Test messages are not recorded in the journal.")
