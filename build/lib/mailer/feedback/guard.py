"""``mailer serve``'s outer layer: body cap, per-client rate limit, the access log.

ASGI middleware around the app (``server.create_app``). The client of a request
is its peer, or — behind a reverse proxy named in ``[serve] trusted_proxies`` —
the X-Forwarded-For hop that proxy vouches for; a header from anyone else is
ignored (anyone can write it). The access log is JSON lines without personal
data: tokens are written as ``<token>``, no address or IP is logged.
"""

from __future__ import annotations

import ipaddress
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.types import Message, Receive, Scope, Send

from mailer.core.settings import Settings

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_BODY = 256 * 1024  # bytes; a webhook batch is a few KB, a one-click POST a few bytes
RATE = 20.0  # requests a second per client, on average ...
BURST = 60.0  # ... with bursts up to this


class Guarded(Protocol):
    """What the guard needs of the endpoint it guards."""

    @property
    def settings(self) -> Settings:
        """The workspace settings (``[serve] trusted_proxies``)."""

    @property
    def limiter(self) -> Limiter:
        """The per-client rate limiter."""

    def log(self, line: str) -> None:
        """Write one access-log line."""


@dataclass
class _Bucket:
    tokens: float
    at: float


@dataclass
class Limiter:
    """A token bucket per client key (thread-safe; the endpoints run in a thread pool)."""

    rate: float = RATE
    burst: float = BURST
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[str, _Bucket] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def allow(self, key: str) -> bool:
        """Take one request's token for ``key``; False when it has none left."""
        now = self.clock()
        with self._lock:
            bucket = self._buckets.get(key) or _Bucket(self.burst, now)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
            bucket.at = now
            allowed = bucket.tokens >= 1
            if allowed:
                bucket.tokens -= 1
            self._buckets[key] = bucket
            if len(self._buckets) > 10_000:  # forget idle clients
                self._buckets = {k: b for k, b in self._buckets.items() if now - b.at < 60}
            return allowed


class Guard:
    """ASGI middleware: rate limit per client, body cap, one access-log line per request."""

    def __init__(self, app: Starlette, endpoint: Guarded):
        self.app, self.endpoint = app, endpoint
        self.trusted = [
            ipaddress.ip_network(p, strict=False) for p in endpoint.settings.serve.trusted_proxies
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        client = client_address(scope, self.trusted)
        if not self.endpoint.limiter.allow(client):
            await PlainTextResponse("too many requests", status_code=429)(scope, receive, sending)
        else:
            body = await _read_capped(receive)
            if body is None:
                await PlainTextResponse("request too large", status_code=413)(
                    scope, receive, sending
                )
            else:
                scope.setdefault("state", {})["body"] = body

                async def replay() -> Message:
                    return {"type": "http.request", "body": body, "more_body": False}

                await self.app(scope, replay, sending)
        path = str(scope.get("path", ""))
        shown = path  # the query string (?t=<token>) is never logged
        if path.startswith("/u/"):
            shown = "/u/<token>" + ("/resubscribe" if path.endswith("/resubscribe") else "")
        elif path.startswith("/c/"):
            shown = "/c/<token>"
        entry = {
            "method": scope.get("method"),
            "path": shown,
            "status": status["code"],
            "ms": round((time.perf_counter() - started) * 1000, 1),
        }
        self.endpoint.log(json.dumps(entry))


def client_address(scope: Scope, trusted: list[IPNetwork]) -> str:
    """The client a request is from, for the rate limit.

    The peer's address, unless the peer is a trusted proxy (``[serve]
    trusted_proxies``): then the X-Forwarded-For hop nearest to it that is not a
    trusted proxy. Anyone can write X-Forwarded-For; only a proxy we know adds
    the truth to it (at its end).
    """
    peer = str((scope.get("client") or ("?", 0))[0])
    if not trusted or not _within(peer, trusted):
        return peer
    values = [v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"x-forwarded-for"]
    hops = [hop.strip() for hop in ",".join(values).split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _within(hop, trusted):
            return hop
    return hops[0] if hops else peer


def _within(address: str, networks: list[IPNetwork]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


async def _read_capped(receive: Receive) -> bytes | None:
    """The whole request body, or None as soon as it passes ``MAX_BODY``."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if len(body) > MAX_BODY:
            return None
        if not message.get("more_body"):
            return body
