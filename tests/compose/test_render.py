"""Compile-once rendering: MJML + Jinja, CSS inlining, UTM tags, escaping, variables check."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mailer.campaign.prepared import prepare_campaign
from mailer.compose.links import add_utm
from mailer.compose.protect import protect, restore
from mailer.compose.render import assign_variant
from mailer.core.errors import TemplateError
from mailer.core.recipient import Recipient
from mailer.core.settings import load_settings
from tests.workspace import CAMPAIGN, make_workspace


@pytest.fixture
def prepared(tmp_path: Path):
    path = make_workspace(tmp_path)
    return prepare_campaign(path, load_settings(tmp_path))


def by_email(prepared, email: str) -> Recipient:
    return next(r for r in prepared.recipients() if r.email == email)


def test_protect_and_restore_round_trip() -> None:
    source = '<a href="{{ x }}">{% if a > 1 %}big{% endif %}</a>{# note #}'
    text, spans = protect(source)
    assert "{" not in text
    assert restore(text, spans) == source


def test_jinja_with_comparison_survives_mjml_and_inlining(prepared) -> None:
    html = prepared.render(by_email(prepared, "lilei@tea.test")).html
    assert "See you in Shanghai &amp; soon" in html
    assert "&gt;" not in prepared.compiled.sources["html"].split("<body")[1].split("{%")[0]


def test_css_is_inlined_and_media_rules_kept(prepared) -> None:
    html = prepared.render(by_email(prepared, "ann@tea.test")).html
    assert re.search(r'class="mailer-headline hl"[^>]*style="[^"]*color: #b00', html)
    assert "@media (max-width:480px)" in html
    assert "fonts.googleapis.com" not in html


def test_contact_data_is_autoescaped_in_html_but_not_in_text(tmp_path: Path) -> None:
    contacts = "email,first_name,city\nx@tea.test,<script>alert(1)</script>,Rome\n"
    path = make_workspace(tmp_path, contacts=contacts)
    prepared = prepare_campaign(path, load_settings(tmp_path))
    rendered = prepared.render(next(prepared.recipients()))
    assert "<script>" not in rendered.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered.html
    assert "Hi <script>alert(1)</script>," in rendered.text
    # campaign content is data too: "<all>" in the offer is escaped, not a tag
    assert "20% off &lt;all&gt; green teas" in rendered.html


def test_preheader_is_hidden_preview_text_and_title_is_subject(prepared) -> None:
    rendered = prepared.render(by_email(prepared, "ann@tea.test"))
    hidden = re.search(r'<div style="display:\s*none;[^"]*">(.*?)</div>', rendered.html)
    assert hidden and hidden.group(1) == "Fresh leaves from the first harvest, 20% off this week"
    assert f"<title>{rendered.subject}</title>" in rendered.html
    assert rendered.preheader not in rendered.text  # the text part starts with the content


def test_links_get_utm_tags_except_mailto_and_unsubscribe(prepared) -> None:
    html = prepared.render(by_email(prepared, "ann@tea.test")).html
    hrefs = re.findall(r'href="([^"]*)"', html)
    utm = "utm_source=newsletter&amp;utm_medium=email&amp;utm_campaign=spring"
    assert f"https://tea.test/spring?ref=mail&amp;{utm}" in hrefs  # personalised, query kept
    assert f"https://tea.test/longjing?{utm}" in hrefs  # from the products loop
    assert f"https://tea.test/about?from=mail&amp;{utm}" in hrefs  # static link
    assert "mailto:hello@tea.test" in hrefs
    unsubscribe = [h for h in hrefs if "unsubscribe" in h]
    assert len(unsubscribe) == 1 and "utm_" not in unsubscribe[0]


def test_text_part_links_are_tagged_too(prepared) -> None:
    text = prepared.render(by_email(prepared, "ann@tea.test")).text
    assert "https://tea.test/spring?ref=mail&utm_source=newsletter" in text
    assert "Hi Ann, 20% off <all> green teas" in text


def test_add_utm_keeps_existing_utm_values() -> None:
    url = add_utm(
        "https://a.test/x?utm_source=partner&q=1", {"utm_source": "nl", "utm_medium": "email"}
    )
    assert url == "https://a.test/x?utm_source=partner&q=1&utm_medium=email"
    assert add_utm("mailto:a@b.test", {"utm_source": "x"}) == "mailto:a@b.test"


def test_personalisation_and_default_for_empty_field(prepared) -> None:
    lilei = prepared.render(by_email(prepared, "lilei@tea.test"))
    bob = prepared.render(by_email(prepared, "bob@bücher.test"))
    assert "Spring tea, 李雷" in lilei.html
    assert "Hi friend," in bob.text


def test_variants_are_deterministic_and_split(prepared) -> None:
    assert assign_variant("spring", "A@x.test", 2) == assign_variant("spring", "a@x.test", 2)
    counts = [0, 0]
    for i in range(1000):
        counts[assign_variant("spring", f"user{i}@x.test", 2)] += 1
    assert 400 < counts[0] < 600
    subjects = {prepared.render(r).variant for r in prepared.recipients()}
    assert subjects <= {0, 1}


def test_missing_variable_reported_for_all_contacts_before_sending(tmp_path: Path) -> None:
    campaign = CAMPAIGN.replace(
        'offer = "20% off <all> green teas"', 'offer = "For {{ contact.tier }}"'
    )
    path = make_workspace(tmp_path, campaign=campaign)
    prepared = prepare_campaign(path, load_settings(tmp_path))
    with pytest.raises(TemplateError) as caught:
        prepared.preflight()
    message = str(caught.value)
    assert (
        "contact.tier (used in offer) is missing for 3 contact(s): contacts.csv line 2, "
        "contacts.csv line 3, contacts.csv line 4" in message
    )
    assert "nothing was sent" in message


def test_guarded_variables_are_not_required(tmp_path: Path) -> None:
    campaign = CAMPAIGN.replace(
        'offer = "20% off <all> green teas"',
        'offer = "{% if contact.tier is defined and contact.tier %}{{ contact.tier }}{% endif %}'
        "{{ contact.vip | default('') }}\"",
    )
    path = make_workspace(tmp_path, campaign=campaign)
    prepared = prepare_campaign(path, load_settings(tmp_path))
    assert prepared.preflight() == 3


def test_line_break_in_header_value_is_rejected(tmp_path: Path) -> None:
    contacts = 'email,first_name\n"x@tea.test","Eve\nBcc: all@evil.test"\n'
    path = make_workspace(tmp_path, contacts=contacts)
    prepared = prepare_campaign(path, load_settings(tmp_path))
    with pytest.raises(TemplateError) as caught:
        prepared.build(next(prepared.recipients()))
    assert "the subject contains a line break, which would inject mail headers" in str(caught.value)
    assert str(caught.value).startswith("contacts.csv line 2:")


def test_jinja_syntax_error_names_template_and_line(tmp_path: Path) -> None:
    path = make_workspace(tmp_path)
    template = tmp_path / "templates" / "promo.mjml"
    template.write_text(template.read_text().replace("{{ headline }}", "{{ headline "))
    with pytest.raises(TemplateError) as caught:
        prepare_campaign(path, load_settings(tmp_path))
    assert str(caught.value).startswith(f"{template}:")
    assert "Jinja syntax error" in str(caught.value)


def test_plain_html_template_is_accepted(tmp_path: Path) -> None:
    path = make_workspace(tmp_path, campaign=CAMPAIGN.replace('"promo"', '"plain.html"'))
    (tmp_path / "templates" / "plain.html").write_text(
        "<html><head><style>p{color:red}</style></head><body><p>{{ headline }}</p>"
        '<a href="{{ cta.url }}">{{ cta.text }}</a></body></html>'
    )
    prepared = prepare_campaign(path, load_settings(tmp_path))
    rendered = prepared.render(next(prepared.recipients()))
    assert '<p style="color: red;">Spring tea, 李雷</p>' in rendered.html
    assert "utm_campaign=spring" in rendered.html


def test_text_template_is_used_when_present(tmp_path: Path) -> None:
    path = make_workspace(tmp_path)
    (tmp_path / "templates" / "promo.txt").write_text(
        "{{ headline }}\n{{ cta.url }}\nhttps://tea.test/about\n\n\n\n{{ unsubscribe_url }}\n"
    )
    prepared = prepare_campaign(path, load_settings(tmp_path))
    text = prepared.render(next(prepared.recipients())).text
    utm = "utm_source=newsletter&utm_medium=email&utm_campaign=spring"
    assert text.splitlines()[:4] == [
        "Spring tea, 李雷",
        f"https://tea.test/spring?ref=mail&{utm}",
        f"https://tea.test/about?{utm}",
        "",
    ]
    assert text.splitlines()[4].startswith(
        "https://tea.test/unsubscribe?t="
    )  # untagged, blank runs tidied
