"""The SMTP transport: a pool of reused aiosmtplib connections to one relay.

The relay is a URL — ``smtp://host:port`` (plain), ``smtp+starttls://user@host:587``
(STARTTLS required) or ``smtps://user@host:465`` (implicit TLS) — from
``--smtp``, ``MAILER_SMTP_URL`` or a ``mailer.toml`` profile. Certificates are
verified unless ``insecure_skip_verify`` is set on purpose. The AUTH password is
read from the environment variable the settings name, at connect time, and is
never stored in a printable field, logged or shown.

``deliver`` always returns the relay's answer as a ``Delivery`` (2xx, 4xx or
5xx); it raises ``ConnectionLost`` only when there was no answer at all, after
dropping the broken connection so that the next message reconnects.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from mailer.compose.outgoing import Envelope
from mailer.core.errors import ConfigError, TransportError
from mailer.core.settings import Settings, Throttle
from mailer.delivery.transport import ConnectionLost, Delivery

if TYPE_CHECKING:
    import aiosmtplib

SCHEMES = {
    "smtp": (False, False, 25),
    "smtp+starttls": (False, True, 587),
    "smtps": (True, False, 465),
}


_URL_HINT = "use smtp://host:port, smtp+starttls://user@host:587 or smtps://user@host:465"


class RelayUnreachable(ConnectionLost):
    """No connection could be opened: nothing was sent, so the attempt does not count."""


class _Busy(Exception):
    """The relay answered the connection with a 4xx (e.g. 421 too many connections)."""

    def __init__(self, code: int, reply: str):
        super().__init__(f"{code} {reply}")
        self.code = code
        self.reply = reply


@dataclass(frozen=True)
class Preset:
    """Published sending limits of a common relay (check your own account's numbers)."""

    description: str
    throttle: Throttle


# Conservative defaults from the relays' documentation; accounts differ, so a
# campaign's or mailer.toml's [throttle] table overrides any of these numbers.
PRESETS: dict[str, Preset] = {
    "ses-sandbox": Preset("Amazon SES sandbox", Throttle(per_second=1, per_day=200, concurrency=1)),
    "ses": Preset(
        "Amazon SES production (starting quota)", Throttle(per_second=14, per_day=50_000)
    ),
    "gmail": Preset(
        "Gmail / Google Workspace SMTP", Throttle(per_second=1, per_day=2_000, concurrency=2)
    ),
    "outlook": Preset(
        "Microsoft 365 SMTP AUTH", Throttle(per_second=0.5, per_day=10_000, concurrency=1)
    ),
    "sendgrid-free": Preset(
        "SendGrid free plan", Throttle(per_second=1, per_day=100, concurrency=2)
    ),
    "mailgun": Preset("Mailgun", Throttle(per_second=20, per_hour=100_000)),
    "postmark": Preset("Postmark", Throttle(per_second=10, concurrency=4)),
}


@dataclass(frozen=True)
class Relay:
    """Where and how to connect. Holds the *name* of the password variable, never the password."""

    host: str
    port: int
    implicit_tls: bool = False
    starttls: bool = False
    username: str | None = None
    verify: bool = True
    pool: int = 4
    timeout: float = 30.0
    password_env: str = "MAILER_SMTP_PASSWORD"
    local_hostname: str | None = None

    @property
    def where(self) -> str:
        """``host:port`` for messages."""
        return f"{self.host}:{self.port}"

    def describe(self) -> str:
        """A one-line description without secrets: ``smtps://user@host:465 (4 connections)``."""
        scheme = "smtps" if self.implicit_tls else "smtp+starttls" if self.starttls else "smtp"
        user = f"{self.username}@" if self.username else ""
        encrypted = self.implicit_tls or self.starttls
        tls = ", TLS NOT VERIFIED" if encrypted and not self.verify else ""
        return f"{scheme}://{user}{self.where} ({self.pool} connections{tls})"


def parse_smtp_url(url: str, *, where: str = "--smtp") -> Relay:
    """Parse a relay URL into a ``Relay``; a password in the URL is refused."""
    shown = redact_url(url)
    if shown != url:
        # Checked first, on the raw text: no other error message may repeat the password.
        raise ConfigError(
            "the SMTP URL contains a password; passwords are read from the environment only",
            where=where,
            hint="remove it from the URL and set MAILER_SMTP_PASSWORD (or smtp.password_env)",
        )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"bad SMTP URL {shown!r}: {exc}", where=where, hint=_URL_HINT) from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise ConfigError(
            f"unknown SMTP URL scheme {parts.scheme!r} in {shown!r}", where=where, hint=_URL_HINT
        )
    if not parts.hostname:
        raise ConfigError(f"the SMTP URL {shown!r} names no host", where=where, hint=_URL_HINT)
    implicit, starttls, default_port = SCHEMES[scheme]
    username = unquote(parts.username) if parts.username else None
    relay = Relay(parts.hostname, port or default_port, implicit, starttls, username)
    if username and not (implicit or starttls) and not _is_loopback(relay.host):
        raise ConfigError(
            "refusing to send an SMTP password over an unencrypted connection",
            where=f"{where} ({relay.where})",
            hint=f"use smtp+starttls://{username}@{relay.host}:587 or smtps://{username}@{relay.host}:465",
        )
    return relay


def redact_url(url: str) -> str:
    """The URL with any password in its user part replaced by ``***`` (safe to show)."""
    scheme, sep, rest = url.partition("://")
    netloc, slash, path = rest.partition("/")
    userinfo, at, host = netloc.rpartition("@")
    if not sep or not at or ":" not in userinfo:
        return url
    return f"{scheme}://{userinfo.split(':', 1)[0]}:***@{host}{slash}{path}"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def relay_from_settings(settings: Settings, *, insecure_skip_verify: bool = False) -> Relay:
    """The relay named by the settings (URL already chosen from flag > env > profile)."""
    smtp = settings.smtp
    if not smtp.url:
        raise ConfigError(
            "no SMTP relay is configured",
            hint="pass --smtp smtp+starttls://user@host:587, set MAILER_SMTP_URL, "
            "or add [smtp] url = ... to mailer.toml",
        )
    where = f"SMTP profile '{smtp.profile}'" if smtp.profile else "SMTP URL"
    relay = parse_smtp_url(smtp.url, where=where)
    return replace(
        relay,
        verify=not (smtp.insecure_skip_verify or insecure_skip_verify),
        pool=max(1, smtp.pool),
        timeout=smtp.timeout,
        password_env=smtp.password_env,
    )


def preset_throttle(settings: Settings, base: Throttle) -> Throttle:
    """``base`` with the relay preset's limits filled in where ``base`` sets none."""
    name = settings.smtp.preset
    if not name:
        return base
    if name not in PRESETS:
        raise ConfigError(
            f"unknown relay preset '{name}'",
            where="[smtp] preset",
            hint="known presets: " + ", ".join(sorted(PRESETS)),
        )
    preset = PRESETS[name].throttle
    # A preset's concurrency applies unless the user chose a number of their own.
    own_concurrency = base.concurrency != Throttle().concurrency
    return replace(
        base,
        per_second=base.per_second or preset.per_second,
        per_hour=base.per_hour or preset.per_hour,
        per_day=base.per_day or preset.per_day,
        concurrency=base.concurrency if own_concurrency else preset.concurrency,
    )


def tls_context(verify: bool) -> ssl.SSLContext:
    """A client TLS context: verifying by default; ``verify=False`` only for local test relays."""
    context = ssl.create_default_context()
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


@dataclass
class _Secret:
    """Keeps the password (and the environment it comes from) out of reprs, logs, tracebacks."""

    env: Mapping[str, str] = field(repr=False)
    value: str | None = field(repr=False, default=None)


class SmtpTransport:
    """Delivers messages over a pool of ``relay.pool`` reused connections."""

    name = "smtp"

    def __init__(
        self,
        relay: Relay,
        *,
        env: Mapping[str, str] | None = None,
        context: ssl.SSLContext | None = None,
    ):
        self.relay = relay
        self._context = context
        self._secret = _Secret(os.environ if env is None else env)
        self._idle: asyncio.Queue[aiosmtplib.SMTP | None] | None = None
        self._all: set[aiosmtplib.SMTP] = set()

    def describe(self) -> str:
        """The relay, without secrets."""
        return self.relay.describe()

    @property
    def capacity(self) -> int:
        """Messages this transport can have in flight at once: one per pooled connection."""
        return self.relay.pool

    async def start(self) -> None:
        """Read the password, open one connection to fail fast on a wrong host, TLS or AUTH."""
        if self.relay.username:
            password = self._secret.env.get(self.relay.password_env)
            if not password:
                raise TransportError(
                    f"the relay needs a password for {self.relay.username} but "
                    f"${self.relay.password_env} is not set",
                    where=self.relay.where,
                    hint=f"export {self.relay.password_env}=... before sending",
                )
            self._secret.value = password
        self._idle = asyncio.Queue()
        first = await self._start_first()
        self._idle.put_nowait(first)
        # The other slots start empty and connect on first use.
        for _ in range(self.relay.pool - 1):
            self._idle.put_nowait(None)

    async def _connect(self) -> aiosmtplib.SMTP:
        import aiosmtplib

        relay = self.relay
        client = aiosmtplib.SMTP(
            hostname=relay.host,
            port=relay.port,
            use_tls=relay.implicit_tls,
            start_tls=relay.starttls,
            validate_certs=relay.verify,
            tls_context=self._context or (tls_context(relay.verify) if self._uses_tls else None),
            timeout=relay.timeout,
            local_hostname=relay.local_hostname,
        )
        try:
            await client.connect()
            if relay.username:
                await client.login(relay.username, self._secret.value or "")
        except aiosmtplib.SMTPAuthenticationError as exc:
            client.close()
            raise TransportError(
                f"the relay refused the login for {relay.username}: {exc.code} {exc.message}",
                where=relay.where,
                hint=f"check the user name and ${relay.password_env}",
            ) from None
        except aiosmtplib.SMTPResponseException as exc:
            client.close()
            if 400 <= exc.code < 500:
                raise _Busy(exc.code, exc.message) from None
            raise _connect_error(exc, relay) from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            client.close()
            raise _connect_error(exc, relay) from None
        self._all.add(client)
        return client

    async def _start_first(self) -> aiosmtplib.SMTP:
        try:
            return await self._connect()
        except _Busy as busy:
            raise TransportError(
                f"the relay turned the connection away: {busy.code} {busy.reply}",
                where=self.relay.where,
                hint="try again later, or lower the pool size (smtp.pool)",
            ) from None

    @property
    def _uses_tls(self) -> bool:
        return self.relay.implicit_tls or self.relay.starttls

    async def deliver(self, envelope: Envelope) -> Delivery:
        """Send one message over a pooled connection; return the relay's answer."""
        import aiosmtplib

        if self._idle is None:
            raise TransportError("the SMTP transport was not started", where=self.relay.where)
        client = await self._idle.get()
        try:
            if client is None or not client.is_connected:
                self._discard(client)
                client = None
                client = await self._connect()
            delivery = await self._send(client, envelope)
            if delivery.code == 421 or not client.is_connected:
                # 421 means the server is closing this connection: start a fresh one next time.
                self._discard(client)
                client = None
            return delivery
        except _Busy as busy:
            return Delivery(busy.code, busy.reply)
        except TransportError as exc:
            self._discard(client)
            client = None
            raise RelayUnreachable(exc.message, where=exc.where, hint=exc.hint) from None
        except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
            self._discard(client)
            client = None
            raise ConnectionLost(_describe(exc), where=self.relay.where) from None
        finally:
            self._idle.put_nowait(client)

    async def _send(self, client: aiosmtplib.SMTP, envelope: Envelope) -> Delivery:
        """One MAIL / RCPT / DATA transaction, from aiosmtplib's command layer.

        ``sendmail`` would re-parse both addresses four times per message with
        ``email.utils.parseaddr`` (a fifth of the client's CPU time here); our
        addresses were validated on import, and ``execute_command`` still
        refuses CR/LF in a command (no command injection).
        """
        import aiosmtplib

        if client.last_ehlo_response is None:
            await client.ehlo()
        sender, recipient = _wire(envelope.sender), _wire(envelope.recipient)
        options = b""
        if client.supports_extension("size"):
            options += b" SIZE=%d" % len(envelope.data)
        if not (sender + recipient).isascii():
            if not client.supports_extension("smtputf8"):
                return Delivery(553, "5.6.7 a non-ASCII address needs SMTPUTF8, not offered")
            options += b" SMTPUTF8"
        try:
            reply = await client.execute_command(b"MAIL", b"FROM:<" + sender + b">" + options)
            if reply.code != 250:
                return await _reset(client, reply.code, reply.message)
            reply = await client.execute_command(b"RCPT", b"TO:<" + recipient + b">")
            if reply.code not in (250, 251):
                return await _reset(client, reply.code, reply.message)
            reply = await client.data(envelope.data)
        except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError):
            raise
        except aiosmtplib.SMTPResponseException as exc:
            return await _reset(client, exc.code, exc.message)
        return Delivery(reply.code, reply.message)

    def _discard(self, client: aiosmtplib.SMTP | None) -> None:
        if client is not None:
            self._all.discard(client)
            client.close()

    async def close(self) -> None:
        """QUIT every open connection (best effort); safe to call twice."""
        clients, self._all = list(self._all), set()
        for client in clients:
            try:
                if client.is_connected:
                    await asyncio.wait_for(client.quit(), timeout=2)
            except Exception:  # closing is best effort
                client.close()
        self._idle = None


def _wire(address: str) -> bytes:
    """An address for MAIL/RCPT: IDNA domain; UTF-8 only when the local part needs it."""
    from mailer.compose.message import ascii_address

    return ascii_address(address).encode("utf-8")


async def _reset(client: aiosmtplib.SMTP, code: int, message: str) -> Delivery:
    """Clear the half-done envelope (RSET) and return the refusal as an answer."""
    import aiosmtplib

    if code != 421 and client.is_connected:
        try:
            await client.rset()
        except (aiosmtplib.SMTPException, OSError):
            client.close()  # the next message reconnects
    return Delivery(code, message)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return f"connection lost: {text}"


def _connect_error(exc: Any, relay: Relay) -> TransportError:
    cause = getattr(exc, "__cause__", None) or exc
    if isinstance(cause, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(exc):
        return TransportError(
            f"the relay's TLS certificate could not be verified ({_reason(cause)})",
            where=relay.where,
            hint="fix the relay's certificate; for a local test relay only, pass "
            "--insecure-skip-tls-verify (or smtp.insecure_skip_verify = true)",
        )
    return TransportError(
        f"cannot connect to the SMTP relay: {str(exc).strip() or type(exc).__name__}",
        where=relay.where,
        hint="check the host and port (--smtp / MAILER_SMTP_URL) and that the relay is running",
    )


def _reason(exc: BaseException) -> str:
    return getattr(exc, "verify_message", None) or str(exc)
