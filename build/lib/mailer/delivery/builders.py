"""Building messages for the send loop: in this process, or in worker processes on other cores.

The send loop's own process is one core's worth of SMTP and journal work.
Rendering, MIME encoding and DKIM signing (an RSA operation per message) are
CPU work that does not need the loop: ``PoolBuilder`` does it in worker
processes, batch by batch, while the loop sends the previous batches.
Workers compile the campaign once from the same Jinja sources the checks
saw (``CampaignSources``), never from the template files again.

``InlineBuilder`` does the same work in this process: for small sends (a
worker process takes a moment to start) and for tests.

A recipient whose message cannot be built (their data changed since the
checks) is returned as a ``BuildFailure``: that recipient fails, the others go on.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Protocol

from mailer.compose.compile import CampaignSources, CompiledCampaign, compile_sources
from mailer.compose.dkim import DkimSigner
from mailer.compose.outgoing import Envelope, build_outgoing
from mailer.core.errors import MailerError
from mailer.core.recipient import Recipient

# Audiences smaller than this are built in the sending process: starting workers costs more.
POOL_FROM = 2000


@dataclass(frozen=True, slots=True)
class Built:
    """One recipient's message, ready for the wire (signed when DKIM is on)."""

    recipient: Recipient
    envelope: Envelope
    variant: int
    label: str  # as journaled and reported: "A", or "en A" in a multilingual campaign


@dataclass(frozen=True, slots=True)
class BuildFailure:
    """A recipient whose message could not be built, and why."""

    recipient: Recipient
    reason: str


class Builder(Protocol):
    """Turns a batch of recipients into messages."""

    async def build(self, batch: Sequence[Recipient], now: float) -> list[Built | BuildFailure]:
        """Build every message of ``batch``, dated (and signed at) ``now`` (Unix time)."""
        ...

    def close(self) -> None:
        """Release the workers, if any."""
        ...


@dataclass(frozen=True)
class Recipe:
    """Everything a worker needs to build a campaign's messages (plain data: it pickles)."""

    sources: CampaignSources
    key: str  # the journal key: Message-IDs are made from it
    dkim: DkimSigner | None
    variant: int | None = None  # everyone gets this subject (an A/B test's winner)


def build_batch(
    compiled: CompiledCampaign, recipe: Recipe, batch: Sequence[Recipient], now: float
) -> list[tuple[int, Envelope, int, str] | tuple[int, str]]:
    """Build (and sign) a batch; ``(index, envelope, variant, label)`` or ``(index, reason)``."""
    results: list[tuple[int, Envelope, int, str] | tuple[int, str]] = []
    for index, person in enumerate(batch):
        try:
            out = build_outgoing(compiled, person, now=now, key=recipe.key, variant=recipe.variant)
        except MailerError as exc:
            results.append((index, str(exc)))
            continue
        envelope = out.envelope
        if recipe.dkim is not None:
            data = recipe.dkim.sign(envelope.data, timestamp=int(now))
            envelope = Envelope(envelope.sender, envelope.recipient, data, envelope.message_id)
        results.append((index, envelope, out.variant, out.variant_name))
    return results


def _gather(
    batch: Sequence[Recipient], raw: list[tuple[int, Envelope, int, str] | tuple[int, str]]
) -> list[Built | BuildFailure]:
    out: list[Built | BuildFailure] = []
    for entry in raw:
        if len(entry) == 4:
            index, envelope, variant, label = entry
            out.append(Built(batch[index], envelope, variant, label))
        else:
            index, reason = entry
            out.append(BuildFailure(batch[index], reason))
    return out


class InlineBuilder:
    """Builds in this process (small sends, tests)."""

    def __init__(self, compiled: CompiledCampaign, recipe: Recipe):
        self.compiled = compiled
        self.recipe = recipe

    async def build(self, batch: Sequence[Recipient], now: float) -> list[Built | BuildFailure]:
        """Build the batch here, between the loop's other work."""
        return _gather(batch, build_batch(self.compiled, self.recipe, batch, now))

    def close(self) -> None:
        """Nothing to release."""


# --- worker processes ----------------------------------------------------------

_worker: tuple[CompiledCampaign, Recipe] | None = None


def _start_worker(recipe: Recipe, parent: int) -> None:
    global _worker
    _worker = (compile_sources(recipe.sources), recipe)
    threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()


def _exit_with(parent: int) -> None:
    """End this worker when the sending process is gone (killed: it cannot shut us down).

    A pool worker waits on a queue it also holds the writing end of, so it
    would never hear that its parent died; an orphan is adopted by another
    process, which changes its parent id.
    """
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


_Raw = list[tuple[int, Envelope, int, str] | tuple[int, str]]


def _work(batch: Sequence[Recipient], now: float) -> _Raw:
    assert _worker is not None, "the worker was not started"
    compiled, recipe = _worker
    return build_batch(compiled, recipe, batch, now)


class PoolBuilder:
    """Builds in ``workers`` processes (spawned: no state of this process leaks into them)."""

    def __init__(self, recipe: Recipe, workers: int):
        context = multiprocessing.get_context("spawn")
        self.workers = workers
        self._pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=context,
            initializer=_start_worker,
            initargs=(recipe, os.getpid()),
        )

    async def build(self, batch: Sequence[Recipient], now: float) -> list[Built | BuildFailure]:
        """Build the batch in a worker process; the loop sends meanwhile."""
        loop = asyncio.get_running_loop()
        raw = await loop.run_in_executor(self._pool, _work, list(batch), now)
        return _gather(batch, raw)

    def close(self) -> None:
        """Stop the worker processes."""
        self._pool.shutdown(wait=True, cancel_futures=True)


def default_workers(*, signing: bool = False) -> int:
    """Worker processes for building: every core but the one that sends, at least one.

    When messages are DKIM-signed, one per core: an RSA signature costs about
    a millisecond, so the workers are the bottleneck and the sending process
    spends much of its time waiting for them.
    """
    cores = os.cpu_count() or 2
    return cores if signing else max(1, cores - 1)
