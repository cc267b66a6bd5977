"""The send loop: workers that take recipients off a queue and see each message through.

``SendLoop.run`` delivers a planned list of recipients once each:

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

Planning (who), the run log and the throttle's set-up live in
``mailer.delivery.send``.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from mailer.audience.suppressions import suppress
from mailer.compose.outgoing import Envelope, Outgoing
from mailer.compose.render import variant_label
from mailer.core.clock import Clock
from mailer.core.errors import TransportError
from mailer.core.recipient import Recipient
from mailer.delivery.journal import Journal
from mailer.delivery.policy import is_hard_bounce, is_slow_down
from mailer.delivery.report import Failure, Progress, SendOptions, SendReport
from mailer.delivery.smtp import RelayUnreachable
from mailer.delivery.source import CampaignSource
from mailer.delivery.throttle import QuotaExhausted, Throttler
from mailer.delivery.transport import ConnectionLost, Delivery, Transport


@dataclass
class _Item:
    recipient: Recipient
    attempts: int = 0
    outgoing: Outgoing | None = None  # built on the first attempt, reused by retries

    @property
    def built(self) -> Outgoing:
        if self.outgoing is None:
            raise RuntimeError("the message is built before it is sent")
        return self.outgoing


class SendLoop:
    """The state of one asynchronous send run: its queue, workers, throttle and journal."""

    def __init__(
        self,
        prepared: CampaignSource,
        journal: Journal,
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

    def now(self) -> datetime:
        """The loop clock's current moment (UTC)."""
        return datetime.fromtimestamp(self.clock.time(), UTC)

    async def run(self, todo: list[Recipient]) -> None:
        """Send to every recipient of ``todo`` (already planned and queued in the journal)."""
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
            self.report.resume_in = exc.resume_in
            self.request_stop(str(exc))

    async def _transact(self, item: _Item) -> None:
        out = item.built
        envelope: Envelope = out.envelope
        if self.options.dkim is not None:
            envelope = replace(envelope, data=self.options.dkim.sign(envelope.data))
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
            self.report.variants[variant_label(item.built.variant)] += 1
            self.report.waiting = ""
            self.consecutive = 0
            self.throttler.succeeded()
            self._finished()
        elif delivery.code >= 500:
            bounce = is_hard_bounce(delivery.code, delivery.reply)
            if bounce:
                suppress(
                    self.journal.conn,
                    email,
                    "bounced",
                    f"bounce:{self.journal.campaign_id}",
                    now=self.now(),
                )
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
