"""``mailer templates adopt``: other tools' merge tags rewritten into Jinja that renders.

The adopted templates are rendered through the real pipeline (MJML, the
sandbox, ``StrictUndefined``) for sample contacts with and without the fields
the tags name: those tools print nothing for a missing field, and so must we.
"""

from __future__ import annotations

from pathlib import Path

import jinja2
import pytest

from mailer.campaign.prepared import prepare_campaign
from mailer.compose.adopt import adopt_template, translate_tag
from mailer.compose.lint import foreign_tags
from mailer.core.settings import load_settings
from tests.workspace import TEMPLATE, invoke, make_workspace

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("tag", "jinja"),
    [
        ("*|FNAME|*", "{{ contact.first_name | default('', true) }}"),
        ("*|UNSUB|*", "{{ unsubscribe_url }}"),
        ("*|LIST:ADDRESS|*", "{{ postal_address }}"),
        ("*|LIST:COMPANY|*", "{{ sender.name }}"),
        ("*|MC:SUBJECT|*", "{{ subject }}"),
        ("*|MC_PREVIEW_TEXT|*", "{{ preheader }}"),
        ("*|IF:FNAME|*", "{% if contact.first_name | default('', true) %}"),
        ("*|IFNOT:VIP|*", "{% if not (contact.vip | default('', true)) %}"),
        ("*|IF:CITY=London|*", "{% if (contact.city | default('')) == 'London' %}"),
        ("*|ELSEIF:ORDERS>3|*", "{% elif (contact.orders | default(0)) > 3 %}"),
        ("*|ELSE:|*", "{% else %}"),
        ("*|END:IF|*", "{% endif %}"),
        ("{{#if first_name}}", "{% if contact.first_name | default('', true) %}"),
        ("{{#unless vip}}", "{% if not (contact.vip | default('', true)) %}"),
        ("{{else}}", "{% else %}"),
        ("{{/if}}", "{% endif %}"),
        ("{{{ first_name }}}", "{{ contact.first_name | default('', true) }}"),
        ("{{first_name}}", "{{ contact.first_name | default('', true) }}"),
        (
            '{{ first_name | default: "there" }}',
            "{{ contact.first_name | default('there', true) }}",
        ),
        ("{{ person.city | upcase }}", "{{ contact.city | default('', true) | upper }}"),
        ("{% elsif vip %}", "{% elif contact.vip | default('', true) %}"),
        ("{% unless vip %}", "{% if not (contact.vip | default('', true)) %}"),
        ("{% endunless %}", "{% endif %}"),
        ("%recipient.first_name%", "{{ contact.first_name | default('', true) }}"),
        ("%recipient_email%", "{{ contact.email | default('', true) }}"),
        ("%unsubscribe_url%", "{{ unsubscribe_url }}"),
        ("-first_name-", "{{ contact.first_name | default('', true) }}"),
        ("[Sender_Name]", "{{ sender.name }}"),
        ("[Sender_Address]", "{{ postal_address }}"),
        ("[Unsubscribe]", "{{ unsubscribe_url }}"),
        ("[firstname,fallback=there]", "{{ contact.first_name | default('there', true) }}"),
        ("[[FirstName]]", "{{ contact.first_name | default('', true) }}"),
        ("%%LastName%%", "{{ contact.last_name | default('', true) }}"),
    ],
)
def test_each_tool_s_tag_becomes_jinja(tag: str, jinja: str) -> None:
    assert translate_tag(tag) == jinja
    jinja2.Environment().parse(complete(jinja))


def complete(tag: str) -> str:
    """A one-tag template made whole: an ``if`` closed, an ``else`` or ``endif`` opened."""
    if tag.startswith(("{% if", "{%if")):
        return tag + "{% endif %}"
    if tag.startswith(("{% elif", "{% else")):
        return "{% if x %}" + tag + "{% endif %}"
    if tag == "{% endif %}":
        return "{% if x %}" + tag
    return tag


def test_mailer_s_own_jinja_is_left_exactly_as_it_is() -> None:
    own = [p.read_text(encoding="utf-8") for p in (REPO / "mailer" / "templates").glob("*.mjml")]
    for source in [*own, TEMPLATE]:
        adopted = adopt_template(source)
        assert (adopted.text, adopted.changes, adopted.untranslated) == (source, 0, [])
    prose = "state-of-the-art tea, -apple-system fonts, a {color} note, 10% off - today -"
    assert adopt_template(prose.replace("{color}", "color")).text == prose.replace(
        "{color}", "color"
    )


MAILCHIMP = """<mjml><mj-body><mj-section><mj-column>
<mj-text css-class="mailer-headline">{{ headline }}</mj-text>
<mj-text css-class="mailer-offer">*|IF:FNAME|*Dear *|FNAME|*,*|ELSE:|*Dear tea lover,*|END:IF|*
{{ offer }} *|IF:CITY=London|*Free delivery in London.*|END:IF|*</mj-text>
<mj-button css-class="mailer-cta" href="{{ cta.url }}">{{ cta.text }}</mj-button>
<mj-text>{{#if last_name}}({{last_name}}){{/if}} [firstname,fallback=friend]
%recipient.city% *|LIST:COMPANY|*, *|LIST:ADDRESS|* ·
<a href="*|UNSUB|*">Unsubscribe</a> *|ARCHIVE|*</mj-text>
</mj-column></mj-section></mj-body></mjml>
"""
# The third row lacks a first name, a last name and a city: those tags print nothing.
PEOPLE = "email,first_name,last_name,city\nann@tea.test,Ann,Lee,London\nbo@tea.test,Bo,,Berlin\nx@tea.test,,,\n"


def test_an_adopted_template_renders_for_every_contact(tmp_path: Path) -> None:
    make_workspace(tmp_path, contacts=PEOPLE)
    template = tmp_path / "templates" / "promo.mjml"
    template.write_text(MAILCHIMP, encoding="utf-8")
    refused = invoke(tmp_path, "render", "campaigns/spring.toml")
    assert refused.exit_code == 1 and "mailer templates adopt" in refused.output

    shown = invoke(tmp_path, "templates", "adopt", "templates/promo.mjml")
    assert shown.exit_code == 0, shown.output
    removed = [x for x in shown.stdout.splitlines() if x.startswith("-") and "*|IF:FNAME|*" in x]
    added = [x for x in shown.stdout.splitlines() if x.startswith("+") and "{% if contact.f" in x]
    assert len(removed) == len(added) == 1
    assert template.read_text(encoding="utf-8") == MAILCHIMP  # a diff only, until --write
    line = MAILCHIMP.splitlines().index(next(x for x in MAILCHIMP.splitlines() if "ARCHIVE" in x))
    assert f"templates/promo.mjml:{line + 1}: *|ARCHIVE|*: a link to a web copy" in shown.output

    written = invoke(tmp_path, "templates", "adopt", "templates/promo.mjml", "--write")
    assert written.exit_code == 0, written.output
    template.write_text(template.read_text().replace(" *|ARCHIVE|*", ""), encoding="utf-8")
    settings = load_settings(tmp_path, env={})
    prepared = prepare_campaign(tmp_path / "campaigns" / "spring.toml", settings)
    html = {p.email: prepared.build(p).rendered.html for p in prepared.recipients()}
    assert (
        "Dear Ann," in html["ann@tea.test"] and "Free delivery in London." in html["ann@tea.test"]
    )
    assert "(Lee)" in html["ann@tea.test"] and "Ann Berlin" not in html["ann@tea.test"]
    assert "Dear Bo," in html["bo@tea.test"] and "London" not in html["bo@tea.test"]
    assert "Dear tea lover," in html["x@tea.test"] and "friend" in html["x@tea.test"]
    for page in html.values():
        assert "*|" not in page and "%recipient" not in page and "{{" not in page
        assert "Tea House 茶馆, Tea House Ltd, 8 Garden Lane" in page


def test_output_goes_elsewhere_with_o_and_broken_results_are_never_written(
    tmp_path: Path,
) -> None:
    source = tmp_path / "in.html"
    source.write_text("<p>*|IF:FNAME|*Hi *|FNAME|*</p>\n", encoding="utf-8")  # no END:IF
    out = tmp_path / "out.html"
    result = invoke(tmp_path, "templates", "adopt", "in.html", "-o", "out.html")
    assert result.exit_code == 1
    assert "not valid Jinja" in result.output and not out.exists()
    source.write_text("<p>Hi *|FNAME|*</p>\n", encoding="utf-8")
    result = invoke(tmp_path, "templates", "adopt", "in.html", "-o", "out.html")
    assert result.exit_code == 0 and "1 tag(s) rewritten (Mailchimp)" in result.output
    assert out.read_text() == "<p>Hi {{ contact.first_name | default('', true) }}</p>\n"
    assert source.read_text() == "<p>Hi *|FNAME|*</p>\n"


def test_every_lint_suggestion_is_valid_jinja() -> None:
    """The fix the error message offers must itself compile (it once said {{ contact.end_if }})."""
    source = "\n".join(
        ["*|IF:FNAME|*", "*|ELSE:|*", "*|END:IF|*", "{{#if x}}", "{{/if}}", "{% elsif vip %}",
         "%recipient.first_name%", "[Sender_Name]", "[firstname,fallback=you]", "*|FNAME|*"]
    )  # fmt: skip
    problems = foreign_tags(source)
    assert len(problems) == 10
    for problem in problems:
        suggestion = problem.message.rpartition("write ")[2].removesuffix(" instead")
        assert suggestion.startswith(("{{", "{%")), problem.message
        jinja2.Environment().parse(complete(suggestion))
