"""Crash safety of the full pipeline: a 20,000-recipient send (messages built in worker
processes, journal written in batches) killed with SIGKILL at a random point, then resumed."""

from __future__ import annotations

import json
import random
import signal
import time
from collections import Counter
from pathlib import Path

import pytest

from mailer.audience.store import connect
from mailer.delivery.builders import POOL_FROM
from tests.delivery.test_kill import mailer_send
from tests.send_workspace import addresses, make_send_workspace
from tests.smtp_server import RecordingHandler, SmtpServer

COUNT = 20_000
CONCURRENCY = 4  # as in tests.delivery.test_kill.mailer_send


def children(pid: int) -> list[int]:
    """The direct child processes of ``pid`` (the build workers of a send)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as listing:
            return [int(child) for child in listing.read().split()]
    except FileNotFoundError:
        return []


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture
def light_server():
    """aiosmtpd that records envelopes only: 20,000 message bodies would not fit a test."""
    server = SmtpServer(RecordingHandler(keep_data=False)).start()
    yield server
    server.close()


def test_sigkill_at_a_random_point_of_a_large_send_loses_and_repeats_nobody(
    tmp_path: Path, light_server: SmtpServer
) -> None:
    assert COUNT >= POOL_FROM  # this run builds in worker processes
    kill_after = random.randint(COUNT // 20, COUNT // 2)
    note = f"(killed after {kill_after} deliveries)"
    make_send_workspace(tmp_path, COUNT)
    process = mailer_send(tmp_path, light_server.url)
    received = light_server.handler.received
    deadline = time.monotonic() + 600
    workers: set[int] = set()
    while len(received) < kill_after:
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        assert time.monotonic() < deadline, f"the first run stalled {note}"
        workers.update(children(process.pid))
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert workers, "the send built its messages without worker processes"
    for _ in range(500):  # orphaned workers notice the parent is gone and exit
        if not any(alive(pid) for pid in workers):
            break
        time.sleep(0.02)
    assert not any(alive(pid) for pid in workers), f"build workers outlived the send {note}"

    conn = connect(tmp_path / "mailer.db")
    in_flight = {r[0] for r in conn.execute("SELECT email FROM journal WHERE status = 'sending'")}
    assert len(in_flight) <= CONCURRENCY, note

    second = mailer_send(tmp_path, light_server.url)
    out, err = second.communicate(timeout=900)
    assert second.returncode == 0, err
    report = json.loads(out)
    assert set(report["unknown"]) == in_flight and report["complete"] is True, note

    delivered = Counter(light_server.handler.delivered_to())
    lost = [e for e in addresses(COUNT) if e not in in_flight and delivered[e] != 1]
    twice = [e for e in in_flight if delivered[e] > 1]
    assert (lost, twice) == ([], []), note
    assert sum(delivered.values()) <= COUNT
    counts = dict(conn.execute("SELECT status, COUNT(*) FROM journal GROUP BY status").fetchall())
    assert counts == {
        "sent": COUNT - len(in_flight),
        **({"sending": len(in_flight)} if in_flight else {}),
    }
