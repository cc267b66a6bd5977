"""The above-the-fold check in a real headless Chromium (one browser for the whole module)."""

from __future__ import annotations

import base64
import json
import os
import re
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mailer.campaign.prepared import prepare_campaign
from mailer.checks.fold import DESKTOP, PHONE, FoldBrowser, FoldOptions, FoldResult
from mailer.checks.fold_findings import fold_findings
from mailer.checks.gate import run_checks
from mailer.cli import app
from mailer.compose.compile import mjml_to_html
from mailer.core.errors import CheckError
from tests.workspace import example_settings, make_workspace

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no /usr/bin/chromium")


def svg(width: int, height: int) -> str:
    data = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">'
        f'<rect width="{width}" height="{height}" fill="#c8e6c9"/></svg>'
    )
    return "data:image/svg+xml;base64," + base64.b64encode(data.encode()).decode()


def email_mjml(hero: str = "") -> str:
    return f"""<mjml><mj-body>
<mj-section><mj-column>
<mj-text css-class="mailer-headline" font-size="26px">Spring teas are here</mj-text>
{hero}
<mj-text css-class="mailer-offer">20% off every green tea until 15 April.</mj-text>
<mj-button css-class="mailer-cta" href="https://shop.test/spring">Shop spring teas</mj-button>
</mj-column></mj-section>
<mj-section><mj-column><mj-text>Lotus Tea House, 18 Willow Lane</mj-text></mj-column></mj-section>
</mj-body></mjml>"""


GOOD_HTML = mjml_to_html(email_mjml(), "good.mjml")
# A 600×1400 hero between the headline and the offer: loaded (data: URL), it
# pushes the offer and the call to action far below the first screen.
TALL_HERO_HTML = mjml_to_html(
    email_mjml(f'<mj-image src="{svg(600, 1400)}" alt="Tea field" />'), "tall.mjml"
)


@pytest.fixture(scope="module")
def browser() -> Iterator[FoldBrowser]:
    with FoldBrowser(FoldOptions(executable_path=CHROMIUM)) as chromium:
        yield chromium


def codes(result: FoldResult) -> list[str]:
    return [f.code for f in fold_findings(result)]


@needs_chromium
@pytest.mark.browser
def test_key_blocks_above_the_fold_pass(browser: FoldBrowser) -> None:
    for viewport in (PHONE, DESKTOP):
        result = browser.measure(GOOD_HTML, viewport, label="good")
        assert [b.cls for b in result.blocks] == ["mailer-headline", "mailer-offer", "mailer-cta"]
        assert all(0 <= b.top < b.bottom <= viewport.height for b in result.blocks)
        assert codes(result) == []


@needs_chromium
@pytest.mark.browser
def test_tall_hero_pushes_call_to_action_below_the_fold(browser: FoldBrowser) -> None:
    result = browser.measure(TALL_HERO_HTML, PHONE, label="sample 1")
    findings = fold_findings(result)
    assert [(f.severity, f.code) for f in findings] == [("error", "fold-below")] * 2
    offer, cta = findings
    assert offer.message.startswith("the offer ends at ")
    assert cta.message.startswith("the call to action ends at ")
    assert cta.message.endswith(f"below the fold at 667px (top {result.blocks[2].top:.0f}px)")
    assert cta.where == "sample 1, phone 375×667"
    headline = result.blocks[0]
    assert headline.bottom < 667 < result.blocks[2].top  # headline fine, CTA past the fold
    assert "fold-below" in codes(browser.measure(TALL_HERO_HTML, DESKTOP))


@needs_chromium
@pytest.mark.browser
def test_overflow_unsized_image_and_blocked_network(browser: FoldBrowser) -> None:
    extra = (
        '<img src="https://cdn.shop.test/banner.jpg" alt="banner">'
        '<table style="width:700px"><tr><td>wide</td></tr></table>'
    )
    html = re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + extra, GOOD_HTML, count=1)
    result = browser.measure(html, PHONE, label="s")
    assert codes(result) == ["fold-overflow", "fold-uncertain", "fold-network"]
    assert result.blocked_requests == 1  # the remote image was not fetched
    assert all(block.uncertain for block in result.blocks)


@needs_chromium
@pytest.mark.browser
def test_an_image_that_did_not_load_keeps_the_room_it_will_take(browser: FoldBrowser) -> None:
    # The real image is 600×1400: with its size in the attributes, the blocked image
    # is measured at that shape (375×875 on a phone), and the call to action is below.
    sized = mjml_to_html(
        email_mjml(
            '<mj-image src="https://cdn.shop.test/hero.jpg" alt="Tea field" '
            'width="600px" height="1400px" />'
        ),
        "sized.mjml",
    )
    result = browser.measure(sized, PHONE, label="s")
    assert [f.code for f in fold_findings(result) if f.severity == "error"] == ["fold-below"] * 2
    assert not any(block.uncertain for block in result.blocks)
    # With no height, the image is measured as half its width tall, and every block
    # below it is an estimate: a warning and a '?', never a plain pass.
    unsized = mjml_to_html(
        email_mjml('<mj-image src="https://cdn.shop.test/hero.jpg" alt="Tea field" />'),
        "unsized.mjml",
    )
    result = browser.measure(unsized, PHONE, label="s")
    headline, offer, cta = result.blocks
    assert not headline.uncertain and offer.uncertain and cta.uncertain
    assert offer.top - headline.bottom >= 0.5 * 375 - 30  # the guessed 375×188 image
    assert "fold-uncertain" in codes(result)


@needs_chromium
@pytest.mark.browser
def test_second_cta_above_the_fold_and_unmarked_offer(browser: FoldBrowser) -> None:
    html = GOOD_HTML.replace("mailer-offer", "plain-offer").replace(
        "Lotus Tea House, 18 Willow Lane",
        '<span class="mailer-cta"><a href="https://shop.test/all">All teas</a></span>',
    )
    result = browser.measure(html, DESKTOP, label="s")
    assert codes(result) == ["fold-block-missing", "fold-cta-multiple"]


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def pixel(browser: FoldBrowser, png: Path, x: int, y: int) -> list[int]:
    """Read one pixel of a screenshot back through a canvas in the same browser."""
    src = "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode()

    def read() -> list[int]:
        page = browser.new_page()
        try:
            page.set_content(f'<img id="i" src="{src}">')
            return page.evaluate(
                """([x, y]) => { const i = document.getElementById('i');
                   const c = document.createElement('canvas'); c.width = i.naturalWidth;
                   c.height = i.naturalHeight; const g = c.getContext('2d');
                   g.drawImage(i, 0, 0); return Array.from(g.getImageData(x, y, 1, 1).data); }""",
                [x, y],
            )
        finally:
            page.close()

    return browser.call(read)


@needs_chromium
@pytest.mark.browser
def test_screenshot_draws_the_fold_line(browser: FoldBrowser, tmp_path: Path) -> None:
    shot = tmp_path / "shots" / "tall-phone.png"
    result = browser.measure(TALL_HERO_HTML, PHONE, shot=shot)
    assert result.shot == shot
    width, height = png_size(shot)
    assert width == 375 and height == result.page_height > 667  # the whole email, not one screen
    assert pixel(browser, shot, 20, 668)[:3] == [224, 0, 0]  # red line just under the fold
    assert pixel(browser, shot, 20, 700)[:3] != [224, 0, 0]


@needs_chromium
@pytest.mark.browser
@pytest.mark.parametrize("name", sorted(p.name for p in (REPO / "campaigns").glob("*.toml")))
def test_starter_campaigns_pass_in_the_browser(
    browser: FoldBrowser, name: str, tmp_path: Path
) -> None:
    prepared = prepare_campaign(REPO / "campaigns" / name, example_settings(tmp_path))
    report = run_checks(prepared, session=browser, sample_size=1)
    assert report.errors == [], report.errors
    assert report.fold_ran and report.fold_note.startswith("ran in Chromium on ")
    assert len(report.fold) == 2 * report.samples
    codes_found = {f.code for f in report.findings}
    assert not codes_found & {"fold-below", "fold-block-missing", "fold-overflow"}


TALL_TEMPLATE = """<mjml><mj-head><mj-title>{{ subject }}</mj-title>
<mj-preview>{{ preheader }}</mj-preview></mj-head><mj-body>
<mj-section><mj-column>
<mj-text css-class="mailer-headline">{{ headline }}</mj-text>
<mj-image src="https://tea.test/img/hero.jpg" alt="Tea field" width="600px" height="900px" />
<mj-text css-class="mailer-offer">{{ offer }}</mj-text>
<mj-button css-class="mailer-cta" href="{{ cta.url }}">{{ cta.text }}</mj-button>
<mj-text>{{ sender.name }}, {{ postal_address }} · <a href="{{ unsubscribe_url }}">Unsubscribe</a>
</mj-text>
</mj-column></mj-section></mj-body></mjml>
"""


@needs_chromium
@pytest.mark.browser
def test_cli_catches_a_template_with_a_tall_hero(tmp_path: Path) -> None:
    make_workspace(tmp_path)
    (tmp_path / "templates" / "promo.mjml").write_text(TALL_TEMPLATE, encoding="utf-8")
    old = Path.cwd()
    os.chdir(tmp_path)
    try:
        args = ["check", "campaigns/spring.toml", "--json", "--sample", "1", "--shots", "shots"]
        result = CliRunner().invoke(app, args)
    finally:
        os.chdir(old)
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    below = [f for f in data["findings"] if f["code"] == "fold-below"]
    assert {f["where"].split(" · ")[0] for f in below} == {"phone 375×667", "desktop 1024×600"}
    assert any(f["message"].startswith("the call to action ends at") for f in below)
    assert data["fold"]["ran"] is True
    shots = sorted(p.name for p in (tmp_path / "shots").iterdir())
    assert "sample1-A-phone-375x667.png" in shots


def test_missing_chromium_raises_instead_of_passing(tmp_path: Path) -> None:
    options = FoldOptions(executable_path=str(tmp_path / "nonexistent" / "chromium"))
    with pytest.raises(CheckError) as caught, FoldBrowser(options):
        pass
    assert "Chromium not found at" in caught.value.message
    assert "NOT run" in caught.value.message
    assert "apt-get install -y chromium" in (caught.value.hint or "")
    prepared = prepare_campaign(REPO / "campaigns" / "promotion.toml", example_settings(tmp_path))
    with pytest.raises(CheckError):
        run_checks(prepared, browser=True, fold_options=options)


def test_a_browser_that_does_not_start_is_an_error(tmp_path: Path) -> None:
    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    with pytest.raises(CheckError) as caught, FoldBrowser(FoldOptions(executable_path=str(fake))):
        pass
    assert caught.value.message.startswith(f"Chromium at {fake} did not start: ")
    assert caught.value.message.endswith("(the above-the-fold check was NOT run)")


@needs_chromium
@pytest.mark.browser
def test_unusable_shots_folder_is_a_clean_error(tmp_path: Path) -> None:
    make_workspace(tmp_path)
    (tmp_path / "shots").write_text("a file, not a folder")
    old = Path.cwd()
    os.chdir(tmp_path)
    try:
        result = CliRunner().invoke(app, ["check", "campaigns/spring.toml", "--shots", "shots"])
        nested = CliRunner().invoke(app, ["check", "campaigns/spring.toml", "--shots", "shots/x"])
    finally:
        os.chdir(old)
    assert result.exit_code == 1
    assert result.stderr == (
        "error: cannot save screenshots in shots: it is a file, not a folder\n"
        "  hint: choose a folder (it is created if missing)\n"
    )
    assert nested.exit_code == 1
    assert nested.stderr.startswith("error: cannot save screenshots in shots/x: ")


@needs_chromium
@pytest.mark.browser
def test_a_measurement_that_times_out_is_an_error_not_a_pass() -> None:
    options = FoldOptions(executable_path=CHROMIUM, timeout_ms=1)
    with FoldBrowser(options) as slow, pytest.raises(CheckError) as caught:
        slow.measure(TALL_HERO_HTML, PHONE, label="sample 1")
    assert caught.value.message.startswith(
        "Chromium failed while measuring sample 1 at phone 375×667: "
    )
    assert caught.value.message.endswith("(the above-the-fold check was NOT completed)")
