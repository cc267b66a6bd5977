"""Progress bars on stderr for the long phases: checking an audience, rendering an outbox.

A million-recipient audience takes minutes to check; the bar shows from the
first batch, with a count, a rate and the time left, and disappears when the
phase ends (the summary that follows says what happened). It is off when
stderr is not a terminal or the output is JSON.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from mailer.cli.app import err_console

Tick = Callable[[int, int], None]  # (done, total)


@contextmanager
def phase_bar(label: str, *, quiet: bool = False) -> Iterator[Tick]:
    """A transient bar for one counted phase; call the yielded function with (done, total)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
        disable=quiet or not err_console.is_terminal,
    )
    task = bar.add_task(label, total=None)

    def tick(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total or None)

    with bar:
        yield tick
