"""Hard stops and store failures with real signals to real `python -m mailer` processes.

SIGTERM (systemd, Docker, kill) and Ctrl-C stop every long-running command the same
way: no new work, in-flight SMTP transactions finish (within the grace period), the
journal says so, the resume command is printed, exit 143 (130 for Ctrl-C; 0 for
serve). A locked or full database ends in one message, never a traceback. Waits are
on events (messages received, output lines), with generous deadlines only to turn
a hang into a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from mailer.audience.store import connect
from tests.send_workspace import addresses, make_send_workspace
from tests.smtp_server import Faults, RecordingHandler, SmtpServer

CONCURRENCY = 4


def mailer(root: Path, *args: str, **popen: object) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILER_")}
    env["MAILER_UNSUBSCRIBE_KEY"] = "tests-unsubscribe-key-0123456789abcdef"
    return subprocess.Popen(
        [sys.executable, "-m", "mailer", *args],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,  # type: ignore[call-overload]
    )


def live_send(root: Path, url: str, *more: str) -> subprocess.Popen[str]:
    return mailer(
        root,
        "send",
        "campaigns/spring.toml",
        "--live",
        "--yes",
        "--no-browser",
        "--smtp",
        url,
        "--concurrency",
        str(CONCURRENCY),
        *more,
    )


def wait_for(condition, process: subprocess.Popen[str], what: str, limit: float = 90) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        if process.poll() is not None:
            out, err = process.communicate()
            pytest.fail(f"the process ended before {what}: {process.returncode}\n{out}\n{err}")
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.005)


def statuses(root: Path) -> dict[str, int]:
    conn = connect(root / "mailer.db")
    try:
        return dict(conn.execute("SELECT status, count(*) FROM journal GROUP BY status").fetchall())
    finally:
        conn.close()


def append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as out:
        out.write(text)


# --- send ------------------------------------------------------------------------------


def test_sigterm_mid_send_finishes_in_flight_prints_resume_and_exits_143(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    make_send_workspace(tmp_path, 300, throttle="per_second = 100")
    process = live_send(tmp_path, smtp_server.url, "--json")
    wait_for(lambda: len(smtp_server.handler.received) >= 30, process, "30 messages")
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 143, err
    assert "Traceback" not in err
    report = json.loads(out)
    assert report["stopped"] is True and report["unknown"] == []
    assert report["pending"] == 300 - report["sent"] > 0
    assert (
        f"Stopped (SIGTERM). In-flight messages finished; {report['pending']} not sent yet. "
        f"Resume with: mailer send campaigns/spring.toml --live --smtp {smtp_server.url} "
        f"--no-browser --concurrency {CONCURRENCY}\n"
    ) in err
    # 0 unknown: every message handed over was answered and journalled.
    assert "sending" not in statuses(tmp_path)
    assert statuses(tmp_path)["sent"] == report["sent"] == len(smtp_server.handler.received)
    # The resume command sends the rest, each once.
    again = live_send(tmp_path, smtp_server.url, "--json")
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    assert Counter(smtp_server.handler.delivered_to()) == Counter(addresses(300))


def test_ctrl_c_on_a_large_throttled_send_exits_promptly(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    # More recipients than the send queue holds (it used to wait for room that a
    # stopping loop never freed: Ctrl-C hung for minutes at 50/s).
    make_send_workspace(tmp_path, 2500, throttle="per_second = 50")
    process = live_send(tmp_path, smtp_server.url, "--json")
    wait_for(lambda: len(smtp_server.handler.received) >= 10, process, "10 messages", 180)
    process.send_signal(signal.SIGINT)
    # A hang shows as a timeout here; a prompt stop needs the in-flight few only.
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "Traceback" not in err
    report = json.loads(out)
    assert report["stopped"] is True and report["unknown"] == []
    assert "Stopped (Ctrl-C)." in err and "Resume with: mailer send" in err
    assert statuses(tmp_path).get("sending", 0) == 0


# --- run-due, scheduler, worker, serve ----------------------------------------------------


def scheduled_workspace(root: Path, url: str, count: int) -> Path:
    from tests.services.test_run_due import write_workspace

    people = ["email,first_name,timezone"] + [
        f"p{n}@many.test,P{n},Asia/Shanghai" for n in range(count)
    ]
    write_workspace(
        root,
        url,
        {
            "spring": (
                "Happy Spring",
                "many.csv",
                'holiday = "Spring Festival"\ncountry = "CN"\nyear = 2027',
            )
        },
    )
    (root / "campaigns" / "many.csv").write_text("\n".join(people) + "\n", encoding="utf-8")
    append(root / "campaigns" / "spring.toml", "\n[throttle]\nper_second = 40\n")
    return root


def test_sigterm_mid_run_due_finishes_in_flight_and_exits_143(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    root = scheduled_workspace(tmp_path, smtp_server.url, 200)
    args = ("run-due", "--now", "2027-02-06T01:05Z", "--commit", "--no-browser")
    process = mailer(root, *args)
    wait_for(lambda: len(smtp_server.handler.received) >= 20, process, "20 messages")
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 143, (out, err)
    assert "Traceback" not in err
    assert "Stopped (SIGTERM). In-flight messages finished; the next run-due pass" in err
    counts = statuses(root)
    assert "sending" not in counts
    assert counts["sent"] == len(smtp_server.handler.received) < 200
    # The next pass resumes the wave.
    again = mailer(root, *args)
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0, (out, err)
    assert Counter(smtp_server.handler.delivered_to()) == Counter(
        f"p{n}@many.test" for n in range(200)
    )


def test_a_second_run_due_exits_at_once_while_a_pass_runs(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    root = scheduled_workspace(tmp_path, smtp_server.url, 400)  # 10 s at 40/s
    args = ("run-due", "--now", "2027-02-06T01:05Z", "--commit", "--no-browser")
    first = mailer(root, *args)
    wait_for(lambda: len(smtp_server.handler.received) >= 5, first, "the first pass sending")
    second = mailer(root, *args)
    _, err = second.communicate(timeout=60)
    assert second.returncode == 0
    assert f"another run-due pass is running (pid {first.pid}): this one exits" in err
    assert first.poll() is None  # still at work
    first.communicate(timeout=120)
    assert first.returncode == 0
    assert len(smtp_server.handler.delivered_to()) == 400


def test_sigterm_stops_an_idle_worker_and_the_scheduler(tmp_path: Path) -> None:
    make_send_workspace(tmp_path, 3)
    worker = mailer(tmp_path, "worker", "--poll", "0.2")
    scheduler = mailer(tmp_path, "scheduler", "--interval", "10", "--no-browser")
    assert scheduler.stdout is not None
    assert scheduler.stdout.readline().startswith("scheduler: a pass every 10 s")
    wait_for(lambda: (tmp_path / "mailer.db").exists(), worker, "the worker's database")
    time.sleep(0.5)  # both are in their waits now (nothing to do); not an assertion
    for process in (worker, scheduler):
        process.send_signal(signal.SIGTERM)
    outputs = [p.communicate(timeout=30) for p in (worker, scheduler)]
    assert [worker.returncode, scheduler.returncode] == [143, 143], outputs
    assert all("Traceback" not in err for _, err in outputs)
    assert "Stopped (SIGTERM)." in outputs[0][1]
    assert "scheduler stopped" in outputs[1][0]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_sigterm_stops_serve_cleanly_with_exit_0(tmp_path: Path) -> None:
    make_send_workspace(tmp_path, 1)
    port = free_port()
    process = mailer(tmp_path, "serve", "--port", str(port))
    assert process.stdout is not None
    assert process.stdout.readline().startswith("serving unsubscribes and webhooks")
    deadline = time.monotonic() + 30
    while True:  # listening once a connection is accepted
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "stopped (SIGTERM)" in out and "Traceback" not in err


# --- unknowns, as the command line words them -----------------------------------------


def test_unknowns_lead_the_summary_pause_the_run_and_resend_needs_yes(tmp_path: Path) -> None:
    server = SmtpServer(RecordingHandler(Faults(final_reply_delay=1.2))).start()
    try:
        make_send_workspace(tmp_path, 20)
        append(tmp_path / "mailer.toml", "\n[smtp]\ntimeout = 0.4\n\n[send]\nmax_unknown = 2\n")
        process = live_send(tmp_path, server.url, "--concurrency", "1")
        out, err = process.communicate(timeout=120)
        assert process.returncode == 1, (out, err)
        assert "Traceback" not in err
        lines = out.splitlines()
        assert lines[lines.index("paused spring") + 1].startswith(
            "  UNKNOWN         3 — perhaps delivered (timed out after 0.4 s waiting for the "
            "relay's reply to the end of the message)"
        )
        assert "error: 3 messages are unknown (more than 2)" in err
        assert (
            "likely cause: the relay answers the end of a message more slowly than [smtp] timeout allows"
            in err
        )
        # The paragraph about them comes once.
        assert (out + err).count("recipient(s) are unknown") == 1
        assert statuses(tmp_path) == {"sending": 3}
        server.handler.faults.final_reply_delay = 0
        # Sending them again shows how many and when they were handed over, and needs --yes.
        resend = mailer(
            tmp_path,
            "send",
            "campaigns/spring.toml",
            "--live",
            "--no-browser",
            "--smtp",
            server.url,
            "--resend-unknown",
        )
        out, err = resend.communicate(timeout=120)
        assert resend.returncode == 1, (out, err)
        assert "unknown, sent again  3 (handed to the relay " in out
        assert "--resend-unknown would send 3 message(s) again" in err and "add --yes" in err
        assert len(server.handler.received) == 3  # nothing more went out
    finally:
        server.close()


# --- store failures ------------------------------------------------------------------------


HOLD_LOCK = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(60)
"""


def test_a_database_locked_by_another_process_ends_in_one_message(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    make_send_workspace(tmp_path, 300, throttle="per_second = 60")
    append(tmp_path / "mailer.toml", "\n[store]\nbusy_timeout = 1\n")
    process = live_send(tmp_path, smtp_server.url)
    wait_for(lambda: len(smtp_server.handler.received) >= 10, process, "10 messages")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(tmp_path / "mailer.db")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        out, err = process.communicate(timeout=90)
    finally:
        holder.kill()
        holder.wait()
    assert process.returncode == 1, (out, err)
    assert "Traceback" not in err
    db = tmp_path / "mailer.db"
    assert f"error: {db}: the database stayed locked by another process" in err
    assert "find the other process writing to this file" in err
    assert "resume with: mailer send campaigns/spring.toml --live" in err
    # Never mailed twice; the journal (now free) tells the truth about the rest.
    assert max(Counter(smtp_server.handler.delivered_to()).values()) == 1


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 600 KiB tmpfs (mounting needs root and CAP_SYS_ADMIN: skipped otherwise)."""
    if not shutil.which("mount") or os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_ends_in_one_message_with_a_warning_first(
    tmp_path: Path, smtp_server: SmtpServer, small_disk: Path
) -> None:
    make_send_workspace(tmp_path, 3000)
    append(tmp_path / "mailer.toml", f'\n[store]\npath = "{small_disk / "mailer.db"}"\n')
    process = live_send(tmp_path, smtp_server.url)
    out, err = process.communicate(timeout=300)
    assert process.returncode == 1, (out, err)
    assert "Traceback" not in err
    assert f"warning: the disk holding {small_disk / 'mailer.db'} has " in err
    assert "KB free; journalling this send needs about 11 MB." in err
    assert "the disk holding the database is full" in err
    assert "free space on that disk" in err and "resume with: mailer send" in err
    assert max(Counter(smtp_server.handler.delivered_to()).values(), default=1) == 1
