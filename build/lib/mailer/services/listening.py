"""Sockets for the commands that listen (``mailer serve``, ``mailer bounces serve``)."""

from __future__ import annotations

import errno
import socket

from mailer.core.errors import TransportError


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` and listening, or a clear error saying why not.

    Made here rather than by the server library so a port in use or an address
    this machine does not have is one line with a hint, not a library's log or
    traceback. The protocol is given as TCP: asyncio turns on TCP_NODELAY only
    then (without it every answer waits ~40 ms for a delayed ACK).
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise TransportError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}",
            hint="give an address of this machine with --host (127.0.0.1 behind a proxy)",
        ) from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        hint = (
            "another program uses this port: stop it, or choose another with --port"
            if exc.errno == errno.EADDRINUSE
            else "choose another --host or --port (ports below 1024 need root)"
        )
        raise TransportError(f"cannot listen on {host}:{port}: {exc.strerror}", hint=hint) from None
    return sock
