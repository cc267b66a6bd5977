"""Queued live sends and the workers that send them (``send --enqueue-only``, ``mailer worker``).

A job is queued after the same checks and confirmation as a live send. Any
number of worker processes sharing the store (SQLite: on this machine; PostgreSQL:
on any host) then take part: each pass of a worker is one send run that leases
batches of the job's audience (``mailer.delivery.jobs``), within its share of the limits.
A worker's pass ends when it found no batch left to lease; the last run of a
job sweeps the audience once more and closes the job.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from mailer.audience.database import Connection
from mailer.core.clock import utc_now
from mailer.core.errors import MailerError, SendError
from mailer.core.keys import journal_key
from mailer.delivery.jobs import (
    BatchShare,
    Job,
    cancel_job,
    close_job,
    enqueue,
    fingerprint,
    job_by_id,
    jobs,
    release,
)
from mailer.delivery.jobs import lease_holders as holders
from mailer.delivery.report import Progress, SendReport
from mailer.services.send import CampaignSend, SendRequest, Transport, open_send
from mailer.services.workspace import open_database, workspace_settings

__all__ = [
    "Job",
    "JobPass",
    "WorkerRequest",
    "cancel",
    "enqueue_send",
    "list_jobs",
    "send_as_job",
    "work",
]


def campaign_files(opened: CampaignSend) -> list[Path]:
    """The files a queued job must find unchanged: the campaign and its template."""
    campaign = opened.prepared.campaign
    return [campaign.path, campaign.template, campaign.template.with_suffix(".txt")]


def enqueue_send(opened: CampaignSend, transport: Transport) -> Job:
    """Queue the checked live send for workers instead of sending it here."""
    campaign = opened.prepared.campaign
    if campaign.ab is not None:
        raise SendError(
            "an [ab] campaign cannot be queued for workers yet: its test share and "
            "winner are decided by one sending process",
            where=str(campaign.path),
            hint="send it without --enqueue-only",
        )
    root = opened.settings.root.resolve()
    path = campaign.path.resolve()
    shown = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
    request = opened.request
    options = {
        "resend_unknown": request.resend_unknown,
        "retry_failed": request.retry_failed,
        "ignore_schedule": request.ignore_schedule,
        "forced": opened.options.forced,
        "fold_skipped": opened.options.fold_skipped,
    }
    key = journal_key(campaign.id, transport.name)
    stamp = fingerprint(campaign_files(opened))
    return enqueue(opened.database(), shown, key, stamp, options, opened.prepared.now())


def list_jobs(db: Path | None = None) -> list[Job]:
    """Every queued job of the workspace, oldest first."""
    conn = open_database(workspace_settings(db=db))
    try:
        return jobs(conn)
    finally:
        conn.close()


def cancel(job_id: int, db: Path | None = None) -> Job:
    """Cancel a queued job (open or paused); raise ``SendError`` when there is no such job
    or it has ended already."""
    conn = open_database(workspace_settings(db=db))
    try:
        found = job_by_id(conn, job_id)
        if found is None:
            raise SendError(f"there is no job {job_id}", hint="mailer jobs lists them")
        if found.status not in ("open", "paused"):
            raise SendError(f"job {job_id} is {found.status} already: {found.note}")
        cancelled = cancel_job(conn, job_id, utc_now())
    finally:
        conn.close()
    assert cancelled is not None
    return cancelled


@dataclass(frozen=True)
class WorkerRequest:
    """How a worker sends: its relay (its own settings and flags), and when to stop."""

    db: Path | None = None
    smtp: str | None = None
    smtp_profile: str | None = None
    insecure_skip_tls_verify: bool = False
    concurrency: int | None = None
    until_idle: bool = False  # stop when no job is open, instead of waiting for new ones
    poll: float = 5.0  # seconds between looks at the queue while there is nothing to do


@dataclass
class JobPass:
    """One pass of a worker over a job: what it sent, and what became of the job."""

    job: Job
    # "sent" (the pass ended, others still work), "done" (the job is closed), "again"
    # (a dead run's batches are left), "paused", "cancelled", "stopped", "refused" (this
    # worker cannot),
    # "failed" (the run could not start: tried again after the poll interval).
    outcome: str
    note: str = ""
    reports: list[SendReport] = field(default_factory=list)
    batches: int = 0  # batches this worker leased

    @property
    def sent(self) -> int:
        """Messages sent in this pass."""
        return sum(r.sent for r in self.reports)


def work(
    request: WorkerRequest,
    *,
    stop: threading.Event | None = None,
    on_pass: Callable[[JobPass], None] = lambda done: None,
    sleep: Callable[[float], bool] | None = None,
) -> list[JobPass]:
    """Work on queued jobs until ``stop`` is set (or, ``until_idle``, none is open).

    ``sleep(seconds)`` waits between looks at the queue and returns True to stop
    (default: ``stop.wait``).
    """
    stop = stop or threading.Event()
    wait = sleep or stop.wait
    settings = workspace_settings(
        db=request.db, smtp_url=request.smtp, smtp_profile=request.smtp_profile
    )
    conn = open_database(settings)
    # The latest passes only: a worker may run for months.
    passes: deque[JobPass] = deque(maxlen=100)
    refused: set[int] = set()
    try:
        while not stop.is_set():
            job = next((j for j in jobs(conn, "open") if j.id not in refused), None)
            if job is None:
                if request.until_idle or wait(request.poll):
                    break
                continue
            if _only_others_at_work(conn, job, passes):
                if wait(request.poll):
                    break
                continue
            done = _pass(job, request, conn, stop)
            passes.append(done)
            on_pass(done)
            if done.outcome == "refused":
                refused.add(job.id)
            elif done.outcome == "stopped" or (done.outcome == "failed" and request.until_idle):
                break
            elif done.outcome in ("sent", "failed") and wait(request.poll):
                # "sent": others still hold batches: look again (they may finish or die).
                # "failed": the run could not start (relay unreachable): try again later.
                break
    finally:
        conn.close()
    return list(passes)


def _only_others_at_work(conn: Connection, job: Job, passes: Iterable[JobPass]) -> bool:
    """True when this worker already walked the job and every batch it left is held by
    a live run: another pass would lease nothing (wait for those runs to end or die)."""
    if not any(p.job.id == job.id and p.outcome == "sent" for p in passes):
        return False
    live, dead = holders(conn, job.id, utc_now())
    return live > 0 and dead == 0


def _pass(job: Job, request: WorkerRequest, conn: Connection, stop: threading.Event) -> JobPass:
    """One send run for ``job``: lease what is free, send it; sweep and close when last."""
    try:
        opened = _open_job(job, request, stop)
        transport = opened.transport()
    except MailerError as error:  # the campaign no longer loads, a schedule refusal, ...
        return JobPass(job, "refused", str(error))
    key = journal_key(opened.prepared.campaign.id, transport.name)
    if key != job.journal_key:
        note = (
            f"this worker sends as {key!r} (its transport: {transport.name}) but the job was "
            f"queued as {job.journal_key!r}: give it the same relay settings"
        )
        return JobPass(job, "refused", note)
    if fingerprint(campaign_files(opened)) != job.fingerprint:
        note = "the campaign or its template changed after the job was queued: queue it again"
        close_job(conn, job.id, "cancelled", note, opened.prepared.now())
        return JobPass(job, "refused", note)
    size = opened.prepared.audience_size()
    share = BatchShare(opened.database(), job.id, opened.prepared.now, audience=size)
    done = JobPass(job, "sent")
    try:
        done.reports.append(_send(opened, transport, share))
    except MailerError as error:  # the relay is unreachable, say: try again after a while
        return JobPass(job, "failed", str(error))
    done.batches = share.taken
    return _settle(done, conn, request, stop, size, opened.prepared.now)


def send_as_job(
    opened: CampaignSend, transport: Transport, progress: Progress | None = None
) -> JobPass:
    """A live send on a shared store: queue it as a job and be its first worker.

    Workers already running (on any host, with the PostgreSQL store) join in and
    take batches this run has not leased; this run sends the rest, and the last
    run sweeps and closes the job, as workers do (``_settle``).
    """
    job = enqueue_send(opened, transport)
    request = WorkerRequest(
        db=opened.request.db,
        smtp=opened.request.smtp,
        smtp_profile=opened.request.smtp_profile,
        insecure_skip_tls_verify=opened.request.insecure_skip_tls_verify,
        concurrency=opened.request.concurrency,
        until_idle=True,
    )
    size = opened.prepared.audience_size()
    share = BatchShare(opened.database(), job.id, opened.prepared.now, audience=size)
    conn = open_database(opened.settings)
    try:
        done = JobPass(job, "sent")
        try:
            done.reports.append(_send(opened, transport, share, progress))
        except MailerError:
            # This run could not start (relay unreachable, say): the user is told, and
            # the job is not left for workers to send later unless one has begun.
            if holders(conn, job.id, opened.prepared.now()) == (0, 0):
                close_job(conn, job.id, "cancelled", "the send that queued it failed", utc_now())
            raise
        done.batches = share.taken
        stop = opened.options.stop or threading.Event()
        return _settle(done, conn, request, stop, size, opened.prepared.now)
    finally:
        conn.close()


def _settle(
    done: JobPass,
    conn: Connection,
    request: WorkerRequest,
    stop: threading.Event,
    size: int,
    now: Callable[[], datetime],
) -> JobPass:
    """After a run on a job: pause or release it, or — the last run — sweep and close it."""
    job = done.job
    if _ended_early(done, conn, now):
        return done
    latest = job_by_id(conn, job.id)
    if latest is not None and latest.status != "open":  # cancelled (or paused) meanwhile
        done.outcome, done.note = latest.status, latest.note
        return done
    live, dead = holders(conn, job.id, now())
    if dead:
        done.outcome = "again"
    elif not live:
        # The last run: sweep the whole audience once (a batch boundary may have moved
        # past someone while contacts changed), then close the job.
        try:
            opened = _open_job(job, request, stop)
            sweep = BatchShare(
                opened.database(), job.id, opened.prepared.now, sweep=True, audience=size
            )
            done.reports.append(_send(opened, opened.transport(), sweep))
        except MailerError as error:
            done.outcome, done.note = "failed", str(error)
            return done
        if not _ended_early(done, conn, now):
            done.outcome = "done"
            note = f"sent {_total(conn, job)}; closed by run {done.reports[-1].run_id}"
            close_job(conn, job.id, "done", note, now())
    return done


def _open_job(job: Job, request: WorkerRequest, stop: threading.Event) -> CampaignSend:
    settings = workspace_settings(
        db=request.db, smtp_url=request.smtp, smtp_profile=request.smtp_profile
    )
    path = Path(job.campaign_path)
    send_request = SendRequest(
        path if path.is_absolute() else settings.root / path,
        db=request.db,
        smtp=request.smtp,
        smtp_profile=request.smtp_profile,
        insecure_skip_tls_verify=request.insecure_skip_tls_verify,
        resend_unknown=bool(job.options.get("resend_unknown")),
        retry_failed=bool(job.options.get("retry_failed")),
        ignore_schedule=bool(job.options.get("ignore_schedule")),
        browser=False,
        concurrency=request.concurrency,
    )
    opened = open_send(send_request, live=True, settings=settings)
    opened.options.forced = bool(job.options.get("forced"))
    opened.options.fold_skipped = bool(job.options.get("fold_skipped"))
    opened.options.stop = stop
    return opened


def _send(
    opened: CampaignSend,
    transport: Transport,
    share: BatchShare,
    progress: Progress | None = None,
) -> SendReport:
    try:
        return opened.send(transport, progress=progress, share=share)
    finally:
        opened.close()


def _ended_early(done: JobPass, conn: Connection, now: Callable[[], datetime]) -> bool:
    """A run that paused (quota, feedback, failures) pauses the job; a stop ends the pass."""
    report = done.reports[-1]
    if report.paused:
        done.outcome, done.note = "paused", report.paused
        close_job(conn, done.job.id, "paused", report.paused, now())
        return True
    if report.stopped:
        done.outcome = "stopped"
        if report.run_id is not None:
            release(conn, done.job.id, report.run_id)
        return True
    return False


def _total(conn: Connection, job: Job) -> int:
    row = conn.execute(
        "SELECT count(*) FROM journal WHERE campaign_id = ? AND status = 'sent'", (job.journal_key,)
    ).fetchone()
    return int(row[0])
