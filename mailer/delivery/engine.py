"""The send orchestrator: recipients → render → build → throttle → transport → journal.

``send_campaign`` delivers a prepared campaign once per recipient:

* before anything goes out, ``preflight`` checks every recipient renders;
* the journal decides who is still to do: ``sent`` rows are skipped, ``sending``
  rows (unknown: a crash hit them in flight) are listed and skipped unless
  ``resend_unknown``, ``failed`` rows only come back with ``retry_failed``
  (never hard bounces), suppressed addresses are skipped and recorded;
* each message's journal row is committed as ``sending`` before the SMTP
  transaction and updated after it; a row another run of the same campaign
  has already claimed is skipped (``skipped_other_run``), never sent twice;
* 4xx replies are retried with exponential back-off and jitter up to
  ``max_attempts`` (and slow the throttle down), 5xx fail at once, "no such
  user" bounces also go on the suppression list, lost connections reconnect
  and retry; after ``max_consecutive_failures`` failures in a row (bounces
  included: a relay calling every address unknown is broken) the run pauses
  itself and says why;
* a stop request (Ctrl-C) lets in-flight messages finish, then returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from mailer.compose.outgoing import Envelope
from mailer.core.errors import SendError, TransportError
from mailer.core.recipient import Recipient
from mailer.core.settings import Throttle
from mailer.delivery import journal as jr
from mailer.delivery.plan import DryRun, Plan, TestSend, dry_run, plan_run, send_tests
from mailer.delivery.report import Failure, Progress, SendOptions, SendReport, is_hard_bounce
from mailer.delivery.throttle import (
    DAY,
    Clock,
    Limits,
    QuotaExhausted,
    SystemClock,
    Throttler,
    is_slow_down,
)
from mailer.delivery.transport import ConnectionLost, Delivery, Transport

__all__ = [
    "DryRun",
    "Failure",
    "Plan",
    "SendOptions",
    "SendReport",
    "TestSend",
    "dry_run",
    "is_hard_bounce",
    "plan_run",
    "send_campaign",
    "send_campaign_async",
    "send_tests",
]


@dataclass
class _Item:
    recipient: Recipient
    attempts: int = 0
    outgoing: Any = None


class _Run:
    """The state of one asynchronous send run."""

    def __init__(
        self,
        prepared: Any,
        journal: jr.Journal,
        transport: Transport,
        throttler: Throttler,
        options: SendOptions,
        report: SendReport,
        clock: Clock,
        progress: Progress | None,
    ):
        self.prepared = prepared
        self.journal = journal
        self.transport = transport
        self.throttler = throttler
        self.options = options
        self.report = report
        self.clock = clock
        self.progress = progress
        self.queue: asyncio.Queue[_Item | None] = asyncio.Queue()
        self.outstanding = 0
        self.consecutive = 0
        self.stopping = False
        self.inflight: set[asyncio.Future[None]] = set()
        self.timers: set[asyncio.Task[None]] = set()
        self.rng = random.Random(options.seed)
        self.workers: list[asyncio.Task[None]] = []
        self._flush_handle: asyncio.TimerHandle | None = None

    async def run(self, todo: list[Recipient]) -> None:
        for person in todo:
            self.queue.put_nowait(_Item(person))
        self.outstanding = len(todo)
        if not todo:
            return
        count = max(1, self.options.concurrency or self.throttler.limits.concurrency)
        # No more workers than connections: a worker waiting for a connection would
        # hold its recipient in 'sending' (unknown after a crash) for nothing.
        count = min(count, getattr(self.transport, "capacity", count))
        self.workers = [asyncio.create_task(self._worker()) for _ in range(count)]
        watcher = asyncio.create_task(self._watch_stop_event())
        try:
            results = await asyncio.gather(*self.workers, return_exceptions=True)
            for result in results:
                # Cancelled workers are how a stop works; anything else is a real error.
                if isinstance(result, BaseException) and not isinstance(
                    result, asyncio.CancelledError
                ):
                    raise result
        finally:
            watcher.cancel()
            for timer in self.timers:
                timer.cancel()
            if self.inflight:
                await asyncio.gather(*self.inflight, return_exceptions=True)
            if self._flush_handle is not None:
                self._flush_handle.cancel()
            self.journal.flush()

    async def _watch_stop_event(self) -> None:
        event = self.options.stop
        if event is None:
            return
        while not event.is_set():
            await asyncio.sleep(0.05)
        self.request_stop()

    def request_stop(self, paused: str | None = None) -> None:
        """Stop taking new messages; in-flight ones finish."""
        if self.stopping:
            return
        self.stopping = True
        if paused:
            self.report.paused = paused
        else:
            self.report.stopped = True
        for worker in self.workers:
            worker.cancel()

    async def _worker(self) -> None:
        try:
            while not self.stopping:
                item = await self.queue.get()
                if item is None:
                    return
                await self._process(item)
        except asyncio.CancelledError:
            if not self.stopping:
                raise
        except Exception:
            # A bug or a broken database: stop the other workers, then report it.
            self.request_stop("stopped by an internal error")
            raise

    async def _process(self, item: _Item) -> None:
        if item.outgoing is None:
            item.outgoing = self.prepared.build(item.recipient)
        domain = item.recipient.email.rpartition("@")[2]
        try:
            async with self.throttler.slot(domain):
                if self.stopping:
                    return
                inner = asyncio.ensure_future(self._transact(item))
                self.inflight.add(inner)
                inner.add_done_callback(self.inflight.discard)
                # Shielded: a stop request must not cut a transaction in half.
                await asyncio.shield(inner)
        except QuotaExhausted as exc:
            hours = exc.resume_in / 3600
            self.request_stop(f"{exc}; run `mailer send` again in about {hours:.1f} h")

    async def _transact(self, item: _Item) -> None:
        out = item.outgoing
        envelope: Envelope = out.envelope
        if self.options.dkim is not None:
            envelope = replace(envelope, data=self.options.dkim.sign(envelope.data))
        from mailer.compose.render import variant_label

        claimed = self.journal.mark_sending(
            item.recipient,
            variant_label(out.variant),
            envelope.message_id,
            unknown_ok=self.options.resend_unknown,
        )
        if not claimed:  # another run of this campaign has sent it or is sending it
            self.report.skipped_other_run += 1
            self._finished()
            self._tick()
            return
        try:
            delivery = await self.transport.deliver(envelope)
        except ConnectionLost as exc:
            self._connection_lost(item, exc)
            return
        except TransportError as exc:
            # Nothing went anywhere (an outbox folder that cannot be written, say): the
            # row must not stay "sending", which would report it as perhaps delivered.
            self.journal.mark_result(item.recipient.email, "deferred", None, exc.message)
            raise
        item.attempts += 1
        self._outcome(item, delivery)

    def _connection_lost(self, item: _Item, exc: ConnectionLost) -> None:
        from mailer.delivery.smtp import RelayUnreachable

        # An unreachable relay got nothing: that does not use up the message's attempts.
        if not isinstance(exc, RelayUnreachable):
            item.attempts += 1
        self.journal.mark_result(item.recipient.email, "deferred", None, str(exc.message))
        self.consecutive += 1
        delay = min(
            self.options.reconnect_max, self.options.reconnect_base * 2 ** (self.consecutive - 1)
        )
        self.throttler.hold(delay)
        self.report.waiting = f"the relay is not answering; trying again in {delay:.2g} s"
        if item.attempts >= self.options.max_attempts:
            self._fail(item, None, str(exc.message), bounce=False)
        elif not self._check_pause(f"connection to the relay lost: {exc.message}"):
            self.report.retries += 1
            self.queue.put_nowait(item)
        self._tick()

    def _outcome(self, item: _Item, delivery: Delivery) -> None:
        email = item.recipient.email
        if delivery.ok:
            self.journal.mark_result(email, "sent", delivery.code, delivery.reply, later=True)
            self._flush_soon()
            self.report.sent += 1
            self.report.variants[_label(item.outgoing.variant)] += 1
            self.report.waiting = ""
            self.consecutive = 0
            self.throttler.succeeded()
            self._finished()
        elif delivery.code >= 500:
            bounce = is_hard_bounce(delivery.code, delivery.reply)
            if bounce:
                jr.suppress_bounce(self.journal.conn, email, f"bounce:{self.journal.campaign_id}")
            # Bounces count too: a relay that calls *every* address unknown is broken, and
            # must not be allowed to put the whole list on the suppression list.
            self.consecutive += 1
            self._fail(item, delivery.code, delivery.reply, bounce=bounce)
            self._check_pause(f"{delivery.code} {delivery.reply}")
        else:
            self._temporary(item, delivery)
        self._tick()

    def _temporary(self, item: _Item, delivery: Delivery) -> None:
        self.consecutive += 1
        if is_slow_down(delivery.code, delivery.reply):
            pause = self.throttler.penalize()
            self.report.waiting = f"the relay said {delivery.code}: slowing down ({pause:.2g} s)"
        if item.attempts >= self.options.max_attempts:
            self._fail(item, delivery.code, delivery.reply, bounce=False)
            self._check_pause(f"{delivery.code} {delivery.reply}")
            return
        self.journal.mark_result(item.recipient.email, "deferred", delivery.code, delivery.reply)
        if self._check_pause(f"{delivery.code} {delivery.reply}"):
            return
        base = self.options.retry_base * 2 ** (item.attempts - 1)
        delay = min(self.options.retry_max, base) * self.rng.uniform(0.5, 1.5)
        self.report.retries += 1
        timer = asyncio.create_task(self._requeue_later(item, delay))
        self.timers.add(timer)
        timer.add_done_callback(self.timers.discard)

    async def _requeue_later(self, item: _Item, delay: float) -> None:
        await self.clock.sleep(delay)
        self.queue.put_nowait(item)

    def _fail(self, item: _Item, code: int | None, reply: str, *, bounce: bool) -> None:
        email = item.recipient.email
        self.journal.mark_result(email, "failed", code, reply, bounce=bounce)
        self.report.failed += 1
        self.report.bounced += int(bounce)
        self.report.failures.append(Failure(email, code, reply, bounce))
        self._finished()

    def _flush_soon(self) -> None:
        # Outcomes ride along with the next message's commit; when no message
        # starts soon (throttle waits, the end of the run), commit them anyway.
        if self._flush_handle is None:
            self._flush_handle = asyncio.get_running_loop().call_later(0.05, self._flush)

    def _flush(self) -> None:
        self._flush_handle = None
        self.journal.flush()

    def _finished(self) -> None:
        self.outstanding -= 1
        if self.outstanding == 0:
            for _ in self.workers:
                self.queue.put_nowait(None)

    def _check_pause(self, last: str) -> bool:
        limit = self.options.max_consecutive_failures
        if limit and self.consecutive >= limit and not self.stopping:
            self.request_stop(
                f"paused after {self.consecutive} failures in a row (last: {last}); "
                "the relay may be down or refusing us"
            )
        return self.stopping

    def _tick(self) -> None:
        if self.progress is not None:
            self.progress(self.report)


def describe_transport(transport: Transport) -> str:
    """``smtp://host:port (4 connections)``, ``outbox → folder`` or the transport's name."""
    describe = getattr(transport, "describe", None)
    if describe is not None:
        return str(describe())
    folder = getattr(transport, "folder", None)
    return f"outbox → {folder}" if folder is not None else transport.name


def _label(variant: int) -> str:
    from mailer.compose.render import variant_label

    return variant_label(variant)


def build_throttler(
    prepared: Any, conn: sqlite3.Connection, options: SendOptions, clock: Clock
) -> Throttler:
    """The run's throttle: campaign limits, relay preset, and the quota already spent."""
    from mailer.delivery.smtp import preset_throttle

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
    history = jr.sent_times_since(conn, DAY) if (limits.per_day or limits.per_hour) else []
    return Throttler(limits, clock=clock, history=history, max_quota_wait=options.max_quota_wait)


def send_campaign(
    prepared: Any,
    *,
    conn: sqlite3.Connection,
    transport: Transport,
    options: SendOptions,
    clock: Clock | None = None,
    recipients: Iterable[Recipient] | None = None,
    campaign_id: str | None = None,
    progress: Progress | None = None,
) -> SendReport:
    """Deliver a prepared campaign once per recipient, journalled; return what happened."""
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
        )
    )


async def send_campaign_async(
    prepared: Any,
    *,
    conn: sqlite3.Connection,
    transport: Transport,
    options: SendOptions,
    clock: Clock | None = None,
    recipients: Iterable[Recipient] | None = None,
    campaign_id: str | None = None,
    progress: Progress | None = None,
) -> SendReport:
    """The asynchronous core of ``send_campaign`` (for callers already in an event loop)."""
    if conn.in_transaction:
        raise SendError(
            "send_campaign needs a connection outside any transaction",
            hint="commit first: the journal commits each message before it is sent",
        )
    clock = clock or SystemClock()
    people = list(prepared.recipients() if recipients is None else recipients)
    prepared.preflight(people)
    key = jr.journal_key(campaign_id or prepared.campaign.id, transport.name)
    plan = plan_run(
        conn,
        key,
        people,
        resend_unknown=options.resend_unknown,
        retry_failed=options.retry_failed,
        cap=prepared.settings.frequency_cap,
    )
    throttler = build_throttler(prepared, conn, options, clock)
    journal = jr.Journal(conn, key)
    report = SendReport(key, describe_transport(transport), forced=options.forced)
    if plan.todo:
        # Connect first: an unreachable relay or a bad certificate stops the run
        # before anything is written.
        await transport.start()
    _apply_plan(report, plan, journal)
    started = time.monotonic()
    run = _Run(prepared, journal, transport, throttler, options, report, clock, progress)
    # Checkpointing the WAL every 1,000 pages (the default) costs about a third of each
    # journal commit; checkpoint once at the end instead. Commits stay durable either way.
    conn.execute("PRAGMA wal_autocheckpoint=20000")
    try:
        report.run_id = _start_run(prepared, conn, key, transport, options, plan)
        if plan.todo:
            journal.queue(plan.todo)
        _install_sigint(run, options)
        await run.run(plan.todo)
    finally:
        _remove_sigint(options)
        conn.execute("PRAGMA wal_autocheckpoint=1000")
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        await transport.close()
        report.elapsed = time.monotonic() - started
        report.pending = max(0, run.outstanding)
        if report.run_id is not None:
            jr.finish_run(conn, report.run_id, _note(report, options))
    return report


def _apply_plan(report: SendReport, plan: Plan, journal: jr.Journal) -> None:
    report.audience = plan.audience
    report.planned = len(plan.todo)
    report.skipped_sent = plan.skipped_sent
    report.skipped_failed = plan.skipped_failed
    report.skipped_suppressed = len(plan.suppressed)
    report.skipped_capped = len(plan.capped)
    report.unknown = list(plan.unknown)
    for person in plan.suppressed:
        journal.mark_suppressed(person, "on the suppression list")


def _start_run(
    prepared: Any,
    conn: sqlite3.Connection,
    key: str,
    transport: Transport,
    options: SendOptions,
    plan: Plan,
) -> int:
    campaign = prepared.campaign
    sample = plan.todo[0] if plan.todo else None
    # The text of the first message, without its recipient's personal data: later
    # checks compare campaigns by it (repetition).
    body = ""
    if sample is not None:
        from mailer.checks.content import impersonal_text

        rendered = prepared.render(sample)
        body = impersonal_text(rendered.text, sample, rendered.unsubscribe_url)
    audience = campaign.audience.describe() if hasattr(campaign, "audience") else ""
    return jr.start_run(
        conn,
        key,
        transport=describe_transport(transport),
        forced=options.forced,
        subject="\n".join(campaign.subjects),
        body_text=body,
        audience=audience,
    )


def _note(report: SendReport, options: SendOptions) -> str:
    note = f"sent {report.sent}, failed {report.failed}, pending {report.pending}"
    if report.paused:
        note += f"; {report.paused}"
    elif report.stopped:
        note += "; stopped by the user"
    if options.fold_skipped:
        note += "; fold check skipped (--no-browser)"
    return note


def _install_sigint(run: _Run, options: SendOptions) -> None:
    if not options.handle_sigint or threading.current_thread() is not threading.main_thread():
        return
    loop = asyncio.get_running_loop()

    def first_interrupt() -> None:
        run.request_stop()
        # A second Ctrl-C falls back to Python's default: stop at once.
        loop.remove_signal_handler(signal.SIGINT)

    loop.add_signal_handler(signal.SIGINT, first_interrupt)


def _remove_sigint(options: SendOptions) -> None:
    if options.handle_sigint and threading.current_thread() is threading.main_thread():
        with contextlib.suppress(RuntimeError):
            asyncio.get_running_loop().remove_signal_handler(signal.SIGINT)
