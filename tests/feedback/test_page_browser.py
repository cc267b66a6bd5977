"""The unsubscribe page in real headless Chromium, at phone width: it renders, the button works."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mailer.core.tokens import make_token
from mailer.feedback.server import Endpoint
from tests.feedback.served import serving
from tests.feedback.test_server import NOW, ZH, settings, suppressions  # noqa: F401 (fixture)
from tests.preview.test_browser import browser  # noqa: F401 (fixture)

pytestmark = pytest.mark.browser


@pytest.fixture()
def phone(browser: Any) -> Iterator[Any]:  # noqa: F811
    context = browser.new_context(viewport={"width": 375, "height": 667}, java_script_enabled=False)
    yield context.new_page()
    context.close()


def test_the_page_fits_a_phone_and_its_buttons_unsubscribe_and_resubscribe(
    phone: Any,
    settings: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    requested: list[str] = []
    phone.on("request", lambda request: requested.append(request.url))
    token = make_token(ZH, "spring", NOW)
    with serving(Endpoint(settings, now=lambda: NOW, log=lambda _: None)) as base:
        phone.goto(f"{base}/u/{token}")
        assert phone.locator("h1").inner_text() == "退订"
        assert suppressions(settings) == {}  # opening the link changes nothing
        phone.get_by_role("button", name="退订").click()  # a plain form post: no JavaScript
        phone.wait_for_load_state()
        heading = phone.locator("h1")
        assert heading.inner_text() == "已退订"
        assert suppressions(settings) == {ZH: "unsubscribed"}
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width <= 375  # no sideways scrolling on a phone
        button = phone.get_by_role("button", name="重新订阅")
        box = button.bounding_box()
        assert box is not None and box["y"] + box["height"] <= 667  # on the first screen
        phone.screenshot(path=str(tmp_path / "unsubscribed.png"))
        button.click()  # a plain form post: JavaScript is off in this context
        phone.wait_for_load_state()
        assert phone.locator("h1").inner_text() == "欢迎回来"
        assert suppressions(settings) == {}
    assert requested and all(url.startswith(base) for url in requested)  # nothing third-party
