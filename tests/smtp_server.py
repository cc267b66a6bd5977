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
* ``too_many``           — answer this many connections with ``421 Too many connections``.

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
        self._rng = random.Random(self.faults.seed)
        self._lock = threading.Lock()

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        """Refuse every sender with ``faults.mail_reply`` when it is set."""
        if self.faults.mail_reply:
            return self.faults.mail_reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        """Refuse unknown users, greylist a share of first attempts, or answer ``rcpt_reply``."""
        if self.faults.rcpt_reply:
            return self.faults.rcpt_reply
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
            if self._keep_then_drop(envelope.rcpt_tos):
                # Kept; now the connection dies before the client hears the 250.
                assert server.transport is not None
                server.transport.abort()
                return "250 2.0.0 OK queued (never heard)"
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


# --- benchmark sink (separate process) ---------------------------------------


class _CountingHandler:
    def __init__(self) -> None:
        self.times: list[float] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.times.append(time.time())
        return "250 OK"


def _sink_main() -> None:
    import argparse
    import signal

    parser = argparse.ArgumentParser(description="counting SMTP sink for benchmarks")
    parser.add_argument("--times", required=True, help="file to write arrival times to on exit")
    args = parser.parse_args()
    handler = _CountingHandler()
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
