"""The send loop: workers that take recipients off a queue and see each message through.

``SendLoop.run`` delivers a planned list of recipients once each:

* each message's journal row is claimed (``sending``) before the SMTP
  transaction and updated after it; a row another run of the same campaign
  has sent or has in flight, or an address suppressed meanwhile, is skipped;
* every reply is judged by the step it answers (``policy.classify``): a
  greylisted or busy recipient is retried later with back-off while the others
  go on; only relay-wide signals slow everyone down; a refusal of the whole
  campaign (at MAIL FROM, a policy block, AUTH) pauses the run without failing
  anyone; "no such user" bounces also go on the suppression list; a connection
  lost after the message was handed over leaves the recipient *unknown*
  (perhaps delivered), never re-sent by itself;
* after ``max_consecutive_failures`` failures in a row (bounces included: a
  relay calling every address unknown is broken) the run pauses itself and
  says why;
* before each batch and every 100 messages, the campaign's bounce and
  complaint rates (bounces in the send, and reports that came back meanwhile)
  are held against ``[feedback]``'s limits; past them, the run pauses and
  says why;
* a stop request (Ctrl-C, SIGTERM) takes no new message and lets in-flight
  ones finish within ``stop_grace`` seconds; one still unanswered then is cut
  off and left unknown (said in the report);
* messages left *unknown* (the connection was lost, or timed out, after the
  final ".") are an outcome of their own: past ``max_unknown`` (or
  ``max_unknown_share`` of the run, whichever is larger) the run pauses and
  says the likely cause;
* a relay that refuses us while connecting (a ``554`` greeting, a close right
  after the greeting, broken TLS) pauses the run at once; one that does not
  answer is tried again with back-off, once for all senders, and pauses the
  run after ``relay_down_limit`` seconds.

Planning (who), the run log and the throttle's set-up live in
``mailer.delivery.send``.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from mailer.core.clock import Clock
from mailer.core.errors import TransportError
from mailer.core.recipient import Recipient
from mailer.delivery.builders import Builder, BuildFailure, Built
from mailer.delivery.journal import Claim
from mailer.delivery.plan import BATCH, BatchPlan, Planner
from mailer.delivery.policy import Action, Stage, Verdict, classify, enhanced_code, pause_hint
from mailer.delivery.report import Failure, Progress, SendOptions, SendReport
from mailer.delivery.throttle import QuotaExhausted, Throttler
from mailer.delivery.transport import ConnectionLost, RelayRefused, RelayUnreachable, Transport
from mailer.delivery.writer import JournalWriter
from mailer.feedback.rates import (
    Rates,
    journal_counts,
    pause_cause,
    pause_reason,
    rates_with,
    reported,
)

# Policy refusals (5.7.x) of this many different recipients in a row mean the campaign.
POLICY_STREAK = 3
# Look at the bounce and complaint reports after this many messages (and before each batch).
FEEDBACK_EVERY = 100


@dataclass
class _Item:
    built: Built  # built once, before its first attempt; retries send the same bytes
    attempts: int = 0

    @property
    def recipient(self) -> Recipient:
        return self.built.recipient


class SendLoop:
    """The state of one asynchronous send run: its queue, senders, throttle and journal.

    A feeder plans the audience batch by batch, queues each batch's rows in the
    journal, has the builder build them (in worker processes for large sends)
    and puts the messages on the queue; ``concurrency`` senders take them off,
    one SMTP transaction each at a time. The queue is kept short, so memory
    stays flat however large the audience is.
    """

    def __init__(
        self,
        journal: JournalWriter,
        key: str,
        transport: Transport,
        throttler: Throttler,
        options: SendOptions,
        report: SendReport,
        clock: Clock,
        progress: Progress | None,
    ):
        self.journal = journal
        self.key = key
        self.transport = transport
        self.throttler = throttler
        self.options = options
        self.report = report
        self.clock = clock
        self.progress = progress
        self.queue: asyncio.Queue[_Item | None] = asyncio.Queue()
        self.outstanding = 0
        self.feeding = True
        self.consecutive = 0
        self.stopping = False
        self.inflight: set[asyncio.Future[None]] = set()
        self.timers: set[asyncio.Task[None]] = set()
        self.rng = random.Random(options.seed)
        self.workers: list[asyncio.Task[None]] = []
        # Consecutive policy refusals (5.7.x) of different recipients: see _campaign_refused.
        self.policy_streak: list[tuple[_Item, int | None, str]] = []
        self._room = asyncio.Event()
        self._room.set()
        self._sent_before: tuple[int, int] | None = None  # see _feedback_says_pause
        self._since_feedback = 0  # messages finished since the last look at the reports
        self.feeder: asyncio.Task[None] | None = None
        self.broken: BaseException | None = None  # what stopped the run from the inside
        self.probes = 0  # failed attempts to reach the relay in a row
        self.down_since: float | None = None  # when the relay stopped answering

    def now(self) -> datetime:
        """The loop clock's current moment (UTC)."""
        return datetime.fromtimestamp(self.clock.time(), UTC)

    async def run(
        self, batches: Iterable[list[Recipient]], planner: Planner, builder: Builder
    ) -> None:
        """Plan, build and send every batch of ``batches``."""
        count = max(1, self.options.concurrency or self.throttler.limits.concurrency)
        # No more senders than connections: a sender waiting for a connection would
        # hold its recipient in 'sending' (unknown after a crash) for nothing.
        capacity = getattr(self.transport, "capacity", count)
        if count > capacity:
            self.report.notes.append(
                f"concurrency {count} is above the relay's pool of {capacity} connections: "
                f"at most {capacity} messages are in flight (raise [smtp] pool for more)"
            )
            count = capacity
        self.workers = [asyncio.create_task(self._worker()) for _ in range(count)]
        feeder = asyncio.create_task(self._feed(batches, planner, builder, depth=count))
        self.feeder = feeder
        watcher = asyncio.create_task(self._watch_stop_event())
        try:
            try:
                await feeder
            except asyncio.CancelledError:
                # A stop cancels the feeder (it may wait for room or a build): not an error.
                if not self.stopping:
                    raise
            results = await asyncio.gather(*self.workers, return_exceptions=True)
            for result in results:
                # Cancelled workers are how a stop works; anything else is a real error.
                if isinstance(result, BaseException) and not isinstance(
                    result, asyncio.CancelledError
                ):
                    raise result
        finally:
            feeder.cancel()
            watcher.cancel()
            for timer in self.timers:
                timer.cancel()
            await self._drain()
            try:
                await self.journal.flush()
            except Exception:
                if self.broken is None:
                    raise
                # The store is what broke (locked, full): the first error says it. Rows
                # whose outcome was not written stay 'sending': unknown, never re-sent.

    async def _drain(self) -> None:
        """Let in-flight transactions finish: within ``stop_grace`` seconds after a stop."""
        if not self.inflight:
            return
        if not self.stopping:
            await asyncio.gather(*self.inflight, return_exceptions=True)
            return
        pending = set(self.inflight)
        _, late = await asyncio.wait(pending, timeout=self.options.stop_grace)
        for task in late:
            task.cancel()
        if late:
            await asyncio.gather(*late, return_exceptions=True)

    async def _feed(
        self, batches: Iterable[list[Recipient]], planner: Planner, builder: Builder, depth: int
    ) -> None:
        """Plan, queue in the journal and build batch after batch, keeping the queue short.

        Up to two builds run at once (one being built while the one before is
        put on the queue); a batch is only planned when the queue has room.
        """
        building: deque[asyncio.Task[list[Built | BuildFailure]]] = deque()
        high = max(2 * BATCH, 4 * depth)
        try:
            for people in batches:
                while self.queue.qsize() > high and not self.stopping:
                    self._room.clear()
                    await self._room.wait()
                if self.stopping:
                    break
                try:
                    todo = self._plan_batch(planner.plan(people))
                except Exception as exc:
                    self.broken = self.broken or exc
                    self.request_stop("stopped by an internal error")
                    raise
                if todo:
                    building.append(asyncio.create_task(builder.build(todo, self.clock.time())))
                while len(building) > 1 or (building and building[0].done()):
                    self._enqueue(await building.popleft())
            while building and not self.stopping:
                self._enqueue(await building.popleft())
        finally:
            for task in building:
                task.cancel()
            self.feeding = False
            self._release_workers()

    def _plan_batch(self, plan: BatchPlan) -> list[Recipient]:
        """Record a batch's skips; return who of it to send to (their rows come with claims)."""
        report = self.report
        report.skipped_sent += plan.skipped_sent
        report.skipped_failed += plan.skipped_failed
        report.skipped_capped += len(plan.capped)
        report.skipped_suppressed += len(plan.suppressed)
        report.skipped_other_run += len(plan.in_flight)
        report.unknown += plan.unknown
        for person in plan.suppressed:
            self.journal.mark_suppressed(person, "on the suppression list")
        for person in plan.capped:  # a later run looks at them again, with its own "now"
            self.journal.mark_held(person, "held back by the frequency cap")
        self._tick()
        if self._feedback_says_pause():
            return []  # the batch stays queued in the journal: the next run sends it
        return plan.todo

    def _feedback_says_pause(self) -> bool:
        """Pause when bounces or complaints about this campaign pass ``[feedback]``'s limits.

        Checked before each batch and every ``FEEDBACK_EVERY`` messages: reports
        arrive while the send goes on (webhooks and one-click unsubscribes
        through ``mailer serve``). Messages already queued stay ``queued`` in the
        journal when the run pauses; the next run sends them.
        """
        rules = self.options.feedback
        if rules is None or self.stopping:
            return self.stopping
        conn = self.journal.journal.conn
        if self._sent_before is None:  # once per run: counting a large journal is not free
            self._sent_before = journal_counts(conn, self.key)
        sent = Rates(
            self._sent_before[0] + self.report.sent, self._sent_before[1] + self.report.bounced, 0
        )
        rates = rates_with(sent, reported(conn, self.key))
        reason = pause_reason(rates, rules)
        if reason:
            self.report.pause_cause = pause_cause(rates, rules) or ""
            self.request_stop(reason)
        return reason is not None

    def _enqueue(self, built: list[Built | BuildFailure]) -> None:
        for entry in built:
            if isinstance(entry, BuildFailure):
                self._build_failed(entry)
                continue
            self.outstanding += 1
            self.queue.put_nowait(_Item(entry))

    def _build_failed(self, failure: BuildFailure) -> None:
        # Its data changed since the checks (a contact edited during the run): only
        # this recipient fails; the row keeps the reason.
        email = failure.recipient.email
        self.journal.outcome(email, "failed", None, failure.reason, False)
        self.report.failed += 1
        self.report.failures.append(Failure(email, None, failure.reason, False))
        self._tick()

    def _release_workers(self) -> None:
        if not self.feeding and self.outstanding <= 0:
            for _ in self.workers:
                self.queue.put_nowait(None)

    async def _watch_stop_event(self) -> None:
        event = self.options.stop
        if event is None:
            return
        while not event.is_set():
            await asyncio.sleep(0.05)
        self.request_stop()

    def _past_stop_time(self) -> bool:
        stop_at = self.options.stop_at
        return stop_at is not None and self.clock.time() >= stop_at

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
        # The feeder may wait for queue room that no worker will free now, or for a
        # build: it must not hold the stop up (Ctrl-C on a large throttled send hung).
        self._room.set()
        feeder = self.feeder
        if feeder is not None and not feeder.done() and feeder is not asyncio.current_task():
            feeder.cancel()

    async def _worker(self) -> None:
        try:
            while not self.stopping:
                item = await self.queue.get()
                if item is None:
                    return
                if self._past_stop_time():
                    self.request_stop(self.options.stop_reason)
                    return  # the item stays pending: the next run sends it
                if self.queue.qsize() <= BATCH:
                    self._room.set()
                await self._process(item)
        except asyncio.CancelledError:
            if not self.stopping:
                raise
        except Exception as exc:
            # A bug or a broken database: stop the other workers, then report it.
            self.broken = self.broken or exc
            self.request_stop("stopped by an internal error")
            raise

    async def _process(self, item: _Item) -> None:
        domain = item.recipient.email.rpartition("@")[2]
        wait = self.throttler.domain_delay(domain)
        if wait > 0:
            # This domain is at its limit: set the message aside rather than let it hold
            # a sender (and so a connection) idle while other domains could go.
            self._requeue_after(item, wait)
            return
        try:
            async with self.throttler.slot(domain):
                if self.stopping:
                    return
                if self._past_stop_time():  # the wait for a slot ran past the stop time
                    self.request_stop(self.options.stop_reason)
                    return
                inner = asyncio.ensure_future(self._transact(item))
                self.inflight.add(inner)
                inner.add_done_callback(self.inflight.discard)
                inner.add_done_callback(self._retrieved)
                # Shielded: a stop request must not cut a transaction in half.
                await asyncio.shield(inner)
        except QuotaExhausted as exc:
            self.report.resume_in = exc.resume_in
            self.request_stop(str(exc))

    def _retrieved(self, task: asyncio.Future[None]) -> None:
        """Note the error of a transaction whose sender was stopped meanwhile (the store
        broke under several senders at once): the first error is the run's."""
        if not task.cancelled() and task.exception() is not None:
            self.broken = self.broken or task.exception()

    async def _transact(self, item: _Item) -> None:
        """Claim the row and hand the message over; the claim is committed after RCPT TO.

        Nothing of the message itself (DATA) goes out before the claim is
        committed (the transport awaits ``go`` first, which commits it along
        with the other senders' claims asked for meanwhile); a message whose
        claim is refused is cancelled before DATA.
        """
        envelope = item.built.envelope
        label = item.built.label
        go = self.journal.claim(item.recipient, label, envelope.message_id)
        try:
            delivery = await self.transport.deliver(envelope, go=go)
        except asyncio.CancelledError:
            # Cut off by a stop whose grace period ran out: perhaps delivered.
            if not go.answer.done():
                self.journal.withdraw(go)  # never claimed: the row stays pending
            elif go.answer.result() is Claim.CLAIMED:
                self._unknown(item, "still in flight when the stop's grace period ended")
            raise
        except (ConnectionLost, TransportError) as exc:
            # Only a row this run has claimed is this run's to update.
            if not await go:
                self._not_claimed(item, go.answer.result())
            elif isinstance(exc, RelayRefused):
                self._relay_refused(item, exc)
            elif isinstance(exc, RelayUnreachable):
                self._relay_unreachable(item, exc)
            elif isinstance(exc, ConnectionLost):
                self._apply(item, classify(exc.stage, None, exc.message), None, exc.message)
            else:
                # Nothing went anywhere (an outbox folder that cannot be written, say): the
                # row must not stay "sending", which would report it as perhaps delivered.
                self.journal.outcome(item.recipient.email, "deferred", None, exc.message, False)
                raise
            return
        if not await go or delivery is None:
            self._not_claimed(item, go.answer.result())
            return
        action = classify(delivery.stage, delivery.code, delivery.reply)
        self._apply(item, action, delivery.code, delivery.reply, delivery.stage)

    def _relay_refused(self, item: _Item, exc: RelayRefused) -> None:
        """The relay refuses this client: every message would meet it; pause at once."""
        self._defer(item, None, exc.message, charged=False)
        self.report.hint = exc.hint
        self.report.advice = exc.advice
        self.request_stop(f"{exc.where}: {exc.message}" if exc.where else exc.message)

    def _relay_unreachable(self, item: _Item, exc: RelayUnreachable) -> None:
        """Nobody answers: everyone waits (back-off); past ``relay_down_limit``, pause.

        Counted once per attempt to connect, not once per waiting recipient.
        """
        self._defer(item, None, exc.message, charged=False)
        now = self.clock.monotonic()
        if exc.fresh:
            self.probes += 1
            if self.down_since is None:
                self.down_since = now
        down_for = now - (self.down_since if self.down_since is not None else now)
        if self.probes >= 2 and down_for >= self.options.relay_down_limit:
            self.report.hint = exc.hint
            self.report.advice = exc.advice
            self.request_stop(
                f"{exc.where}: the relay could not be reached for {down_for:.0f} s "
                f"({self.probes} tries): {exc.message}"
            )
            return
        delay = min(
            self.options.reconnect_max,
            self.options.reconnect_base * 2 ** max(0, self.probes - 1),
        )
        if exc.fresh:
            self.throttler.hold(delay)
        self.report.waiting = f"{exc.message}; trying again in {delay:.2g} s"
        self.report.retries += 1
        self.queue.put_nowait(item)  # the hold makes it wait

    def _not_claimed(self, item: _Item, claim: Claim) -> None:
        if claim is Claim.SUPPRESSED:  # suppressed while this run was going: never mail
            self.journal.mark_suppressed(item.recipient, "suppressed during the run")
            self.report.skipped_suppressed += 1
        else:  # another run of this campaign has sent it, or is sending it
            self.report.skipped_other_run += 1
        self._finished()
        self._tick()

    def _apply(
        self,
        item: _Item,
        action: Action,
        code: int | None,
        reply: str,
        stage: Stage = Stage.DATA_END,
    ) -> None:
        """Do what the reply policy says with this recipient (and the run)."""
        if action.charged:
            item.attempts += 1
        verdict = action.verdict
        if verdict is Verdict.SENT:
            self._sent(item, code, reply)
        elif verdict is Verdict.UNKNOWN:
            self._unknown(item, f"{action.reason} ({reply})" if reply else action.reason, reply)
        elif verdict in (Verdict.FAIL, Verdict.BOUNCE):
            self._refused(item, action, code, reply)
        elif verdict is Verdict.PAUSE:
            self._defer(item, code, reply, charged=False)  # still pending for the next run
            self.report.hint = pause_hint(stage, code, reply)
            self.request_stop(f"the relay refuses this campaign: {action.reason}")
        else:  # RETRY, SLOW_DOWN, BACK_OFF, RECONNECT
            self._later(item, action, code, reply)
        self._tick()

    def _sent(self, item: _Item, code: int | None, reply: str) -> None:
        self.journal.outcome(item.recipient.email, "sent", code, reply, False)
        self.report.sent += 1
        self.report.variants[item.built.label] += 1
        self.report.waiting = ""
        self.consecutive = 0
        self.probes, self.down_since = 0, None
        self.policy_streak.clear()
        self.throttler.succeeded()
        self._finished()

    def _unknown(self, item: _Item, reason: str, detail: str = "") -> None:
        # Perhaps delivered: the row stays 'sending' (unknown once this run is over) and
        # is never sent again unless someone asks for it. ``detail``: what happened, short.
        self.journal.outcome(item.recipient.email, "sending", None, reason, False)
        report = self.report
        report.unknown.append(item.recipient.email)
        report.new_unknown.append(item.recipient.email)
        report.unknown_reason = detail or reason
        self._finished()
        limit = max(
            self.options.max_unknown,
            math.ceil(self.options.max_unknown_share * max(report.planned, 1)),
        )
        if len(report.new_unknown) > limit and not self.stopping:
            report.pause_cause = "unknown"
            self.request_stop(
                f"{len(report.new_unknown)} messages are unknown (more than {limit}): "
                f"perhaps delivered, perhaps not; last: {detail or reason}"
            )

    def _refused(self, item: _Item, action: Action, code: int | None, reply: str) -> None:
        bounce = action.verdict is Verdict.BOUNCE
        if bounce:
            self.journal.suppress(item.recipient.email, f"bounce:{self.key}", self.now())
        # Bounces count too: a relay that calls *every* address unknown is broken, and
        # must not be allowed to put the whole list on the suppression list.
        self.consecutive += 1
        self._fail(item, code, reply, bounce=bounce)
        if not action.policy:
            self.policy_streak.clear()
        elif self._campaign_refused(item, code, reply):
            return
        self._check_pause(action.reason)

    def _campaign_refused(self, item: _Item, code: int | None, reply: str) -> bool:
        """The same policy refusal for POLICY_STREAK recipients in a row means the campaign.

        Those recipients were not refused for themselves: their rows go back to
        ``deferred``, so the next run tries them again, and the run pauses.
        """
        reason = enhanced_code(reply) or str(code)
        if any(reason != (enhanced_code(r) or str(c)) for _, c, r in self.policy_streak):
            self.policy_streak.clear()
        self.policy_streak.append((item, code, reply))
        if len(self.policy_streak) < POLICY_STREAK:
            return False
        for streaked, streak_code, streak_reply in self.policy_streak:
            email = streaked.recipient.email
            self.journal.outcome(email, "deferred", streak_code, streak_reply, False)
            self.report.failed -= 1
            self.report.failures = [f for f in self.report.failures if f.email != email]
        self.policy_streak.clear()
        self.request_stop(
            f"the relay refuses this campaign: {code} {reply} "
            f"(the same refusal for {POLICY_STREAK} recipients in a row)"
        )
        return True

    def _later(self, item: _Item, action: Action, code: int | None, reply: str) -> None:
        """Retry this recipient later; a relay-wide slow-down also holds everyone back."""
        relay_wide = action.verdict in (Verdict.SLOW_DOWN, Verdict.BACK_OFF)
        if relay_wide or code is None:
            self.consecutive += 1
            self._hold(action, code, reply)
        if item.attempts >= self.options.max_attempts:
            self._fail(item, code, reply, bounce=False)
            self._check_pause(action.reason)
            return
        self._defer(item, code, reply, charged=action.charged)
        if self._check_pause(action.reason):
            return
        self.report.retries += 1
        if relay_wide or action.verdict is Verdict.RECONNECT:
            self.queue.put_nowait(item)  # the hold already makes it wait
            return
        base = self.options.retry_base * 2 ** max(0, item.attempts - 1)
        self._requeue_after(item, min(self.options.retry_max, base) * self.rng.uniform(0.5, 1.5))

    def _hold(self, action: Action, code: int | None, reply: str) -> None:
        if action.verdict is Verdict.BACK_OFF:
            # Busy as a whole for a moment: everyone waits briefly; the rate stays.
            delay = self.throttler.back_off()
            self.report.waiting = f"the relay said {code}: waiting {delay:.2g} s"
        elif code is None:  # no answer at all: wait for the relay to come back
            delay = min(
                self.options.reconnect_max,
                self.options.reconnect_base * 2 ** (self.consecutive - 1),
            )
            self.throttler.hold(delay)
            self.report.waiting = f"the relay is not answering; trying again in {delay:.2g} s"
        else:
            pause = self.throttler.penalize()
            self.report.waiting = f"the relay said {code}: slowing down ({pause:.2g} s)"

    def _defer(self, item: _Item, code: int | None, reply: str, *, charged: bool = True) -> None:
        # Not charged: the claim counted an attempt that the relay's state, not the
        # recipient, cost; the row gives it back.
        self.journal.outcome(item.recipient.email, "deferred", code, reply, False, charged=charged)

    def _requeue_after(self, item: _Item, delay: float) -> None:
        timer = asyncio.create_task(self._requeue_later(item, delay))
        self.timers.add(timer)
        timer.add_done_callback(self.timers.discard)

    async def _requeue_later(self, item: _Item, delay: float) -> None:
        await self.clock.sleep(delay)
        self.queue.put_nowait(item)

    def _fail(self, item: _Item, code: int | None, reply: str, *, bounce: bool) -> None:
        email = item.recipient.email
        self.journal.outcome(email, "failed", code, reply, bounce)
        self.report.failed += 1
        self.report.bounced += int(bounce)
        self.report.failures.append(Failure(email, code, reply, bounce))
        self._finished()

    def _finished(self) -> None:
        self.outstanding -= 1
        self._since_feedback += 1
        if self._since_feedback >= FEEDBACK_EVERY:
            self._since_feedback = 0
            self._feedback_says_pause()
        self._release_workers()

    def _check_pause(self, last: str) -> bool:
        """Pause after too many failures in a row: the relay may be down or refusing us."""
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
