"""Benchmark: the feedback loop (one-click unsubscribes, the bounce mailbox).

Measured in the same run:
  healthz     GET /healthz on the same server (baseline: HTTP + uvicorn + the guard)
  one-click   POST /u/<token> for a different contact each time, to the suppression
              list (token check, event recorded, address suppressed, committed)
  imap raw    fetch N messages from Dovecot with imaplib, nothing else (baseline)
  fetch       mailer's bounces fetch of N DSNs: parse (flufl.bounce), match to the
              journal, apply, move to the done folder

Prints medians (milliseconds per request; seconds per N messages) and ratios.
Needs root and Dovecot (scripts/servers-setup).

    python tests/benchmarks/bench_feedback.py [--requests 300] [--dsns 1000] [--runs 3]
"""

from __future__ import annotations

import argparse
import imaplib
import os
import ssl
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from mailer.audience.store import connect  # noqa: E402
from mailer.core.clock import stamp, utc_now  # noqa: E402
from mailer.core.settings import Feedback, load_settings  # noqa: E402
from mailer.core.tokens import KEY_ENV, make_token  # noqa: E402
from mailer.feedback.mailbox import Mailbox, fetch_bounces  # noqa: E402
from mailer.feedback.server import Endpoint, Limiter  # noqa: E402
from tests.feedback.report_mail import dsn  # noqa: E402
from tests.feedback.served import serving  # noqa: E402
from tests.imap_server import PASSWORD, USER, ImapServer  # noqa: E402
from tests.workspace import make_workspace  # noqa: E402


def journal(db: Path, count: int) -> list[tuple[str, str]]:
    """``count`` sent journal rows (address, Message-ID), as a finished send leaves them."""
    conn = connect(db)
    now = stamp(utc_now())
    rows = [(f"p{i}@bench.test", f"<{i:032x}.bench@tea.test>") for i in range(count)]
    with conn:
        conn.executemany(
            "INSERT OR IGNORE INTO journal (campaign_id, email, status, attempts, message_id,"
            " queued_at, updated_at, sent_at) VALUES ('bench', ?, 'sent', 1, ?, ?, ?, ?)",
            [(email, mid, now, now, now) for email, mid in rows],
        )
    conn.close()
    return rows


def bench_http(root: Path, requests: int) -> tuple[list[float], list[float]]:
    """Milliseconds per request: GET /healthz, POST /u/<token> (each a new contact)."""
    settings = load_settings(root, env={})
    journal(settings.db_path, requests)
    endpoint = Endpoint(settings, log=lambda _: None, limiter=Limiter(rate=1e9, burst=1e9))
    issued = time.time()
    tokens = [make_token(f"p{i}@bench.test", "bench", issued) for i in range(requests)]
    health, click = [], []
    with serving(endpoint) as base, httpx.Client(base_url=base) as client:
        for token in tokens:
            started = time.perf_counter()
            client.get("/healthz").raise_for_status()
            health.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            client.post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"}).raise_for_status()
            click.append((time.perf_counter() - started) * 1000)
    conn = connect(settings.db_path)
    (suppressed,) = conn.execute("SELECT count(*) FROM suppressions").fetchone()
    conn.close()
    assert suppressed == requests, suppressed
    return health, click


def bench_imap(root: Path, count: int) -> tuple[float, float]:
    """Seconds: a raw imaplib fetch of ``count`` messages, and ``bounces fetch`` of them."""
    settings = load_settings(root, env={})
    rows = journal(settings.db_path, count)
    server = ImapServer().start()
    try:
        for email, message_id in rows:
            original = f"Message-ID: {message_id}\r\nTo: {email}\r\n\r\n".encode()
            server.deliver(dsn(original, email))
        context = ssl.create_default_context(cafile=str(server.cafile))
        started = time.perf_counter()
        imap = imaplib.IMAP4("127.0.0.1", server.port)
        imap.starttls(context)  # as bounces fetch does: same TLS, same login
        imap.login(USER, PASSWORD)
        imap.select("INBOX")
        uids = imap.uid("SEARCH", "ALL")[1][0].split()
        for at in range(0, len(uids), 100):
            imap.uid("FETCH", b",".join(uids[at : at + 100]).decode(), "(UID BODY.PEEK[])")
        imap.logout()
        raw = time.perf_counter() - started
        conn = connect(settings.db_path)
        started = time.perf_counter()
        result = fetch_bounces(
            conn,
            Mailbox.from_url(server.url(tls=False)),
            PASSWORD,
            Feedback(),
            done_folder="Processed",
            now=lambda: datetime.now(UTC),
            context=context,
        )
        applied = time.perf_counter() - started
        conn.close()
        assert result.hard_bounces == count and result.moved == count, result
    finally:
        server.stop()
    return raw, applied


def main() -> None:
    """Run each measurement ``--runs`` times in fresh workspaces; print medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--dsns", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault(KEY_ENV, "bench-key-" + "0" * 32)
    health, click, raw, fetched = [], [], [], []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory() as folder:
            make_workspace(Path(folder))
            h, c = bench_http(Path(folder), args.requests)
            health.append(statistics.median(h))
            click.append(statistics.median(c))
        if os.geteuid() == 0:
            with tempfile.TemporaryDirectory() as folder:
                make_workspace(Path(folder))
                r, f = bench_imap(Path(folder), args.dsns)
                raw.append(r)
                fetched.append(f)
        print(f"run {run + 1}: healthz {health[-1]:.2f} ms, one-click {click[-1]:.2f} ms"
              + (f", imap raw {raw[-1]:.2f} s, fetch {fetched[-1]:.2f} s" if raw else ""),
              flush=True)  # fmt: skip
    h, c = statistics.median(health), statistics.median(click)
    print(f"\nmedian of {args.runs} runs ({args.requests} requests each)")
    print(f"  healthz     {h:7.2f} ms   1.00x (baseline)")
    print(f"  one-click   {c:7.2f} ms   {c / h:.2f}x   (target: < 50 ms)")
    if raw:
        r, f = statistics.median(raw), statistics.median(fetched)
        print(f"\nmedian of {args.runs} runs ({args.dsns} DSNs each)")
        print(f"  imap raw    {r:7.2f} s    1.00x (baseline)   {args.dsns / r:7.0f} msg/s")
        print(f"  fetch       {f:7.2f} s    {f / r:.2f}x            {args.dsns / f:7.0f} msg/s")


if __name__ == "__main__":
    main()
