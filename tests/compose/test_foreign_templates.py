"""Templates written elsewhere: MJML as people write it, other tools' merge tags, typos.

Each case is a small template written for this test in the style of templates
found in the wild (multi-line ``style`` attributes, tabs and comments in
``<mj-head>``, Mailchimp tags, ...); the third-party templates themselves are
tried by ``tests/trials/trial_templates.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mailer.campaign.prepared import prepare_campaign
from mailer.core.errors import TemplateError
from mailer.core.settings import load_settings
from tests.workspace import CAMPAIGN, TEMPLATE, invoke, make_workspace

BODY = """<mj-body><mj-section><mj-column>
<mj-text css-class="mailer-headline">{{ headline }}</mj-text>
<mj-text css-class="mailer-offer">{{ offer }}</mj-text>
<mj-button css-class="mailer-cta" href="{{ cta.url }}">{{ cta.text }}</mj-button>
<mj-text>{{ sender.name }}, {{ postal_address }} ·
<a href="{{ unsubscribe_url }}">Unsubscribe</a></mj-text>
</mj-column></mj-section></mj-body></mjml>
"""


def prepared_with(tmp_path: Path, template: str):
    make_workspace(tmp_path)
    (tmp_path / "templates" / "promo.mjml").write_text(template, encoding="utf-8")
    return prepare_campaign(tmp_path / "campaigns" / "spring.toml", load_settings(tmp_path, env={}))


def html_for(tmp_path: Path, template: str) -> str:
    prepared = prepared_with(tmp_path, template)
    return prepared.build(next(prepared.recipients())).rendered.html


def test_a_style_attribute_over_several_lines_with_a_style_rule_renders(tmp_path):
    template = "<mjml><mj-head><mj-style>p { margin: 0 }</mj-style></mj-head>" + BODY.replace(
        '<mj-text css-class="mailer-offer">{{ offer }}</mj-text>',
        '<mj-text css-class="mailer-offer"><p style="color: #b00;\n'
        '      font-size: 18px;\n      line-height: 1.4;">{{ offer }}</p></mj-text>',
    )
    html = html_for(tmp_path, template)
    assert "margin: 0;color: #b00;font-size: 18px;line-height: 1.4" in html
    assert "\\n" not in html


def test_tabs_and_comments_in_the_head_and_tags_in_css_comments_compile(tmp_path):
    template = (
        "<mjml>\n<mj-head>\n\t<mj-attributes>\n\t\t<!-- Global attributes -->\n"
        '\t\t<mj-all font-family="Arial" />\n\t</mj-attributes>\n'
        '\t<mj-style inline="inline">\n\t/* for <p> and <h1> elements */\n'
        "\t.hl { color: #b00 }\n</mj-style>\t\n</mj-head>\n" + BODY
    )
    assert "Spring tea" in html_for(tmp_path, template)


def test_an_mjml_error_names_the_line_of_the_template_as_written(tmp_path):
    template = (
        "<mjml>\n<mj-head><mj-title>{{ subject }} — {{ preheader }}</mj-title></mj-head>\n"
        "<mj-bdy>\n" + BODY
    )
    with pytest.raises(TemplateError) as caught:
        prepared_with(tmp_path, template)
    assert caught.value.where == f"{tmp_path / 'templates' / 'promo.mjml'}:3"
    assert "position" not in caught.value.message


def test_css_the_inliner_cannot_read_is_an_error_naming_the_template(tmp_path):
    make_workspace(tmp_path)
    html_template = (
        "<html><head><style>p { margin: 0 }</style></head><body>"
        '<p style="color: red;\\n font-size: 2px;">{{ headline }} {{ offer }}</p>'
        '<a href="{{ unsubscribe_url }}">Unsubscribe</a></body></html>'
    )
    (tmp_path / "templates" / "promo.html").write_text(html_template, encoding="utf-8")
    campaign = tmp_path / "campaigns" / "spring.toml"
    campaign.write_text(CAMPAIGN.replace('template = "promo"', 'template = "promo.html"'))
    result = invoke(tmp_path, "render", "campaigns/spring.toml")
    assert result.exit_code == 1
    assert result.output.startswith("error: ") and "Traceback" not in result.output
    assert "the CSS inliner could not read the template's CSS" in result.output
    assert "promo.html" in result.output


@pytest.mark.parametrize(
    ("tag", "jinja"),
    [
        # What `templates adopt` writes: a missing field prints nothing, as in those tools.
        ("{{FirstName}}", "{{ contact.first_name | default('', true) }}"),
        ("[[FirstName]]", "{{ contact.first_name | default('', true) }}"),
        ("*|FNAME|*", "{{ contact.first_name | default('', true) }}"),
        ("%%FirstName%%", "{{ contact.first_name | default('', true) }}"),
        ("{unsubscribe_text}", "{{ unsubscribe_url }}"),
        ("[[HEADLINE]]", "{{ headline }}"),
        ("*|LNAME|*", "{{ contact.last_name | default('', true) }}"),
        ("*|END:IF|*", "{% endif %}"),
        ("%recipient.first_name%", "{{ contact.first_name | default('', true) }}"),
        ("[Sender_Name]", "{{ sender.name }}"),
    ],
)
def test_other_tools_merge_tags_are_errors_with_the_line_and_the_jinja_to_write(
    tmp_path, tag, jinja
):
    template = TEMPLATE.replace("<mj-section><mj-column>\n", "<mj-section><mj-column>\n", 1)
    lines = template.splitlines()
    at = next(i for i, line in enumerate(lines) if "mailer-offer" in line)
    lines[at] = lines[at].replace("{{ offer }}", f"{tag} {{{{ offer }}}}")
    with pytest.raises(TemplateError) as caught:
        prepared_with(tmp_path, "\n".join(lines))
    assert caught.value.where == f"{tmp_path / 'templates' / 'promo.mjml'}:{at + 1}"
    name = tag.strip("{}[]*|%")
    assert name in caught.value.message and f"write {jinja} instead" in caught.value.message


def test_a_merge_tag_in_the_subject_points_at_the_campaign_file(tmp_path):
    make_workspace(tmp_path, campaign=CAMPAIGN.replace("Spring tea is here", "Hi *|FNAME|*"))
    result = invoke(tmp_path, "render", "campaigns/spring.toml")
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "error: campaigns/spring.toml:3: *|FNAME|* is a Mailchimp merge tag, which mailer "
        "would send as it is; write {{ contact.first_name | default('', true) }} instead",
        "  hint: mailer templates adopt FILE rewrites other tools' merge tags into mailer's "
        "Jinja (it shows the diff; --write saves it)",
    ]


def test_a_mistyped_name_gets_a_did_you_mean(tmp_path):
    template = TEMPLATE.replace("{{ offer }}", "{{ offer }} {{ contcat.city }}")
    with pytest.raises(TemplateError) as caught:
        prepared_with(tmp_path, template)
    assert caught.value.message == (
        "there is no template variable 'contcat'; did you mean 'contact'?"
    )


def test_css_and_jinja_braces_are_not_taken_for_merge_tags(tmp_path):
    template = TEMPLATE.replace("<mj-style>", "<mj-style>.a{color:red} .b { margin: 0 } ").replace(
        "{{ offer }}", "{{ offer }}{% if data.products %}{{ {'a': 1}['a'] }}{% endif %}"
    )
    assert "Spring tea" in html_for(tmp_path, template)


FONT = (
    '<mj-font name="Raleway" href="https://fonts.googleapis.com/css?family=Raleway" />'
    '<mj-attributes><mj-all font-family="Raleway, Arial, sans-serif" /></mj-attributes>'
)


def test_a_web_font_is_a_warning_and_can_be_stripped(tmp_path):
    from mailer.checks.gate import run_checks

    template = TEMPLATE.replace("<mj-head>", f"<mj-head>{FONT}")
    prepared = prepared_with(tmp_path, template)
    report = run_checks(prepared, browser=False)
    [font] = [f for f in report.findings if f.code == "remote-resource"]
    assert font.severity == "warning" and "fonts.googleapis.com" in font.message
    assert 'web_fonts = "strip"' in font.message
    campaign = tmp_path / "campaigns" / "spring.toml"
    campaign.write_text('web_fonts = "strip"\n' + campaign.read_text(encoding="utf-8"))
    stripped = prepare_campaign(campaign, load_settings(tmp_path, env={}))
    html = stripped.build(next(stripped.recipients())).rendered.html
    assert "googleapis" not in html and "@import" not in html
    assert not [
        f for f in run_checks(stripped, browser=False).findings if f.code == "remote-resource"
    ]


def test_scripts_and_frames_are_flagged_and_a_bad_web_fonts_value_is_an_error(tmp_path):
    from mailer.checks.content import check_remote_resources

    html = (
        '<html><body><script src="https://cdn.test/t.js"></script>'
        '<iframe src="https://video.test/embed/1"></iframe><img src="https://img.test/a.png">'
        "</body></html>"
    )
    found = check_remote_resources(html)
    assert [f.message.split(" (")[0] for f in found] == [
        "a script from cdn.test",
        "a embedded page or media from video.test",
    ]
    make_workspace(tmp_path, campaign='web_fonts = "maybe"\n' + CAMPAIGN)
    result = invoke(tmp_path, "render", "campaigns/spring.toml")
    assert result.exit_code == 1
    assert result.output.startswith(
        'error: campaigns/spring.toml:1: web_fonts must be "keep" or "strip", not \'maybe\''
    )


@pytest.mark.parametrize(
    ("source", "printed"),
    [
        ("{{ contact.city }}的朋友", {"city"}),
        ("{{ contact.city | upper }}", {"city"}),
        ("{{ contact.city | default('上海') }}", {"city"}),  # "" is not undefined
        ("{{ contact.city | default('上海', true) }}", set()),
        ("{{ contact.city or '朋友' }}", set()),
        ("{% if contact.city %}{{ contact.city }}{% endif %}", set()),
        ("{{ contact.city if contact.city else '' }}", set()),
        ("{% if contact.tier == 'vip' %}VIP{% endif %}", set()),
        ("{% set c = contact.city %}", set()),
    ],
)
def test_which_fields_an_empty_value_would_show_in(source, printed):
    from mailer.compose.compile import environment
    from mailer.compose.variables import printed_contact_fields

    assert printed_contact_fields(environment(False), source) == printed


@pytest.mark.parametrize(
    ("bomb", "reason"),
    [
        ("{{ ('a' * 10**10)|length }}", "it makes 10,000,000,000 characters or items"),
        ("{% for i in range(100000) %}{{ 'x' * 200 }}{% endfor %}", "it printed more than"),
        ("{{ '%999999999d' % 1 }}", "a format width of a million characters or more"),
        ("{{ '{:>999999999}'.format(1) }}", "a format width of a million characters or more"),
        # Widths taken from the arguments: the digits are not in the format string.
        ("{{ '%*d' % (10**9, 1) }}", "a format width of 1,000,000,000 (given as an argument)"),
        ("{{ '%.*f' % (10**9, 1.5) }}", "a format width of 1,000,000,000 (given as an"),
        ("{{ '%-*s'|format(10**9, 'x') }}", "a format width of 1,000,000,000 (given as an"),
        ("{{ '{:{}}'.format(1, 10**9) }}", "a format width of 1,000,000,000 (given as an"),
        ("{{ '{0:>{w}}'.format('x', w=10**9) }}", "a format width of 1,000,000,000 (given"),
        ("{{ '{x:{w}}'.format_map({'x': 1, 'w': 10**9}) }}", "a format width of 1,000,000,000"),
    ],
)
def test_template_bombs_are_stopped_with_an_error_naming_the_part(tmp_path, bomb, reason):
    template = TEMPLATE.replace("{{ offer }}", "{{ offer }}" + bomb)
    prepared = prepared_with(tmp_path, template)
    with pytest.raises(TemplateError) as caught:
        prepared.build(next(prepared.recipients()))
    assert caught.value.message.startswith("the HTML template was stopped: ")
    assert reason in caught.value.message


def test_nested_loops_are_stopped_by_the_render_deadline(tmp_path, monkeypatch):
    from mailer.compose import render
    from mailer.core import sandbox

    ticks = iter(range(0, 10**9))
    monkeypatch.setattr(sandbox, "_clock", lambda: float(next(ticks)))
    monkeypatch.setattr(render, "RENDER_SECONDS", 1000.0)
    loops = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
    prepared = prepared_with(tmp_path, TEMPLATE.replace("{{ offer }}", "{{ offer }}" + loops))
    with pytest.raises(TemplateError, match="ran for more than 1000 s, the limit"):
        prepared.build(next(prepared.recipients()))
