"""``mailer serve``'s app run by a real uvicorn on 127.0.0.1 (port 0), in a thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from mailer.feedback.server import Endpoint, create_app
from mailer.services.listening import listening_socket


@contextmanager
def serving(endpoint: Endpoint) -> Iterator[str]:
    """Serve ``endpoint`` until the block ends; yields the base URL."""
    sock = listening_socket("127.0.0.1", 0)  # as mailer serve makes its own
    port = sock.getsockname()[1]
    config = uvicorn.Config(  # as mailer serve runs it: X-Forwarded-For is the app's to read
        create_app(endpoint), log_level="warning", access_log=False, proxy_headers=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30  # a readiness wait, not a timing assertion
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
