"""The starter templates and example campaigns: every contact renders, key blocks are marked."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mailer.campaign.prepared import prepare_campaign
from mailer.compose.locales import pick_locale
from mailer.core.settings import load_settings
from tests.workspace import CAMPAIGN, TEMPLATE, example_settings, make_workspace

ROOT = Path(__file__).resolve().parents[2]
CAMPAIGNS = sorted((ROOT / "campaigns").glob("*.toml"))


def test_there_are_three_starter_templates_and_a_campaign_for_each() -> None:
    names = {p.stem for p in (ROOT / "mailer" / "templates").glob("*.mjml")}
    assert {"holiday", "promotion", "newsletter"} <= names
    used = {re.search(r'template = "(\w+)"', p.read_text()).group(1) for p in CAMPAIGNS}  # type: ignore[union-attr]
    assert {"holiday", "promotion", "newsletter"} <= used


@pytest.mark.parametrize("path", CAMPAIGNS, ids=lambda p: p.stem)
def test_example_campaign_renders_for_every_contact(path: Path, tmp_path: Path) -> None:
    settings = example_settings(tmp_path)  # sample contacts imported, as the README's tour does
    prepared = prepare_campaign(path, settings)
    people = list(prepared.recipients())
    at_least = 10 if prepared.campaign.audience.csv else 1  # a segment picks a few
    assert prepared.preflight(people) == len(people) >= at_least
    for person in people:
        out = prepared.build(person)
        html = out.rendered.html
        assert len(re.findall(r'class="[^"]*\bmailer-cta\b', html)) == 1
        assert re.search(r'class="[^"]*\bmailer-headline\b', html)
        assert re.search(r'class="[^"]*\bmailer-offer\b', html)
        # Each language version carries its own footer address ([footer.locales]).
        assert pick_locale(prepared.compiled, person).campaign.settings.postal_address in html
        assert out.rendered.unsubscribe_url and out.rendered.unsubscribe_url in html
        # "...from Lotus Tea House. Unsubscribe", not "House.Unsubscribe" (Chinese needs no space)
        assert not re.search(r'[A-Za-z.,;:!?]<a href="[^"]*unsubscribe', html)
        assert "mlrtok" not in html and "mlrtok" not in out.rendered.text
        # only MJML's Outlook conditional comments may remain, never template comments
        comments = re.findall(r"<!--(.{0,9})", html)
        assert all(c.startswith(("[if", "<![endif]", ">")) for c in comments)


def test_spring_festival_greeting_is_in_chinese() -> None:
    prepared = prepare_campaign(ROOT / "campaigns" / "spring-festival.toml", load_settings(ROOT))
    person = next(p for p in prepared.recipients() if p.fields.get("first_name"))
    out = prepared.build(person)
    assert re.search(r"[\u4e00-\u9fff]", out.subject)
    assert "新春" in out.rendered.html or "新年" in out.rendered.html


def test_if_block_inside_a_column_stays_in_place(tmp_path: Path) -> None:
    # An {% if %} between a column's children sits between table rows after MJML;
    # an HTML5 parser would move bare text out of the table, so it must still wrap its rows.
    template = TEMPLATE.replace(
        '<mj-button css-class="mailer-cta"',
        "<mj-raw>{% if contact.city is defined and contact.city == 'London' %}</mj-raw>"
        "<mj-text>Londoners: tea at our Covent Garden shop.</mj-text>"
        '<mj-raw>{% endif %}</mj-raw>\n<mj-button css-class="mailer-cta"',
    )
    path = make_workspace(tmp_path, campaign=CAMPAIGN)
    (tmp_path / "templates" / "promo.mjml").write_text(template)
    prepared = prepare_campaign(path, load_settings(tmp_path))
    by_city = {p.fields["city"]: prepared.render(p).html for p in prepared.recipients()}
    assert "Covent Garden" in by_city["London"]
    assert "Covent Garden" not in by_city["Berlin"]
