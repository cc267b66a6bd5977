"""A real headless Chromium prefetching and prerendering the footer link leaves the reader
subscribed: only a POST unsubscribes.

The email's link sits in a page that asks the browser to fetch it ahead
(``<link rel=prefetch>``, Speculation Rules prefetch and prerender), as mail
clients, link scanners and browsers do. The test waits until the browser did
fetch the link (the server's access log shows it), so it cannot pass by the
browser doing nothing.
"""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from mailer.core.tokens import make_token
from mailer.feedback.server import Endpoint
from tests.feedback.served import serving
from tests.feedback.test_server import EN, NOW, settings, suppressions  # noqa: F401 (fixture)

pytestmark = pytest.mark.browser
CHROMIUM = "/usr/bin/chromium"


@contextmanager
def hosting(html: str) -> Iterator[str]:
    """A page served on 127.0.0.1 (another port: a mail web client's origin)."""

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = html.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/mail.html"
    finally:
        server.shutdown()
        server.server_close()


def test_prefetch_prerender_and_head_of_the_footer_link_unsubscribe_nobody(
    settings: Any,  # noqa: F811
) -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip("Chromium is not installed at /usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    token = make_token(EN, "spring", NOW)
    log: list[str] = []
    endpoint = Endpoint(settings, now=lambda: NOW, log=log.append)
    with serving(endpoint) as base:
        link = f"{base}/u/{token}"
        mail = (
            f'<!doctype html><html><head><link rel="prefetch" href="{link}">'
            f'<link rel="prerender" href="{link}">'
            '<script type="speculationrules">'
            f'{{"prefetch": [{{"source": "list", "urls": ["{link}"]}}],'
            f' "prerender": [{{"source": "list", "urls": ["{link}"]}}]}}</script>'
            f'</head><body><p>Our offer.</p><a href="{link}">Unsubscribe</a></body></html>'
        )
        with hosting(mail) as page_url, sync_playwright() as playwright:
            chromium = playwright.chromium.launch(
                executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
            )
            try:
                page = chromium.new_page()
                page.goto(page_url)
                page.hover("a")  # hovering a link is a prefetch hint too
                deadline = time.monotonic() + 30  # wait for the event, not a fixed sleep
                while not any('"/u/<token>"' in line for line in log):
                    assert time.monotonic() < deadline, "Chromium never fetched the link"
                    page.wait_for_timeout(50)
            finally:
                chromium.close()
        fetched = [line for line in log if '"/u/<token>"' in line]
        assert fetched and all('"method": "GET"' in line for line in fetched)
        assert httpx.head(link).status_code == 200  # a plain HEAD, as scanners send
        assert suppressions(settings) == {}
