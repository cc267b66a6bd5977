"""Click tracking and ``mailer report``: a real send to aiosmtpd with tracked links, clicks
through a real uvicorn, the report as text, JSON and an HTML page opened in Chromium."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from mailer.audience.store import connect
from mailer.campaign.prepared import prepare_campaign
from mailer.core.settings import load_settings
from mailer.core.tokens import make_link_token
from mailer.delivery.send import send_campaign
from mailer.feedback.server import Endpoint
from tests.delivery.test_send import transport_for
from tests.feedback.served import serving
from tests.send_workspace import fast_options
from tests.smtp_server import SmtpServer
from tests.workspace import SETTINGS, invoke, make_workspace

TRACKING = '\n[tracking]\nclicks = true\nurl = "https://mail.tea.test"\n'
CONTACTS = "email,first_name,tracking\n" + "".join(
    f"p{i}@{'ab'[i % 2]}.test,P{i},{'no' if i == 5 else ''}\n" for i in range(12)
)
_TRACKED = re.compile(r"https://mail\.tea\.test/c/([A-Za-z0-9_.-]+)")


@pytest.fixture()
def sent(tmp_path: Path, smtp_server: SmtpServer) -> Iterator[tuple[Path, dict[str, bytes]]]:
    make_workspace(tmp_path, contacts=CONTACTS)
    (tmp_path / "mailer.toml").write_text(SETTINGS + TRACKING, encoding="utf-8")
    settings = load_settings(tmp_path, env={})
    prepared = prepare_campaign(tmp_path / "campaigns" / "spring.toml", settings)

    def send() -> Any:
        # In a thread of its own: the browser fixture (sync playwright) may own this
        # thread's event loop already.
        conn = connect(tmp_path / "mailer.db")
        try:
            return send_campaign(
                prepared, conn=conn, transport=transport_for(smtp_server), options=fast_options()
            )
        finally:
            conn.close()

    with ThreadPoolExecutor(1) as pool:
        report = pool.submit(send).result()
    assert report.sent == 12
    yield tmp_path, {r.rcpt_tos[0]: r.data for r in smtp_server.handler.received}


def test_links_are_tracked_except_unsubscribe_mailto_and_opted_out_people(
    sent: tuple[Path, dict[str, bytes]],
) -> None:
    _, messages = sent
    body = messages["p0@a.test"].decode("utf-8", "replace").replace("=\r\n", "")
    assert _TRACKED.search(body)  # the button and product links go through /c/
    assert "https://tea.test/unsubscribe?t=" in body or "unsubscribe" in body
    assert "mailto:hello@tea.test" in body
    assert not _TRACKED.search(messages["p5@b.test"].decode("utf-8", "replace"))  # tracking=no


def test_a_click_is_counted_and_redirected_only_where_the_token_says(
    sent: tuple[Path, dict[str, bytes]],
) -> None:
    root, messages = sent
    settings = load_settings(root, env={})
    tokens = {
        email: sorted(set(_TRACKED.findall(data.decode("utf-8", "replace").replace("=\r\n", ""))))
        for email, data in messages.items()
    }
    with serving(Endpoint(settings, log=lambda _: None)) as base:
        first = httpx.get(f"{base}/c/{tokens['p0@a.test'][0]}")
        for email in ("p0@a.test", "p1@b.test", "p2@a.test"):
            httpx.get(f"{base}/c/{tokens[email][0]}")
        token = tokens["p0@a.test"][0]
        tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
        forged = make_link_token("p0@a.test", "spring", "A", "https://evil.test/", key=b"x")
        bad = [httpx.get(f"{base}/c/{t}") for t in (tampered, forged, "nonsense")]
    assert first.status_code == 302 and first.headers["location"].startswith("https://tea.test/")
    assert all(r.status_code == 404 and "location" not in r.headers for r in bad)
    result = invoke(root, "report", "campaigns/spring.toml", "--json")
    data = json.loads(result.output)
    assert sum(link["clicks"] for link in data["links"]) == 4
    assert data["statuses"] == {"sent": 12}
    assert sum(v["clickers"] for v in data["variants"]) == 3
    assert {d["domain"] for d in data["domains"]} == {"a.test", "b.test"}


def test_the_html_report_opens_in_chromium_with_charts(
    sent: tuple[Path, dict[str, bytes]], tmp_path: Path, browser: Any
) -> None:
    root, _ = sent
    page_file = tmp_path / "report.html"
    result = invoke(root, "report", "campaigns/spring.toml", "--html", str(page_file))
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output and "spring: 12 sent" in result.output
    text = page_file.read_text(encoding="utf-8")
    assert "<script" not in text
    assert not re.search(r'(src|href)="(https?:)?//', text)  # nothing loaded from elsewhere
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(page_file.as_uri())
    assert page.locator(".chart").count() >= 1 and page.locator("table").count() >= 1
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # fits a phone
    page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    context.close()
    assert errors == [] and requests == [page_file.as_uri()]


def test_unknown_and_unsent_campaigns(tmp_path: Path) -> None:
    make_workspace(tmp_path)
    unknown = invoke(tmp_path, "report", "nope")
    assert unknown.exit_code == 1 and "no campaign 'nope' in the journal" in unknown.output
    empty = invoke(tmp_path, "report", "campaigns/spring.toml")
    assert empty.exit_code == 0 and "nothing has been sent yet" in empty.output
    page = tmp_path / "empty.html"
    invoke(tmp_path, "report", "campaigns/spring.toml", "--html", str(page))
    assert "Nothing has been sent for this campaign yet." in page.read_text(encoding="utf-8")


def test_a_report_that_cannot_be_written_and_a_year_out_of_range(tmp_path: Path) -> None:
    make_workspace(tmp_path)
    unwritable = invoke(
        tmp_path, "report", "campaigns/spring.toml", "--html", str(tmp_path / "no" / "r.html")
    )
    assert unwritable.exit_code == 1 and "cannot write the report" in unwritable.output
    far = invoke(tmp_path, "calendar", "--year", "2300")
    assert far.exit_code == 1 and "covers 1901–2099" in far.output
    assert "Traceback" not in unwritable.output + far.output
