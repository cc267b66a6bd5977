"""Template errors at the template's own line, in plain words; control characters refused
in headers; BOM in TOML; the empty audience (render warns, a live send stops)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailer.campaign.prepared import prepare_campaign
from mailer.core.errors import TemplateError
from mailer.core.settings import load_settings
from tests.workspace import TEMPLATE, invoke, make_workspace

LINES = TEMPLATE.count("\n")


def template_with(tmp_path: Path, line: str) -> tuple[Path, Path]:
    """The workspace's template with ``line`` added as its second-to-last line."""
    path = make_workspace(tmp_path)
    template = tmp_path / "templates" / "promo.mjml"
    text = TEMPLATE.replace(
        "</mj-body></mjml>",
        f"<mj-section><mj-column><mj-text>\n{line}\n</mj-text></mj-column></mj-section>\n</mj-body></mjml>",
    )
    template.write_text(text, encoding="utf-8")
    return path, template


def number_of(template: Path, needle: str) -> int:
    lines = template.read_text(encoding="utf-8").splitlines()
    return next(i for i, text in enumerate(lines, 1) if needle in text)


def test_a_handlebars_block_names_its_own_line_and_the_jinja_to_write(tmp_path):
    path, template = template_with(tmp_path, "{{#if user}}Hello {{user.name}}{{/if}}")
    with pytest.raises(TemplateError) as caught:
        prepare_campaign(path, load_settings(tmp_path, env={}))
    line = f"{template}:{number_of(template, '{{#if user}}')}"
    # The foreign-tag lint catches it before Jinja's parser: each tag, its line, its Jinja.
    assert f"{line}: {{{{#if user}}}} is a Handlebars merge tag" in caught.value.message
    assert "write {% if contact.user | default('', true) %} instead" in caught.value.message
    assert f"{line}: {{{{/if}}}} is a Handlebars merge tag" in caught.value.message
    assert "write {% endif %} instead" in caught.value.message
    assert " at " not in caught.value.message.split("write")[0]  # no byte offsets


def test_a_jinja_syntax_error_names_the_line_as_written_not_mjmls_output(tmp_path):
    path, template = template_with(tmp_path, "{{ offer | upper }")
    with pytest.raises(TemplateError) as caught:
        prepare_campaign(path, load_settings(tmp_path, env={}))
    assert caught.value.where == f"{template}:{number_of(template, 'offer | upper }')}"
    assert caught.value.message.startswith("Jinja syntax error")


@pytest.mark.parametrize(
    ("expression", "plain"),
    [
        ("{{ 10 / (headline|length - headline|length) }}", "a division by zero"),
        ("{{ headline.upper(1, 2) }}", "a value is used in a way its kind does not allow"),
        ("{{ data.products[5].name }}", "a value is missing"),
    ],
)
def test_a_runtime_error_names_the_template_line_not_a_contact(tmp_path, expression, plain):
    path, template = template_with(tmp_path, f"<p>{expression}</p>")
    prepared = prepare_campaign(path, load_settings(tmp_path, env={}))
    with pytest.raises(TemplateError) as caught:
        prepared.build(next(prepared.recipients()))
    assert caught.value.where == f"{template}:{number_of(template, expression)}"
    assert plain in caught.value.message
    assert "Error" not in caught.value.message  # no Python class names
    assert "contacts.csv line 2" in (caught.value.hint or "")


def test_check_names_the_template_line_once_for_all_recipients(tmp_path):
    path, template = template_with(tmp_path, "<p>{{ 1 / 0 }}</p>")
    result = invoke(
        tmp_path, "check", str(path), "--json", "--no-browser", "--offline", "--no-spam-score"
    )
    # Named as the user sees it from the workspace: relative, not the absolute path.
    shown = template.relative_to(tmp_path)
    assert f'"{shown}:{number_of(template, "1 / 0")} (3 recipients)' in result.stdout


@pytest.mark.parametrize("char", ["\x00", "\x1b", "\x07"])
def test_control_characters_in_a_name_are_refused_naming_the_contact(tmp_path, char):
    contacts = f"email,first_name\nann@tea.test,An{char}n\n"
    path = make_workspace(tmp_path, contacts=contacts)
    prepared = prepare_campaign(path, load_settings(tmp_path, env={}))
    with pytest.raises(TemplateError) as caught:
        prepared.build(next(prepared.recipients()))
    assert caught.value.where == "contacts.csv line 2"
    assert f"U+{ord(char):04X}" in caught.value.message
    assert "ann@tea.test" in caught.value.message
    result = invoke(tmp_path, "render", str(path))
    assert result.exit_code == 1
    assert "contacts.csv line 2: the contact's name has a control character" in result.output


def test_a_byte_order_mark_in_toml_files_is_accepted(tmp_path):
    path = make_workspace(tmp_path)
    for toml in (path, tmp_path / "mailer.toml"):
        toml.write_bytes(b"\xef\xbb\xbf" + toml.read_bytes())
    prepared = prepare_campaign(path, load_settings(tmp_path, env={}))
    assert prepared.campaign.id == "spring"
    assert prepared.settings.sender.name == "Tea House 茶馆"


def test_an_empty_audience_is_a_render_warning_and_stops_a_live_send(tmp_path):
    path = make_workspace(tmp_path, contacts="email,first_name,last_name,city\n")
    rendered = invoke(tmp_path, "render", str(path))
    assert rendered.exit_code == 0
    assert "warning: csv:contacts.csv: the audience has no recipients" in rendered.output
    sent = invoke(tmp_path, "send", str(path), "--live", "--no-browser", "--force", "--yes")
    assert sent.exit_code == 1
    assert "the audience is empty: a live send would reach nobody" in sent.output


def test_render_warns_about_a_template_that_is_not_the_campaigns(tmp_path):
    path = make_workspace(tmp_path)
    (tmp_path / "templates" / "promo.mjml").write_text(
        "<mjml><mj-body><mj-section><mj-column>"
        "<mj-text><h1>Lorem ipsum dolor sit amet</h1><p>[type_of_action] today</p></mj-text>"
        '<mj-image src="images/hero.png" alt="Hero" />'
        "</mj-column></mj-section></mj-body></mjml>",
        encoding="utf-8",
    )
    result = invoke(tmp_path, "render", str(path))
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "warning: html · A: the template shows none of the campaign's content" in out
    assert "no unsubscribe link" in out
    assert "error (check refuses to send this): html · A: placeholder text" in out
    assert "'Lorem ipsum'" in out and "'[type_of_action]'" in out
    assert "relative path (images/hero.png)" in out
