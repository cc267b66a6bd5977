"""The live preview in real headless Chromium: recipients, widths, live reload, send test."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from email import message_from_bytes
from email.header import decode_header, make_header
from pathlib import Path
from typing import Any

import pytest

from mailer.preview_server import PreviewServer
from tests.test_preview import CAMPAIGN, TEMPLATE, rewrite, start_server

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Set MAILER_PREVIEW_SHOTS=/some/folder to keep the screenshots for a human to look at.
SHOTS = os.environ.get("MAILER_PREVIEW_SHOTS")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Chromium is not installed at /usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


def open_page(browser: Any, server: PreviewServer) -> Any:
    """A fresh page on the preview, once the first email is shown."""
    from playwright.sync_api import expect

    expect.set_options(timeout=5000)
    context = browser.new_context(viewport={"width": 1560, "height": 1000})
    page = context.new_page()
    page.goto(server.url)
    expect(page.locator("#inbox li.selected .subject")).not_to_be_empty()
    return page


def frame_body(page: Any, frame: str = "#frame-phone") -> Any:
    return page.frame_locator(frame).locator("body")


def shoot(page: Any, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=True)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if SHOTS:
        shutil.copy(path, Path(SHOTS) / name)
    return path


@pytest.fixture
def server(tmp_path: Path) -> Iterator[PreviewServer]:
    running = start_server(tmp_path)
    yield running
    running.close()


def test_recipient_variant_width_and_checks(browser: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    running = start_server(tmp_path, fold=True)  # this one measures the fold in Chromium
    try:
        page = open_page(browser, running)
        selected = page.locator("#inbox li.selected")
        expect(selected.locator(".subject")).to_have_text("Ann, spring tea is here")
        expect(frame_body(page)).to_contain_text("Hello Ann from London.")
        expect(page.locator("#status")).to_have_text("live")

        page.select_option("#recipient", "bob@preview.test")
        expect(selected.locator(".subject")).to_have_text("Friend, spring tea is here")
        expect(frame_body(page)).to_contain_text("Hello friend from somewhere.")
        expect(frame_body(page, "#frame-desktop")).to_contain_text("Spring harvest, friend")
        label = page.locator("#recipient option:checked")
        expect(label).to_have_text("Brown <bob@preview.test> · missing city, first_name")

        page.select_option("#variant", "1")
        expect(page.locator('#inbox li[data-variant="1"]')).to_have_class("selected")
        expect(selected.locator(".subject")).to_have_text("春茶上新：明前龙井限时八折，本周下单…")
        page.click("[data-tab=headers]")
        subject_row = page.locator("#headers tr").filter(has=page.locator("th", has_text="Subject"))
        expect(subject_row.locator("td")).to_have_text(
            "春茶上新：明前龙井限时八折，本周下单包邮到家，还送一只白瓷茶杯"
        )
        page.click("[data-tab=text]")
        expect(page.locator("#tab-text")).to_contain_text("Hello friend from somewhere.")
        page.click("[data-tab=email]")

        page.click("#mode-phone")
        expect(page.locator("#frame-desktop")).to_be_hidden()
        assert page.locator("#frame-phone").bounding_box()["width"] == 375
        page.click("#mode-desktop")
        expect(page.locator("#frame-phone")).to_be_hidden()
        assert page.locator("#frame-desktop").bounding_box()["width"] == 720
        page.click("#mode-both")
        fold = page.locator(".phone .fold")
        screen = page.locator(".phone .screen").bounding_box()
        assert fold.bounding_box()["y"] - screen["y"] == pytest.approx(667, abs=2)

        page.check("#dark")
        expect(page.locator(".phone .dark-note")).to_have_text(
            "· dark: forced inversion (no dark styles in the template)"
        )
        frame = page.locator("#frame-phone").element_handle().content_frame()
        filt = frame.evaluate("getComputedStyle(document.documentElement).filter")
        assert "invert(1)" in filt
        shoot(page, tmp_path, "preview-dark.png")
        page.uncheck("#dark")

        checks = page.locator("#checks")
        expect(checks).to_contain_text("Fold (measured in Chromium):", timeout=20_000)
        expect(checks.locator(".fold-results")).to_contain_text("phone 375×667")
        expect(checks.locator(".fold-results")).to_contain_text("above the fold")
        shoot(page, tmp_path, "preview.png")
    finally:
        running.close()


def test_live_reload_error_and_recovery(browser: Any, server: PreviewServer, tmp_path: Path):
    from playwright.sync_api import expect

    page = open_page(browser, server)
    expect(frame_body(page)).to_contain_text("Hello Ann from London.")
    expect(page.locator("#checks")).to_contain_text("Fold NOT RUN")  # never faked
    template = tmp_path / "templates" / "card.mjml"

    started = time.monotonic()
    rewrite(template, TEMPLATE.replace("Hello", "Good day"))
    expect(frame_body(page)).to_contain_text("Good day Ann from London.", timeout=2000)
    assert time.monotonic() - started < 2.0

    rewrite(template, TEMPLATE.replace("{{ offer }}", "{{ contact."))
    error = page.locator("#error")
    expect(error).to_be_visible(timeout=2000)
    expect(page.locator("#error-text")).to_contain_text(f"{template}: MJML could not compile")
    expect(page.locator("#status")).to_have_text("error")
    shoot(page, tmp_path, "preview-error.png")

    rewrite(template, TEMPLATE.replace("Hello", "Welcome back"))
    expect(error).to_be_hidden(timeout=2000)
    expect(frame_body(page)).to_contain_text("Welcome back Ann from London.")

    campaign = server.session.path
    rewrite(campaign, CAMPAIGN.replace("spring tea is here", "the harvest is in"))
    expect(page.locator("#inbox li.selected .subject")).to_have_text(
        "Ann, the harvest is in", timeout=2000
    )


def test_send_test_button_writes_a_test_message(
    browser: Any, server: PreviewServer, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    page = open_page(browser, server)
    page.select_option("#recipient", "chen@preview.test")
    expect(frame_body(page)).to_contain_text("Hello 晨 from 上海.")
    expect(page.locator("#send-test")).to_have_text("Send test to tester@preview.test")
    page.click("#send-test")
    result = page.locator("#send-result")
    expect(result).to_contain_text("Test sent to tester@preview.test via outbox")
    eml = tmp_path / "outbox" / "test" / "tester@preview.test.eml"
    message = message_from_bytes(eml.read_bytes())
    subject = str(make_header(decode_header(message["Subject"])))
    # Chen is assigned variant B; the test carries the variant the page shows.
    assert subject == "[TEST] 春茶上新：明前龙井限时八折，本周下单包邮到家，还送一只白瓷茶杯"
    html = next(p for p in message.walk() if p.get_content_type() == "text/html")
    body = html.get_payload(decode=True).decode()
    assert "Hello 晨" in body and "from 上海." in body
    expect(result).to_contain_text("[TEST] ")
