"""Time: one way to read the clock, one timestamp format for everything stored.

Logic never reads the clock itself: the edges (CLI services, the send loop's
``Clock``) read it once and pass ``now`` down, so tests can fake any moment.
Every timestamp in the database is ``stamp(...)``: ISO 8601 in UTC to the
second with a ``Z`` (``2027-02-06T01:00:00Z``), which sorts correctly as text.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Protocol

STAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def utc_now() -> datetime:
    """The current moment, timezone-aware UTC. Only edges call this; logic takes ``now``."""
    return datetime.now(UTC)


def aware(moment: datetime) -> datetime:
    """``moment`` in UTC; a naive datetime is taken as UTC, never as the machine's local time."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def stamp(moment: datetime) -> str:
    """A database timestamp: ``2027-02-06T01:00:00Z`` (UTC, to the second)."""
    return aware(moment).strftime(STAMP_FORMAT)


def stamp_unix(seconds: float) -> str:
    """``stamp`` of a Unix time."""
    return time.strftime(STAMP_FORMAT, time.gmtime(seconds))


def parse_stamp(text: str) -> datetime:
    """A stored timestamp (any ISO 8601 form) as an aware UTC datetime."""
    return aware(datetime.fromisoformat(text))


class Clock(Protocol):
    """Where time-dependent loops read time and how they wait. Tests inject a fake."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards."""

    def time(self) -> float:
        """Wall-clock Unix time."""

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds``."""


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        """``time.monotonic()``."""
        return time.monotonic()

    def time(self) -> float:
        """``time.time()``."""
        return time.time()

    async def sleep(self, seconds: float) -> None:
        """``asyncio.sleep``."""
        await asyncio.sleep(max(0.0, seconds))


class StampCache:
    """``stamp_unix`` of a clock's time, formatted at most once per second.

    The send loop writes a timestamp per journal row; formatting one costs more
    than the row's SQL, and a second's resolution is all the format keeps.
    """

    def __init__(self, clock: Clock):
        self.clock = clock
        self._second = -1
        self._text = ""

    def now(self) -> str:
        """The clock's current time as a stamp."""
        second = int(self.clock.time())
        if second != self._second:
            self._second, self._text = second, stamp_unix(second)
        return self._text


class PassClock:
    """A clock set to another moment: ``base`` moved by a fixed offset.

    ``run-due --now 2027-02-06T01:00Z`` runs a pass as if it were then: the
    schedule, the frequency cap and the journal's stamps read this clock, while
    what must follow real time (leases, heartbeats) reads ``base``. With no
    offset it is ``base`` itself.
    """

    def __init__(self, base: Clock, offset: float = 0.0):
        self.base = base
        self.offset = offset

    @classmethod
    def at(cls, moment: datetime, base: Clock | None = None) -> PassClock:
        """A clock that reads ``moment`` now and runs on from there with ``base``."""
        base = base or SystemClock()
        return cls(base, aware(moment).timestamp() - base.time())

    @property
    def ahead(self) -> bool:
        """True when this clock is set later than the real one (a rehearsal of the future)."""
        return self.offset > 1.0

    def now(self) -> datetime:
        """This clock's current moment (UTC)."""
        return datetime.fromtimestamp(self.time(), UTC)

    def real_now(self) -> datetime:
        """The base clock's current moment (UTC)."""
        return datetime.fromtimestamp(self.base.time(), UTC)

    def monotonic(self) -> float:
        """The base clock's monotonic seconds."""
        return self.base.monotonic()

    def time(self) -> float:
        """The base clock's Unix time plus the offset."""
        return self.base.time() + self.offset

    async def sleep(self, seconds: float) -> None:
        """Wait on the base clock."""
        await self.base.sleep(seconds)
