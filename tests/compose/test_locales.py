"""One campaign, several languages: the fallback chain, missing translations, per-language
A/B splits, checks and the send journal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mailer.audience.store import connect
from mailer.campaign.prepared import prepare_campaign
from mailer.compose.locales import locale_chain, locale_key
from mailer.core.errors import CampaignError, TemplateError
from mailer.core.settings import load_settings
from mailer.delivery.send import send_campaign
from tests.delivery.test_send import transport_for
from tests.send_workspace import fast_options
from tests.smtp_server import SmtpServer
from tests.workspace import CAMPAIGN, invoke, make_workspace

ENGLISH = """
[locales.en]
subject = "Spring tea is here, {{ contact.first_name | default('friend', true) }}"
preheader = "Fresh leaves from the first harvest, 20% off this week"

[locales.en.content]
headline = "Spring tea, {{ contact.first_name | default('friend', true) }}"
offer = "20% off all green teas"
cta_text = "Shop the harvest"
"""
# The top-level texts are Chinese, with two subjects (an A/B test of their own).
BILINGUAL = (
    CAMPAIGN.replace(
        'template = "promo"',
        'template = "promo"\nlocale = "zh-CN"\ninherit = ["content.cta_url", "data.products"]',
    )
    .replace('"Spring tea is here"', '"春茶上新"')
    .replace('headline = "Spring tea, ', 'headline = "春茶，')
    + ENGLISH
)
CONTACTS = (
    "email,first_name,locale\n"
    "li@tea.test,李雷,zh-CN\n"
    "mei@tea.test,美,zh-TW\n"
    "ann@tea.test,Ann,en-GB\n"
    "bob@tea.test,Bob,EN_us\n"
    "kim@tea.test,Kim,\n"
)


def test_the_fallback_chain_steps_back_one_subtag_at_a_time() -> None:
    assert locale_chain("zh-Hant-TW") == ["zh-hant-tw", "zh-hant", "zh"]
    versions = {"en": 1, "zh": 2}
    assert locale_key(versions, {"locale": "en-GB"}) == "en"
    assert locale_key(versions, {"locale": "EN_us"}) == "en"
    assert locale_key(versions, {"locale": "zh-TW"}) == "zh"
    assert locale_key({"zh-cn": 1}, {"locale": "zh-TW"}) is None  # never sideways: default
    assert locale_key(versions, {"locale": "fr"}) is None
    assert locale_key(versions, {}) is None and locale_key({}, {"locale": "en"}) is None


def test_each_contact_gets_their_language_with_its_own_ab_split(tmp_path: Path) -> None:
    make_workspace(tmp_path, campaign=BILINGUAL, contacts=CONTACTS)
    prepared = prepare_campaign(
        tmp_path / "campaigns" / "spring.toml", load_settings(tmp_path, env={})
    )
    built = {p.email: prepared.build(p) for p in prepared.recipients()}
    assert built["ann@tea.test"].subject == "Spring tea is here, Ann"
    assert built["bob@tea.test"].subject == "Spring tea is here, Bob"
    assert built["ann@tea.test"].variant_name == "en A"  # English has one subject
    assert "20% off all green teas" in built["ann@tea.test"].rendered.html
    for email in ("li@tea.test", "mei@tea.test", "kim@tea.test"):  # zh-TW, none: the default
        out = built[email]
        assert "新春快乐" in out.subject or out.subject == "春茶上新", email
        assert out.variant_name in ("zh-CN A", "zh-CN B")
    # The button URL the English version does not give is the top-level one.
    assert "https://tea.test/spring?ref=mail" in built["ann@tea.test"].rendered.text


def test_a_missing_translation_names_every_gap_before_anything_is_sent(tmp_path: Path) -> None:
    broken = BILINGUAL + '\n[locales.fr]\nsubject = "Thé de printemps"\n'
    broken = broken.replace('offer = "20% off all green teas"\n', "")
    make_workspace(tmp_path, campaign=broken, contacts=CONTACTS)
    with pytest.raises(CampaignError) as caught:
        prepare_campaign(tmp_path / "campaigns" / "spring.toml", load_settings(tmp_path, env={}))
    text = str(caught.value)
    assert "missing translations (en: content.offer; fr: preheader, content.headline" in text
    assert "spring.toml:" in text  # file:line of [locales]
    result = invoke(tmp_path, "send", "campaigns/spring.toml")
    assert result.exit_code == 1 and "missing translations" in result.output
    assert "Traceback" not in result.output


def test_a_field_only_one_language_uses_is_only_needed_from_its_readers(tmp_path: Path) -> None:
    english_city = BILINGUAL.replace(
        'offer = "20% off all green teas"', 'offer = "20% off in {{ contact.city }}"'
    )
    rows = CONTACTS.replace("email,first_name,locale", "email,first_name,locale,city")
    rows = rows.replace("EN_us\n", "EN_us,Boston\n").replace("en-GB\n", "en-GB,\n")
    make_workspace(tmp_path, campaign=english_city, contacts=rows)
    prepared = prepare_campaign(
        tmp_path / "campaigns" / "spring.toml", load_settings(tmp_path, env={})
    )
    with pytest.raises(TemplateError) as caught:
        prepared.preflight()
    # Ann (English, no city) is named; the Chinese readers without a city are fine.
    assert "contact.city" in str(caught.value) and "for 1 contact(s)" in str(caught.value)


def test_checks_cover_every_language_and_point_at_its_lines(tmp_path: Path) -> None:
    long_english = BILINGUAL.replace(
        'subject = "Spring tea is here, {{',
        'subject = "Our very first spring harvest of green tea is here, {{',
    )
    make_workspace(tmp_path, campaign=long_english, contacts=CONTACTS)
    result = invoke(tmp_path, "check", "campaigns/spring.toml", "--no-browser", "--json")
    data = json.loads(result.output)
    variants = sorted(s["variant"] for s in data["subjects"])
    assert variants == ["en A", "zh-CN A", "zh-CN B"]
    long = [f for f in data["findings"] if f["code"] == "subject-long"]
    assert long and long[0]["where"].startswith("subject en A (")
    line = int(long[0]["where"].split(":")[1].rstrip(")"))
    text = (tmp_path / "campaigns" / "spring.toml").read_text().splitlines()
    assert text[line - 1].startswith('subject = "Our very first spring harvest')


def test_one_send_one_journal_key_variants_per_language(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    make_workspace(tmp_path, campaign=BILINGUAL, contacts=CONTACTS)
    prepared = prepare_campaign(
        tmp_path / "campaigns" / "spring.toml", load_settings(tmp_path, env={})
    )
    conn = connect(tmp_path / "mailer.db")
    report = send_campaign(
        prepared, conn=conn, transport=transport_for(smtp_server), options=fast_options()
    )
    rows = dict(conn.execute("SELECT email, variant FROM journal WHERE campaign_id = 'spring'"))
    conn.close()
    assert report.sent == 5 and len(rows) == 5
    assert rows["ann@tea.test"] == rows["bob@tea.test"] == "en A"
    assert {rows[e] for e in ("li@tea.test", "mei@tea.test", "kim@tea.test")} <= {
        "zh-CN A",
        "zh-CN B",
    }
    assert sum(report.variants.values()) == 5 and report.variants["en A"] == 2
    dry = invoke(tmp_path, "send", "campaigns/spring.toml", "--retry-failed")
    assert "already sent" in dry.output or dry.exit_code == 0


def test_occasion_names_the_scheduled_day_in_the_contacts_language(tmp_path: Path) -> None:
    scheduled = (
        BILINGUAL.replace('headline = "春茶，', 'headline = "{{ occasion }}快乐，').replace(
            'headline = "Spring tea, {{', 'headline = "Happy {{ occasion }}, {{'
        )
        + '\n[schedule]\nday = "中秋节"\nrecurring = "yearly"\n'
    )
    make_workspace(tmp_path, campaign=scheduled, contacts=CONTACTS)
    prepared = prepare_campaign(
        tmp_path / "campaigns" / "spring.toml", load_settings(tmp_path, env={})
    )
    html = {p.email: prepared.build(p).rendered.html for p in prepared.recipients()}
    assert "中秋节快乐" in html["li@tea.test"] and "中秋节快乐" in html["mei@tea.test"]
    assert "Happy Mid-Autumn Festival, Ann" in html["ann@tea.test"]
    # kim has no locale and reads the Chinese top level: the day's name follows the email.
    assert "中秋节快乐" in html["kim@tea.test"]


FOOTERS = """
[footer.locales.zh]
postal_address = "上海市花园路 8 号 茶馆 200000"

[footer.locales.en-GB]
postal_address = "Tea House UK, 3 Leaf Row, London"
"""


def test_each_language_gets_its_own_postal_address_and_checks_look_for_it(
    tmp_path: Path,
) -> None:
    """The Chinese top level carries the zh address (zh-CN -> zh); the en version has no
    en address of its own, so the top-level one; checks pass only when each is there."""
    make_workspace(tmp_path, campaign=BILINGUAL, contacts=CONTACTS)
    settings_file = tmp_path / "mailer.toml"
    top = load_settings(tmp_path, env={}).postal_address
    settings_file.write_text(settings_file.read_text() + FOOTERS, encoding="utf-8")
    prepared = prepare_campaign(
        tmp_path / "campaigns" / "spring.toml", load_settings(tmp_path, env={})
    )
    html = {p.email: prepared.build(p).rendered.html for p in prepared.recipients()}
    for email in ("li@tea.test", "mei@tea.test", "kim@tea.test"):
        assert "上海市花园路 8 号 茶馆 200000" in html[email] and top not in html[email]
    for email in ("ann@tea.test", "bob@tea.test"):  # en-GB's address is not the en version's
        assert top in html[email] and "上海市花园路" not in html[email]
    result = invoke(tmp_path, "check", "campaigns/spring.toml", "--no-browser", "--json")
    codes = [f["code"] for f in json.loads(result.output)["findings"]]
    assert "postal-address-missing" not in codes


def test_workspace_texts_per_language_are_checked(tmp_path: Path) -> None:
    from mailer.core.errors import ConfigError

    make_workspace(tmp_path)
    base = (tmp_path / "mailer.toml").read_text()
    for extra, message in (
        ('[footer.locales.zh]\npostal_address = ""\n', "footer.locales.zh.postal_address must"),
        ('[footer.locales.zh]\naddress = "x"\n', "unknown key 'footer.locales.zh.address'"),
        ('[footer.locales."中文"]\npostal_address = "x"\n', "named by a language tag"),
        ('[unsubscribe.page.ja]\ntitle = "{name} さん"\n', "uses name: only {sender}"),
        ('[unsubscribe.page.ja]\ntitel = "x"\n', "did you mean 'title'"),
    ):
        (tmp_path / "mailer.toml").write_text(base + "\n" + extra, encoding="utf-8")
        with pytest.raises(ConfigError) as caught:
            load_settings(tmp_path, env={})
        assert message in str(caught.value) and ":" in (caught.value.where or "")


def test_page_wording_alone_keeps_the_unsubscribe_links(tmp_path: Path) -> None:
    """[unsubscribe.page.ja] makes an [unsubscribe] table in TOML; it must not drop the URL."""
    (tmp_path / "mailer.toml").write_text('[unsubscribe.page.ja]\ntitle = "配信停止"\n', "utf-8")
    settings = load_settings(tmp_path, env={})
    assert settings.unsubscribe_url and settings.unsubscribe_mailto
    assert settings.unsubscribe_pages == {"ja": {"title": "配信停止"}}
    (tmp_path / "mailer.toml").write_text('[unsubscribe]\nmailto = "u@tea.test"\n', "utf-8")
    only_mailto = load_settings(tmp_path, env={})
    assert (only_mailto.unsubscribe_url, only_mailto.unsubscribe_mailto) == (None, "u@tea.test")
