"""Language versions never borrow another language's text silently; ``fallback_locale``
chooses the version for readers of other languages; the unsubscribe page speaks the
email's language."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx

from mailer.campaign.prepared import prepare_campaign
from mailer.core.settings import load_settings
from mailer.core.tokens import make_token, read_token
from mailer.feedback.server import Endpoint
from tests.compose.test_locales import BILINGUAL
from tests.feedback.served import serving
from tests.workspace import invoke, make_workspace

JAPANESE = """
[locales.ja]
subject = "春の新茶が届きました"
preheader = "今週は緑茶が20%オフ"

[locales.ja.content]
headline = "春のお茶"
offer = "緑茶がすべて20%オフ"
cta_text = "新茶を見る"
"""
# The top level has Chinese paragraphs and a sign-off in [data]; ja gives none of them.
CHINESE_DATA = BILINGUAL.replace(
    "[data]\n",
    '[data]\nparagraphs = ["今年的明前龙井已经到店。"]\nsign_off = "莲心茶馆"\nyear = 2027\n',
)
CONTACTS = (
    "email,first_name,locale\n"
    "li@tea.test,李雷,zh-CN\n"
    "mei@tea.test,美,zh-TW\n"
    "ann@tea.test,Ann,en-GB\n"
    "eve@tea.test,Eve,fr\n"
    "kim@tea.test,Kim,\n"
)


def test_a_version_that_would_borrow_text_is_an_error_naming_each_key(tmp_path: Path) -> None:
    make_workspace(tmp_path, campaign=CHINESE_DATA + JAPANESE, contacts=CONTACTS)
    result = invoke(tmp_path, "check", "campaigns/spring.toml", "--no-browser")
    assert result.exit_code == 1, result.output
    out = " ".join(result.output.split())
    # en and ja both lack the Chinese paragraphs and sign-off (the button URL and products
    # are declared shared). The year is a number: no language in it, no error.
    assert "[locales.en] inherits data.paragraphs, data.sign_off;" in out
    assert "[locales.ja] inherits data.paragraphs, data.sign_off from" in out
    assert "from the top-level (zh-CN) texts" in out and "data.year" not in out
    assert re.search(r"spring\.toml:\d+", out) and "Traceback" not in out


def test_declared_keys_are_shared_and_the_rest_is_given_per_version(tmp_path: Path) -> None:
    shared = (
        CHINESE_DATA.replace(
            'inherit = ["content.cta_url", "data.products"]',
            'inherit = ["content.cta_url", "data.products", "data.sign_off"]',
        )
        + '\n[locales.en.data]\nparagraphs = ["This year\'s first-flush Longjing is in."]\n'
    )
    make_workspace(tmp_path, campaign=shared, contacts=CONTACTS)
    prepared = prepare_campaign(
        tmp_path / "campaigns" / "spring.toml", load_settings(tmp_path, env={})
    )
    english = prepared.compiled.locales["en"].campaign
    assert english.data["paragraphs"] == ["This year's first-flush Longjing is in."]
    assert english.data["sign_off"] == "莲心茶馆"  # declared: the same in every language
    unknown = CHINESE_DATA.replace('"data.products"]', '"data.products", "data.nope"]')
    make_workspace(tmp_path, campaign=unknown, contacts=CONTACTS)
    result = invoke(tmp_path, "check", "campaigns/spring.toml", "--no-browser")
    assert result.exit_code == 1 and "inherit names data.nope" in result.output


def test_fallback_locale_chooses_the_version_for_other_languages(tmp_path: Path) -> None:
    make_workspace(tmp_path, campaign=BILINGUAL, contacts=CONTACTS)
    path = tmp_path / "campaigns" / "spring.toml"
    settings = load_settings(tmp_path, env={})
    without = {p.email: prepare_campaign(path, settings).build(p) for p in
               prepare_campaign(path, settings).recipients()}  # fmt: skip
    assert without["eve@tea.test"].variant_name.startswith("zh-CN")  # the top level
    path.write_text(
        BILINGUAL.replace('locale = "zh-CN"', 'locale = "zh-CN"\nfallback_locale = "en"')
    )
    prepared = prepare_campaign(path, settings)
    built = {p.email: prepared.build(p) for p in prepared.recipients()}
    assert built["eve@tea.test"].variant_name == "en A"  # French reader: the English version
    assert built["ann@tea.test"].variant_name == "en A"
    assert built["mei@tea.test"].variant_name.startswith("zh-CN")  # zh-TW: Chinese still
    assert built["kim@tea.test"].variant_name.startswith("zh-CN")  # no locale: the top level
    path.write_text(
        BILINGUAL.replace('locale = "zh-CN"', 'locale = "zh-CN"\nfallback_locale = "de"')
    )
    result = invoke(tmp_path, "check", "campaigns/spring.toml", "--no-browser")
    assert result.exit_code == 1 and "fallback_locale 'de' is not one of" in result.output


def test_the_unsubscribe_page_follows_the_emails_language(tmp_path: Path) -> None:
    make_workspace(tmp_path, campaign=BILINGUAL.replace(
        'locale = "zh-CN"', 'locale = "zh-CN"\nfallback_locale = "en"'), contacts=CONTACTS)  # fmt: skip
    invoke(tmp_path, "contacts", "import", "campaigns/contacts.csv")
    settings = load_settings(tmp_path, env={})
    prepared = prepare_campaign(tmp_path / "campaigns" / "spring.toml", settings)
    built = {p.email: prepared.build(p) for p in prepared.recipients()}
    tokens = {
        email: re.search(r"unsubscribe\?t=([A-Za-z0-9_.-]+)", out.rendered.html).group(1)  # type: ignore[union-attr]
        for email, out in built.items()
    }
    assert read_token(tokens["eve@tea.test"], time.time()).lang == "en"  # type: ignore[union-attr]
    assert read_token(tokens["mei@tea.test"], time.time()).lang == "zh-CN"  # type: ignore[union-attr]
    with serving(Endpoint(settings, log=lambda _: None)) as base:
        french = httpx.get(f"{base}/unsubscribe", params={"t": tokens["eve@tea.test"]})
        taiwan = httpx.get(f"{base}/unsubscribe", params={"t": tokens["mei@tea.test"]})
        old = make_token("eve@tea.test", "spring", time.time())  # made before tokens had a language
        legacy = httpx.get(f"{base}/unsubscribe", params={"t": old})
    assert '<html lang="en"' in french.text and "Stop marketing email" in french.text
    assert '<html lang="zh"' in taiwan.text and "退订" in taiwan.text
    assert legacy.status_code == 200  # an older token still works (the contact's locale)
