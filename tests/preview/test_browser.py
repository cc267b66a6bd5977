"""The live preview in real headless Chromium: recipients, widths, live reload, send test."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from email import message_from_bytes
from email.header import decode_header, make_header
from pathlib import Path
from typing import Any

import pytest

from mailer.checks.fold import CHROMIUM_ARGS, DEFAULT_CHROMIUM
from mailer.preview.server import PreviewServer
from tests.preview.test_preview import CAMPAIGN, TEMPLATE, rewrite, start_server

pytestmark = pytest.mark.browser

# The fold check's own launch settings: one place knows how Chromium starts here.
CHROMIUM, ARGS = DEFAULT_CHROMIUM, CHROMIUM_ARGS
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
        expect(page.locator("#tab-email")).to_be_hidden()  # only the chosen tab shows
        expect(page.locator("#dkim")).to_have_text(
            "Not DKIM-signed: mailer.toml has no [dkim] key."
        )
        page.click("[data-tab=text]")
        expect(page.locator("#tab-text")).to_contain_text("Hello friend from somewhere.")
        expect(page.locator("#tab-email")).to_be_hidden()
        expect(page.locator("#tab-headers")).to_be_hidden()
        page.click("[data-tab=email]")
        expect(page.locator("#tab-text")).to_be_hidden()

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

    # The page follows the edit by itself (how fast is tests/benchmarks/bench_preview.py's
    # business: a timed assertion here would fail at random on a loaded machine).
    rewrite(template, TEMPLATE.replace("Hello", "Good day"))
    expect(frame_body(page)).to_contain_text("Good day Ann from London.", timeout=15_000)

    rewrite(template, TEMPLATE.replace("{{ offer }}", "{{ contact."))
    error = page.locator("#error")
    expect(error).to_be_visible(timeout=15_000)
    expect(page.locator("#error-text")).to_contain_text(f"{template}:7: Jinja syntax error")
    expect(page.locator("#status")).to_have_text("error")
    shoot(page, tmp_path, "preview-error.png")

    rewrite(template, TEMPLATE.replace("{{ offer }}", "{{ 1 / 0 }}"))  # fails while rendering
    expect(page.locator("#error-text")).to_contain_text("failed at this line: a division by zero")
    expect(page.locator("#status")).to_have_text("error")

    rewrite(template, TEMPLATE.replace("Hello", "Welcome back"))
    expect(error).to_be_hidden(timeout=15_000)
    expect(frame_body(page)).to_contain_text("Welcome back Ann from London.")

    campaign = server.session.path
    rewrite(campaign, CAMPAIGN.replace("spring tea is here", "the harvest is in"))
    expect(page.locator("#inbox li.selected .subject")).to_have_text(
        "Ann, the harvest is in", timeout=15_000
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


def test_narrow_window_wraps_instead_of_scrolling_sideways(
    browser: Any, server: PreviewServer, tmp_path: Path
) -> None:
    page = open_page(browser, server)
    for width in (1024, 1280, 1600):
        page.set_viewport_size({"width": width, "height": 900})
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{overflow}px of sideways scroll at {width}px"
        assert page.locator("#frame-desktop").bounding_box()["width"] == 720
    shoot(page, tmp_path, "preview-wide.png")


EVIL_PAGE = """<!doctype html><form id="form" method="POST" action="{target}" enctype="text/plain"
target="sink"><input name='{{"email":"ann@preview.test","x":"' value='"}}'></form>
<iframe name="sink"></iframe><script>
window.results = [];
(async () => {{
  const body = JSON.stringify({{ email: "ann@preview.test" }});
  const attempts = [
    ["json", {{ method: "POST", headers: {{ "Content-Type": "application/json" }}, body }}],
    ["no-cors", {{ method: "POST", mode: "no-cors", headers: {{ "Content-Type": "application/json" }}, body }}],
    ["no-cors text", {{ method: "POST", mode: "no-cors", body }}],
  ];
  for (const [name, options] of attempts) {{
    try {{ await fetch("{target}", options); results.push(name + ": answered"); }}
    catch (e) {{ results.push(name + ": blocked"); }}
  }}
  document.getElementById("form").submit();
  window.done = true;
}})();
</script>"""


def test_another_local_site_cannot_send_a_test(
    browser: Any, server: PreviewServer, tmp_path: Path
) -> None:
    """CSRF: a page on another origin (here another loopback port) POSTs at the preview."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    page_html = EVIL_PAGE.format(target=f"{server.url}api/send-test").encode()

    class Evil(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page_html)))
            self.end_headers()
            self.wfile.write(page_html)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    handler = server.httpd.RequestHandlerClass
    refused: list[str | None] = []
    same_origin = handler._same_origin  # type: ignore[attr-defined]

    def spy(self: Any) -> bool:
        ok = same_origin(self)
        if not ok:
            refused.append(self.headers.get("Origin"))
        return ok

    handler._same_origin = spy  # type: ignore[attr-defined]
    evil = ThreadingHTTPServer(("127.0.0.1", 0), Evil)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    try:
        page = browser.new_page()
        page.goto(f"http://localhost:{evil.server_address[1]}/")
        page.wait_for_function("window.done === true")
        page.wait_for_timeout(1000)  # the form's POST
        results = page.evaluate("window.results")
        page.close()
    finally:
        evil.shutdown()
        evil.server_close()
    assert results[0] == "json: blocked"  # the preflight gets no CORS answer
    # The rest reached the server (so this test checks the server, not only the browser).
    assert len(refused) == 3 and set(refused) == {f"http://localhost:{evil.server_address[1]}"}
    assert not (tmp_path / "outbox").exists()


def test_frames_fit_the_email_after_loading_hidden(browser: Any, server: PreviewServer) -> None:
    """Changing recipient on another tab or width re-renders hidden frames; shown, they fit."""
    from playwright.sync_api import expect

    template = server.session.path.parent.parent / "templates" / "card.mjml"
    tall = TEMPLATE.replace("</mj-column>", '<mj-spacer height="1400px" /></mj-column>')
    rewrite(template, tall)  # taller than the frames' minimum height
    page = open_page(browser, server)
    # The frame is as tall as its email (plus a margin): no clipped footer, no empty tail.
    # Waited for, not slept for: frames finish loading later on a busy machine.
    # A frame being reloaded has no document for a moment: that is "not yet", not an error.
    fits = """id => { const f = document.getElementById(id);
        const doc = f && f.contentDocument && f.contentDocument.documentElement;
        if (!doc) return false;
        const content = doc.getBoundingClientRect().height;
        return f.getBoundingClientRect().height - Math.ceil(content) === 16; }"""

    def assert_fits(frame_id: str) -> None:
        page.wait_for_function(fits, arg=frame_id, timeout=10_000)

    assert_fits("frame-phone")
    page.click("[data-tab=text]")
    page.select_option("#recipient", "chen@preview.test")
    expect(page.locator("#tab-text")).to_contain_text("Hello 晨")
    page.click("[data-tab=email]")
    assert_fits("frame-phone")
    assert_fits("frame-desktop")
    page.click("#mode-desktop")
    page.select_option("#recipient", "bob@preview.test")
    expect(frame_body(page, "#frame-desktop")).to_contain_text("Hello friend")
    page.click("#mode-both")
    assert_fits("frame-phone")


def test_dark_mode_uses_the_templates_own_dark_styles(
    browser: Any, server: PreviewServer, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    dark = (
        "<mj-style>@media (prefers-color-scheme: dark) "
        "{ .dark-aware { color: #fafafa !important; } }</mj-style>"
    )
    template = tmp_path / "templates" / "card.mjml"
    themed = TEMPLATE.replace("</mj-head>", dark + "</mj-head>").replace(
        '<mj-text css-class="mailer-offer">', '<mj-text css-class="mailer-offer dark-aware">'
    )
    rewrite(template, themed)
    page = open_page(browser, server)
    offer = page.frame_locator("#frame-phone").locator(".dark-aware").first
    light = offer.evaluate("e => getComputedStyle(e).color")
    page.check("#dark")
    expect(page.locator(".phone .dark-note")).to_have_text("· dark: the template's own dark styles")
    offer = page.frame_locator("#frame-phone").locator(".dark-aware").first
    expect(offer).to_have_css("color", "rgb(250, 250, 250)")
    assert light != "rgb(250, 250, 250)"
    frame = page.locator("#frame-phone").element_handle().content_frame()
    assert "invert" not in frame.evaluate("getComputedStyle(document.documentElement).filter")


BILINGUAL = (
    CAMPAIGN.replace(
        'subjects = ["{{', 'locale = "en"\ninherit = ["content.cta_url"]\nsubjects = ["{{'
    )
    + """
[locales.zh-CN]
subjects = ["{{ contact.first_name | default('朋友', true) }}，春茶上新", "明前龙井八折"]
preheader = "上周采摘，当天装罐。"

[locales.zh-CN.content]
headline = "春茶上新"
offer = "全场绿茶八折，至周日止。"
cta_text = "去选购"
"""
)
BILINGUAL_SETTINGS = """[sender]
name = "Preview Tea"
email = "news@preview.test"

[footer]
postal_address = "Preview Tea, 1 Loop Road, 00000 Localhost"

[footer.locales.zh]
postal_address = "上海市回环路 1 号 预览茶社"

[unsubscribe]
url = "https://preview.test/unsubscribe?t={{ token }}"
"""


def test_language_switch_shows_each_version_and_its_footer(browser: Any, tmp_path: Path) -> None:
    """The picker lists the versions; each shows its own subjects, texts and postal
    address; a version no sample contact reads is shown through a stand-in."""
    from playwright.sync_api import expect

    running = start_server(tmp_path, settings=BILINGUAL_SETTINGS)
    try:
        campaign = tmp_path / "campaigns" / "demo.toml"
        rewrite(campaign, BILINGUAL)
        contacts = tmp_path / "campaigns" / "contacts.csv"
        rewrite(contacts, "email,first_name,city,locale\nann@preview.test,Ann,London,en-GB\n"
                          "chen@preview.test,晨,上海,zh-TW\n")  # fmt: skip
        page = open_page(browser, running)
        expect(page.locator("#language-box")).to_be_visible()
        options = page.locator("#language option")
        expect(options).to_have_text(["en (top level)", "zh-CN"])
        expect(page.locator("#inbox li.selected .subject")).to_have_text("Ann, spring tea is here")
        expect(frame_body(page)).to_contain_text("Preview Tea, 1 Loop Road")

        page.select_option("#language", "zh-cn")
        # zh-TW falls back to zh, never sideways to zh-CN: chen reads the top level,
        # so the zh-CN version is shown through a stand-in.
        expect(page.locator("#meta")).to_contain_text("shown as a reader of zh-CN")
        expect(frame_body(page)).to_contain_text("春茶上新")
        expect(frame_body(page)).to_contain_text("上海市回环路 1 号 预览茶社")
        expect(page.locator("#variant option")).to_have_count(3)  # as assigned, A, B
        expect(page.locator("#variant option").nth(2)).to_contain_text("明前龙井八折")

        rewrite(contacts, "email,first_name,city,locale\nann@preview.test,Ann,London,en-GB\n"
                          "chen@preview.test,晨,上海,zh-CN\n")  # fmt: skip
        expect(page.locator("#recipient option")).to_have_text(["晨 <chen@preview.test>"])
        expect(page.locator("#meta")).not_to_contain_text("shown as a reader")
        expect(frame_body(page)).to_contain_text("上海市回环路 1 号 预览茶社")

        page.select_option("#language", "")
        expect(page.locator("#recipient option")).to_have_text(["Ann <ann@preview.test>"])
        expect(frame_body(page)).to_contain_text("Preview Tea, 1 Loop Road")
    finally:
        running.close()
