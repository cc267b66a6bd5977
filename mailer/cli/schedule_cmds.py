"""Scheduled sends: ``schedule list``, ``schedule runs``, ``run-due`` and ``scheduler``.

``run-due`` is what cron or a systemd timer calls every few minutes; it is
idempotent and safe to run twice at once. ``scheduler`` runs the same pass in
a foreground loop for machines without cron.
"""

from __future__ import annotations

import json
import time as systime
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from mailer.cli.app import app, console, err_console, print_error, run
from mailer.cli.options import DbOpt, SmtpOpt
from mailer.core.errors import MailerError, ScheduleError

if TYPE_CHECKING:
    from mailer.core.settings import Settings
    from mailer.services.run_due import RunDueReport
    from mailer.services.scheduled import Overview, Wave, WaveProgress

schedule_app = typer.Typer(
    help="""Scheduled campaigns: what is coming, what was sent.

Examples:

\b
  mailer schedule list
  mailer schedule runs
""",
    no_args_is_help=True,
)
app.add_typer(schedule_app, name="schedule")

NowOpt = Annotated[
    str | None,
    typer.Option(
        "--now",
        metavar="ISO",
        help="pretend it is this moment (e.g. 2027-02-06T01:00Z; no offset means UTC)",
    ),
]
CampaignsOpt = Annotated[
    Path | None,
    typer.Option(
        "--campaigns", help="campaigns folder", show_default="campaigns/ in the workspace"
    ),
]
NoBrowserOpt = Annotated[
    bool,
    typer.Option(
        "--no-browser", help="skip the fold check in headless Chromium (reported as NOT run)"
    ),
]


def parse_now(text: str | None) -> datetime:
    """``--now`` as an aware UTC datetime (the real clock when not given)."""
    if text is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ScheduleError(
            f"--now is not an ISO date-time: {text!r}", hint="for example --now 2027-02-06T01:00Z"
        ) from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def _settings(db: Path | None, smtp: str | None = None) -> Settings:
    from mailer.services.workspace import workspace_settings

    return workspace_settings(db=db, smtp_url=smtp)


def _folder(settings: Settings, campaigns: Path | None) -> Path:
    if campaigns is not None:
        return campaigns
    folder = settings.root / "campaigns"
    # Relative to the working directory when possible: shorter paths in error messages.
    return folder.relative_to(Path.cwd()) if folder.is_relative_to(Path.cwd()) else folder


@schedule_app.command("list")
def schedule_list(
    campaigns: CampaignsOpt = None,
    now: NowOpt = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="waves shown per campaign")] = 10,
    db: DbOpt = None,
) -> None:
    """The next waves of every scheduled campaign.

    Per campaign: each time zone's wave, when it sends (local and UTC), how many people, and
    its state.

    Examples:

    \b
      mailer schedule list
      mailer schedule list --now 2027-01-20T00:00Z --limit 3
    """
    from mailer.services.scheduled import load_scheduled, overview
    from mailer.services.workspace import existing_database

    moment = run(lambda: parse_now(now))
    settings = run(lambda: _settings(db))
    folder = _folder(settings, campaigns)
    found, errors = run(lambda: load_scheduled(folder, settings, moment.date()))
    conn = run(lambda: existing_database(settings))
    for item in found:
        view = run(partial(overview, item, moment, conn, limit))
        if view.waves:
            title, table = _overview_table(view)
            console.print(Text(title), soft_wrap=True)  # a table title would wrap at its width
            console.print(table)
        else:
            console.print(Text(f"{view.campaign}: {view.description}\n  nothing coming up"))
        _print_problems(view)
    for error in errors:
        print_error(error)
    if not found and not errors:
        # markup=False: "[schedule]" would otherwise be read as a rich style tag and vanish.
        console.print(
            f"No campaign in {_folder(settings, campaigns)} has a [schedule] table.", markup=False
        )
    if errors:
        raise typer.Exit(1)


def _print_problems(view: Overview) -> None:
    """Contacts whose schedule fields cannot be read: say which, and what to fix."""
    if view.default_zone:
        err_console.print(
            Text("warning: ", style="yellow")
            + Text(
                f"{view.default_zone} recipient(s) have no valid timezone: they get the "
                f"greeting on {view.zone} time (the workspace zone, `timezone` in mailer.toml)"
            ),
            soft_wrap=True,
        )
    for problem in view.problems:
        err_console.print(Text("warning: ", style="yellow") + Text(problem), soft_wrap=True)
    for year in view.days_off_unknown:
        err_console.print(
            Text("warning: ", style="yellow")
            + Text(
                f"China's days off for {year} (days in lieu, working weekends) are not published "
                'yet: quiet_days "days-off" counts only the statutory holidays and weekends '
                "(the holidays package's guessed days in lieu are not counted); once announced "
                f"(usually in November), enter them in mailer.toml [calendar.days_off.{year}] "
                "or upgrade holidays"
            ),
            soft_wrap=True,
        )
    more = view.problem_count - len(view.problems)
    if more > 0:
        err_console.print(Text(f"warning: ... and {more} more contact(s) like these"))


_STATES = {"due": "due now", "waiting": "waiting for window", "pending": "pending"}


def _overview_table(view: Overview) -> tuple[str, Table]:
    from rich import box

    # Compact enough for 80 columns: one occurrence goes into the title, not a column.
    occurrences = {wave.occurrence for wave, _ in view.waves}
    single = len(occurrences) == 1
    title = f"{view.campaign}: {view.description}"
    if single:
        title += f" (occurrence {next(iter(occurrences))})"
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.padding = (0, 1)
    columns = ("local date", "time", "time zone", "sends at (UTC)")
    for column in columns if single else ("occurrence", *columns):
        table.add_column(column, no_wrap=True)
    table.add_column("people", justify="right")
    table.add_column("state")
    for wave, progress in view.waves:
        sends = f"{wave.send_at:%Y-%m-%d %H:%M}" if wave.send_at else "never"
        cells = [
            str(wave.local_date),
            _local_time(wave),
            wave.zone,
            sends,
            str(len(wave.recipients)),
        ]
        table.add_row(*([] if single else [wave.occurrence]), *cells, _state(wave, progress))
    notes = []
    if view.more:
        notes.append(f"{view.more} more wave(s) not shown (--limit)")
    if view.undated:
        notes.append(f"{view.undated} recipient(s) have no usable date and are never sent")
    if notes:
        table.caption = "; ".join(notes)
        table.caption_justify = "left"
    return title, table


def _state(wave: Wave, progress: WaveProgress) -> str:
    """From the journal first: a wave whose people are settled is sent, whatever its time
    says; else its plan (due now, waiting, pending), with what is already done."""
    people = len(wave.recipients)
    if progress.settled >= people:
        failed = progress.settled - progress.sent
        return f"sent ({progress.sent})" + (f", {failed} not delivered" if failed else "")
    if wave.send_at is None:
        planned = "skipped: window/quiet days fill the grace period"
    else:
        planned = _STATES.get(wave.state, wave.state)
    if progress.outbox >= people:
        return f"sent to the outbox ({progress.outbox}): files, not mail"
    if progress.settled:
        planned = f"{progress.settled} of {people} sent; the rest {planned}"
    if progress.outbox:
        planned += f" (an outbox run wrote {progress.outbox}: files, not mail)"
    return planned


def _local_time(wave: Wave) -> str:
    from zoneinfo import ZoneInfo

    return f"{wave.due_at.astimezone(ZoneInfo(wave.zone)):%H:%M}"


@schedule_app.command("runs")
def schedule_runs_cmd(
    campaign: Annotated[
        str | None,
        typer.Argument(help="campaign id (all campaigns when left out)", metavar="[CAMPAIGN]"),
    ] = None,
    db: DbOpt = None,
) -> None:
    """What scheduled waves did: sent, missed or failed.

    Missed: the grace period ended before the wave could be sent.

    Examples:

    \b
      mailer schedule runs
      mailer schedule runs christmas-2026
    """
    from mailer.services.scheduled import schedule_runs
    from mailer.services.workspace import existing_database

    settings = run(lambda: _settings(db))
    conn = run(lambda: existing_database(settings))
    rows = schedule_runs(conn, datetime.now(UTC), campaign) if conn is not None else []
    title = f"scheduled runs of {campaign}" if campaign else "scheduled runs"
    table = Table(title=title, title_justify="left")
    columns = ("occurrence", "wave", "outcome", "recipients", "sent")
    for column in columns if campaign else ("campaign", *columns):
        table.add_column(column, no_wrap=True)
    table.add_column("note")
    for row in rows:
        cells = [row.key.partition("@")[2], row.wave, row.outcome, str(row.recipients)]
        cells += [str(row.sent), row.note]
        table.add_row(*(cells if campaign else [row.campaign, *cells]))
    console.print(table if rows else "No scheduled runs recorded yet.")


@app.command("run-due")
def run_due_cmd(
    now: NowOpt = None,
    commit: Annotated[
        bool,
        typer.Option(
            "--commit",
            help="with --now: really send and record, as if it were that moment "
            "(without it, --now is a rehearsal that changes nothing)",
        ),
    ] = False,
    campaigns: CampaignsOpt = None,
    db: DbOpt = None,
    smtp: SmtpOpt = None,
    force: Annotated[
        bool, typer.Option("--force", help="send despite pre-send check errors (recorded)")
    ] = False,
    resend_unknown: Annotated[
        bool,
        typer.Option(
            "--resend-unknown",
            help="send again to recipients a crashed run left unknown (perhaps delivered)",
        ),
    ] = False,
    no_browser: NoBrowserOpt = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
) -> None:
    """Send the scheduled waves that are due now (for cron).

    Safe to run every few minutes: a wave is never sent twice. With --now, a rehearsal: it
    shows what a pass at that moment would send or miss, and sends and records nothing (add
    --commit to really do it).

    Examples:

    \b
      mailer run-due
      mailer run-due --now 2027-02-03T01:05Z
      mailer run-due --now 2027-02-03T01:05Z --commit
    """
    from mailer.core.process import StopSignals
    from mailer.services.run_due import run_due_pass

    moment = run(lambda: parse_now(now)) if now is not None else None
    settings = run(lambda: _settings(db, smtp))
    with StopSignals() as stop:
        report = run(
            lambda: run_due_pass(
                settings,
                _folder(settings, campaigns),
                moment,
                force=force,
                browser=not no_browser,
                rehearsal=moment is not None and not commit,
                resend_unknown=resend_unknown,
                stop=stop.event,
            )
        )
    _print_report(report, as_json)
    if report.busy is not None:
        return  # the other pass does the work: nothing wrong (cron stays quiet-ish)
    if stop.stopped:
        _say_stopped(stop.name, "the next run-due pass resumes the waves left (mailer run-due)")
        raise typer.Exit(stop.exit_code)
    if not report.ok:
        raise typer.Exit(1)


def _say_stopped(signal_name: str, resume: str) -> None:
    err_console.print(
        Text(f"Stopped ({signal_name}). In-flight messages finished; {resume}."),
        soft_wrap=True,
    )


def _print_report(report: RunDueReport, as_json: bool) -> None:
    if report.busy is not None:
        holder = f" (pid {report.busy})" if report.busy else ""
        err_console.print(
            Text(f"another run-due pass is running{holder}: this one exits; it sends what is due"),
            soft_wrap=True,
        )
        return
    if as_json:
        data = {
            "now": report.now.isoformat(timespec="seconds"),
            "rehearsal": report.rehearsal,
            "campaigns": report.campaigns,
            "waves": [vars(r) for r in report.results],
            "errors": [str(e) for e in report.errors],
            "ab": report.ab,
            "stopped": report.stopped,
        }
        print(json.dumps(data, ensure_ascii=False, indent=2))
        return
    stamp = f"{report.now:%Y-%m-%d %H:%M} UTC"
    if report.rehearsal:
        console.print(
            Text(f"{stamp}  rehearsal (--now without --commit): nothing is sent or recorded"),
            soft_wrap=True,
        )
    for r in report.results:
        counts = f"{r.sent} sent" + (f", {r.failed} failed" if r.failed else "")
        detail = counts if r.outcome == "sent" else f"{r.recipients} recipient(s)"
        line = f"{stamp}  {r.outcome:<6}  {r.key}  {r.wave}  {detail}"
        console.print(Text(line + (f"  ({r.note})" if r.note else "")), soft_wrap=True)
    for line in report.ab:
        console.print(Text(f"{stamp}  ab      {line}"), soft_wrap=True)
    for error in report.errors:
        print_error(error)
    if not report.results and not report.errors and not report.ab:
        console.print(f"{stamp}  nothing due ({report.campaigns} scheduled campaign(s))")


@app.command("scheduler")
def scheduler_cmd(
    interval: Annotated[
        float, typer.Option("--interval", min=10, help="seconds between passes")
    ] = 300,
    campaigns: CampaignsOpt = None,
    db: DbOpt = None,
    smtp: SmtpOpt = None,
    no_browser: NoBrowserOpt = False,
) -> None:
    """Run run-due every --interval seconds (Ctrl-C or SIGTERM stops).

    For machines without cron or systemd: the same passes as `mailer run-due`, in the
    foreground.

    Examples:

    \b
      mailer scheduler
      mailer scheduler --interval 60
    """
    from mailer.core.process import StopSignals
    from mailer.services.run_due import run_due_pass

    settings = run(lambda: _settings(db, smtp))
    console.print(f"scheduler: a pass every {interval:g} s; Ctrl-C to stop")
    with StopSignals() as stop:
        try:
            while not stop.stopped:
                started = systime.monotonic()
                try:
                    report = run_due_pass(
                        settings,
                        _folder(settings, campaigns),
                        browser=not no_browser,
                        stop=stop.event,
                    )
                    _print_report(report, False)
                except MailerError as exc:  # say so, and try again next time
                    print_error(exc)
                stop.event.wait(max(0.0, interval - (systime.monotonic() - started)))
        except KeyboardInterrupt:  # Ctrl-C twice: at once
            console.print("scheduler stopped")
            raise typer.Exit(130) from None
    _say_stopped(stop.name, "the scheduler's next start resumes the waves left")
    console.print("scheduler stopped")
    raise typer.Exit(stop.exit_code)
