"""Sending a campaign: plan, journal, throttle, run the send loop, record the run.

``send_campaign`` delivers a prepared campaign once per recipient:

* before anything goes out, ``preflight`` checks every recipient renders;
* ``plan_run`` decides who is still to do: ``sent`` rows are skipped,
  ``sending`` rows (unknown: a crash hit them in flight) are listed and
  skipped unless ``resend_unknown``, ``failed`` rows only come back with
  ``retry_failed`` (never hard bounces), suppressed and frequency-capped
  addresses are skipped and recorded;
* the throttle is seeded with the quota already spent (from the journal);
* ``SendLoop`` (``mailer.delivery.engine``) sends, and a ``campaign_runs``
  row records the run (``mailer.delivery.runs``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from mailer.audience.database import Connection
from mailer.audience.store import WAL_CHECKPOINT_PAGES, database_file, store_errors
from mailer.compose.render import impersonal_text
from mailer.core.clock import Clock, SystemClock
from mailer.core.errors import SendError
from mailer.core.keys import journal_key
from mailer.core.recipient import Recipient
from mailer.core.settings import Throttle
from mailer.delivery.builders import (
    POOL_FROM,
    Builder,
    InlineBuilder,
    PoolBuilder,
    Recipe,
    default_workers,
)
from mailer.delivery.engine import SendLoop
from mailer.delivery.jobs import BatchShare
from mailer.delivery.journal import ClaimRules, Journal, sent_times_since
from mailer.delivery.plan import Plan, Planner, batches, planner_for, survey
from mailer.delivery.relay import preset_throttle
from mailer.delivery.report import Progress, SendOptions, SendReport
from mailer.delivery.runs import finish_run, keep_alive, start_run
from mailer.delivery.source import CampaignSource
from mailer.delivery.throttle import DAY, Limits, Throttler
from mailer.delivery.transport import Transport
from mailer.delivery.writer import JournalWriter


def describe_transport(transport: Transport) -> str:
    """``smtp://host:port (4 connections)``, ``outbox → folder`` or the transport's name."""
    describe = getattr(transport, "describe", None)
    if describe is not None:
        return str(describe())
    folder = getattr(transport, "folder", None)
    return f"outbox → {folder}" if folder is not None else transport.name


def build_throttler(
    prepared: CampaignSource, conn: Connection, options: SendOptions, clock: Clock
) -> Throttler:
    """The run's throttle: campaign limits, relay preset, and the quota already spent."""
    base = options.throttle or prepared.campaign.throttle
    base = preset_throttle(prepared.settings, base)
    if options.unthrottled:
        base = Throttle(concurrency=base.concurrency)
    limits = Limits(
        per_second=base.per_second,
        per_hour=base.per_hour,
        per_day=base.per_day,
        concurrency=options.concurrency or base.concurrency,
        per_domain=dict(base.per_domain),
        backoff_base=options.backoff_base,
        backoff_max=options.backoff_max,
    )
    since = datetime.fromtimestamp(clock.time() - DAY, UTC)
    history = sent_times_since(conn, since) if (limits.per_day or limits.per_hour) else []
    return Throttler(limits, clock=clock, history=history, max_quota_wait=options.max_quota_wait)


def send_campaign(
    prepared: CampaignSource,
    *,
    conn: Connection,
    transport: Transport,
    options: SendOptions,
    clock: Clock | None = None,
    recipients: Iterable[Recipient] | None = None,
    campaign_id: str | None = None,
    progress: Progress | None = None,
    surveyed: Plan | None = None,
    share: BatchShare | None = None,
) -> SendReport:
    """Deliver a prepared campaign once per recipient, journalled; return what happened.

    ``share``: this run works on a queued job with other runs (``mailer worker``):
    it sends only the batches it leases, within its share of the limits.
    """
    return asyncio.run(
        send_campaign_async(
            prepared,
            conn=conn,
            transport=transport,
            options=options,
            clock=clock,
            recipients=recipients,
            campaign_id=campaign_id,
            progress=progress,
            surveyed=surveyed,
            share=share,
        )
    )


async def send_campaign_async(
    prepared: CampaignSource,
    *,
    conn: Connection,
    transport: Transport,
    options: SendOptions,
    clock: Clock | None = None,
    recipients: Iterable[Recipient] | None = None,
    campaign_id: str | None = None,
    progress: Progress | None = None,
    surveyed: Plan | None = None,
    share: BatchShare | None = None,
) -> SendReport:
    """The asynchronous core of ``send_campaign`` (for callers already in an event loop).

    ``surveyed``: the audience was just checked and counted (the confirmation
    before a live send did it), so the check pass is not done twice.
    """
    if conn.in_transaction:
        raise SendError(
            "send_campaign needs a connection outside any transaction",
            hint="commit first: the journal commits each message before it is sent",
        )
    # A locked or full database ends the run with one clear message (StoreError).
    with store_errors(database_file(conn)):
        return await _send_campaign(
            prepared,
            conn=conn,
            transport=transport,
            options=options,
            clock=clock,
            recipients=recipients,
            campaign_id=campaign_id,
            progress=progress,
            surveyed=surveyed,
            share=share,
        )


async def _send_campaign(
    prepared: CampaignSource,
    *,
    conn: Connection,
    transport: Transport,
    options: SendOptions,
    clock: Clock | None,
    recipients: Iterable[Recipient] | None,
    campaign_id: str | None,
    progress: Progress | None,
    surveyed: Plan | None,
    share: BatchShare | None,
) -> SendReport:
    clock = clock or SystemClock()
    audience = _audience(prepared, recipients)
    key = journal_key(campaign_id or prepared.campaign.id, transport.name)
    now = datetime.fromtimestamp(clock.time(), UTC)
    planner = planner_for(prepared, conn, key, options, now)
    report = SendReport(key, describe_transport(transport), forced=options.forced)
    if surveyed is None and share is not None:
        # A queued job was checked and counted when it was queued: a worker does not
        # check the whole audience again (each worker would); it plans batch by batch.
        surveyed = Plan(sample=next(iter(audience()), None))
    plan = surveyed or _check(prepared, audience(), planner, report, progress)
    report.audience, report.planned = plan.audience, plan.todo
    throttler = build_throttler(prepared, conn, options, clock)
    if plan.todo or share is not None:
        # Connect first: an unreachable relay or a bad certificate stops the run
        # before anything is written.
        await transport.start()
        report.transport = describe_transport(transport)  # with the TLS now in use
    job_id = share.job_id if share is not None else None
    run_id = _start_run(prepared, conn, key, transport, options, plan.sample, now, job_id)
    if share is not None:
        share.bind(run_id, throttler)
    rules = ClaimRules(
        run_id=run_id,
        retry_failed=options.retry_failed,
        resend_unknown=options.resend_unknown,
        live_runs=planner.live_runs,
    )
    writer = JournalWriter(Journal(conn, key, clock=clock, rules=rules))
    report.run_id = run_id
    started = clock.monotonic()
    run = SendLoop(writer, key, transport, throttler, options, report, clock, progress)
    builder = _builder(prepared, key, options, share.audience if share else plan.todo)
    # The WAL stays bounded: checkpointed every WAL_CHECKPOINT_PAGES (it once grew to 80 MB
    # before its first checkpoint, and a near-full disk failed early). See the constant.
    conn.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
    try:
        with keep_alive(conn, run_id, clock):
            stream = batches(audience())
            await run.run(share.batches(stream) if share else stream, planner, builder)
    finally:
        builder.close()
        writer.close()
        await _close_run(run, conn, started)
    return report


def _audience(
    prepared: CampaignSource, recipients: Iterable[Recipient] | None
) -> Callable[[], Iterable[Recipient]]:
    """A way to read the audience again (once to check it, once to send)."""
    if recipients is None:
        return prepared.recipients
    fixed = list(recipients)
    return lambda: fixed


def _check(
    prepared: CampaignSource,
    people: Iterable[Recipient],
    planner: Planner,
    report: SendReport,
    progress: Progress | None,
) -> Plan:
    """The check pass: every recipient preflighted and planned, progress shown as it goes."""

    def checked(count: int) -> None:
        report.checked = count
        if progress is not None:
            progress(report)

    return survey(prepared, people, planner, progress=checked)


def _builder(prepared: CampaignSource, key: str, options: SendOptions, count: int) -> Builder:
    """Worker processes for a large send (``options.workers``, else by size), else inline."""
    recipe = Recipe(prepared.compiled.parts, key, options.dkim, options.ab_variant)
    workers = options.workers
    if workers is None:
        workers = default_workers(signing=options.dkim is not None) if count >= POOL_FROM else 0
    if workers > 0:
        return PoolBuilder(recipe, workers)
    return InlineBuilder(prepared.compiled, recipe)


async def _close_run(run: SendLoop, conn: Connection, started: float) -> None:
    """Release the transport, record the run's end in the run log, checkpoint the WAL."""
    await run.transport.close()
    report = run.report
    stats = getattr(run.transport, "stats", None)
    if stats is not None:
        report.connections = dict(vars(stats))
    report.elapsed = run.clock.monotonic() - started
    report.pending = max(0, run.outstanding)
    if run.broken is not None:  # the store (or a bug) broke the run: the error says so
        return
    if report.run_id is not None:
        note = _note(report, run.options)
        finish_run(conn, report.run_id, note, now=run.now())
    conn.execute("PRAGMA wal_autocheckpoint=1000")
    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")


def _start_run(
    prepared: CampaignSource,
    conn: Connection,
    key: str,
    transport: Transport,
    options: SendOptions,
    sample: Recipient | None,
    now: datetime,
    job_id: int | None = None,
) -> int:
    campaign = prepared.campaign
    # The text of the first message, without its recipient's personal data: later
    # checks compare campaigns by it (repetition).
    body = ""
    if sample is not None:
        rendered = prepared.render(sample)
        body = impersonal_text(rendered.text, sample, rendered.unsubscribe_url)
    return start_run(
        conn,
        key,
        now=now,
        transport=describe_transport(transport),
        forced=options.forced,
        subject="\n".join(campaign.subjects),
        body_text=body,
        audience=campaign.audience.describe(),
        job_id=job_id,
    )


def _note(report: SendReport, options: SendOptions) -> str:
    note = f"sent {report.sent}, failed {report.failed}, pending {report.pending}"
    if report.new_unknown:
        note += f", unknown {len(report.new_unknown)}"
    if report.paused:
        note += f"; {report.paused}"
    elif report.stopped:
        note += "; stopped by the user"
    if options.fold_skipped:
        note += "; fold check skipped"
    return note
