"""``mailer send`` (dry run by default) and ``mailer status``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from mailer.cli.app import app, console, err_console, print_rows, run
from mailer.errors import SendError

if TYPE_CHECKING:
    import sqlite3

    from mailer.config import Settings
    from mailer.dkim import DkimSigner
    from mailer.pipeline import PreparedCampaign
    from mailer.send import DryRun, SendOptions, SendReport, TestSend
    from mailer.transport import Transport


MAX_FAILURES = 25  # the default of --max-failures


def _say(text: str | Text, *, err: bool = False) -> None:
    """Print one message without hard wrapping (addresses and SMTP replies stay on one line)."""
    (err_console if err else console).print(
        text if isinstance(text, Text) else Text(text), soft_wrap=True
    )


def _interactive() -> bool:
    """True when there is a person at a terminal to answer the confirmation question."""
    return sys.stdin.isatty()


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
    from mailer.config import load_settings
    from mailer.pipeline import prepare_campaign
    from mailer.send import SendOptions

    scheduled: list[str] = []  # the schedule's description, when the campaign has one

    def prepare() -> tuple[PreparedCampaign, Settings]:
        settings = load_settings(db=db, smtp_url=smtp, smtp_profile=smtp_profile)
        prepared = prepare_campaign(campaign, settings)
        if prepared.campaign.schedule_table is not None:
            scheduled.append(_check_scheduled(prepared, live and not test and not ignore_schedule))
        return prepared, prepared.settings

    prepared, settings = run(prepare)
    from mailer.dkim import signer_from_settings

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
        _dry_run(prepared, conn, options, scheduled[0] if scheduled else None, as_json)
        return
    transport = run(lambda: _transport(prepared, settings, insecure_skip_tls_verify, concurrency))
    # The outbox is a folder, not a relay: there is no quota to protect.
    options.unthrottled = transport.name == "outbox"
    options.forced, checked = run(lambda: _pre_send_checks(prepared, conn, force, no_browser))
    options.fold_skipped = no_browser
    _confirm(prepared, conn, options, transport, checked, yes, as_json)
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
    from mailer.scheduler import schedule_of

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
    from mailer.store import connect

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

        from mailer.smtp import SmtpTransport, relay_from_settings

        relay = relay_from_settings(settings, insecure_skip_verify=insecure)
        if concurrency and concurrency > relay.pool:
            relay = replace(relay, pool=concurrency)
        if not relay.verify and (relay.starttls or relay.implicit_tls):
            _say(
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
    from mailer.transport import OutboxTransport

    return OutboxTransport(settings.outbox / prepared.campaign.id)


def _pre_send_checks(
    prepared: PreparedCampaign, conn: sqlite3.Connection, force: bool, no_browser: bool
) -> tuple[bool, str]:
    """Run the pre-send checks; errors stop the send unless ``--force``.

    Returns whether the send is forced, and one line for the confirmation summary.
    """
    from mailer.checks import refuse_on_errors, run_checks

    report = run_checks(prepared, browser=not no_browser, conn=conn)
    warnings = [f for f in report.warnings if f.code != "fold-not-run"]  # said by the line
    fold = "fold " + report.fold_note if report.fold_ran else "fold check NOT run"
    line = f"{len(report.errors)} error(s), {len(warnings)} warning(s); {fold}"
    if report.ok:
        return False, line
    if not force:
        refuse_on_errors(report)
    _say(
        Text(f"--force: sending despite {len(report.errors)} check error(s) (recorded)", "yellow"),
        err=True,
    )
    return True, line


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
    rows = [("audience", str(plan.audience)), ("to send", str(len(plan.todo)))]
    for label, count in (
        ("already sent", plan.skipped_sent),
        ("failed before", plan.skipped_failed),
        ("suppressed", len(plan.suppressed)),
        ("held back (frequency cap)", len(plan.capped)),
        ("unknown (skipped)", len(plan.unknown)),
    ):
        if count:
            rows.append((label, str(count)))
    return rows


def _dry_run(
    prepared: PreparedCampaign,
    conn: sqlite3.Connection,
    options: SendOptions,
    scheduled: str | None,
    as_json: bool,
) -> None:
    from mailer.checks import run_checks
    from mailer.journal import journal_key
    from mailer.send import dry_run

    # The journal a live send would use: outbox runs keep their own (see journal_key).
    transport_name = "smtp" if prepared.settings.smtp_configured else "outbox"
    key = journal_key(prepared.campaign.id, transport_name)
    result = run(lambda: dry_run(prepared, conn, options=options, campaign_id=key))
    if as_json:
        print(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
        return
    rows = _skip_rows(result) + _variant_rows(result)
    if result.plan.todo:
        size = f"{result.total_bytes / 1024:.0f} KB in all, largest {result.largest / 1024:.1f} KB"
        rows.append(("rendered", size))
    # The checks a live send runs first (the fold needs Chromium: `mailer check` measures it).
    checks = run(lambda: run_checks(prepared, browser=False, conn=conn))
    warnings = [f for f in checks.warnings if f.code != "fold-not-run"]  # said in the row
    rows.append(
        (
            "checks",
            f"{len(checks.errors)} error(s), {len(warnings)} warning(s) "
            f"without the fold (details: mailer check {prepared.campaign.path})",
        )
    )
    if scheduled:
        rows.append(("schedule", f"{scheduled}: `mailer run-due` sends it"))
    print_rows(f"dry run: {prepared.campaign.id} (nothing was sent)", rows)
    _print_unknown(result.plan.unknown)
    if scheduled:
        console.print("To send it by hand now anyway: add --live --ignore-schedule.")
    else:
        console.print("To send for real: add --live (you will be asked to confirm).")


def _print_unknown(unknown: list[str]) -> None:
    if not unknown:
        return
    shown = ", ".join(unknown[:20]) + (
        f" and {len(unknown) - 20} more" if len(unknown) > 20 else ""
    )
    _say(
        Text(
            f"{len(unknown)} recipient(s) are unknown — in flight when an earlier run stopped, "
            f"perhaps delivered: {shown}. They are not re-sent; add --resend-unknown to send "
            "them again.",
            "yellow",
        ),
        err=True,
    )


def _confirm(
    prepared: PreparedCampaign,
    conn: sqlite3.Connection,
    options: SendOptions,
    transport: Transport,
    checked: str,
    yes: bool,
    as_json: bool,
) -> None:
    from mailer.journal import journal_key
    from mailer.send import describe_transport, dry_run

    key = journal_key(prepared.campaign.id, transport.name)
    result = run(lambda: dry_run(prepared, conn, options=options, build=False, campaign_id=key))
    rows = _skip_rows(result) + _variant_rows(result)
    rows.append(("transport", describe_transport(transport)))
    rows.append(("checks", checked))
    if options.fold_skipped:
        rows.append(("fold check", "NOT run (--no-browser): key blocks unverified; recorded"))
    if not as_json:
        print_rows(f"about to send {prepared.campaign.id}", rows)
        _print_unknown(result.plan.unknown)
    if yes or not result.plan.todo:
        return
    if as_json or not _interactive():
        run(_refuse)
    if not typer.confirm(f"Send {len(result.plan.todo)} message(s) now?", default=False):
        console.print("Nothing was sent.")
        raise typer.Exit(1)


def _refuse() -> None:
    raise SendError(
        "refusing to send without confirmation: there is no terminal to ask on",
        hint="check the dry run (mailer send CAMPAIGN), then add --yes to confirm",
    )


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

    from mailer.send import send_campaign

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
        _print_report(report)
    if report.stopped:
        _say(
            f"Stopped. In-flight messages finished; {report.pending} not sent yet. "
            f"Resume with: {resume}",
            err=True,
        )
        raise typer.Exit(130)
    if report.paused:
        _say(Text("error: ", "bold red") + Text(report.paused), err=True)
        first = "when the quota allows," if "quota" in report.paused else "fix the relay, then"
        _say(f"  hint: {first} resume with: {resume}", err=True)
        raise typer.Exit(1)


def _failed_text(report: SendReport) -> str:
    if not report.bounced:
        return str(report.failed)
    return f"{report.failed} ({report.bounced} hard bounce(s), now on the suppression list)"


def _print_report(report: SendReport) -> None:
    rows = [
        ("transport", report.transport),
        ("sent", str(report.sent)),
        ("failed", _failed_text(report)),
        ("retries", str(report.retries)),
        ("left for later", str(report.pending)),
        (
            "skipped",
            f"{report.skipped_sent} already sent, {report.skipped_suppressed} suppressed, "
            f"{report.skipped_failed} failed before, {len(report.unknown)} unknown"
            + (f", {report.skipped_other_run} by another run" if report.skipped_other_run else "")
            + (f", {report.skipped_capped} by the frequency cap" if report.skipped_capped else ""),
        ),
        ("time", f"{report.elapsed:.1f} s ({report.rate:.1f} messages/s)"),
    ]
    rows += [(f"subject {k}", str(v)) for k, v in sorted(report.variants.items())]
    verb = "paused" if report.paused else "stopped" if report.stopped else "sent"
    from mailer.journal import OUTBOX_SUFFIX

    print_rows(f"{verb} {report.campaign_id.removesuffix(OUTBOX_SUFFIX)}", rows)
    for failure in report.failures[:20]:
        _say(f"  failed {failure.email}: {failure.code or '-'} {failure.reply}")
    if len(report.failures) > 20:
        console.print(f"  ... and {len(report.failures) - 20} more (see mailer status)")
    _print_unknown(report.unknown)


def _test_send(
    prepared: PreparedCampaign,
    settings: Settings,
    address: str,
    insecure: bool,
    as_json: bool,
    signer: DkimSigner | None,
) -> None:
    from mailer.campaign import check_address
    from mailer.send import send_tests

    def action() -> list[TestSend]:
        target = check_address(address, "--test", "the test address")
        transport = _transport(prepared, settings, insecure)
        return send_tests(prepared, target, transport, dkim=signer)

    results = run(action)
    if as_json:
        print(json.dumps([r.to_dict() for r in results], ensure_ascii=False, indent=2))
        return
    for result in results:
        _say(f"variant {result.variant}: {result.code} {result.subject}  → {address}")
        if not settings.smtp_configured:  # no relay: the outbox says where the file went
            _say(f"  {result.reply} (no relay configured: nothing was mailed)")
    console.print("Test messages are not recorded in the journal.")


@app.command()
def status(
    campaign: Annotated[
        str, typer.Argument(help="campaign file or id", metavar="CAMPAIGN", show_default=False)
    ],
    db: Annotated[
        Path | None, typer.Option("--db", help="database file [default: mailer.db]")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the status as JSON")] = False,
) -> None:
    """Show a campaign's journal: counts by status and each failure with its SMTP reply."""
    from mailer.config import load_settings
    from mailer.journal import campaign_ids, campaign_status, journal_key
    from mailer.store import connect

    def action() -> tuple[Any, Any, list[str]]:
        settings = load_settings(db=db)
        conn = connect(settings.db_path)
        campaign_id = _campaign_id(campaign, settings)
        found = campaign_status(conn, campaign_id)
        outbox = campaign_status(conn, journal_key(campaign_id, "outbox"))
        return found, outbox, ([] if found.total or found.runs else campaign_ids(conn))

    real, outbox, known = run(action)
    # Outbox runs are files, not mail (journal key <id>@outbox): shown when nothing
    # real was sent, else mentioned after the real journal.
    result = real if _has(real) or not _has(outbox) else outbox
    if as_json:
        data = result.to_dict()
        if result is real and _has(outbox):
            data["outbox"] = outbox.to_dict()
        print(json.dumps(data, ensure_ascii=False, indent=2))
        return
    if not _has(result):
        others = ", ".join(known) if known else "none yet"
        _say(
            f"nothing has been sent for {result.campaign_id!r} yet "
            f"(campaigns in the journal: {others})",
            err=True,
        )
        return
    kind = " (outbox runs: files written, no mail sent)" if result is outbox else ""
    _say(f"{result.campaign_id}{kind}: {result.total} recipient(s) in the journal")
    _print_status(result)
    if result is real and _has(outbox):
        _say(
            f"outbox runs (files, not mail): {outbox.total} recipient(s); "
            f"see mailer status {outbox.campaign_id}"
        )


def _has(status: Any) -> bool:
    return bool(status.total or status.runs)


def _print_status(result: Any) -> None:
    table = Table()
    table.add_column("status")
    table.add_column("count", justify="right")
    for name, count in result.counts.items():
        table.add_row(name, str(count))
    console.print(table)
    for entry in result.failures:
        kind = " (hard bounce, suppressed)" if entry.bounce else ""
        _say(f"failed {entry.email}: {entry.last_code or '-'} {entry.last_reply}{kind}")
    for entry in result.unknown:
        _say(f"unknown {entry.email}: in flight since {entry.updated_at}")
    if result.runs:
        last = result.runs[-1]
        forced = " (checks overridden with --force)" if last.forced else ""
        _say(f"last run #{last.id} {last.started_at} via {last.transport}: {last.note}{forced}")


def _campaign_id(value: str, settings: Settings) -> str:
    """A campaign id from a campaign file path, or the id itself."""
    path = Path(value)
    if path.suffix == ".toml" or "/" in value:
        if not path.is_file():
            raise SendError(
                f"campaign file not found: {value}",
                hint="pass an existing campaign file, or a campaign id (see mailer status --help)",
            )
        from mailer.campaign import load_campaign

        return load_campaign(path, settings).id
    return value
