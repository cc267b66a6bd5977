"""Stacked, adaptive sending limits for the send loop.

Limits stack: a message goes out only when every one of them allows it.

* per second — a smooth schedule (one message every ``1/rate`` seconds, no
  burst credit) and a hard cap at the receiver: no one-second window can see
  more than ``rate`` arrive (each transaction counts until its reply);
* per hour and per day — sliding windows, the relay's quotas. The daily
  window is seeded from the journal, so a quota spent by an earlier run (of
  any campaign) still counts;
* maximum concurrency — messages in flight at once;
* per recipient domain — the same, per domain (e.g. gmail.com).

Adaptive back-off: when the relay asks us to slow down (``policy.is_slow_down``),
``penalize`` halves the per-second rate and holds every sender
for a pause that doubles while complaints come with no success in between;
successes slowly restore the rate. The clock is
injectable so tests control time.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from mailer.core.clock import Clock, SystemClock

HOUR = 3600.0
DAY = 86400.0


@dataclass
class Limits:
    """The numbers a ``Throttler`` enforces (``None`` = unlimited)."""

    per_second: float | None = None
    per_hour: int | None = None
    per_day: int | None = None
    concurrency: int = 4
    per_domain: Mapping[str, float] = field(default_factory=dict)
    backoff_base: float = 1.0
    backoff_max: float = 60.0


class QuotaExhausted(Exception):
    """The hourly or daily quota is spent and waiting is not allowed."""

    def __init__(self, window: str, limit: int, resume_in: float):
        super().__init__(f"the {window} quota of {limit} messages is used up")
        self.window = window
        self.limit = limit
        self.resume_in = resume_in


class _Rate:
    """A rate as a hard cap *at the receiver*: one message every ``1/rate`` s, and never
    more than ``rate`` that could arrive within one second.

    A smooth schedule (no credit banked while idle): a sender that woke a little
    late keeps its place in the schedule, so event-loop lateness does not drag
    the average down. On top, a sliding one-second window over each message's
    whole transaction: the receiver's clock stamps a message somewhere between
    the moment it was let go (``take``) and the moment its reply came back
    (``done``), so a message counts in every second its transaction overlaps,
    and an unanswered one counts until its reply. No one-second window at the
    receiver can then hold more than the rate allows, whatever the network's
    jitter (counting send times alone let 54 through in one second under 50/s).
    The price: when the window binds, the rate is ``rate / (1 + d)`` for a
    transaction time ``d`` (a few milliseconds on a LAN).
    """

    def __init__(self, rate: float):
        self.rate = rate
        self.next_at = float("-inf")
        self.limit = max(1, int(rate + 1e-9))
        self.open = 0  # messages let go whose reply has not come yet
        self.closed: deque[float] = deque()  # reply times of the last second's messages

    def free_at(self, now: float, factor: float, shared: bool = False) -> float:
        """The earliest moment the next message fits (``inf``: when a reply comes).

        ``shared``: other runs send at the same time, each with its share of the rate;
        each one-second cap is then its share rounded up (16.7/s may send 17 in a
        second), else three runs sharing 50/s would only reach 48.
        """
        allowed = self.rate * factor
        cap = math.ceil(allowed - 1e-9) if shared else int(allowed + 1e-9)
        self.limit = max(1, cap)
        return max(self.next_at, self._window_free(now))

    def _window_free(self, now: float) -> float:
        while self.closed and self.closed[0] <= now - 1.0:
            self.closed.popleft()
        excess = self.open + len(self.closed) - self.limit + 1  # to leave the window first
        if excess <= 0:
            return now
        if excess <= len(self.closed):
            return self.closed[excess - 1] + 1.0
        return math.inf  # the window is full of unanswered messages: wait for a reply

    def take(self, now: float, due: float, factor: float, *, held: bool) -> None:
        """Count a message let go at ``now`` that was allowed from ``due`` (it woke up late).

        A sender that was waiting for its slot keeps the schedule (the next slot is
        one interval after its own), so lateness does not drag the rate down; after
        idle time the schedule starts afresh. ``held``: its transaction goes on until
        ``done``; otherwise it counts as answered at once.
        """
        interval = 1.0 / (self.rate * factor)
        slot = self.next_at if self.next_at >= due - interval else min(now, due)
        self.next_at = slot + interval
        if held:
            self.open += 1
        else:
            self.closed.append(now)

    def done(self, now: float) -> None:
        """A held message's reply came back at ``now``."""
        self.open = max(0, self.open - 1)
        self.closed.append(now)


class _Window:
    """A sliding-window counter (per hour, per day) over send times."""

    def __init__(self, limit: int, span: float, label: str):
        self.limit = limit
        self.span = span
        self.label = label
        self.times: deque[float] = deque()

    def free_at(self, now: float) -> float:
        """The earliest time a new message fits in the window."""
        while self.times and self.times[0] <= now - self.span:
            self.times.popleft()
        if len(self.times) < self.limit:
            return now
        return self.times[len(self.times) - self.limit] + self.span

    def record(self, when: float) -> None:
        """Count a message sent at ``when``."""
        self.times.append(when)


class Throttler:
    """Decides when each message may go. Use ``async with throttler.slot(domain):``."""

    def __init__(
        self,
        limits: Limits,
        *,
        clock: Clock | None = None,
        history: Iterable[float] = (),
        max_quota_wait: float = float("inf"),
    ):
        """``history``: wall-clock times of messages already sent (from the journal).

        When an hourly or daily quota would make a message wait longer than
        ``max_quota_wait`` seconds, ``acquire`` raises ``QuotaExhausted`` instead.
        """
        self.limits = limits
        self.clock = clock or SystemClock()
        self.max_quota_wait = max_quota_wait
        self._rate = _Rate(limits.per_second) if limits.per_second else None
        self._domains = {d.lower(): _Rate(r) for d, r in limits.per_domain.items()}
        self._windows = [
            _Window(n, span, label)
            for n, span, label in (
                (limits.per_hour, HOUR, "hourly"),
                (limits.per_day, DAY, "daily"),
            )
            if n
        ]
        self._seed(history)
        self._gate = asyncio.Semaphore(max(1, limits.concurrency))
        self._change = asyncio.Event()  # set when a reply frees a place in a window
        self.factor = 1.0
        # This run's part of limits shared with other runs (mailer worker): 1/n of each.
        # ``refresh_share`` (set by the run's BatchShare) is called at most once a second
        # to look at how many runs share them now.
        self.share = 1.0
        self._window_limits = [w.limit for w in self._windows]
        self.refresh_share: Callable[[], None] | None = None
        self._share_checked = float("-inf")
        self.hold_until = float("-inf")
        self._penalties = 0
        self._successes = 0

    def _seed(self, history: Iterable[float]) -> None:
        now_mono, now_wall = self.clock.monotonic(), self.clock.time()
        for wall in sorted(history):
            for window in self._windows:
                if now_wall - wall < window.span:
                    window.record(now_mono - (now_wall - wall))

    @property
    def rate(self) -> float | None:
        """The per-second rate in force now (lowered by back-off and sharing), or None."""
        if not self.limits.per_second:
            return None
        return self.limits.per_second * self.factor * self.share

    def set_share(self, fraction: float) -> None:
        """Keep ``fraction`` of every limit (rate, quotas, domain rates): the rest belongs
        to other runs sending the same job at the same time.

        The quotas' windows keep the sends already counted (the journal's history
        and this run's own), so a smaller share can only make this run wait longer.
        """
        self.share = min(1.0, max(fraction, 1e-6))
        for window, limit in zip(self._windows, self._window_limits, strict=True):
            window.limit = max(1, int(limit * self.share))

    @asynccontextmanager
    async def slot(self, domain: str = "") -> AsyncIterator[None]:
        """Wait for a concurrency slot and for every rate limit, then yield.

        The message counts in the per-second windows until the block ends (its
        reply came): see ``_Rate``.
        """
        async with self._gate:
            rate = await self.acquire(domain, held=True)
            try:
                yield
            finally:
                now = self.clock.monotonic()
                for held in (self._rate, rate):
                    if held is not None:
                        held.done(now)
                change, self._change = self._change, asyncio.Event()
                change.set()  # senders waiting for a reply to free the window

    async def acquire(self, domain: str = "", *, held: bool = False) -> _Rate | None:
        """Wait until every limit allows one more message, and count it.

        Every limit is checked, and the message counted, in one step with no
        wait in between; waiting happens outside it and is followed by a fresh
        check. So a message never goes out because of a check made before a
        hold or another sender's message (no burst after a hold), and a wait
        for one domain holds up nobody else.
        """
        rate = self._domains.get(domain.lower())
        due = self.clock.monotonic()
        if self.refresh_share is not None and due - self._share_checked >= 1.0:
            self._share_checked = due
            self.refresh_share()
        while True:
            now = self.clock.monotonic()
            ready = self._ready_at(now, rate)
            if ready <= now:
                self._take(now, min(due, now), rate, held)
                return rate
            blocking = [w for w in self._windows if w.free_at(now) - now > self.max_quota_wait]
            if blocking:
                window = blocking[-1]
                raise QuotaExhausted(window.label, window.limit, window.free_at(now) - now)
            if ready == math.inf:  # every place in the second is taken by a message in flight
                await self._change.wait()
                continue
            due = ready
            await self.clock.sleep(ready - now)

    def domain_delay(self, domain: str) -> float:
        """Seconds until ``domain``'s own limit lets a message go (0 when it does now).

        The send loop puts a message for a busy domain aside for that long instead
        of letting it occupy a sender.
        """
        rate = self._domains.get(domain.lower())
        if rate is None:
            return 0.0
        now = self.clock.monotonic()
        free = rate.free_at(now, self.share, self.share < 1.0)
        if free == math.inf:  # waiting for replies: look again after one interval
            return 1.0 / (rate.rate * self.share)
        return max(0.0, free - now)

    def _ready_at(self, now: float, domain: _Rate | None) -> float:
        times = [now, self.hold_until, *(w.free_at(now) for w in self._windows)]
        shared = self.share < 1.0
        if self._rate is not None:
            times.append(self._rate.free_at(now, self.factor * self.share, shared))
        if domain is not None:
            times.append(domain.free_at(now, self.share, shared))
        return max(times)

    def _take(self, now: float, due: float, domain: _Rate | None, held: bool) -> None:
        if self._rate is not None:
            self._rate.take(now, due, self.factor * self.share, held=held)
        if domain is not None:
            domain.take(now, due, self.share, held=held)
        for window in self._windows:
            window.record(now)

    def penalize(self) -> float:
        """The relay asked us to slow down: halve the rate and pause everyone; return the pause.

        Complaints that arrive while a pause is in force answer messages that were
        already in flight when it began: one episode, not several, so they neither
        halve the rate again nor lengthen the pause. The pause doubles only for
        complaints with no success in between (the relay refuses everything).
        """
        now = self.clock.monotonic()
        if now < self.hold_until:
            return self.hold_until - now
        self._penalties += 1
        self._successes = 0
        self.factor = max(0.05, self.factor / 2)
        pause = min(self.limits.backoff_max, self.limits.backoff_base * 2 ** (self._penalties - 1))
        self.hold_until = now + pause
        return pause

    def back_off(self) -> float:
        """The relay is busy as a whole for a moment (``452 4.5.3``): hold everyone, keep
        the rate; the hold doubles while nothing gets through. Returns the hold."""
        now = self.clock.monotonic()
        if now < self.hold_until:
            return self.hold_until - now
        self._penalties += 1
        self._successes = 0
        pause = min(self.limits.backoff_max, self.limits.backoff_base * 2 ** (self._penalties - 1))
        self.hold_until = now + pause
        return pause

    def hold(self, seconds: float) -> None:
        """Pause every sender for ``seconds`` (e.g. while a dropped relay comes back)."""
        self.hold_until = max(self.hold_until, self.clock.monotonic() + seconds)

    def succeeded(self) -> None:
        """A message went through: the next pause starts short again; the rate comes back slowly."""
        self._penalties = 0
        self._successes += 1
        if self._successes >= 20:
            self._successes = 0
            self.factor = min(1.0, self.factor * 1.25)
