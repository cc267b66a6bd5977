"""``mailer serve``: one-click unsubscribes, the unsubscribe page, the relays' webhooks."""

from __future__ import annotations

from typing import Annotated

import typer

from mailer.cli.app import app, console, run
from mailer.core.process import StopSignals


@app.command()
def serve(
    host: Annotated[str, typer.Option("--host", help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="port to listen on")] = 8025,
) -> None:
    """Serve unsubscribes and relay webhooks.

    One-click unsubscribes and the unsubscribe page (/u/<token>), relays' webhooks
    (/hooks/<provider>) and tracked clicks (/c/<token>), behind your reverse proxy. Needs
    MAILER_UNSUBSCRIBE_KEY.

    Examples:

    \b
      mailer serve
      mailer serve --host 127.0.0.1 --port 8025
    """
    from mailer.services.serve import app_for_workspace, listening_socket
    from mailer.services.serve import serve as start

    app_ = run(app_for_workspace)  # a missing key is a clear error before anything listens
    sock = run(lambda: listening_socket(host, port))
    # uvicorn stops gracefully on SIGTERM and Ctrl-C (requests in progress finish), then
    # raises the signal again through the handlers it found: ours, so it exits 0.
    with StopSignals() as stop:
        console.print(f"serving unsubscribes and webhooks on http://{host}:{port}/ (Ctrl+C stops)")
        start(app_, sock, stop.event)
    if stop.stopped:
        console.print(f"stopped ({stop.name}): requests in progress finished")
