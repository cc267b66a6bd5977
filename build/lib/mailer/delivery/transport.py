"""Transports: where built messages go. SMTP, the outbox folder and null are interchangeable.

The send loop only knows the ``Transport`` protocol. A transport returns the
server's answer as data (``Delivery``), whatever the reply code; it raises
``ConnectionLost`` only when no reply could be had at all, so the caller can
reconnect and retry.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from mailer.compose.outgoing import Envelope
from mailer.core.errors import TransportError
from mailer.delivery.policy import Stage


@dataclass(frozen=True, slots=True)
class Delivery:
    """The server's answer to one message: its reply code, text, and the step it answered."""

    code: int
    reply: str
    stage: Stage = Stage.DATA_END

    @property
    def ok(self) -> bool:
        """True when the server accepted the message (2xx)."""
        return 200 <= self.code < 300


class ConnectionLost(TransportError):
    """No answer at all: the connection failed, or timed out, at ``stage``.

    ``Stage.LOST_AFTER_END`` means the whole message, final "." included, had
    been handed over: it may have been delivered, and must not be re-sent blindly.
    """

    def __init__(
        self,
        message: str,
        *,
        stage: Stage = Stage.LOST_BEFORE_END,
        where: str | None = None,
        hint: str | None = None,
    ):
        super().__init__(message, where=where, hint=hint)
        self.stage = stage


class RelayUnreachable(ConnectionLost):
    """No connection could be opened: nothing was sent, so the attempt does not count.

    ``fresh`` is False when this sender did not try itself but was told the result
    of an attempt another sender made meanwhile (one failure, however many wait).
    """

    def __init__(
        self,
        message: str,
        *,
        where: str | None = None,
        hint: str | None = None,
        advice: str | None = None,
        fresh: bool = True,
    ):
        super().__init__(message, stage=Stage.CONNECT, where=where, hint=hint)
        self.advice = advice
        self.fresh = fresh


class RelayRefused(TransportError):
    """The relay answers but refuses this client (554 greeting, a close right after the
    greeting, a broken TLS handshake, a refused login): every message would meet it,
    so the run stops at once; nobody is charged."""


class Transport(Protocol):
    """What the send loop needs from a way of delivering messages."""

    name: str

    async def start(self) -> None:
        """Open connections, create folders: anything needed before the first message."""

    async def deliver(
        self, envelope: Envelope, *, go: Awaitable[bool] | None = None
    ) -> Delivery | None:
        """Hand over one message and return the server's answer.

        ``go``, when given, is awaited before anything of the message itself is
        handed over (an SMTP transport awaits it after RCPT TO, before DATA, so
        the journal's commit overlaps the first round trips): False cancels the
        message, and ``deliver`` returns None.
        """

    async def close(self) -> None:
        """Release connections; safe to call twice."""


async def hand_over(transport: Transport, envelope: Envelope) -> Delivery:
    """``transport.deliver`` with nothing to wait for first: there is always an answer."""
    delivery = await transport.deliver(envelope)
    if delivery is None:  # pragma: no cover - only a ``go`` can cancel
        raise RuntimeError("a message without a go-ahead was cancelled")
    return delivery


_UNSAFE = re.compile(r"[^A-Za-z0-9._@+-]")


def outbox_filename(recipient: str) -> str:
    """A file-system-safe stem for a recipient's files in the outbox, one per address.

    The domain is written in IDNA (``bücher.test`` -> ``xn--bcher-kva.test``),
    so two addresses never share a file; a stem that had to be changed or
    shortened anyway gets a short hash of the address to stay unique.
    """
    local, _, domain = recipient.rpartition("@")
    try:
        ascii_domain = domain.encode("idna").decode("ascii") if not domain.isascii() else domain
    except UnicodeError:
        ascii_domain = domain
    stem = _UNSAFE.sub("_", f"{local}@{ascii_domain}" if local else recipient)
    if stem != f"{local}@{ascii_domain}" or len(stem) > 120:
        digest = hashlib.sha256(recipient.encode("utf-8")).hexdigest()[:8]
        stem = f"{stem[:110]}-{digest}"
    return stem


class OutboxTransport:
    """Writes each message as ``<recipient>.eml`` into a folder instead of sending it."""

    name = "outbox"

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    async def start(self) -> None:
        """Create the outbox folder."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TransportError(
                f"cannot create the outbox folder: {exc.strerror}",
                where=str(self.folder),
                hint="choose another outbox folder ([outbox] path, MAILER_OUTBOX)",
            ) from exc

    async def deliver(
        self, envelope: Envelope, *, go: Awaitable[bool] | None = None
    ) -> Delivery | None:
        """Write the message to ``<folder>/<recipient>.eml`` (unless ``go`` says no)."""
        if go is not None and not await go:
            return None
        path = self.folder / f"{outbox_filename(envelope.recipient)}.eml"
        try:
            path.write_bytes(envelope.data)
        except OSError as exc:
            raise TransportError(
                f"cannot write to the outbox: {exc.strerror}", where=str(path)
            ) from None
        return Delivery(250, f"written to {path}")

    async def close(self) -> None:
        """Nothing to release."""


class NullTransport:
    """Accepts every message and keeps nothing: for dry runs and benchmarks."""

    name = "null"

    def __init__(self) -> None:
        self.count = 0

    async def start(self) -> None:
        """Nothing to open."""

    async def deliver(
        self, envelope: Envelope, *, go: Awaitable[bool] | None = None
    ) -> Delivery | None:
        """Count the message and accept it (unless ``go`` says no)."""
        if go is not None and not await go:
            return None
        self.count += 1
        return Delivery(250, "accepted by the null transport")

    async def close(self) -> None:
        """Nothing to release."""
