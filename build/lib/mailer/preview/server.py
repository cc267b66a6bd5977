"""The preview's HTTP side: a small stdlib server on 127.0.0.1 with JSON and Server-Sent Events.

Routes:
    GET  /                 the page (``mailer/static/preview.html``)
    GET  /static/<file>    its script and styles
    GET  /api/state        campaign overview and sample recipients (or the error)
    GET  /api/view         one recipient's email: ?email=...&variant=auto|0|1...&lang=<version>
    GET  /api/checks       the `mailer check` findings for that recipient
    POST /api/send-test    send it to the test address, marked [TEST]
    GET  /events           Server-Sent Events: ``version`` whenever a watched file changes

The server only listens on loopback and refuses requests whose ``Host`` is not
loopback (a web page elsewhere cannot rebind a name to it). ``send-test`` needs
a JSON body, which a cross-site form cannot send without a CORS preflight (and
the server answers no preflight), and it also refuses any request whose
``Origin`` or ``Sec-Fetch-Site`` says it came from another site. The test
address comes from the settings only: no request can choose where a test goes.
"""

from __future__ import annotations

import json
import threading
import traceback
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from mailer.core.errors import ConfigError, MailerError
from mailer.core.settings import Settings
from mailer.preview.session import PreviewSession
from mailer.preview.view import error_info

HOST = "127.0.0.1"
STATIC = {
    "preview.html": "text/html; charset=utf-8",
    "preview.js": "text/javascript; charset=utf-8",
    "preview.css": "text/css; charset=utf-8",
}
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
KEEPALIVE_SECONDS = 10.0


class PreviewServer:
    """A running preview: the HTTP server, the file watcher, and the session they share."""

    def __init__(self, session: PreviewSession, port: int = 0, poll: float = 0.2):
        self.session = session
        self.poll = poll
        self.stopping = threading.Event()
        try:
            self.httpd = ThreadingHTTPServer((HOST, port), _handler_for(self))
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {HOST}:{port}: {exc.strerror}",
                hint="choose another port, or port 0 for a free one",
                advice="preview-port",
            ) from None
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False  # event streams never end on their own
        self._threads: list[threading.Thread] = []

    @property
    def port(self) -> int:
        """The port actually bound (useful with port 0)."""
        return int(self.httpd.server_address[1])

    @property
    def url(self) -> str:
        """Where to point the browser."""
        return f"http://{HOST}:{self.port}/"

    def start(self) -> PreviewServer:
        """Serve and watch in background threads; return at once."""
        self.session.refresh()
        for target in (self._serve, self._watch):
            thread = threading.Thread(target=target, name="mailer-preview", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def _serve(self) -> None:
        # A short poll interval makes ``close`` quick (it waits for the loop to notice).
        self.httpd.serve_forever(poll_interval=0.05)

    def _watch(self) -> None:
        # Polling a handful of files costs microseconds and works on every file system.
        while not self.stopping.wait(self.poll):
            try:
                self.session.refresh()
            except Exception:  # a bug must not end live reload for the rest of the session
                traceback.print_exc()

    def wait(self) -> None:
        """Block until ``close`` is called (or Ctrl+C in the caller)."""
        while not self.stopping.wait(0.5):
            pass

    def close(self) -> None:
        """Stop serving, end the event streams, release the port."""
        self.stopping.set()
        self.session.close()
        self.httpd.shutdown()
        self.httpd.server_close()


def start_preview(
    campaign: Path,
    load_settings: Callable[[], Settings],
    *,
    port: int = 0,
    settings_file: Path | None = None,
    poll: float = 0.2,
    fold: bool = True,
) -> PreviewServer:
    """Start a preview server for ``campaign`` on 127.0.0.1 and return it (already serving)."""
    from mailer.core.errors import CampaignError

    if not Path(campaign).is_file():
        raise CampaignError(
            "campaign file not found", where=str(campaign), hint="check the path and try again"
        )
    session = PreviewSession(campaign, load_settings, settings_file, fold=fold)
    return PreviewServer(session, port=port, poll=poll).start()


def _handler_for(server: PreviewServer) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        preview = server

    return Handler


class _Handler(BaseHTTPRequestHandler):
    preview: PreviewServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: query strings carry contact addresses, which stay out of logs."""

    def _host_ok(self) -> bool:
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0]
        if host in _LOOPBACK_HOSTS:
            return True
        self._send_json({"error": "this preview only answers on 127.0.0.1"}, HTTPStatus.FORBIDDEN)
        return False

    def do_GET(self) -> None:
        """Serve the page, its files, the JSON API and the event stream."""
        if not self._host_ok():
            return
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        session = self.preview.session
        routes: dict[str, Callable[[], dict[str, Any]]] = {
            "/api/state": session.state,
            "/api/view": lambda: session.view(
                query.get("email"), query.get("variant"), query.get("lang")
            ),
            "/api/checks": lambda: session.checks(
                query.get("email"), query.get("variant"), query.get("lang")
            ),
        }
        if url.path in routes:
            self._answer(routes[url.path])
        elif url.path == "/events":
            self._events()
        elif url.path in ("/", "/index.html"):
            self._send_static("preview.html")
        elif url.path.startswith("/static/") and url.path[8:] in STATIC:
            self._send_static(url.path[8:])
        else:
            self._send_json({"error": "not found"}, HTTPStatus.NOT_FOUND)

    def do_POST(self) -> None:
        """``/api/send-test``: send the chosen recipient's version to the test address."""
        if not self._host_ok():
            return
        if urlsplit(self.path).path != "/api/send-test":
            self._send_json({"error": "not found"}, HTTPStatus.NOT_FOUND)
            return
        if not self._same_origin():
            return
        if not (self.headers.get("Content-Type") or "").startswith("application/json"):
            self._send_json({"error": "send a JSON body"}, HTTPStatus.UNSUPPORTED_MEDIA_TYPE)
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            email, variant, language = body.get("email"), body.get("variant"), body.get("lang")
        except (ValueError, AttributeError):
            self._send_json({"error": "bad JSON body"}, HTTPStatus.BAD_REQUEST)
            return

        def send() -> dict[str, Any]:
            try:
                return self.preview.session.send_test(
                    email,
                    None if variant is None else str(variant),
                    None if language is None else str(language),
                )
            except MailerError as error:
                return {"ok": False, "error": error_info(error)}

        self._answer(send)

    def _same_origin(self) -> bool:
        """Refuse a request another site's page made (a browser says so in these headers)."""
        origin = self.headers.get("Origin")
        fetch_site = self.headers.get("Sec-Fetch-Site")
        own = {f"http://{host}:{self.preview.port}" for host in _LOOPBACK_HOSTS}
        if (origin is None or origin in own) and fetch_site in (None, "same-origin", "none"):
            return True
        refused = MailerError(
            "refused: this request came from another web site",
            hint=f"use the Send test button on {self.preview.url} itself",
        )
        self._send_json({"ok": False, "error": error_info(refused)}, HTTPStatus.FORBIDDEN)
        return False

    def _answer(self, route: Callable[[], dict[str, Any]]) -> None:
        """Send the route's JSON; a bug becomes a 500 with a readable error, never a dead page."""
        try:
            data = route()
        except Exception as exc:
            traceback.print_exc()  # to the terminal only, for a bug report; never to a file
            bug = MailerError(f"internal error: {type(exc).__name__}: {exc}")
            self._send_json(
                {"ok": False, "available": False, "reason": str(bug), "error": error_info(bug)},
                HTTPStatus.INTERNAL_SERVER_ERROR,
            )
            return
        self._send_json(data)

    def _send_json(self, data: dict[str, Any], status: HTTPStatus = HTTPStatus.OK) -> None:
        body = json.dumps(data, ensure_ascii=False).encode("utf-8")
        self._send_bytes(body, "application/json; charset=utf-8", status)

    def _send_static(self, name: str) -> None:
        body = resources.files("mailer.preview").joinpath("static", name).read_bytes()
        self._send_bytes(body, STATIC[name])

    def _send_bytes(self, body: bytes, kind: str, status: HTTPStatus = HTTPStatus.OK) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _events(self) -> None:
        """Push the version whenever it changes; a comment every few seconds keeps it open."""
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        session, stopping = self.preview.session, self.preview.stopping
        sent = -1
        try:
            while not stopping.is_set():
                version = session.wait_change(sent, KEEPALIVE_SECONDS)
                if stopping.is_set():
                    break
                if version != sent:
                    self.wfile.write(f"event: version\ndata: {version}\n\n".encode())
                    sent = version
                else:
                    self.wfile.write(b": keepalive\n\n")
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the page was closed or reloaded
