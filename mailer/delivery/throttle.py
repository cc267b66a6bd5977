"""Stacked, adaptive sending limits for the send loop.

Limits stack: a message goes out only when every one of them allows it.

* per second — a smooth schedule (one message every ``1/rate`` seconds, no
  burst credit), so no one-second window ever holds more than ``rate + 1``;
* per hour and per day — sliding windows, the relay's quotas. The daily
  window is seeded from the journal, so a quota spent by an earlier run (of
  any campaign) still counts;
* maximum concurrency — messages in flight at once;
* per recipient domain — a smooth schedule per domain (e.g. gmail.com).

Adaptive back-off: when the relay asks us to slow down (``policy.is_slow_down``),
``penalize`` halves the per-second rate and holds every sender
for a pause that doubles while complaints come with no success in between;
successes slowly restore the rate. The clock is
injectable so tests control time.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Iterable, Mapping
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


class _Pacer:
    """A smooth schedule: one slot every ``1/rate`` s, never banking unused slots."""

    def __init__(self, rate: float):
        self.rate = rate
        self.next_at = float("-inf")

    def reserve(self, now: float, factor: float) -> float:
        """Book the next slot; return when it starts.

        A sender that woke up a little late may take its slot up to one
        interval in the past, so event-loop lateness does not drag the average
        rate down; idle time beyond that is never banked.
        """
        interval = 1.0 / (self.rate * factor)
        slot = self.next_at if self.next_at >= now - interval else now
        self.next_at = slot + interval
        return max(slot, now)


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
        self._pacer = _Pacer(limits.per_second) if limits.per_second else None
        self._second = _Window(1, 1.0, "per-second") if limits.per_second else None
        self._domains = {d.lower(): _Pacer(r) for d, r in limits.per_domain.items()}
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
        self._lock = asyncio.Lock()
        self.factor = 1.0
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
        """The per-second rate in force now (lowered by back-off), or None."""
        return self.limits.per_second * self.factor if self.limits.per_second else None

    @asynccontextmanager
    async def slot(self, domain: str = "") -> AsyncIterator[None]:
        """Wait for a concurrency slot and for every rate limit, then yield."""
        async with self._gate:
            await self.acquire(domain)
            yield

    async def acquire(self, domain: str = "") -> None:
        """Wait until every limit allows one more message, and count it."""
        pacer = self._domains.get(domain.lower())
        if pacer is not None:
            # The domain pacer is booked first and outside the lock so that a
            # slow domain does not hold up messages to other domains.
            await self._sleep_until(pacer.reserve(self.clock.monotonic(), 1.0))
        # Releases are serialised (the lock is held while waiting) so that late
        # wake-ups cannot release several messages at once.
        async with self._lock:
            now = await self._wait_windows_and_hold()
            if self._pacer is not None:
                await self._sleep_until(self._pacer.reserve(now, self.factor))
                now = await self._wait_second()
            for window in self._windows:
                window.record(now)

    async def _wait_second(self) -> float:
        """Hard cap: never more than the per-second rate in any one-second window."""
        second = self._second
        assert second is not None and self.limits.per_second
        second.limit = max(1, int(self.limits.per_second * self.factor + 1e-9))
        while True:
            now = self.clock.monotonic()
            free = second.free_at(now)
            if free <= now:
                second.record(now)
                return now
            await self.clock.sleep(free - now)

    async def _wait_windows_and_hold(self) -> float:
        while True:
            now = self.clock.monotonic()
            ready = max([now, self.hold_until, *(w.free_at(now) for w in self._windows)])
            if ready <= now:
                return now
            blocking = [w for w in self._windows if w.free_at(now) - now > self.max_quota_wait]
            if blocking:
                window = blocking[-1]
                raise QuotaExhausted(window.label, window.limit, ready - now)
            await self.clock.sleep(ready - now)

    async def _sleep_until(self, when: float) -> None:
        delay = when - self.clock.monotonic()
        if delay > 0:
            await self.clock.sleep(delay)

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
