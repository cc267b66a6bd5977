"""The SMTP transport: a pool of reused aiosmtplib connections to one relay.

Certificates are verified unless ``insecure_skip_verify`` is set on purpose
(``mailer.delivery.relay``). The AUTH password is read from the environment
variable the settings name, at connect time, and is never stored in a printable
field, logged or shown.

``deliver`` always returns the relay's answer as a ``Delivery`` (2xx, 4xx or
5xx); it raises ``ConnectionLost`` only when there was no answer at all, after
dropping the broken connection so that the next message reconnects.

Connections are opened step by step (TCP, greeting, EHLO, STARTTLS, AUTH) so
that a failure names its step and cause: nothing listening, no greeting within
the timeout, a ``554`` greeting, a close right after the greeting, a broken
TLS handshake. Failures that mean "this relay refuses us" (``RelayRefused``)
stop the run at once; "nobody answers" (``RelayUnreachable``) is tried again
with back-off. Connections are opened one at a time: while one attempt waits
out the timeout, the other senders wait for its result instead of each
timing out on its own, so a dead relay costs one timeout, not one per message.

Relays that cap the messages per connection (``421`` or a close after N) are
learned: the message goes out again at once on a fresh connection, nothing is
charged and nobody slows down, and from then on each connection is replaced
(opened in the background) before it reaches N.

``smtp://`` upgrades to STARTTLS when the relay offers it (opportunistic, as
MTAs do; the certificate is not checked, which is still better than clear
text) unless the relay's ``tls`` is ``"none"``.
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
from mailer.delivery.policy import Stage, Verdict, classify
from mailer.delivery.relay import Relay, tls_context
from mailer.delivery.smtp_failures import connect_failure, describe_lost, refused_reply
from mailer.delivery.transport import ConnectionLost, Delivery, RelayRefused, RelayUnreachable

if TYPE_CHECKING:
    import aiosmtplib


class _Busy(Exception):
    """The relay answered the connection with a 4xx (e.g. 421 too many connections)."""

    def __init__(self, code: int, reply: str, stage: Stage = Stage.CONNECT):
        super().__init__(f"{code} {reply}")
        self.code = code
        self.reply = reply
        self.stage = stage


@dataclass
class _Secret:
    """Keeps the password (and the environment it comes from) out of reprs, logs, tracebacks."""

    env: Mapping[str, str] = field(repr=False)
    value: str | None = field(repr=False, default=None)


@dataclass(eq=False)
class _Connection:
    """One open connection and the messages it has carried."""

    client: aiosmtplib.SMTP
    used: int = 0
    successor: asyncio.Task[_Connection] | None = None  # opened ahead of the cap


@dataclass
class ConnectionStats:
    """What the pool did: connections opened, reconnects the relay forced, the cap it learned."""

    opened: int = 0
    reconnects: int = 0  # a 421 or a close on a used connection: the message went out again
    rotated: int = 0  # connections closed by us before the learned cap
    cap: int | None = None  # messages per connection the relay allows (learned)


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
        self._idle: asyncio.Queue[_Connection | asyncio.Task[_Connection] | None] | None = None
        self._all: set[_Connection] = set()
        self._background: set[asyncio.Task[Any]] = set()
        self._connect_lock: asyncio.Lock | None = None
        self._failure: TransportError | None = None  # the last connect attempt's, until one works
        self._failures = 0  # bumped on every failed attempt (see _open)
        self._closes: dict[int, int] = {}  # messages carried by connections the relay closed
        self.stats = ConnectionStats()
        self.security: str | None = None  # how the last connection was protected, once known

    def describe(self) -> str:
        """The relay, without secrets (with the TLS in use, once connected)."""
        text = self.relay.describe()
        if self.security:
            text = text[:-1] + f", {self.security})"
        return text

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
        self._connect_lock = asyncio.Lock()
        first: _Connection | None = None
        try:
            first = await self._open()
        except _Busy:
            # It is there, just busy ("421 too many connections"): the senders connect
            # on first use and the run backs off as the relay asks.
            pass
        except RelayUnreachable as exc:
            raise TransportError(
                exc.message, where=exc.where, hint=exc.hint, advice=exc.advice
            ) from None
        self._idle.put_nowait(first)
        # The other slots start empty and connect on first use.
        for _ in range(self.relay.pool - 1):
            self._idle.put_nowait(None)

    # --- opening connections ---------------------------------------------------

    async def _open(self) -> _Connection:
        """Open one connection, one attempt at a time; a failure met while waiting is shared.

        Raises ``RelayRefused`` (the relay refuses us), ``RelayUnreachable`` (nobody
        answers: try again later) or ``_Busy`` (a 4xx greeting).
        """
        assert self._connect_lock is not None
        seen = self._failures
        async with self._connect_lock:
            if isinstance(self._failure, RelayRefused):
                raise self._failure  # it refuses us: asking again would not change that
            if self._failures != seen and self._failure is not None:
                # Someone tried while we waited, and failed: that is our answer too.
                raise _again(self._failure)
            try:
                client = await self._handshake()
            except (RelayRefused, RelayUnreachable) as exc:
                self._failure = exc
                self._failures += 1
                raise
        self._failure = None
        connection = _Connection(client)
        self._all.add(connection)
        self.stats.opened += 1
        return connection

    async def _handshake(self) -> aiosmtplib.SMTP:
        """TCP (and TLS for smtps), greeting, EHLO, STARTTLS, AUTH: each failure named."""
        import aiosmtplib

        relay = self.relay
        implicit = self._context or (tls_context(relay.verify) if relay.implicit_tls else None)
        client = aiosmtplib.SMTP(
            hostname=relay.host,
            port=relay.port,
            use_tls=relay.implicit_tls,
            start_tls=False,  # done by hand below, to name its failures
            validate_certs=relay.verify,
            tls_context=implicit,
            timeout=relay.timeout,
            local_hostname=relay.local_hostname,
        )
        step = "connect"
        try:
            await client.connect()
            step = "ehlo"
            await client.ehlo()
            step = "starttls"
            await self._maybe_starttls(client)
            if relay.username:
                step = "auth"
                await client.login(relay.username, self._secret.value or "")
        except aiosmtplib.SMTPAuthenticationError as exc:
            client.close()
            raise RelayRefused(
                f"the relay refused the login for {relay.username}: {exc.code} {exc.message}",
                where=relay.where,
                hint=f"check the user name and ${relay.password_env}",
            ) from None
        except aiosmtplib.SMTPResponseException as exc:
            client.close()
            if 400 <= exc.code < 500:
                raise _Busy(exc.code, exc.message, _STEP_STAGES[step]) from None
            raise refused_reply(step, exc.code, exc.message, relay) from None
        except (aiosmtplib.SMTPException, OSError, ssl.SSLError) as exc:
            client.close()
            raise connect_failure(step, exc, relay) from None
        return client

    async def _maybe_starttls(self, client: aiosmtplib.SMTP) -> None:
        """STARTTLS when required (smtp+starttls://) or offered to smtp:// (unless tls=none)."""
        relay = self.relay
        offered = client.supports_extension("starttls")
        if relay.starttls:
            if not offered:
                raise RelayRefused(
                    "the relay does not offer STARTTLS, which smtp+starttls:// requires",
                    where=relay.where,
                    hint="use smtps:// if the port speaks TLS from the start (465); "
                    "otherwise the relay needs TLS set up",
                )
            context = self._context or tls_context(relay.verify)
            await client.starttls(tls_context=context, validate_certs=relay.verify)
            self.security = "STARTTLS"
        elif relay.implicit_tls:
            self.security = "TLS"
        elif offered and relay.tls != "none":
            # Opportunistic, as MTAs do: encrypt without checking the certificate (a
            # relay reached by smtp:// promised none); better than clear text.
            context = self._context or tls_context(False)
            await client.starttls(tls_context=context, validate_certs=False)
            self.security = "STARTTLS when offered: on, certificate not checked"
        else:
            self.security = "clear text" + ("" if offered else ": the relay offers no STARTTLS")
        if relay.starttls or (offered and relay.tls != "none" and not relay.implicit_tls):
            await client.ehlo()  # the extensions may differ once encrypted

    # --- sending ---------------------------------------------------------------

    async def deliver(
        self, envelope: Envelope, *, go: Awaitable[bool] | None = None
    ) -> Delivery | None:
        """Send one message over a pooled connection; return the relay's answer and its step.

        ``go`` is awaited after RCPT TO, before DATA (see ``Transport.deliver``).
        Raises ``ConnectionLost`` (with the step) when there was no answer at all,
        ``RelayUnreachable`` when no connection could be opened and ``RelayRefused``
        when the relay refuses this client.
        """
        if self._idle is None:
            raise TransportError("the SMTP transport was not started", where=self.relay.where)
        slot = await self._idle.get()
        back: _Connection | asyncio.Task[_Connection] | None = None  # the slot's next content
        try:
            # At most one more try: the relay closed a connection that had carried mail.
            for _ in range(2):
                connection = await self._ready(slot)
                slot, back = None, connection
                delivery = await self._on(connection, envelope, go)
                if delivery is not _AGAIN:
                    break
                back = None
            else:  # pragma: no cover - a fresh connection (used 0) is never "capped"
                raise ConnectionLost("connection lost twice in a row", where=self.relay.where)
            if isinstance(delivery, Delivery):
                back = self._after(connection, delivery)
                return delivery
            return None
        except _Busy as busy:
            return Delivery(busy.code, busy.reply, busy.stage)
        except ConnectionLost:
            if isinstance(back, _Connection):
                self._discard(back)
            back = None
            raise
        finally:
            self._idle.put_nowait(back)

    async def _ready(self, slot: _Connection | asyncio.Task[_Connection] | None) -> _Connection:
        """The slot's connection, the one being opened for it, or a new one."""
        if isinstance(slot, asyncio.Task):
            try:
                slot = await slot
            except (RelayRefused, RelayUnreachable, _Busy):
                slot = None  # the background attempt failed: try again here, and say why
        if slot is not None and slot.client.is_connected:
            return slot
        if slot is not None:
            # Closed by the relay while idle, after carrying ``used`` messages.
            self._learn_close(slot.used)
            self._discard(slot)
        return await self._open()

    async def _on(
        self, connection: _Connection, envelope: Envelope, go: Awaitable[bool] | None
    ) -> Delivery | object | None:
        """One transaction on ``connection``; ``_AGAIN`` when the relay closed it on us first."""
        try:
            delivery = await self._send(connection.client, envelope, go)
        except _LostBeforeData as lost:
            action = classify(lost.stage, None, lost.message, used=connection.used)
            self._discard(connection)
            if action.verdict is Verdict.RECONNECT:
                self._learn_close(connection.used)
                self.stats.reconnects += 1
                return _AGAIN
            raise ConnectionLost(lost.message, where=self.relay.where) from None
        if delivery is None:
            return None
        action = classify(delivery.stage, delivery.code, delivery.reply, used=connection.used)
        if action.verdict is Verdict.RECONNECT:
            # The relay's cap on messages per connection: learnt, and sent again at once.
            self._learn_cap(connection.used)
            self._discard(connection)
            self.stats.reconnects += 1
            return _AGAIN
        return delivery

    def _after(
        self, connection: _Connection, delivery: Delivery
    ) -> _Connection | asyncio.Task[_Connection] | None:
        """Count the message; drop a closing connection; replace one that reached the cap.

        Returns what the slot holds next: the connection, a new one being opened in
        the background, or nothing (the next message connects).
        """
        if delivery.ok:
            connection.used += 1
        if delivery.code == 421 or not connection.client.is_connected:
            # 421 means the server is closing this connection: start a fresh one next time.
            if delivery.code != 421:
                # Closed right after its reply: the same close _ready and _on learn from,
                # seen sooner (which of the three sees it is a race).
                self._learn_close(connection.used)
            self._discard(connection)
            return None
        cap = self.stats.cap
        if cap is not None and connection.used >= cap - 1 and connection.successor is None:
            # One message before the cap: open the next connection meanwhile, so the
            # switch costs the senders nothing.
            connection.successor = self._spawn(self._open())
        if cap is not None and connection.used >= cap:
            self.stats.rotated += 1
            return self._retire(connection)
        return connection

    def _learn_cap(self, used: int) -> None:
        """A 421 after ``used`` messages: the relay's cap is ``used`` (the lowest seen)."""
        if used > 0 and (self.stats.cap is None or used < self.stats.cap):
            self.stats.cap = used

    def _learn_close(self, used: int) -> None:
        """A close after ``used`` messages. Idle connections are closed too (timeouts), so
        a cap is learnt from a close only when two connections closed after the same count."""
        if used <= 0:
            return
        self._closes[used] = self._closes.get(used, 0) + 1
        if self._closes[used] >= 2:
            self._learn_cap(used)

    def _retire(self, connection: _Connection) -> asyncio.Task[_Connection]:
        """QUIT ``connection`` in the background; return its successor (being opened)."""
        self._all.discard(connection)
        self._spawn(_quit(connection.client))
        return connection.successor or self._spawn(self._open())

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        # A failed background connect is seen (and said) by whoever takes the slot.
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
        return task

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
            message = describe_lost(exc, stage, self.relay.timeout)
            if stage in (Stage.EHLO, Stage.MAIL, Stage.RCPT) and not isinstance(
                exc, aiosmtplib.SMTPTimeoutError
            ):
                raise _LostBeforeData(message, stage) from None
            lost = stage if stage is Stage.LOST_AFTER_END else Stage.LOST_BEFORE_END
            raise ConnectionLost(message, stage=lost, where=self.relay.where) from None
        except aiosmtplib.SMTPResponseException as exc:
            return await _reset(client, exc.code, exc.message, stage)
        return Delivery(reply.code, reply.message, Stage.DATA_END)

    def _discard(self, connection: _Connection | None) -> None:
        if connection is not None:
            self._all.discard(connection)
            connection.client.close()
            # A successor opened for it stays unused until ``close`` QUITs it (in ``_all``).
            connection.successor = None

    async def close(self) -> None:
        """QUIT every open connection (best effort); safe to call twice."""
        for task in list(self._background):
            if not task.done():
                task.cancel()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        if self._idle is not None:
            while not self._idle.empty():  # connections opened in the background
                slot = self._idle.get_nowait()
                if (
                    isinstance(slot, asyncio.Task)
                    and slot.done()
                    and not slot.cancelled()
                    and slot.exception() is None
                ):
                    self._all.add(slot.result())
        connections, self._all = list(self._all), set()
        await asyncio.gather(*(_quit(c.client) for c in connections), return_exceptions=True)
        self._idle = None


class _LostBeforeData(Exception):
    """The connection died before DATA: nothing of this message went anywhere."""

    def __init__(self, message: str, stage: Stage):
        super().__init__(message)
        self.message = message
        self.stage = stage


_AGAIN = object()  # "send this message again on a fresh connection"

_STEP_STAGES = {
    "connect": Stage.CONNECT,
    "ehlo": Stage.EHLO,
    "starttls": Stage.STARTTLS,
    "auth": Stage.AUTH,
}


async def _quit(client: aiosmtplib.SMTP) -> None:
    """QUIT politely (best effort, two seconds at most)."""
    try:
        if client.is_connected:
            await asyncio.wait_for(client.quit(), timeout=2)
    except Exception:  # closing is best effort
        client.close()


def _again(failure: TransportError) -> TransportError:
    """The failure another sender's attempt met, for a sender that was waiting for it."""
    if isinstance(failure, RelayUnreachable):
        return RelayUnreachable(
            failure.message,
            where=failure.where,
            hint=failure.hint,
            advice=failure.advice,
            fresh=False,
        )
    return failure


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
