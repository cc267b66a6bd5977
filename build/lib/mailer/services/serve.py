"""``mailer serve``: run the unsubscribe and webhook endpoint (uvicorn) for this workspace."""

from __future__ import annotations

import socket
import threading
import urllib.request

from mailer.core.errors import ConfigError
from mailer.core.tokens import KEY_ENV, has_real_key
from mailer.feedback.server import Endpoint, Guard, create_app
from mailer.services.listening import listening_socket
from mailer.services.workspace import workspace_settings

__all__ = ["app_for_workspace", "listening_socket", "serve"]


def https_fetch(url: str) -> bytes:
    """GET an https URL (SNS certificates, SNS subscription confirmations)."""
    if not url.startswith("https://"):
        raise ValueError("https only")
    with urllib.request.urlopen(url, timeout=10) as response:
        return bytes(response.read())


def app_for_workspace() -> Guard:
    """The ASGI app for the workspace in the current folder (refuses an unset token key)."""
    if not has_real_key():
        raise ConfigError(
            f"{KEY_ENV} is not set: unsubscribe links would be signed with a public "
            "placeholder, and anyone could unsubscribe anyone",
            hint=f'export {KEY_ENV}="$(openssl rand -hex 32)" (the same value when sending)',
        )
    return create_app(Endpoint(workspace_settings(), fetch=https_fetch))


def serve(app: Guard, sock: socket.socket, stop: threading.Event | None = None) -> None:
    """Serve ``app`` on ``sock`` (``listening_socket``) until stopped. X-Forwarded-For is read
    by the app itself, from ``[serve] trusted_proxies`` only.

    uvicorn stops gracefully on SIGTERM and Ctrl-C itself; ``stop`` also stops it (a
    signal that came while it was starting, before its own handlers were in place).
    """
    import uvicorn

    class Server(uvicorn.Server):
        async def on_tick(self, counter: int) -> bool:
            if stop is not None and stop.is_set():
                self.should_exit = True
            return await super().on_tick(counter)

    config = uvicorn.Config(
        app,
        proxy_headers=False,  # the app reads X-Forwarded-For from trusted proxies only
        access_log=False,  # the app writes its own access log, without personal data
        log_level="warning",
    )
    Server(config).run(sockets=[sock])
