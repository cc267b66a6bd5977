"""The SMTP transport: relay URLs, presets, TLS verification (trustme), AUTH from env, pooling."""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import replace

import pytest
import trustme
from aiosmtpd.smtp import AuthResult, LoginPassword

from mailer.cli.advice import worded
from mailer.compose.outgoing import Envelope
from mailer.core.errors import ConfigError, TransportError
from mailer.core.settings import Settings, Smtp, Throttle
from mailer.delivery.relay import Relay, parse_smtp_url, preset_throttle, relay_from_settings
from mailer.delivery.smtp import SmtpTransport
from mailer.delivery.transport import hand_over
from tests.smtp_server import RecordingHandler, SmtpServer, self_signed_context

MESSAGE = b"From: a@tea.test\r\nTo: b@tea.test\r\nSubject: hi\r\n\r\nhello\r\n"


def envelope(to: str = "b@tea.test") -> Envelope:
    return Envelope("a@tea.test", to, MESSAGE, "<1@tea.test>")


async def deliver_all(transport: SmtpTransport, envelopes: list[Envelope]) -> list[int]:
    await transport.start()
    try:
        results = await asyncio.gather(*(transport.deliver(e) for e in envelopes))
    finally:
        await transport.close()
    return [r.code for r in results]


# --- relay URLs and presets --------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://127.0.0.1:2525", Relay("127.0.0.1", 2525)),
        ("smtp://relay.test", Relay("relay.test", 25)),
        (
            "smtp+starttls://news%40tea.test@smtp.tea.test:587",
            Relay("smtp.tea.test", 587, starttls=True, username="news@tea.test"),
        ),
        ("smtps://me@smtp.tea.test", Relay("smtp.tea.test", 465, implicit_tls=True, username="me")),
        ("smtp://me@localhost:1025", Relay("localhost", 1025, username="me")),
    ],
)
def test_relay_urls(url: str, expected: Relay) -> None:
    assert parse_smtp_url(url) == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "http://relay.test",
            "SMTP URL: unknown SMTP URL scheme 'http' in 'http://relay.test'\n"
            "  hint: use smtp://host:port, smtp+starttls://user@host:587 or smtps://user@host:465",
        ),
        (
            "smtps://me:hunter2@relay.test",
            "SMTP URL: the SMTP URL contains a password; passwords are read from the environment "
            "only\n  hint: remove it from the URL and set MAILER_SMTP_PASSWORD "
            "(or smtp.password_env)",
        ),
        (
            "smtp://me@relay.test:25",
            "SMTP URL (relay.test:25): refusing to send an SMTP password over an unencrypted "
            "connection\n  hint: use smtp+starttls://me@relay.test:587 or smtps://me@relay.test:465",
        ),
        ("smtp://relay.test:99999", "SMTP URL: bad SMTP URL 'smtp://relay.test:99999': "),
        # A password is refused before anything else is checked, so that no other
        # message (bad port, bad scheme, bad IPv6 literal) can repeat it.
        ("smtps://me:hunter2@relay.test:99999", "SMTP URL: the SMTP URL contains a password"),
        ("ftp://me:hunter2@relay.test", "SMTP URL: the SMTP URL contains a password"),
        ("smtp://me:hunter2@[::1", "SMTP URL: the SMTP URL contains a password"),
        ("smtp://me:hun@ter2@relay.test", "SMTP URL: the SMTP URL contains a password"),
    ],
)
def test_bad_relay_urls(url: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_smtp_url(url)
    assert str(caught.value).startswith(message)
    assert "hunter2" not in str(caught.value) + (caught.value.hint or "")
    assert "ter2" not in str(caught.value)


def test_redact_url_hides_only_the_password() -> None:
    from mailer.delivery.relay import redact_url

    assert redact_url("smtps://me:hunter2@relay.test:465/x") == "smtps://me:***@relay.test:465/x"
    assert redact_url("smtp://me:p@ss@relay.test") == "smtp://me:***@relay.test"
    assert redact_url("smtp+starttls://me@relay.test:587") == "smtp+starttls://me@relay.test:587"
    assert redact_url("relay.test:25") == "relay.test:25"


def test_relay_from_settings_and_insecure_flag() -> None:
    settings = Settings(smtp=Smtp(url="smtps://me@relay.test", pool=7, password_env="RELAY_PW"))
    relay = relay_from_settings(settings)
    assert (relay.pool, relay.verify, relay.password_env) == (7, True, "RELAY_PW")
    assert relay.describe() == "smtps://me@relay.test:465 (7 connections)"
    insecure = relay_from_settings(settings, insecure_skip_verify=True)
    assert insecure.describe() == "smtps://me@relay.test:465 (7 connections, TLS NOT VERIFIED)"
    with pytest.raises(ConfigError, match="no SMTP relay is configured"):
        relay_from_settings(Settings())


def test_presets_fill_in_limits_the_campaign_leaves_open() -> None:
    settings = Settings(smtp=Smtp(url="smtp://x.test", preset="ses-sandbox"))
    throttle = preset_throttle(settings, Throttle())
    assert (throttle.per_second, throttle.per_day, throttle.concurrency) == (1, 200, 1)
    own = preset_throttle(settings, Throttle(per_second=0.5, concurrency=2))
    assert (own.per_second, own.per_day, own.concurrency) == (0.5, 200, 2)
    with pytest.raises(ConfigError, match="unknown relay preset 'nope'"):
        preset_throttle(replace(settings, smtp=Smtp(preset="nope")), Throttle())


# --- connections --------------------------------------------------------------


def test_pool_reuses_connections(smtp_server: SmtpServer) -> None:
    transport = SmtpTransport(replace(parse_smtp_url(smtp_server.url), pool=3))
    codes = asyncio.run(deliver_all(transport, [envelope(f"u{i}@tea.test") for i in range(30)]))
    assert codes == [250] * 30
    assert smtp_server.connections == 3


def test_refused_recipient_is_an_answer_not_an_exception() -> None:
    from tests.smtp_server import Faults

    server = SmtpServer(RecordingHandler(Faults(reject={"gone@tea.test"}))).start()
    try:
        transport = SmtpTransport(parse_smtp_url(server.url))
        codes = asyncio.run(deliver_all(transport, [envelope("gone@tea.test"), envelope()]))
    finally:
        server.close()
    assert codes == [550, 250]


def test_unreachable_relay_fails_fast_with_where_and_hint(smtp_server: SmtpServer) -> None:
    url = smtp_server.url
    smtp_server.close()
    transport = SmtpTransport(parse_smtp_url(url))
    with pytest.raises(TransportError) as caught:
        asyncio.run(transport.start())
    assert str(caught.value).startswith(
        f"127.0.0.1:{smtp_server.port}: cannot connect to the SMTP relay: "
    )
    assert caught.value.hint == (
        "check the host and port (MAILER_SMTP_URL, [smtp] url) and that the relay is running"
    )
    # The CLI words the same remedy with its flag.
    assert "--smtp / MAILER_SMTP_URL" in worded(caught.value)


def test_a_connection_dropped_between_messages_is_replaced_without_an_error(
    smtp_server: SmtpServer,
) -> None:
    # The relay restarts between two messages: the pooled connection is dead, but
    # nothing of the next message went over it, so it goes out on a new connection
    # at once (no error, no attempt charged), as MTAs do.
    transport = SmtpTransport(replace(parse_smtp_url(smtp_server.url), pool=1))

    async def go() -> list[int]:
        await transport.start()
        codes = [(await hand_over(transport, envelope())).code]
        smtp_server.stop()
        smtp_server.start()
        codes.append((await hand_over(transport, envelope())).code)
        await transport.close()
        return codes

    assert asyncio.run(go()) == [250, 250]
    assert transport.stats.opened == 2
    assert len(smtp_server.handler.received) == 2


# --- AUTH ---------------------------------------------------------------------


def _authenticator(server, session, envelope, mechanism, auth_data) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data.password == b"s3cret-pw"
    return AuthResult(success=ok, handled=False)


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_auth_password_comes_from_the_environment_and_is_never_shown() -> None:
    server = SmtpServer(authenticator=_authenticator).start()
    try:
        relay = parse_smtp_url(f"smtp://news@127.0.0.1:{server.port}")
        transport = SmtpTransport(relay, env={"MAILER_SMTP_PASSWORD": "s3cret-pw"})
        assert asyncio.run(deliver_all(transport, [envelope()])) == [250]
        assert "s3cret-pw" not in repr(transport.__dict__) + transport.describe()
        wrong = SmtpTransport(relay, env={"MAILER_SMTP_PASSWORD": "wrong-pw"})
        with pytest.raises(TransportError) as caught:
            asyncio.run(wrong.start())
        assert "the relay refused the login for news: 535" in str(caught.value)
        assert "wrong-pw" not in str(caught.value)
        missing = SmtpTransport(relay, env={})
        with pytest.raises(TransportError) as caught:
            asyncio.run(missing.start())
        assert str(caught.value) == (
            f"127.0.0.1:{server.port}: the relay needs a password for news but "
            "$MAILER_SMTP_PASSWORD is not set\n"
            "  hint: export MAILER_SMTP_PASSWORD=... before sending"
        )
    finally:
        server.close()


# --- TLS with a self-signed certificate ---------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.mark.parametrize("mode", ["starttls", "implicit"])
def test_self_signed_tls_is_refused_by_default_and_accepted_when_told(
    ca: trustme.CA, mode: str
) -> None:
    context = self_signed_context(ca)
    if mode == "starttls":
        server = SmtpServer(starttls=context).start()
        url = f"smtp+starttls://127.0.0.1:{server.port}"
    else:
        server = SmtpServer(implicit_tls=context).start()
        url = f"smtps://127.0.0.1:{server.port}"
    try:
        relay = parse_smtp_url(url)
        with pytest.raises(TransportError) as caught:
            asyncio.run(SmtpTransport(relay).start())
        assert str(caught.value).startswith(
            f"127.0.0.1:{server.port}: the relay's TLS certificate could not be verified ("
        )
        assert "smtp.insecure_skip_verify" in (caught.value.hint or "")
        assert "--insecure-skip-tls-verify" in worded(caught.value)
        insecure = SmtpTransport(replace(relay, verify=False))
        assert asyncio.run(deliver_all(insecure, [envelope()])) == [250]
        # Verification really happens: trusting the CA makes the same relay acceptable.
        trusting = ssl.create_default_context()
        ca.configure_trust(trusting)
        verified = SmtpTransport(relay, context=trusting)
        assert asyncio.run(deliver_all(verified, [envelope()])) == [250]
    finally:
        server.close()
    assert len(server.handler.received) == 2


@pytest.mark.parametrize(
    "data",
    [
        b"Subject: x\r\n\r\nplain body\r\n",
        b".starts with a dot\r\nand\r\n.another\r\n..two\r\n",
        b"no final line end",
        b"ends in a dot line\r\n.",
        b"",
    ],
)
def test_dot_stuffing_round_trips(data: bytes) -> None:
    """What DATA sends: every line that starts with '.' doubled, then CRLF.CRLF."""
    from mailer.delivery.smtp import _dot_stuffed

    wire = _dot_stuffed(data)
    assert wire.endswith(b"\r\n.\r\n")
    lines = wire[: -len(b".\r\n")].split(b"\r\n")
    assert all(not line.startswith(b".") or line.startswith(b"..") for line in lines)
    unstuffed = b"\r\n".join(line[1:] if line.startswith(b".") else line for line in lines)
    assert unstuffed == (data if data.endswith(b"\r\n") else data + b"\r\n")
