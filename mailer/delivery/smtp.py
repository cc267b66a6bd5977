"""The SMTP transport: a pool of reused aiosmtplib connections to one relay.

Certificates are verified unless ``insecure_skip_verify`` is set on purpose
(``mailer.delivery.relay``). The AUTH password is read from the environment
variable the settings name, at connect time, and is never stored in a printable
field, logged or shown.

``deliver`` always returns the relay's answer as a ``Delivery`` (2xx, 4xx or
5xx); it raises ``ConnectionLost`` only when there was no answer at all, after
dropping the broken connection so that the next message reconnects.
"""

from __future__ import annotations

import asyncio
import os
import ssl
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mailer.compose.message import ascii_address
from mailer.compose.outgoing import Envelope
from mailer.core.errors import TransportError
from mailer.delivery.policy import Stage
from mailer.delivery.relay import Relay, tls_context
from mailer.delivery.transport import ConnectionLost, Delivery

if TYPE_CHECKING:
    import aiosmtplib


class RelayUnreachable(ConnectionLost):
    """No connection could be opened: nothing was sent, so the attempt does not count."""

    def __init__(self, message: str, *, where: str | None = None, hint: str | None = None):
        super().__init__(message, stage=Stage.CONNECT, where=where, hint=hint)


class _LoginRefused(TransportError):
    """AUTH was refused: every message would be; the run stops (no recipient charged)."""

    def __init__(self, message: str, *, where: str, hint: str, code: int, reply: str):
        super().__init__(message, where=where, hint=hint)
        self.code = code
        self.reply = reply


class _Busy(Exception):
    """The relay answered the connection with a 4xx (e.g. 421 too many connections)."""

    def __init__(self, code: int, reply: str):
        super().__init__(f"{code} {reply}")
        self.code = code
        self.reply = reply


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
            raise _LoginRefused(
                f"the relay refused the login for {relay.username}: {exc.code} {exc.message}",
                where=relay.where,
                hint=f"check the user name and ${relay.password_env}",
                code=exc.code,
                reply=exc.message,
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

    async def deliver(
        self, envelope: Envelope, *, go: Awaitable[bool] | None = None
    ) -> Delivery | None:
        """Send one message over a pooled connection; return the relay's answer and its step.

        ``go`` is awaited after RCPT TO, before DATA (see ``Transport.deliver``).
        Raises ``ConnectionLost`` (with the step) when there was no answer at all.
        """
        if self._idle is None:
            raise TransportError("the SMTP transport was not started", where=self.relay.where)
        client = await self._idle.get()
        try:
            if client is None or not client.is_connected:
                self._discard(client)
                client = None
                client = await self._connect()
            delivery = await self._send(client, envelope, go)
            if delivery is None:
                return None
            if delivery.code == 421 or not client.is_connected:
                # 421 means the server is closing this connection: start a fresh one next time.
                self._discard(client)
                client = None
            return delivery
        except _Busy as busy:
            return Delivery(busy.code, busy.reply, Stage.CONNECT)
        except _LoginRefused as refused:
            return Delivery(refused.code, refused.reply, Stage.AUTH)
        except ConnectionLost:
            self._discard(client)
            client = None
            raise
        except TransportError as exc:
            self._discard(client)
            client = None
            raise RelayUnreachable(exc.message, where=exc.where, hint=exc.hint) from None
        finally:
            self._idle.put_nowait(client)

    async def _send(
        self, client: aiosmtplib.SMTP, envelope: Envelope, go: Awaitable[bool] | None
    ) -> Delivery | None:
        """One MAIL / RCPT / DATA transaction, each reply tagged with the step it answers.

        ``sendmail`` would re-parse both addresses four times per message with
        ``email.utils.parseaddr`` (a fifth of the client's CPU time here); our
        addresses were validated on import, and ``execute_command`` still
        refuses CR/LF in a command (no command injection). DATA is written by
        hand so that a lost connection is known to come before or after the
        final "." (``data()`` raises the same error for both).
        """
        import aiosmtplib

        stage = Stage.EHLO
        try:
            if client.last_ehlo_response is None:
                await client.ehlo()
            sender, recipient = _wire(envelope.sender), _wire(envelope.recipient)
            options = b""
            if client.supports_extension("size"):
                options += b" SIZE=%d" % len(envelope.data)
            if not (sender + recipient).isascii():
                if not client.supports_extension("smtputf8"):
                    return Delivery(
                        553, "5.6.7 a non-ASCII address needs SMTPUTF8, not offered", Stage.RCPT
                    )
                options += b" SMTPUTF8"
            stage = Stage.MAIL
            reply = await client.execute_command(b"MAIL", b"FROM:<" + sender + b">" + options)
            if reply.code != 250:
                return await _reset(client, reply.code, reply.message, stage)
            stage = Stage.RCPT
            reply = await client.execute_command(b"RCPT", b"TO:<" + recipient + b">")
            if reply.code not in (250, 251):
                return await _reset(client, reply.code, reply.message, stage)
            if go is not None and not await go:
                await _reset(client, 0, "", stage)
                return None
            stage = Stage.DATA_START
            reply = await client.execute_command(b"DATA")
            if reply.code != 354:
                return await _reset(client, reply.code, reply.message, stage)
            protocol = client.protocol
            if protocol is None:
                raise aiosmtplib.SMTPServerDisconnected("Connection lost")
            # Written and read with nothing awaited in between: the reply cannot slip past.
            protocol.write(_dot_stuffed(envelope.data))
            stage = Stage.LOST_AFTER_END
            reply = await protocol.read_response(timeout=self.relay.timeout)
        except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError, OSError) as exc:
            lost = stage if stage is Stage.LOST_AFTER_END else Stage.LOST_BEFORE_END
            raise ConnectionLost(_describe(exc), stage=lost, where=self.relay.where) from None
        except aiosmtplib.SMTPResponseException as exc:
            return await _reset(client, exc.code, exc.message, stage)
        return Delivery(reply.code, reply.message, Stage.DATA_END)

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
    return ascii_address(address).encode("utf-8")


async def _reset(client: aiosmtplib.SMTP, code: int, message: str, stage: Stage) -> Delivery:
    """Clear the half-done envelope (RSET) and return the refusal as an answer."""
    import aiosmtplib

    if code != 421 and client.is_connected:
        try:
            await client.rset()
        except (aiosmtplib.SMTPException, OSError):
            client.close()  # the next message reconnects
    return Delivery(code, message, stage)


def _dot_stuffed(data: bytes) -> bytes:
    """The message as DATA sends it: lines starting with "." doubled, ending in CRLF.CRLF."""
    # It runs for every message, in the sending process: one search, and one copy when
    # (as in nearly every message) no line starts with a dot.
    end = b".\r\n" if data.endswith(b"\r\n") else b"\r\n.\r\n"
    if b"\n." not in data and data[:1] != b".":
        return data + end
    return (b"." if data[:1] == b"." else b"") + data.replace(b"\n.", b"\n..") + end


def _describe(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return f"connection lost: {text}"


def _connect_error(exc: Any, relay: Relay) -> TransportError:
    cause = getattr(exc, "__cause__", None) or exc
    if isinstance(cause, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(exc):
        return TransportError(
            f"the relay's TLS certificate could not be verified ({_reason(cause)})",
            where=relay.where,
            hint="fix the relay's certificate; for a local test relay only, turn "
            "verification off (smtp.insecure_skip_verify = true)",
            advice="skip-tls-verify",
        )
    return TransportError(
        f"cannot connect to the SMTP relay: {str(exc).strip() or type(exc).__name__}",
        where=relay.where,
        hint="check the host and port (MAILER_SMTP_URL, [smtp] url) and that the relay is running",
        advice="relay-unreachable",
    )


def _reason(exc: BaseException) -> str:
    return getattr(exc, "verify_message", None) or str(exc)
