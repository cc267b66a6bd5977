"""A real aiosmtpd server on 127.0.0.1 for tests: a recording handler with fault injection.

``SmtpServer`` runs aiosmtpd in its own thread and event loop, on port 0 (the
OS picks a free port), and can be stopped and restarted on the same port.
Faults:

* ``tempfail_fraction``  — that share of DATA transactions answered ``tempfail_reply``
  (default ``451 4.3.0``: trouble at the relay; decided by a seeded RNG, so runs repeat);
* ``greylist_fraction``  — that share of recipients answered ``451 4.7.1`` at RCPT on
  their first attempt (seeded, per address), as a greylisting server does;
* ``reject``             — addresses answered ``550 5.1.1 ... User unknown`` at RCPT;
* ``mail_reply``         — a reply to every ``MAIL FROM`` instead of ``250`` (a refusal
  of the whole campaign, e.g. ``530 5.7.0 Authentication required``);
* ``rcpt_reply``         — a reply to every ``RCPT TO`` instead of ``250``;
* ``drop_at_data``       — addresses whose first ``DATA`` command is answered by hanging
  up: nothing of the message was sent;
* ``drop_data``          — addresses whose first DATA attempt loses the connection
  half-way through the message (the server hangs up after one line);
* ``keep_then_drop``     — addresses whose first message is kept, then the connection is
  dropped before the ``250`` (every ``keep_then_drop_every``-th message too): the
  message arrived, the client never hears so;
* ``too_many``           — answer this many connections with ``421 Too many connections``;
* ``per_connection``     — a cap on messages per connection: the next ``MAIL FROM`` on a
  connection that carried this many is answered ``421 4.7.0 ... closing`` (and closed);
* ``close_after``        — close the connection, without a word, after this many messages;
* ``final_reply_delay``  — seconds to wait before answering the final "." (the message is
  kept first): a relay slower than the client's timeout;
* ``too_many_rcpt_every``— every n-th ``RCPT TO`` answered ``452 4.5.3 Too many recipients``;
* ``rcpt_delay_max``     — each ``RCPT TO`` answered after a random delay up to this (seeded):
  jitter between the sender's clock and the arrival time stamped here.

``RawServer`` plays relays that misbehave before any SMTP: a tarpit (never greets), a
``554`` greeting, a close right after the greeting, a plain-text port reached by TLS,
STARTTLS offered but the handshake broken.

Run as a script (``python tests/smtp_server.py``) it is a counting sink in a
separate process for benchmarks: it prints its port, then on SIGTERM writes
the arrival time of every message to ``--times`` and exits.
"""

from __future__ import annotations

import asyncio
import random
import ssl
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass
class Received:
    """One message the server accepted."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    at: float

    @property
    def message(self) -> Message:
        """The message parsed with the stdlib parser."""
        return message_from_bytes(self.data)


@dataclass
class Faults:
    """What the server should do wrong."""

    tempfail_fraction: float = 0.0
    tempfail_reply: str = "451 4.3.0 Temporary failure, try again later"
    greylist_fraction: float = 0.0
    reject: set[str] = field(default_factory=set)
    mail_reply: str | None = None
    rcpt_reply: str | None = None
    drop_at_data: set[str] = field(default_factory=set)
    drop_data: set[str] = field(default_factory=set)
    keep_then_drop: set[str] = field(default_factory=set)
    keep_then_drop_every: int = 0
    too_many: int = 0
    per_connection: int = 0
    close_after: int = 0
    final_reply_delay: float = 0.0
    too_many_rcpt_every: int = 0
    rcpt_delay_max: float = 0.0
    seed: int = 7


class RecordingHandler:
    """Keeps every accepted message; injects the configured faults.

    ``keep_data=False`` records envelopes only (no message bodies): for runs of
    tens of thousands of messages, where only who got what matters;
    ``keep_data="headers"`` keeps the header block (who got which subject).
    """

    def __init__(self, faults: Faults | None = None, *, keep_data: bool | str = True):
        self.faults = faults or Faults()
        self.keep_data = keep_data
        self.received: list[Received] = []
        self.attempts: dict[str, int] = {}
        self.tempfailed: list[str] = []
        self.greylisted: list[str] = []
        self.dropped: list[str] = []
        self.kept_then_dropped: list[str] = []
        self.messages = 0
        self.rcpts = 0
        self.capped = 0  # MAIL FROMs answered 421 for the per-connection cap
        self.too_many_rcpt = 0  # RCPTs answered 452 4.5.3
        self.tls_messages = 0  # messages that came over an encrypted connection
        self._rng = random.Random(self.faults.seed)
        self._delay_rng = random.Random(self.faults.seed + 1)
        self._lock = threading.Lock()

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        """Refuse every sender with ``faults.mail_reply`` when it is set."""
        if self.faults.mail_reply:
            return self.faults.mail_reply
        cap = self.faults.per_connection
        if cap and getattr(session, "carried", 0) >= cap:
            with self._lock:
                self.capped += 1
            assert server.transport is not None
            server.loop.call_soon(server.transport.close)  # once the reply is written
            return "421 4.7.0 Too many messages on this connection, closing"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        """Refuse unknown users, greylist a share of first attempts, or answer ``rcpt_reply``."""
        if self.faults.rcpt_reply:
            return self.faults.rcpt_reply
        if self.faults.rcpt_delay_max:
            with self._lock:
                delay = self._delay_rng.uniform(0, self.faults.rcpt_delay_max)
            await asyncio.sleep(delay)
        every = self.faults.too_many_rcpt_every
        if every:
            with self._lock:
                self.rcpts += 1
                refuse = self.rcpts % every == 0
                self.too_many_rcpt += refuse
            if refuse:
                return "452 4.5.3 Too many recipients, slow down a little"
        if address.lower() in self.faults.reject:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        if self._greylist(address.lower()):
            return f"451 4.7.1 <{address}>: Recipient address rejected: Greylisted, try later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    def _greylist(self, address: str) -> bool:
        """True on the first attempt of an address chosen (by its hash) for greylisting."""
        fraction = self.faults.greylist_fraction
        if not fraction:
            return False
        with self._lock:
            chosen = random.Random(f"{self.faults.seed}:{address}").random() < fraction
            if not chosen or address in self.greylisted:
                return False
            self.greylisted.append(address)
            return True

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Record the message, unless this transaction is chosen to fail with 451."""
        if server.transport is None or server.transport.is_closing():
            # Shutting down: the 250 could not reach the client, so do not keep the message.
            return "421 4.3.2 Shutting down"
        with self._lock:
            for rcpt in envelope.rcpt_tos:
                self.attempts[rcpt.lower()] = self.attempts.get(rcpt.lower(), 0) + 1
            if self.faults.tempfail_fraction and self._rng.random() < self.faults.tempfail_fraction:
                self.tempfailed.extend(envelope.rcpt_tos)
                return self.faults.tempfail_reply
            self.received.append(
                Received(
                    str(envelope.mail_from),
                    list(envelope.rcpt_tos),
                    self._kept(bytes(envelope.original_content or b"")),
                    time.monotonic(),
                )
            )
            self.messages += 1
            session.carried = getattr(session, "carried", 0) + 1
            if session.ssl is not None:
                self.tls_messages += 1
            if self._keep_then_drop(envelope.rcpt_tos):
                # Kept; now the connection dies before the client hears the 250.
                assert server.transport is not None
                server.transport.abort()
                return "250 2.0.0 OK queued (never heard)"
        if self.faults.final_reply_delay:
            await asyncio.sleep(self.faults.final_reply_delay)
        if self.faults.close_after and session.carried >= self.faults.close_after:
            assert server.transport is not None
            # Closed right after the 250 is written: the client learns it at its next MAIL.
            server.loop.call_soon(server.transport.close)
        return "250 2.0.0 OK queued"

    def _kept(self, data: bytes) -> bytes:
        if self.keep_data == "headers":
            return data.partition(b"\r\n\r\n")[0] + b"\r\n\r\n"
        return data if self.keep_data else b""

    def _keep_then_drop(self, rcpt_tos: list[str]) -> bool:
        every = self.faults.keep_then_drop_every
        for rcpt in rcpt_tos:
            if rcpt.lower() in self.faults.keep_then_drop or (every and self.messages % every == 0):
                self.faults.keep_then_drop.discard(rcpt.lower())
                self.kept_then_dropped.append(rcpt)
                return True
        return False

    def should_drop_at_data(self, rcpt_tos: list[str]) -> bool:
        """True the first time DATA is sent for an address in ``faults.drop_at_data``."""
        with self._lock:
            for rcpt in rcpt_tos:
                if rcpt.lower() in self.faults.drop_at_data:
                    self.faults.drop_at_data.discard(rcpt.lower())
                    self.dropped.append(rcpt)
                    return True
        return False

    def should_drop(self, rcpt_tos: list[str]) -> bool:
        """True the first time DATA is attempted for an address in ``faults.drop_data``."""
        with self._lock:
            for rcpt in rcpt_tos:
                if rcpt.lower() in self.faults.drop_data:
                    self.faults.drop_data.discard(rcpt.lower())
                    self.dropped.append(rcpt)
                    return True
        return False

    def take_too_many(self) -> bool:
        """True while connections should be turned away with 421."""
        with self._lock:
            if self.faults.too_many > 0:
                self.faults.too_many -= 1
                return True
        return False

    def delivered_to(self) -> list[str]:
        """Every accepted recipient, lower-cased, once per accepted message."""
        with self._lock:
            return [r.lower() for m in self.received for r in m.rcpt_tos]


class FaultySMTP(SMTP):
    """aiosmtpd's SMTP with a connection that can die half-way through DATA."""

    async def smtp_DATA(self, arg: str) -> None:
        """Hang up after the first line of the message when the handler says so."""
        handler = self.event_handler
        if self.envelope.rcpt_tos and handler.should_drop_at_data(self.envelope.rcpt_tos):
            assert self.transport is not None
            self.transport.close()
            return
        if self.envelope.rcpt_tos and handler.should_drop(self.envelope.rcpt_tos):
            await self.push("354 End data with <CR><LF>.<CR><LF>")
            await self._reader.readuntil(b"\r\n")
            assert self.transport is not None
            self.transport.close()
            return
        await super().smtp_DATA(arg)

    async def smtp_EHLO(self, hostname: str) -> None:
        """Turn the connection away with 421 while ``too_many`` is set."""
        if self.event_handler.take_too_many():
            await self.push("421 4.7.0 Too many connections, try again later")
            assert self.transport is not None
            self.transport.close()
            return
        await super().smtp_EHLO(hostname)


def self_signed_context(ca: Any = None) -> ssl.SSLContext:
    """A server TLS context with a certificate for 127.0.0.1 from a throwaway (trustme) CA."""
    import trustme

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    (ca or trustme.CA()).issue_cert("127.0.0.1").configure_cert(context)
    return context


class SmtpServer:
    """aiosmtpd on 127.0.0.1 in a background thread; ``port`` is known after ``start``."""

    def __init__(
        self,
        handler: Any | None = None,
        *,
        starttls: ssl.SSLContext | None = None,
        implicit_tls: ssl.SSLContext | None = None,
        authenticator: Any | None = None,
    ):
        self.handler = handler or RecordingHandler()
        self.port = 0
        self._starttls = starttls
        self._implicit = implicit_tls
        self._authenticator = authenticator
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.AbstractServer | None = None
        self._protocols: list[SMTP] = []
        self.connections = 0
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

    def _factory(self) -> SMTP:
        protocol = FaultySMTP(
            self.handler,
            hostname="mx.test",
            tls_context=self._starttls,
            auth_require_tls=False,
            authenticator=self._authenticator,
            auth_required=self._authenticator is not None,
            data_size_limit=None,
        )
        self._protocols.append(protocol)
        self.connections += 1
        return protocol

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    def start(self) -> SmtpServer:
        """Listen (on the same port as before when restarting)."""

        async def serve() -> asyncio.AbstractServer:
            return await self._loop.create_server(
                self._factory, "127.0.0.1", self.port, ssl=self._implicit, reuse_address=True
            )

        self._server = self._call(serve())
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        """Stop listening and cut every open connection (a relay going down)."""

        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
                self._server = None
            # Server.close_clients exists from Python 3.13 only: close connections by hand.
            # close(), not abort(): a reply already written (250 after DATA) still goes out,
            # as it would from a relay shutting down.
            for protocol in self._protocols:
                if protocol.transport is not None:
                    protocol.transport.close()
            self._protocols.clear()

        self._call(shutdown())

    def close(self) -> None:
        """Stop and end the thread (safe to call twice)."""
        if not self._thread.is_alive():
            return
        self.stop()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    @property
    def url(self) -> str:
        """``smtp://127.0.0.1:PORT``."""
        return f"smtp://127.0.0.1:{self.port}"


# --- relays that fail before any SMTP ------------------------------------------


class RawServer:
    """A TCP server on 127.0.0.1 that misbehaves before any SMTP is spoken.

    ``mode``: ``tarpit`` (accepts, never greets), ``greeting-554`` (refuses at its
    greeting), ``close-after-greeting`` (greets, then hangs up), ``starttls-broken``
    (offers STARTTLS, agrees, then sends garbage instead of a TLS handshake).
    ``connections`` counts the connections it was offered.
    """

    def __init__(self, mode: str):
        self.mode = mode
        self.connections = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._writers: list[asyncio.StreamWriter] = []

        async def serve() -> asyncio.AbstractServer:
            return await asyncio.start_server(self._client, "127.0.0.1", 0)

        self._server = asyncio.run_coroutine_threadsafe(serve(), self._loop).result(10)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        if self.mode == "tarpit":
            await reader.read()  # say nothing until the client gives up
        elif self.mode == "greeting-554":
            writer.write(b"554 5.7.1 mx.test: no SMTP service for you\r\n")
            await writer.drain()
            await reader.read()
        elif self.mode == "close-after-greeting":
            writer.write(b"220 mx.test ESMTP\r\n")
            await writer.drain()
        elif self.mode == "starttls-broken":
            writer.write(b"220 mx.test ESMTP\r\n")
            while line := await reader.readline():
                command = line.strip().upper()
                if command.startswith(b"EHLO"):
                    writer.write(b"250-mx.test\r\n250-STARTTLS\r\n250 8BITMIME\r\n")
                elif command == b"STARTTLS":
                    writer.write(b"220 2.0.0 Ready to start TLS\r\n")
                    await writer.drain()
                    writer.write(b"this is not a TLS handshake\r\n" * 4)
                    await writer.drain()
                    break
                else:
                    writer.write(b"250 OK\r\n")
                await writer.drain()
        writer.close()

    @property
    def url(self) -> str:
        """``smtp://127.0.0.1:PORT``."""
        return f"smtp://127.0.0.1:{self.port}"

    def close(self) -> None:
        """Stop listening, drop every connection and end the thread."""

        async def shutdown() -> None:
            self._server.close()
            for writer in self._writers:
                writer.close()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)


# --- benchmark sink (separate process) ---------------------------------------


class _CountingHandler:
    def __init__(self, per_connection: int = 0) -> None:
        self.times: list[float] = []
        self.per_connection = per_connection
        self.capped = 0

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.per_connection and getattr(session, "carried", 0) >= self.per_connection:
            self.capped += 1
            assert server.transport is not None
            server.loop.call_soon(server.transport.close)
            return "421 4.7.0 Too many messages on this connection, closing"
        envelope.mail_from = address
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.times.append(time.time())
        session.carried = getattr(session, "carried", 0) + 1
        return "250 OK"


def _sink_main() -> None:
    import argparse
    import signal

    parser = argparse.ArgumentParser(description="counting SMTP sink for benchmarks")
    parser.add_argument("--times", required=True, help="file to write arrival times to on exit")
    parser.add_argument(
        "--per-connection", type=int, default=0, help="421 after this many messages per connection"
    )
    args = parser.parse_args()
    handler = _CountingHandler(args.per_connection)
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(
        loop.create_server(
            lambda: SMTP(handler, hostname="sink.test", data_size_limit=None),
            "127.0.0.1",
            0,
        )
    )
    print(server.sockets[0].getsockname()[1], flush=True)
    loop.add_signal_handler(signal.SIGTERM, loop.stop)
    loop.run_forever()
    with open(args.times, "w") as out:
        out.write("\n".join(f"{t:.6f}" for t in handler.times))


if __name__ == "__main__":
    _sink_main()
