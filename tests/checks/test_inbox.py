"""The checks for every inbox: client support (Can I Email's data), accessibility,
key blocks guessed in foreign templates, placeholders."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mailer.campaign.prepared import prepare_campaign
from mailer.checks.access import check_access
from mailer.checks.access_browser import access_in_browser
from mailer.checks.compat import (
    audience_mix,
    client_of,
    compat_data,
    find_gaps,
    gap_findings,
    mix_finding,
)
from mailer.checks.compat_scan import scan_html
from mailer.checks.fold import PHONE, FoldBrowser, FoldOptions
from mailer.checks.fold_findings import fold_findings
from mailer.checks.gate import run_checks
from mailer.compose.compile import mjml_to_html
from mailer.core.settings import load_settings
from tests.workspace import example_settings, make_workspace

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no /usr/bin/chromium")
NOBODY = audience_mix([])

FOREIGN = """<mjml lang="en">
<mj-head>
<mj-style>
.row { display: flex; gap: 8px; }
a.more:hover { color: #c00; }
@font-face { font-family: Brand; src: url(https://fonts.test/brand.woff2); }
</mj-style>
</mj-head>
<mj-body>
<mj-section><mj-column>
<mj-text><div class="row"><p>Spring tea</p></div></mj-text>
<mj-button href="https://tea.test/spring" border-radius="8px">Shop</mj-button>
<mj-image src="https://tea.test/img/hero.webp" alt="Tea field" />
</mj-column></mj-section>
</mj-body></mjml>
"""


def gaps_of(template: str, mix=NOBODY):
    html = mjml_to_html(template, "t.mjml")
    return {g.slug: g for g in find_gaps(html, template, mjml=True, mix=mix)}


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_the_bundled_data_is_dated_and_licensed():
    data = compat_data()
    assert data.date >= "2026-01-01" and "caniemail" in data.source.lower()
    assert "css-display-flex" in data.features
    notice = REPO / "mailer" / "checks" / "data" / "caniemail.NOTICE"
    assert "MIT License" in notice.read_text() and "Rémi Parmentier" in notice.read_text()


def test_features_the_template_writes_are_reported_at_their_line():
    gaps = gaps_of(FOREIGN)
    assert gaps["css-display-flex"].line == line_of(FOREIGN, "display: flex")
    assert "Outlook for Windows (desktop)" in gaps["css-display-flex"].clients
    assert gaps["css-gap"].line == line_of(FOREIGN, "gap: 8px")
    assert gaps["css-at-font-face"].line == line_of(FOREIGN, "@font-face")
    assert any(c.startswith("Gmail") for c in gaps["css-at-font-face"].clients)
    assert gaps["image-webp"].line == line_of(FOREIGN, "hero.webp")
    assert gaps["css-border-radius"].cosmetic  # square corners in Outlook: graceful
    assert gaps["css-pseudo-class-hover"].cosmetic


def test_what_mjml_writes_on_purpose_is_not_reported():
    plain = "<mjml><mj-body><mj-section><mj-column><mj-text>Hi</mj-text></mj-column></mj-section></mj-body></mjml>"
    html = mjml_to_html(plain, "t.mjml")
    # MJML's output uses @media, max-width, !important and MSO tables by itself...
    assert "@media" in html and "max-width" in html and "<!--[if mso" in html
    used = scan_html(html).tokens
    assert ("at-rule", "media", "") in used
    # ...none of which is the author's to fix.
    assert find_gaps(html, plain, mjml=True, mix=NOBODY) == []


def test_inside_not_mso_blocks_outlook_for_windows_is_not_blamed():
    html = (
        '<html><body><!--[if !mso]><!--><div style="display:flex">x</div><!--<![endif]-->'
        "</body></html>"
    )
    gaps = {g.slug: g for g in find_gaps(html, html, mjml=False, mix=NOBODY)}
    assert "css-display-flex" not in gaps  # only Outlook for Windows lacks it


def test_findings_carry_the_line_and_the_audience_share():
    mix = audience_mix(
        ["a@gmail.com", "b@googlemail.com", "c@qq.com", "d@hotmail.co.uk", "e@corp.test"]
    )
    assert mix.share("gmail") == 0.4 and mix.share("outlook-com") == 0.2
    assert mix.not_covered == ("QQ Mail",)
    findings = gap_findings(list(gaps_of(FOREIGN, mix).values()), "templates/t.mjml", mix)
    font = next(f for f in findings if "@font-face" in f.message)
    assert (
        font.severity == "warning"
        and font.where == f"templates/t.mjml:{line_of(FOREIGN, '@font-face')}"
    )
    assert "(60% of this audience)" in font.message  # Gmail 40% + Outlook.com 20%
    assert "caniemail.com/features/css-at-font-face" in font.message
    cosmetic = next(f for f in findings if f.code == "client-support-cosmetic")
    assert cosmetic.severity == "info" and "border-radius" in cosmetic.message
    note = mix_finding(mix).message
    assert "Gmail 40%" in note and "QQ Mail 20% (not covered by Can I Email's data)" in note
    assert compat_data().date in note


@pytest.mark.parametrize(
    ("domain", "client"),
    [("gmail.com", "gmail"), ("outlook.com", "outlook-com"), ("live.cn", "outlook-com"),
     ("msn.com", "outlook-com"), ("yahoo.co.jp", "yahoo"), ("aol.com", "yahoo"),
     ("icloud.com", "apple-mail"), ("me.com", "apple-mail"), ("163.com", "not-covered"),
     ("lotus-tea.test", "")],
)  # fmt: skip
def test_receiving_domains_map_to_clients(domain, client):
    assert client_of(domain) == client


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO / "campaigns").glob("*.toml")))
def test_shipped_campaigns_have_no_client_or_accessibility_warnings(name, tmp_path):
    prepared = prepare_campaign(REPO / "campaigns" / name, example_settings(tmp_path))
    report = run_checks(prepared, browser=False, sample_size=1)
    noisy = [f for f in report.warnings if f.code.startswith(("client-", "a11y-", "placeholder"))]
    assert noisy == []
    assert not [f for f in report.errors if f.code in ("placeholder", "content-unused")]
    assert any(f.code == "client-audience" for f in report.findings)


def test_static_accessibility_rules():
    html = (
        '<html lang="en"><body><a href="https://tea.test/x"><img src="https://tea.test/a.png" alt=""></a>'
        '<img src="https://tea.test/b.png" alt="IMG_1234"> <a href="https://tea.test/y">Click here</a>'
        '<a href="https://tea.test/z">点击这里</a> <a href="https://tea.test/w">See the winter oolongs</a>'
        '<a href="https://tea.test/w">Read more</a> <a href="https://tea.test/v" aria-label="Our shop">more</a>'
        "</body></html>"
    )
    found = {f.code: f for f in check_access(html, "zh")}
    assert "this language version is 'zh'" in found["a11y-lang"].message
    assert (
        "linked images without alt text (to https://tea.test/x)" in found["a11y-link-name"].message
    )
    assert "IMG_1234" in found["a11y-alt"].message
    assert (
        "'Click here'" in found["a11y-link-text"].message
        and "'点击这里'" in found["a11y-link-text"].message
    )
    listed = found["a11y-link-text"].message.split("does not say")[0]
    assert "Read more" not in listed and "'more'" not in listed  # named by context or label
    assert [f.code for f in check_access("<html><body>x</body></html>", None)] == ["a11y-lang"]
    rtl = check_access('<html lang="ar" dir="auto"><body>x</body></html>', "ar")
    assert [f.code for f in rtl] == ["a11y-dir"]
    assert check_access('<html lang="zh-CN" dir="auto"><body>好</body></html>', "zh") == []


@pytest.fixture(scope="module")
def browser() -> Iterator[FoldBrowser]:
    with FoldBrowser(FoldOptions(executable_path=CHROMIUM)) as chromium:
        yield chromium


LOW_CONTRAST = """<mjml><mj-head><mj-style>
.faint p { color: #bbbbbb; }
@media (prefers-color-scheme: dark) { body, .dark-bg { background: #000000 !important; } .dark-text p { color: #333333 !important; } }
</mj-style></mj-head><mj-body>
<mj-section><mj-column>
<mj-text css-class="mailer-headline" font-size="26px">Spring teas are here</mj-text>
<mj-text css-class="mailer-offer faint"><p>20% off every green tea until 15 April.</p></mj-text>
<mj-text css-class="dark-text"><p>Readable in light mode only.</p></mj-text>
<mj-button css-class="mailer-cta" href="https://shop.test/spring" inner-padding="2px 6px" font-size="12px">Shop</mj-button>
<mj-text><p>Questions? <a href="mailto:care@tea.test">Write to us</a> any time.</p></mj-text>
</mj-column></mj-section></mj-body></mjml>"""


@needs_chromium
@pytest.mark.browser
def test_contrast_in_light_and_dark_mode_and_tap_targets_on_the_phone(browser):
    html = mjml_to_html(LOW_CONTRAST, "t.mjml")
    browser.measure(html, PHONE, label="sample")
    found = access_in_browser(browser, "phone")
    by_where = {(f.code, f.where): f for f in found}
    light = by_where[("a11y-contrast", "phone, light mode")].message
    assert "p in .mailer-offer #bbbbbb on #ffffff = 1.92:1 (needs 4.5:1)" in light
    dark = by_where[("a11y-contrast", "phone, dark mode")].message
    assert "in .dark-text #333333 on #000000" in dark and ".mailer-offer" not in dark
    button = by_where[("a11y-tap-target", "phone")]
    assert button.severity == "warning" and "'Shop'" in button.message
    # The mailto link sits inside a sentence: exempt. The page is light again afterwards.
    assert "Write to us" not in button.message
    assert browser.evaluate("() => matchMedia('(prefers-color-scheme: dark)').matches") is False


FOREIGN_LAYOUT = """<mjml><mj-body>
<mj-section><mj-column>
<mj-text font-size="14px">Lotus Tea House · View online</mj-text>
<mj-text font-size="34px" font-weight="700">Winter oolongs are in</mj-text>
<mj-text font-size="16px">Four teas from the first cool weeks. Save 15% with code WINTER15.</mj-text>
<mj-button href="https://shop.test/winter" background-color="#2e6b4f">Shop now</mj-button>
</mj-column></mj-section></mj-body></mjml>"""


@needs_chromium
@pytest.mark.browser
def test_key_blocks_are_guessed_in_a_template_without_our_classes(browser):
    html = mjml_to_html(FOREIGN_LAYOUT, "t.mjml")
    result = browser.measure(html, PHONE, label="sample")
    blocks = {b.cls: b for b in result.blocks}
    assert set(blocks) == {"mailer-headline", "mailer-offer", "mailer-cta"}
    assert all(b.guessed for b in blocks.values())
    assert blocks["mailer-headline"].top < blocks["mailer-offer"].top < blocks["mailer-cta"].top
    found = {f.code: f for f in fold_findings(result)}
    assert "GUESSED" in found["fold-guessed"].message
    assert "fold-block-missing" not in found


@needs_chromium
@pytest.mark.browser
def test_check_runs_the_browser_accessibility_checks_in_the_fold_session(tmp_path, browser):
    path = make_workspace(tmp_path)
    template = tmp_path / "templates" / "promo.mjml"
    template.write_text(
        template.read_text().replace(
            '<mj-text css-class="mailer-headline hl">',
            '<mj-text css-class="mailer-headline" color="#dddddd">',
        )
    )
    prepared = prepare_campaign(path, load_settings(tmp_path, env={}))
    report = run_checks(prepared, session=browser, sample_size=1)
    contrast = [f for f in report.findings if f.code == "a11y-contrast"]
    assert contrast and "#dddddd on #ffffff" in contrast[0].message


def test_section_backgrounds_mjml_draws_in_vml_for_outlook_are_not_reported():
    template = (
        "<mjml><mj-body>"
        '<mj-section background-url="https://tea.test/bg.jpg" background-size="cover" '
        'background-repeat="no-repeat"><mj-column><mj-text>Hi</mj-text></mj-column></mj-section>'
        "</mj-body></mjml>"
    )
    html = mjml_to_html(template, "t.mjml")
    assert "v:fill" in html or "v:rect" in html  # MJML's Outlook fallback
    slugs = {g.slug for g in find_gaps(html, template, mjml=True, mix=NOBODY)}
    assert not {"css-background-size", "css-background-repeat"} & slugs


@needs_chromium
@pytest.mark.browser
@pytest.mark.parametrize("name", sorted(p.name for p in (REPO / "campaigns").glob("*.toml")))
def test_shipped_campaigns_pass_contrast_and_tap_targets_in_the_browser(name, tmp_path, browser):
    prepared = prepare_campaign(REPO / "campaigns" / name, example_settings(tmp_path))
    report = run_checks(prepared, session=browser, sample_size=1)
    assert [f for f in report.warnings if f.code.startswith("a11y-")] == []
    assert "GUESSED" not in report.fold_note
