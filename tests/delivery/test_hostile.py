"""Hostile relays: per-connection caps, late final replies, relay-wide 452s, relays that
refuse us before any SMTP, opportunistic STARTTLS, and the per-second cap as seen at the
receiver. Real aiosmtpd (or raw TCP) servers on 127.0.0.1; counts, never wall time."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from mailer.audience.store import connect
from mailer.core.errors import TransportError
from mailer.delivery.relay import parse_smtp_url
from mailer.delivery.send import send_campaign
from mailer.delivery.smtp import SmtpTransport
from tests.clock import VirtualClock
from tests.send_workspace import addresses, fast_options, prepared_campaign
from tests.smtp_server import Faults, RawServer, RecordingHandler, SmtpServer, self_signed_context


def relay(
    server: SmtpServer | RawServer, pool: int = 4, timeout: float = 5, **more
) -> SmtpTransport:
    return SmtpTransport(replace(parse_smtp_url(server.url), pool=pool, timeout=timeout, **more))


@pytest.fixture
def faulty():
    servers: list[SmtpServer] = []

    def make(**faults: object) -> SmtpServer:
        server = SmtpServer(RecordingHandler(Faults(**faults))).start()  # type: ignore[arg-type]
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


def journal(conn, column: str) -> Counter:
    return Counter(row[0] for row in conn.execute(f"SELECT {column} FROM journal"))


# --- per-connection caps ---------------------------------------------------------


def test_a_per_connection_cap_is_learnt_reconnected_and_never_charged(
    tmp_path: Path, faulty
) -> None:
    server = faulty(per_connection=5)
    prepared = prepared_campaign(tmp_path, 120, throttle="per_second = 400")
    conn = connect(tmp_path / "mailer.db")
    transport = relay(server)
    waits: set[str] = set()
    report = send_campaign(
        prepared,
        conn=conn,
        transport=transport,
        options=fast_options(),
        progress=lambda r: waits.add(r.waiting),
    )
    assert report.sent == 120 and report.failed == 0 and not report.unknown
    assert Counter(server.handler.delivered_to()) == Counter(addresses(120))
    stats = report.connections
    assert stats["cap"] == 5
    # Learnt from the first 421: at most one per pooled connection already open then;
    # after that every connection is replaced before its fifth message is done.
    assert 1 <= stats["reconnects"] <= 4 and server.handler.capped == stats["reconnects"]
    # (A replacement still being opened when the run ends is cut off: the relay saw it.)
    assert stats["opened"] <= server.connections <= stats["opened"] + 4
    assert stats["opened"] >= 120 // 5
    # A cap is not a request to slow down, and it is nobody's attempt.
    assert report.retries == 0
    assert not any("slowing down" in w for w in waits), waits
    assert journal(conn, "attempts") == Counter({1: 120})


def test_a_relay_that_hangs_up_after_n_messages_is_learnt_too(tmp_path: Path, faulty) -> None:
    server = faulty(close_after=4)
    prepared = prepared_campaign(tmp_path, 60, throttle="per_second = 400")
    conn = connect(tmp_path / "mailer.db")
    report = send_campaign(
        prepared, conn=conn, transport=relay(server, pool=2), options=fast_options()
    )
    assert report.sent == 60 and not report.unknown and report.retries == 0
    assert Counter(server.handler.delivered_to()) == Counter(addresses(60))
    # A close is learnt once two connections closed after the same count (an idle
    # timeout closes at any count).
    assert report.connections["cap"] == 4
    assert journal(conn, "attempts") == Counter({1: 60})


def test_a_relay_wide_452_4_5_3_holds_everyone_briefly_not_each_recipient(
    tmp_path: Path, faulty
) -> None:
    server = faulty(too_many_rcpt_every=7)
    prepared = prepared_campaign(tmp_path, 60)
    conn = connect(tmp_path / "mailer.db")
    clock = VirtualClock()
    report = send_campaign(
        prepared,
        conn=conn,
        transport=relay(server),
        # A per-recipient retry would wait an hour each: the run finishing in virtual
        # seconds shows nobody waited for their own retry.
        options=fast_options(retry_base=3600, retry_max=3600, backoff_base=1, backoff_max=4),
        clock=clock,
    )
    refused = server.handler.too_many_rcpt
    assert refused >= 8
    assert report.sent == 60 and report.retries == refused
    assert Counter(server.handler.delivered_to()) == Counter(addresses(60))
    assert journal(conn, "attempts") == Counter({1: 60})  # never charged
    assert clock.now < 4 * refused


# --- unknown as an outcome -------------------------------------------------------


def test_a_relay_answering_the_final_dot_too_late_pauses_the_run_on_unknowns(
    tmp_path: Path, faulty
) -> None:
    server = faulty(final_reply_delay=1.0)
    prepared = prepared_campaign(tmp_path, 40)
    conn = connect(tmp_path / "mailer.db")
    report = send_campaign(
        prepared,
        conn=conn,
        transport=relay(server, pool=1, timeout=0.3),
        options=fast_options(max_unknown=3, concurrency=1),
    )
    assert report.paused and report.pause_cause == "unknown"
    assert report.paused.startswith("4 messages are unknown (more than 3)")
    assert "timed out after 0.3 s waiting for the relay's reply to the end" in report.paused
    assert len(report.new_unknown) == 4 and report.sent == 0
    assert report.pending == 36 and not report.complete
    assert journal(conn, "status") == Counter({"sending": 4})
    # The relay did get them: a blind re-send would mail them twice.
    assert sorted(server.handler.delivered_to()) == sorted(report.new_unknown)


def test_the_unknown_threshold_is_a_share_of_large_runs() -> None:
    from mailer.delivery.report import SendOptions

    options = SendOptions()
    assert (options.max_unknown, options.max_unknown_share) == (10, 0.01)


# --- relays that refuse us before any SMTP ------------------------------------------


@pytest.mark.parametrize(
    ("mode", "scheme", "message", "hint"),
    [
        (
            "greeting-554",
            "smtp",
            "the relay refused the connection at its greeting: 554 5.7.1 mx.test: no SMTP",
            "the relay is running but refuses this client",
        ),
        (
            "close-after-greeting",
            "smtp",
            "the relay closed the connection right after its greeting (before EHLO)",
            "the relay is running but drops this client",
        ),
        (
            "tarpit",
            "smtp",
            "the relay accepted the connection but sent no greeting within 0.3 s",
            "raise [smtp] timeout",
        ),
        (
            "starttls-broken",
            "smtp",
            "the relay offered STARTTLS but the TLS handshake failed",
            'set [smtp] tls = "none"',
        ),
        (
            "close-after-greeting",
            "smtps",
            "the TLS handshake failed",
            "smtps:// is for that (usually 465)",
        ),
    ],
)
def test_a_relay_that_fails_while_connecting_is_named_within_the_timeout(
    mode: str, scheme: str, message: str, hint: str
) -> None:
    server = RawServer(mode)
    try:
        url = f"{scheme}://127.0.0.1:{server.port}"
        transport = SmtpTransport(replace(parse_smtp_url(url), timeout=0.3))
        with pytest.raises(TransportError) as caught:
            asyncio.run(transport.start())
    finally:
        server.close()
    assert caught.value.message.startswith(message), caught.value.message
    assert hint in (caught.value.hint or "")
    assert "and that the relay is running" not in (caught.value.hint or "")
    assert server.connections == 1


def test_a_relay_refusing_us_mid_run_pauses_it_after_one_attempt(tmp_path: Path) -> None:
    # The first connection works; then the relay answers every new one with 554 and
    # drops the old ones. One attempt to reconnect says it; nobody else tries.
    good = SmtpServer().start()
    prepared = prepared_campaign(tmp_path, 50, throttle="per_second = 200")
    conn = connect(tmp_path / "mailer.db")
    transport = relay(good)
    bad = RawServer("greeting-554")

    def progress(report) -> None:
        if report.sent == 10 and transport.relay.port == good.port:
            good.stop()
            transport.relay = replace(transport.relay, port=bad.port)

    try:
        report = send_campaign(
            prepared, conn=conn, transport=transport, options=fast_options(), progress=progress
        )
    finally:
        good.close()
        bad.close()
    assert report.paused and "the relay refused the connection at its greeting: 554" in (
        report.paused
    )
    assert report.hint and "refuses this client" in report.hint
    assert bad.connections == 1
    assert report.failed == 0 and report.sent + len(report.unknown) + report.pending == 50
    assert journal(conn, "attempts")[2] == 0  # the refusal is nobody's attempt


def test_a_530_must_starttls_pauses_with_the_scheme_as_the_remedy(tmp_path: Path, faulty) -> None:
    server = faulty(mail_reply="530 5.7.0 Must issue a STARTTLS command first")
    prepared = prepared_campaign(tmp_path, 5)
    report = send_campaign(
        prepared,
        conn=connect(tmp_path / "mailer.db"),
        transport=relay(server, tls="none"),
        options=fast_options(),
    )
    assert report.paused and "530 5.7.0 Must issue a STARTTLS command first" in report.paused
    assert report.hint and "smtp+starttls://" in report.hint


# --- STARTTLS ---------------------------------------------------------------------


@pytest.mark.parametrize("tls", ["auto", "none"])
def test_smtp_url_upgrades_to_starttls_when_offered_unless_tls_none(
    tmp_path: Path, tls: str
) -> None:
    server = SmtpServer(starttls=self_signed_context()).start()
    try:
        prepared = prepared_campaign(tmp_path, 6)
        report = send_campaign(
            prepared,
            conn=connect(tmp_path / "mailer.db"),
            transport=relay(server, tls=tls),
            options=fast_options(),
        )
    finally:
        server.close()
    assert report.sent == 6
    if tls == "auto":
        assert server.handler.tls_messages == 6
        assert "STARTTLS when offered: on, certificate not checked" in report.transport
    else:
        assert server.handler.tls_messages == 0
        assert "clear text" in report.transport


def test_a_concurrency_above_the_pool_says_so(tmp_path: Path, smtp_server: SmtpServer) -> None:
    prepared = prepared_campaign(tmp_path, 8)
    report = send_campaign(
        prepared,
        conn=connect(tmp_path / "mailer.db"),
        transport=relay(smtp_server, pool=4),
        options=fast_options(concurrency=16),
    )
    assert report.sent == 8
    assert report.notes == [
        "concurrency 16 is above the relay's pool of 4 connections: at most 4 messages are "
        "in flight (raise [smtp] pool for more)"
    ]


# --- the per-second cap, counted at the receiver ---------------------------------------


def busiest_second(times: list[float]) -> int:
    """The most arrival stamps in any one-second window (sliding, from each stamp)."""
    times = sorted(times)
    best, start = 0, 0
    for end, stamp in enumerate(times):
        while times[start] <= stamp - 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


def test_the_per_second_cap_holds_at_the_receiver_despite_jitter(tmp_path: Path, faulty) -> None:
    # Each RCPT is answered after a random 0-40 ms: messages let go evenly arrive
    # unevenly. The receiver stamps each message; no second may hold more than 20.
    server = faulty(rcpt_delay_max=0.04)
    prepared = prepared_campaign(tmp_path, 70, throttle="per_second = 20")
    report = send_campaign(
        prepared,
        conn=connect(tmp_path / "mailer.db"),
        transport=relay(server, pool=8),
        options=fast_options(concurrency=8),
    )
    assert report.sent == 70
    stamps = [m.at for m in server.handler.received]
    assert busiest_second(stamps) <= 20
    # Not by sending slower than the cap allows: the first second is full.
    assert busiest_second(stamps[:25]) >= 18


def test_unanswered_messages_fill_the_second_until_a_reply_comes() -> None:
    from mailer.delivery.throttle import Limits, Throttler
    from tests.clock import FakeClock

    clock = FakeClock()
    throttler = Throttler(Limits(per_second=2, concurrency=4), clock=clock)
    order: list[str] = []
    replies = {name: asyncio.Event() for name in "abc"}

    async def sender(name: str) -> None:
        async with throttler.slot():
            order.append(f"{name} goes")
            await replies[name].wait()
        order.append(f"{name} answered")

    async def scenario() -> None:
        tasks = [asyncio.create_task(sender(name)) for name in "abc"]
        for _ in range(50):
            await asyncio.sleep(0)
        # Two messages in flight fill the second, however long they take: the third
        # waits for a reply (the receiver may stamp them any time until then).
        gone = [entry[0] for entry in order]
        assert len(gone) == 2
        first = gone[0]
        replies[first].set()
        await asyncio.sleep(0)
        answered_at = clock.now
        for name in "abc":
            replies[name].set()
        await asyncio.gather(*tasks)
        assert clock.now >= answered_at + 1.0 - 1e-9

    asyncio.run(scenario())
    third = next(name for name in "abc" if f"{name} goes" not in order[:2])
    assert order.index(f"{third} goes") > min(
        order.index(f"{name} answered") for name in "abc" if name != third
    )


def test_busiest_second_counts_stamps_in_a_sliding_window() -> None:
    assert busiest_second([0.0, 0.5, 0.99, 1.0, 1.5]) == 3  # (t - 1, t]
    assert busiest_second([0.0, 1.0, 2.0]) == 1
