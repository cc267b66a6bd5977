"""The throttle with a fake clock: smooth rates, hour/day windows, domains, back-off."""

from __future__ import annotations

import asyncio
import itertools
import random

import pytest

from mailer.delivery.policy import is_slow_down
from mailer.delivery.throttle import Limits, QuotaExhausted, Throttler
from tests.clock import FakeClock, VirtualClock


def acquire_times(throttler: Throttler, clock: FakeClock, count: int, domain: str = "") -> list:
    async def go() -> list[float]:
        times = []
        for _ in range(count):
            await throttler.acquire(domain)
            times.append(clock.now)
        return times

    return asyncio.run(go())


def max_in_window(times: list[float], span: float) -> int:
    best, start = 0, 0
    for end, t in enumerate(times):
        while times[start] <= t - span + 1e-9:  # float error in sums of 1/rate
            start += 1
        best = max(best, end - start + 1)
    return best


def test_per_second_is_smooth_with_no_burst_at_start() -> None:
    clock = FakeClock()
    throttler = Throttler(Limits(per_second=50), clock=clock)
    times = acquire_times(throttler, clock, 500)
    gaps = {round(b - a, 6) for a, b in itertools.pairwise(times)}
    assert gaps == {0.02}
    assert max_in_window(times, 1.0) == 50
    assert times[-1] == pytest.approx(499 / 50)


class LateClock(FakeClock):
    """Wakes up late by up to 15 ms, like a busy event loop."""

    def __init__(self) -> None:
        super().__init__()
        self.rng = random.Random(3)

    async def sleep(self, seconds: float) -> None:
        await super().sleep(seconds + self.rng.uniform(0, 0.015))


def test_late_wakeups_neither_burst_nor_slow_the_rate() -> None:
    clock = LateClock()
    throttler = Throttler(Limits(per_second=50), clock=clock)
    times = acquire_times(throttler, clock, 1000)
    assert max_in_window(times, 1.0) <= 50
    achieved = (len(times) - 1) / (times[-1] - times[0])
    # The one-second window is a hard cap: a message late by up to 15 ms in one
    # second cannot be made up in the next, so the average sits a little under 50.
    assert achieved == pytest.approx(50, rel=0.015)


def test_idle_time_is_not_banked_as_burst_credit() -> None:
    clock = FakeClock()
    throttler = Throttler(Limits(per_second=10), clock=clock)
    acquire_times(throttler, clock, 3)
    clock.now += 60  # a long pause must not allow a burst afterwards
    times = acquire_times(throttler, clock, 20)
    assert max_in_window(times, 1.0) == 10


def test_hourly_window_blocks_then_slides() -> None:
    clock = FakeClock()
    throttler = Throttler(Limits(per_hour=100), clock=clock)
    times = acquire_times(throttler, clock, 101)
    assert times[99] == 0.0
    assert times[100] == pytest.approx(3600.0)


def test_daily_quota_carries_over_from_history() -> None:
    clock = FakeClock()
    wall = clock.time()
    # 195 messages sent an hour ago by an earlier run; 5 left of a 200/day quota.
    history = [wall - 3600] * 195 + [wall - 90_000] * 50  # the 50 are older than a day
    throttler = Throttler(Limits(per_day=200), clock=clock, history=history, max_quota_wait=60)
    assert acquire_times(throttler, clock, 5) == [0.0] * 5
    with pytest.raises(QuotaExhausted) as caught:
        acquire_times(throttler, clock, 1)
    assert caught.value.window == "daily"
    assert caught.value.resume_in == pytest.approx(86_400 - 3600)


def test_per_domain_rate_is_enforced_on_top_of_global() -> None:
    clock = FakeClock()
    throttler = Throttler(Limits(per_second=100, per_domain={"Gmail.com": 2}), clock=clock)
    gmail = acquire_times(throttler, clock, 5, "gmail.com")
    assert [round(t, 6) for t in gmail] == [0.0, 0.5, 1.0, 1.5, 2.0]
    start = clock.now
    other = acquire_times(throttler, clock, 5, "example.org")
    assert other[-1] - start == pytest.approx(0.05)


def concurrent_times(
    throttler: Throttler, clock: VirtualClock, senders: int, each: int, domain: str = ""
) -> list[float]:
    """Virtual times at which ``senders`` concurrent senders got ``each`` slots apiece."""
    times: list[float] = []

    async def sender() -> None:
        for _ in range(each):
            async with throttler.slot(domain):
                times.append(clock.now)

    async def go() -> None:
        await asyncio.gather(*(sender() for _ in range(senders)))

    asyncio.run(go())
    return sorted(times)


def test_a_hold_is_not_followed_by_a_burst_to_one_domain() -> None:
    # Four senders wait out a hold together; when it ends, the domain's 2 per second
    # still holds: no message goes less than 0.5 s after the one before.
    clock = VirtualClock()
    throttler = Throttler(
        Limits(per_domain={"a.test": 2}, concurrency=4, backoff_base=5.0), clock=clock
    )
    throttler.penalize()
    times = concurrent_times(throttler, clock, senders=4, each=3, domain="a.test")
    assert times[0] >= 5.0
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 0.5 - 1e-9, gaps
    assert max_in_window(times, 1.0) <= 2


def test_global_rate_is_a_hard_cap_for_concurrent_senders() -> None:
    clock = VirtualClock()
    throttler = Throttler(Limits(per_second=10, concurrency=8), clock=clock)
    throttler.hold(3.0)
    times = concurrent_times(throttler, clock, senders=8, each=10)
    assert times[0] >= 3.0 and len(times) == 80
    assert max_in_window(times, 1.0) <= 10
    assert (len(times) - 1) / (times[-1] - times[0]) == pytest.approx(10, rel=0.05)


def test_a_busy_domain_does_not_hold_up_the_others() -> None:
    clock = VirtualClock()
    throttler = Throttler(Limits(per_domain={"slow.test": 1}, concurrency=4), clock=clock)
    assert throttler.domain_delay("slow.test") == 0.0
    acquire_times(throttler, clock, 1, "slow.test")  # type: ignore[arg-type]
    assert throttler.domain_delay("slow.test") == pytest.approx(1.0)
    assert throttler.domain_delay("fast.test") == 0.0


def test_penalize_pauses_everyone_and_halves_the_rate_then_recovers() -> None:
    clock = FakeClock()
    throttler = Throttler(Limits(per_second=10, backoff_base=2.0), clock=clock)
    acquire_times(throttler, clock, 1)
    pause = throttler.penalize()
    assert pause == 2.0
    assert throttler.rate == 5.0
    before = clock.now
    times = acquire_times(throttler, clock, 3)
    assert times[0] >= before + 2.0
    assert times[2] - times[1] == pytest.approx(0.2)
    assert throttler.penalize() == 4.0  # a second complaint doubles the pause
    for _ in range(40):
        throttler.succeeded()
    assert throttler.rate == pytest.approx(10 * 0.25 * 1.25 * 1.25)


def test_complaints_during_a_pause_are_one_episode() -> None:
    # Four messages in flight all answered 451: one slow-down, not four.
    clock = FakeClock()
    throttler = Throttler(Limits(per_second=100, backoff_base=1.0), clock=clock)
    assert [throttler.penalize() for _ in range(4)] == [1.0, 1.0, 1.0, 1.0]
    assert throttler.rate == 50.0
    clock.now += 0.4
    assert throttler.penalize() == pytest.approx(0.6)  # the same pause, not a longer one
    assert throttler.rate == 50.0


def test_pause_doubles_only_while_nothing_gets_through() -> None:
    clock = FakeClock()
    throttler = Throttler(Limits(per_second=100, backoff_base=1.0, backoff_max=60), clock=clock)
    pauses = []
    for _ in range(8):  # the relay refuses everything: 1, 2, 4, ... capped at 60 s
        pauses.append(throttler.penalize())
        clock.now = throttler.hold_until
    assert pauses == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]
    throttler.succeeded()  # one message got through: the next complaint pauses briefly again
    assert throttler.penalize() == 1.0


def test_occasional_complaints_do_not_grind_the_run_down() -> None:
    # One message in ten answered 451 at 100/s: the run slows down but keeps moving,
    # instead of pausing everyone for a minute per complaint.
    clock = FakeClock()
    throttler = Throttler(Limits(per_second=100, backoff_base=1.0, backoff_max=60), clock=clock)

    async def go() -> None:
        for number in range(1, 501):
            await throttler.acquire()
            if number % 10 == 0:
                throttler.penalize()
            else:
                throttler.succeeded()

    asyncio.run(go())
    assert max(clock.sleeps) <= 1.0 + 1e-9
    assert clock.now < 5 * 60  # 500 messages in under five minutes (a minute per complaint: 50)


def test_concurrency_limit_holds_messages_in_flight() -> None:
    throttler = Throttler(Limits(concurrency=3))
    state = {"now": 0, "peak": 0}

    async def one() -> None:
        async with throttler.slot():
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
            await asyncio.sleep(0.01)
            state["now"] -= 1

    async def many() -> None:
        await asyncio.gather(*(one() for _ in range(20)))

    asyncio.run(many())
    assert state["peak"] == 3


@pytest.mark.parametrize(
    ("code", "reply", "expected"),
    [
        (421, "Service not available", True),
        (451, "4.3.0 Temporary local problem", True),
        (452, "4.3.1 Insufficient system storage", True),
        (451, "4.7.1 Greylisted, try again later", False),  # this recipient only
        (452, "4.2.2 Mailbox full", False),
        (450, "Mailbox busy", False),
        (454, "4.7.0 Too many connections from your IP", True),
        (454, "TLS not available", False),
        (550, "too many connections", False),  # a permanent refusal pauses instead
        (250, "OK", False),
    ],
)
def test_slow_down_replies(code: int, reply: str, expected: bool) -> None:
    assert is_slow_down(code, reply) is expected
