"""Crash safety: `mailer send` killed with SIGKILL mid-campaign, then run again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from mailer.audience.store import connect
from tests.send_workspace import addresses, make_send_workspace
from tests.smtp_server import SmtpServer

COUNT = 400
CONCURRENCY = 4


def mailer_send(root: Path, url: str) -> subprocess.Popen[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("MAILER_") or k == "MAILER_UNSUBSCRIBE_KEY"
    }
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mailer",
            "send",
            "campaigns/spring.toml",
            "--live",
            "--yes",
            "--no-browser",
            "--json",
            "--smtp",
            url,
            "--concurrency",
            str(CONCURRENCY),
        ],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_sigkill_mid_campaign_then_resume_delivers_each_once(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    make_send_workspace(tmp_path, COUNT, throttle="per_second = 150")
    process = mailer_send(tmp_path, smtp_server.url)
    deadline = time.monotonic() + 60
    while len(smtp_server.handler.received) < 60:
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        assert time.monotonic() < deadline, "the first run never got going"
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    killed_at = len(smtp_server.handler.received)
    assert killed_at < COUNT

    conn = connect(tmp_path / "mailer.db")
    in_flight = {r[0] for r in conn.execute("SELECT email FROM journal WHERE status = 'sending'")}
    assert len(in_flight) <= CONCURRENCY

    second = mailer_send(tmp_path, smtp_server.url)
    out, err = second.communicate(timeout=60)
    assert second.returncode == 0, err
    report = json.loads(out)
    assert set(report["unknown"]) == in_flight
    assert report["complete"] is True

    delivered = Counter(smtp_server.handler.delivered_to())
    for email in addresses(COUNT):
        if email in in_flight:
            assert delivered[email] <= 1  # perhaps delivered before the kill; never twice
        else:
            assert delivered[email] == 1, email
    counts = dict(conn.execute("SELECT status, COUNT(*) FROM journal GROUP BY status").fetchall())
    assert counts == {
        "sent": COUNT - len(in_flight),
        **({"sending": len(in_flight)} if in_flight else {}),
    }


def test_ctrl_c_stops_gracefully_and_says_how_to_resume(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    make_send_workspace(tmp_path, 200, throttle="per_second = 100")
    process = mailer_send(tmp_path, smtp_server.url)
    deadline = time.monotonic() + 60
    while len(smtp_server.handler.received) < 20:
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.005)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    report = json.loads(out)
    assert report["stopped"] is True and report["complete"] is False
    assert report["pending"] == 200 - report["sent"]
    # The resume command repeats the relay and the other choices of this run.
    assert (
        f"Stopped (Ctrl-C). In-flight messages finished; {report['pending']} not sent yet. "
        f"Resume with: mailer send campaigns/spring.toml --live --smtp {smtp_server.url} "
        f"--no-browser --concurrency {CONCURRENCY}\n"
    ) in err
    conn = connect(tmp_path / "mailer.db")
    statuses = dict(conn.execute("SELECT status, COUNT(*) FROM journal GROUP BY status").fetchall())
    assert "sending" not in statuses and statuses["sent"] == report["sent"]
    assert len(smtp_server.handler.received) == report["sent"]
