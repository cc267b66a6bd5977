"""``mailer worker`` (send queued jobs, on any number of processes) and ``mailer jobs``."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from mailer.cli.app import app, console, err_console, run
from mailer.cli.options import ConcurrencyOpt, DbOpt, InsecureOpt, JsonOpt, SmtpOpt, SmtpProfileOpt
from mailer.core.process import StopSignals

if TYPE_CHECKING:
    from mailer.services.worker import JobPass


# Longer than most functions: Typer declares every flag in the signature.
@app.command()
def worker(
    smtp: SmtpOpt = None,
    smtp_profile: SmtpProfileOpt = None,
    insecure_skip_tls_verify: InsecureOpt = False,
    concurrency: ConcurrencyOpt = None,
    until_idle: Annotated[
        bool,
        typer.Option("--until-idle", help="exit once no job is open (without it: keep waiting)"),
    ] = False,
    poll: Annotated[
        float, typer.Option("--poll", min=0.05, help="seconds between looks at the queue")
    ] = 5.0,
    db: DbOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON line per pass")] = False,
) -> None:
    """Send the jobs queued for workers; run as many as you like.

    Jobs come from `mailer send --live --enqueue-only` (and every live send on the
    PostgreSQL store). Each worker leases batches of a job's audience, so no two plan the
    same batch, and keeps its share of the rate and quotas. Ctrl-C or SIGTERM: in-flight
    messages finish, then the worker exits (its unsent batches go to the others).

    Examples:

    \b
      mailer worker
      mailer worker --until-idle
      mailer worker --smtp smtp+starttls://user@smtp.example.com:587
    """
    from mailer.services.worker import WorkerRequest, work

    request = WorkerRequest(
        db=db,
        smtp=smtp,
        smtp_profile=smtp_profile,
        insecure_skip_tls_verify=insecure_skip_tls_verify,
        concurrency=concurrency,
        until_idle=until_idle,
        poll=poll,
    )
    # systemd and docker stop a service with SIGTERM: finish what is in flight first.
    with StopSignals() as stop:
        try:
            passes = run(
                lambda: work(request, stop=stop.event, on_pass=lambda p: _show(p, as_json))
            )
        except KeyboardInterrupt:  # Ctrl-C twice: at once
            raise typer.Exit(130) from None
    if stop.stopped or any(p.outcome == "stopped" for p in passes):
        err_console.print(
            Text(
                f"Stopped ({stop.name}). In-flight messages finished; this worker's unsent "
                "batches go to the other workers (or the next `mailer worker`)."
            ),
            soft_wrap=True,
        )
        raise typer.Exit(stop.exit_code)
    if passes and passes[-1].outcome == "failed":
        raise typer.Exit(1)


def _show(done: JobPass, as_json: bool) -> None:
    if as_json:
        line = {
            "job": done.job.id,
            "outcome": done.outcome,
            "sent": done.sent,
            "batches": done.batches,
            "note": done.note,
            "runs": [r.run_id for r in done.reports],
        }
        print(json.dumps(line, ensure_ascii=False), flush=True)
        return
    text = f"job {done.job.id} ({done.job.journal_key}): {done.outcome}"
    text += f", {done.sent} sent in {done.batches} batch(es) of this worker"
    if done.note:
        text += f" — {done.note}"
    style = "" if done.outcome in ("sent", "done", "again") else "yellow"
    err_console.print(Text(text, style), soft_wrap=True)


@app.command()
def jobs(
    cancel: Annotated[
        int | None,
        typer.Option(
            "--cancel", metavar="ID", help="cancel a queued job (in-flight mail finishes)"
        ),
    ] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List the jobs queued for workers (or cancel one).

    Examples:

    \b
      mailer jobs
      mailer jobs --cancel 3
    """
    from mailer.services.worker import cancel as cancel_job
    from mailer.services.worker import list_jobs

    if cancel is not None:
        job = run(lambda: cancel_job(cancel, db))
        console.print(f"job {job.id} ({job.journal_key}) cancelled: workers take no more of it")
    found = run(lambda: list_jobs(db))
    if as_json:
        print(json.dumps([j.to_dict() for j in found], ensure_ascii=False, indent=2))
        return
    if not found:
        console.print("No queued sends. Queue one with: mailer send CAMPAIGN --live --enqueue-only")
        return
    for job in found:
        line = f"{job.id:>4}  {job.status:<9} {job.journal_key}  queued {job.enqueued_at}"
        if job.note:
            line += f"  ({job.note})"
        console.print(Text(line), soft_wrap=True)
