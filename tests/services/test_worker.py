"""Queued sends and ``mailer worker``: several worker processes share one job.

Worker processes on this machine stand in for hosts; they talk to a real aiosmtpd
relay on 127.0.0.1 and share one real store: a SQLite file, or (the tests marked
with ``engine``) a PostgreSQL database on a real server. Leases, takeover after a
SIGKILL, the last run's sweep, and the limits split between live runs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mailer.audience.store import connect, open_store
from mailer.delivery.jobs import BatchShare, enqueue, jobs
from mailer.delivery.runs import finish_run, start_run
from mailer.delivery.throttle import Limits, Throttler
from tests.clock import FakeClock, VirtualClock
from tests.send_workspace import addresses, make_send_workspace
from tests.smtp_server import SmtpServer
from tests.workspace import invoke

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest) -> str | None:
    """The store of a test that must hold on both: None (SQLite) or a PostgreSQL URL."""
    return request.getfixturevalue("pg_url") if request.param == "postgresql" else None


def mailer(root: Path, *args: str, store: str | None = None) -> subprocess.Popen[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("MAILER_") or k == "MAILER_UNSUBSCRIBE_KEY"
    }
    if store is not None:
        env["MAILER_STORE_URL"] = store
    return subprocess.Popen(
        [sys.executable, "-m", "mailer", *args],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def enqueue_cli(root: Path, url: str, store: str | None = None) -> dict[str, object]:
    queued = mailer(root, "send", "campaigns/spring.toml", "--live", "--enqueue-only", "--yes",
                    "--no-browser", "--json", "--smtp", url, store=store)  # fmt: skip
    out, err = queued.communicate(timeout=120)
    assert queued.returncode == 0, err
    return dict(json.loads(out))


def start_worker(root: Path, url: str, store: str | None = None) -> subprocess.Popen[str]:
    return mailer(root, "worker", "--until-idle", "--poll", "0.2", "--json", "--smtp", url,
                  "--concurrency", "4", store=store)  # fmt: skip


def test_enqueue_only_sends_nothing_and_queues_one_job(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    make_send_workspace(tmp_path, 20)
    job = enqueue_cli(tmp_path, smtp_server.url)
    again = enqueue_cli(tmp_path, smtp_server.url)
    assert smtp_server.handler.received == []
    assert job["status"] == "open" and job["journal_key"] == "spring"
    assert again["id"] == job["id"]  # an open job for the same key is not queued twice
    listed = invoke(tmp_path, "jobs")
    assert f"{job['id']:>4}  open" in listed.output
    status = invoke(tmp_path, "status", "campaigns/spring.toml")
    assert f"queued job {job['id']} (spring): open; see mailer jobs" in status.output
    assert (
        json.loads(invoke(tmp_path, "status", "spring", "--json").output)["jobs"][0]["id"]
        == job["id"]
    )
    without_live = invoke(tmp_path, "send", "campaigns/spring.toml", "--enqueue-only")
    assert without_live.exit_code == 1 and "goes with --live" in without_live.output


def test_three_workers_share_a_job_and_a_sigkilled_one_loses_nobody(
    tmp_path: Path, smtp_server: SmtpServer, engine: str | None
) -> None:
    count = 1500
    make_send_workspace(tmp_path, count, throttle="per_second = 300")
    enqueue_cli(tmp_path, smtp_server.url, engine)
    workers = [start_worker(tmp_path, smtp_server.url, engine) for _ in range(3)]
    deadline = time.monotonic() + 120  # a readiness wait, not a timing assertion
    while len(smtp_server.handler.received) < 200:
        assert all(w.poll() is None for w in workers), workers[0].stderr
        assert time.monotonic() < deadline, "the workers never got going"
        time.sleep(0.005)
    workers[0].send_signal(signal.SIGKILL)
    workers[0].wait(timeout=10)
    results = []
    for survivor in workers[1:]:
        out, err = survivor.communicate(timeout=300)
        assert survivor.returncode == 0, err
        results += [json.loads(line) for line in out.splitlines()]

    conn = open_store(tmp_path / "mailer.db", engine)
    in_flight = {r[0] for r in conn.execute("SELECT email FROM journal WHERE status = 'sending'")}
    statuses = Counter(dict(conn.execute("SELECT status, count(*) FROM journal GROUP BY status")))
    (job,) = jobs(conn)
    (runs,) = conn.execute("SELECT count(*) FROM campaign_runs WHERE job_id = ?", (job.id,))
    conn.close()
    # The killed worker had at most its 4 messages in flight: those are unknown, the rest sent.
    assert len(in_flight) <= 4
    expected = Counter({"sent": count - len(in_flight), "sending": len(in_flight)})
    assert statuses == +expected  # (+ drops a zero count)
    delivered = Counter(smtp_server.handler.delivered_to())
    for email in addresses(count):
        assert delivered[email] == 1 or (email in in_flight and delivered[email] <= 1), email
    assert job.status == "done" and f"sent {count - len(in_flight)}" in job.note
    assert any(r["outcome"] == "done" for r in results)  # one survivor swept and closed it
    assert runs[0] >= 4  # three first runs, and at least one more pass or sweep


def test_a_live_send_on_postgresql_is_joined_by_running_workers(
    tmp_path: Path, smtp_server: SmtpServer, pg_url: str
) -> None:
    # 20 s of sending at 100/s. The workers are polling the queue before the send starts
    # (each holds its connection to the store), so they see the job as soon as it is
    # queued and lease the batches the sender has not reached (it plans ~5 ahead).
    count = 2000
    make_send_workspace(tmp_path, count, throttle="per_second = 100")
    workers = [
        mailer(tmp_path, "worker", "--poll", "0.2", "--json", "--smtp", smtp_server.url,
               "--concurrency", "4", store=pg_url)
        for _ in range(2)
    ]  # fmt: skip
    watcher = open_store(tmp_path / "mailer.db", pg_url)
    others = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
    deadline = time.monotonic() + 120  # a readiness wait, not a timing assertion
    while watcher.execute(others).fetchone()[0] < 3:  # the watcher and both workers
        assert all(w.poll() is None for w in workers), workers[0].stderr
        assert time.monotonic() < deadline, "the workers never connected"
        time.sleep(0.05)
    watcher.close()
    sender = mailer(tmp_path, "send", "campaigns/spring.toml", "--live", "--yes", "--no-browser",
                    "--json", "--smtp", smtp_server.url, store=pg_url)  # fmt: skip
    out, err = sender.communicate(timeout=300)
    assert sender.returncode == 0, err
    # The last run to finish sweeps and closes the job: here one of the workers.
    conn = open_store(tmp_path / "mailer.db", pg_url)
    deadline = time.monotonic() + 120  # a readiness wait, not a timing assertion
    while jobs(conn)[0].status == "open" and time.monotonic() < deadline:
        time.sleep(0.1)
    (job,) = jobs(conn)
    conn.close()
    for worker in workers:  # they wait for more work: stop them as systemd would
        worker.send_signal(signal.SIGTERM)
    passes = []
    for worker in workers:
        lines, _ = worker.communicate(timeout=60)
        passes += [json.loads(line) for line in lines.splitlines()]
    delivered = Counter(smtp_server.handler.delivered_to())
    assert all(delivered[email] == 1 for email in addresses(count)) and len(delivered) == count
    by_workers = sum(p["sent"] for p in passes)
    assert by_workers > 0 and json.loads(out)["sent"] + by_workers == count
    assert job.status == "done" and f"sent {count}" in job.note


def test_batches_are_leased_once_and_a_dead_runs_are_taken_over(
    tmp_path: Path, engine: str | None
) -> None:
    conn = open_store(tmp_path / "mailer.db", engine)
    job = enqueue(conn, "campaigns/spring.toml", "spring", "f", {}, NOW)

    def run() -> int:
        return start_run(conn, "spring", now=NOW, transport="t", forced=False, subject="",
                         body_text="", audience="", job_id=job.id)  # fmt: skip

    first, second = BatchShare(conn, job.id, lambda: NOW), BatchShare(conn, job.id, lambda: NOW)
    first.run_id, second.run_id = run(), run()
    stream = [[], [], [], []]  # four (empty) batches
    assert next(iter(first.batches(stream))) == []  # first takes batch 0 ...
    assert list(second.batches(stream)) == [[], [], []] and second.passed == 1  # ... second 1-3
    assert (first.take(0), second.take(0), first.take(2)) == (True, False, False)
    finish_run(conn, second.run_id, "done", now=NOW)
    third = BatchShare(conn, job.id, lambda: NOW)
    third.run_id = run()
    assert not third.take(2)  # a finished run's batch is done
    # The first run's host is lost: its heartbeat goes silent, and its batch is taken over.
    stale = "2026-12-02T08:58:59Z"  # more than STALE_AFTER (60 s) before NOW
    conn.execute("UPDATE campaign_runs SET heartbeat_at = ? WHERE id = ?", (stale, first.run_id))
    assert third.take(0) and not first.take(0)
    conn.close()


def test_live_runs_split_every_limit_between_them(tmp_path: Path, engine: str | None) -> None:
    conn = open_store(tmp_path / "mailer.db", engine)
    job = enqueue(conn, "campaigns/spring.toml", "spring", "f", {}, NOW)
    limits = Limits(per_second=90, per_hour=3000, per_day=None, per_domain={"a.test": 30})
    throttle = Throttler(limits, clock=FakeClock())
    share = BatchShare(conn, job.id, lambda: NOW, throttle=throttle)
    ids = [start_run(conn, "spring", now=NOW, transport="t", forced=False, subject="",
                     body_text="", audience="", job_id=job.id) for _ in range(4)]  # fmt: skip
    for batch, run_id in ((1, ids[1]), (2, ids[2])):  # two other runs at work on batches
        other = BatchShare(conn, job.id, lambda: NOW)
        other.run_id = run_id
        assert other.take(batch)
    # The fourth run leased nothing (a worker's pass that found every batch taken): no share.
    share.run_id = ids[0]
    assert share.take(0)
    assert throttle.rate == pytest.approx(30) and throttle.share == pytest.approx(1 / 3)
    assert throttle._windows[0].limit == 1000  # the hourly quota too
    for run_id in ids[1:]:
        finish_run(conn, run_id, "done", now=NOW)
    # A run that has all its batches looks again while it sends (at most once a second):
    # when the others finish, it gets the whole rate back.
    import asyncio

    throttle.refresh_share = share.refresh
    asyncio.run(throttle.acquire())
    assert throttle.rate == pytest.approx(90) and share.shares == [1 / 3, 1.0]
    assert share.take(3) and share.shares == [1 / 3, 1.0]  # unchanged: no new call
    conn.close()


def test_a_fake_clock_throttle_at_a_third_share_sends_a_third(tmp_path: Path) -> None:
    """Three runs at a third each add up to the configured rate (counts, fake clock)."""
    import asyncio

    clock = VirtualClock()
    # 50/s in three shares of 16.7/s: a one-second cap rounded down (16) would give 48/s.
    throttles = [Throttler(Limits(per_second=50), clock=clock) for _ in range(3)]
    for throttle in throttles:
        throttle.set_share(1 / 3)
    sent: list[float] = []

    async def sender(throttle: Throttler) -> None:
        while clock.monotonic() < 10:
            await throttle.acquire()
            sent.append(clock.monotonic())

    async def main() -> None:
        await asyncio.gather(*(sender(t) for t in throttles))

    asyncio.run(main())
    in_window = [t for t in sent if 1 <= t < 9]
    assert len(in_window) == pytest.approx(50 * 8, rel=0.02)


def test_a_worker_refuses_a_job_it_cannot_send_as_queued(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    """Another transport would journal under another key; a changed campaign was not
    checked: the worker says so, sends nothing, and the job waits or is cancelled."""
    make_send_workspace(tmp_path, 10)
    enqueue_cli(tmp_path, smtp_server.url)
    outbox = invoke(tmp_path, "worker", "--until-idle")  # no relay given: the outbox
    assert outbox.exit_code == 0
    assert "refused" in outbox.output and "queued as 'spring'" in outbox.output
    assert invoke(tmp_path, "jobs", "--json").output.count('"open"') == 1
    campaign = tmp_path / "campaigns" / "spring.toml"
    campaign.write_text(campaign.read_text().replace("Spring", "Autumn"), encoding="utf-8")
    changed = invoke(tmp_path, "worker", "--until-idle", "--smtp", smtp_server.url)
    assert "changed after the job was queued" in changed.output
    assert smtp_server.handler.received == []
    assert '"cancelled"' in invoke(tmp_path, "jobs", "--json").output
    # Queued again after the change: a new job, which the workers send.
    second = enqueue_cli(tmp_path, smtp_server.url)
    assert invoke(tmp_path, "worker", "--until-idle", "--smtp", smtp_server.url).exit_code == 0
    assert len(smtp_server.handler.received) == 10
    statuses = [j["status"] for j in json.loads(invoke(tmp_path, "jobs", "--json").output)]
    assert statuses == ["cancelled", "done"] and second["status"] == "open"


def test_queuing_a_changed_campaign_again_replaces_the_open_job(tmp_path: Path) -> None:
    conn = connect(tmp_path / "mailer.db")
    first = enqueue(conn, "campaigns/spring.toml", "spring", "v1", {}, NOW)
    assert enqueue(conn, "campaigns/spring.toml", "spring", "v1", {}, NOW).id == first.id
    second = enqueue(conn, "campaigns/spring.toml", "spring", "v2", {}, NOW)
    assert second.id != first.id and second.status == "open"
    assert [j.status for j in jobs(conn)] == ["cancelled", "open"]
    assert "replaced" in jobs(conn)[0].note
    conn.close()


def test_an_unreachable_relay_leaves_the_job_open(tmp_path: Path, smtp_server: SmtpServer) -> None:
    import socket

    make_send_workspace(tmp_path, 10)
    enqueue_cli(tmp_path, smtp_server.url)
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"smtp://127.0.0.1:{probe.getsockname()[1]}"
    down = invoke(tmp_path, "worker", "--until-idle", "--smtp", closed)
    assert down.exit_code == 1 and "failed" in down.output
    assert '"open"' in invoke(tmp_path, "jobs", "--json").output
    back = invoke(tmp_path, "worker", "--until-idle", "--smtp", smtp_server.url)
    assert back.exit_code == 0 and "done, 10 sent" in back.output
    assert len(smtp_server.handler.received) == 10


def test_a_cancelled_job_is_left_alone(tmp_path: Path, smtp_server: SmtpServer) -> None:
    make_send_workspace(tmp_path, 10)
    job = enqueue_cli(tmp_path, smtp_server.url)
    cancelled = invoke(tmp_path, "jobs", "--cancel", str(job["id"]))
    assert cancelled.exit_code == 0 and "cancelled: workers take no more of it" in cancelled.output
    again = invoke(tmp_path, "jobs", "--cancel", str(job["id"]))
    assert again.exit_code == 1 and "is cancelled already" in again.output
    assert invoke(tmp_path, "jobs", "--cancel", "99").exit_code == 1
    idle = invoke(tmp_path, "worker", "--until-idle", "--smtp", smtp_server.url)
    assert idle.exit_code == 0 and smtp_server.handler.received == []
    # A run that is sending when the job is cancelled leases no further batch.
    conn = connect(tmp_path / "mailer.db")
    other = enqueue(conn, "campaigns/spring.toml", "other", "f", {}, NOW)
    share = BatchShare(conn, other.id, lambda: NOW)
    share.run_id = start_run(conn, "other", now=NOW, transport="t", forced=False, subject="",
                             body_text="", audience="", job_id=other.id)  # fmt: skip
    assert share.take(0)
    conn.execute("UPDATE send_jobs SET status = 'cancelled' WHERE id = ?", (other.id,))
    assert not share.take(1) and not share.take(0)
    conn.close()
