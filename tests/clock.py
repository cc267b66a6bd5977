"""Fake clocks for tests: time that moves only when the code under test waits.

* ``FakeClock`` — each ``sleep`` moves time forward by its own length at once:
  right for one waiter at a time (the throttle's unit tests).
* ``VirtualClock`` — sleepers wait for a shared virtual time, which jumps to the
  earliest wake-up only once every task has had its turn: right for several
  senders waiting at once (the send loop), where each must see the others.

No test here waits for, or measures, real time.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from datetime import datetime

from mailer.core.clock import PassClock


class FakeClock:
    """Virtual time: ``sleep`` advances the clock instead of waiting."""

    def __init__(self, wall: float = 1_800_000_000.0):
        self.now = 0.0
        self.wall0 = wall
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.wall0 + self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(0.0, seconds)
        await asyncio.sleep(0)


class VirtualClock:
    """Shared virtual time for concurrent asyncio code (see the module docstring).

    A background task started by the first ``sleep`` lets every runnable task
    run (``settle`` passes of the event loop), then wakes the earliest sleeper,
    moving the clock to its wake-up time. Sleepers with the same wake-up time
    wake together. I/O in flight (a real SMTP reply) takes no virtual time.
    """

    def __init__(self, wall: float = 1_800_000_000.0, *, settle: int = 50):
        self.now = 0.0
        self.wall0 = wall
        self.settle = settle
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._driver: asyncio.Task[None] | None = None

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.wall0 + self.now

    async def sleep(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        if self._driver is None or self._driver.done() or self._driver.get_loop() is not loop:
            self._driver = loop.create_task(self._drive())
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        wake = loop.create_future()
        heapq.heappush(self._sleepers, (self.now + seconds, next(self._order), wake))
        await wake

    async def _drive(self) -> None:
        while True:
            for _ in range(self.settle):
                await asyncio.sleep(0)
            if not self._sleepers:
                await asyncio.sleep(0.001)  # real I/O may be in flight: give it a moment
                continue
            when = self._sleepers[0][0]
            self.now = max(self.now, when)
            while self._sleepers and self._sleepers[0][0] <= self.now:
                _, _, wake = heapq.heappop(self._sleepers)
                if not wake.done():
                    wake.set_result(None)


def pass_at(moment: datetime) -> PassClock:
    """A run-due pass clock at ``moment``, on a fake real clock set to the same moment.

    So the pass is not "ahead of the real clock" (which may not close waves):
    the tests' 2027 is, for the pass, simply now.
    """
    return PassClock(FakeClock(wall=moment.timestamp()))
