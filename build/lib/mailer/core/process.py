"""Processes: who holds a lease or runs a send (``host:pid:token``, alive or not), and
how a long-running command hears it should stop (``StopSignals``).

Leases (scheduled waves) and send runs record their owner so that another
process can tell a live holder from one that crashed: on the same host a
dead pid is known at once; a holder on another host is trusted until its
lease or heartbeat expires.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import uuid
from typing import Any


def process_owner() -> str:
    """A fresh owner name: ``host:pid:token`` (the token tells runs in one process apart)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def owner_alive(owner: str) -> bool:
    """False when ``owner`` is a process of this host that no longer exists."""
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class StopSignals:
    """SIGTERM and Ctrl-C (SIGINT) as a request to stop, for every long-running command.

    ``with StopSignals() as stop:`` installs handlers (main thread only) that set
    ``stop.event`` — the send loop, run-due, the scheduler and workers look at it,
    take no new work and let in-flight SMTP transactions finish — and remember
    which signal came (``exit_code``: 143 for SIGTERM, 130 for SIGINT). A second
    Ctrl-C raises ``KeyboardInterrupt`` at once (a person asking twice); SIGTERM
    is what systemd and Docker send once, so it never needs a second one. The
    previous handlers come back on exit.
    """

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signal: int | None = None
        self._before: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for number in (signal.SIGTERM, signal.SIGINT):
                self._before[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for number, handler in self._before.items():
            signal.signal(number, handler)
        self._before.clear()

    def _handle(self, number: int, frame: object) -> None:
        if self.event.is_set() and number == signal.SIGINT:
            raise KeyboardInterrupt  # asked twice: stop now
        if self.signal is None:
            self.signal = number
        self.event.set()

    @property
    def stopped(self) -> bool:
        """True once a stop was asked for."""
        return self.event.is_set()

    @property
    def exit_code(self) -> int:
        """The shell's code for the signal that stopped us: 128 + its number (143, 130)."""
        return 128 + (self.signal or signal.SIGINT)

    @property
    def name(self) -> str:
        """``SIGTERM`` or ``SIGINT`` (``Ctrl-C``), for messages."""
        if self.signal == signal.SIGTERM:
            return "SIGTERM"
        return "Ctrl-C"


class ProcessLock:
    """An exclusive lock on ``path`` held by this process (``flock``), released on exit
    or when the process dies. ``acquired`` is False when another process holds it;
    ``holder`` then names its pid (as it wrote it), if known.
    """

    def __init__(self, path: str):
        self.path = path
        self.acquired = False
        self.holder: str | None = None
        self._file: Any = None

    def __enter__(self) -> ProcessLock:
        import fcntl

        # Not a ``with``: the file stays open for as long as the lock is held.
        handle = open(self.path, "a+")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            self.holder = handle.read().strip() or None
            handle.close()
            return self
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._file, self.acquired = handle, True
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._file is not None:
            self._file.close()  # closing releases the flock
            self._file, self.acquired = None, False
