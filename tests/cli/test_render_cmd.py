"""`mailer render` through Typer's CliRunner: output files, summary, and exact error messages."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mailer.cli import app
from tests.workspace import CAMPAIGN, invoke, make_workspace

runner = CliRunner()


def test_render_writes_eml_and_html_per_recipient(tmp_path: Path) -> None:
    make_workspace(tmp_path)
    result = invoke(tmp_path, "render", "campaigns/spring.toml", "--out", "out")
    assert result.exit_code == 0, result.output
    assert "recipients    3" in result.output
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == [
        "ann@tea.test.eml",
        "ann@tea.test.html",
        "bob@xn--bcher-kva.test.eml",  # IDNA: two Unicode domains never share a file
        "bob@xn--bcher-kva.test.html",
        "lilei@tea.test.eml",
        "lilei@tea.test.html",
    ]
    msg = email.message_from_bytes(
        (tmp_path / "out" / "lilei@tea.test.eml").read_bytes(), policy=email.policy.default
    )
    assert msg["To"] == "李雷 <lilei@tea.test>"
    assert "Spring tea, 李雷" in msg.get_body(("html",)).get_content()
    for eml in sorted((tmp_path / "out").glob("*.eml")):
        data = eml.read_bytes()
        parsed = email.message_from_bytes(data, policy=email.policy.default)
        assert parsed.defects == [] and parsed.get_content_type() == "multipart/alternative"
        parts = list(parsed.iter_parts())
        assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
        assert all(p.get_content_charset() == "utf-8" and not p.defects for p in parts)
        assert parsed["From"] == "Tea House 茶馆 <news@teahouse.cn>"
        assert parsed["Message-ID"].endswith("@teahouse.cn>") and parsed["Date"].datetime
        assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        html = parts[1].get_content().replace("\r\n", "\n")
        assert eml.with_suffix(".html").read_text(encoding="utf-8").rstrip() == html.rstrip()
        # RFC 5322: 78 where folding can help; a signed unsubscribe URL is one
        # word that RFC 2369 forbids splitting, so it may run longer (never 998).
        for line in data.split(b"\r\n"):
            assert len(line) <= 78 or (len(line) <= 998 and b" " not in line.strip()), line


def test_render_default_folder_is_outbox_campaign_id(tmp_path: Path) -> None:
    make_workspace(tmp_path)
    result = invoke(tmp_path, "render", "campaigns/spring.toml")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "outbox" / "spring" / "ann@tea.test.eml").is_file()


BAD_CAMPAIGNS = [
    (
        CAMPAIGN.replace("preheader =", "preheder ="),
        "error: campaigns/spring.toml:4: unknown key 'preheder'\n  hint: did you mean 'preheader'?",
    ),
    (
        CAMPAIGN.replace('cta_text = "Shop the harvest"', 'cta_txt = "Shop the harvest"'),
        "error: campaigns/spring.toml:9: unknown key 'content.cta_txt'\n"
        "  hint: did you mean 'cta_text'?",
    ),
    (
        CAMPAIGN.replace(
            'preheader = "Fresh leaves from the first harvest, 20% off this week"\n', ""
        ),
        "error: campaigns/spring.toml: missing required field 'preheader'",
    ),
    (
        CAMPAIGN.replace("https://tea.test/spring?ref=mail", "tea.test/spring"),
        "error: campaigns/spring.toml:10: content.cta_url is not a valid web address: "
        "'tea.test/spring'\n  hint: use a full URL such as https://shop.example.org/offer",
    ),
    (
        CAMPAIGN.replace('template = "promo"', 'template = "promp"'),
        "error: campaigns/spring.toml:2: unknown template 'promp'\n  hint: did you mean 'promo'?",
    ),
    (
        CAMPAIGN + '\n[sender]\nemail = "news@@tea.test"\n',
        "error: campaigns/spring.toml:24: sender.email is not a valid address: 'news@@tea.test' "
        "(The part after the @-sign contains invalid characters: '@'.)",
    ),
    (
        CAMPAIGN.replace('id = "spring"', 'id = "spring'),
        "error: campaigns/spring.toml:1: TOML syntax error: Illegal character '\\n'",
    ),
    (
        CAMPAIGN.replace('csv = "contacts.csv"', 'csv = "people.csv"'),
        "error: campaigns/spring.toml:13: audience file not found: people.csv",
    ),
    (
        CAMPAIGN + "\n[throttle]\nper_secnd = 5\n",
        "error: campaigns/spring.toml:24: unknown key 'throttle.per_secnd'\n"
        "  hint: did you mean 'per_second'?",
    ),
    (
        CAMPAIGN.replace('csv = "contacts.csv"', "csv = 5"),
        "error: campaigns/spring.toml:13: 'audience.csv' must be a non-empty string",
    ),
    (
        CAMPAIGN.replace("[content]\n", '[content]\nhero_image = 7\nhero_alt = "x"\n'),
        "error: campaigns/spring.toml:7: 'content.hero_image' must be a non-empty string",
    ),
    (
        CAMPAIGN.replace('source = "newsletter"', "source = { a = 1 }"),
        "error: campaigns/spring.toml:16: 'utm.source' must be a non-empty string",
    ),
    (
        CAMPAIGN + "\n[sender]\nname = 5\n",
        "error: campaigns/spring.toml:24: 'sender.name' must be a non-empty string",
    ),
    (
        CAMPAIGN + '\n[sender]\nemail = "新闻@tea.test"\n',
        "error: campaigns/spring.toml:24: sender.email is not a valid address: '新闻@tea.test' "
        "(Internationalized characters before the @-sign are not supported: '新', '闻'.)",
    ),
    (
        CAMPAIGN.replace('id = "spring"', 'id = "../spring"'),
        "error: campaigns/spring.toml:1: the campaign id '../spring' is not usable: "
        "use ASCII letters, digits, '.', '_' and '-' (at most 80)",
    ),
    (
        CAMPAIGN.replace('"Spring tea is here"', '"Spring tea\\nBcc: all@evil.test"'),
        "error: campaigns/spring.toml:3: 'subjects' must be one line: "
        "a line break in a header would inject mail headers",
    ),
]


@pytest.mark.parametrize(("campaign", "message"), BAD_CAMPAIGNS)
def test_bad_campaign_gives_exact_message_and_exit_1(
    tmp_path: Path, campaign: str, message: str
) -> None:
    make_workspace(tmp_path, campaign=campaign)
    result = invoke(tmp_path, "render", "campaigns/spring.toml")
    assert result.exit_code == 1
    assert result.output.strip() == message
    assert "Traceback" not in result.output
    assert not (tmp_path / "outbox").exists()  # nothing written


def test_bad_address_rows_are_all_listed_and_nothing_written(tmp_path: Path) -> None:
    make_workspace(tmp_path, contacts="email,first_name\nok@tea.test,A\nnope,B\nok@tea.test,C\n")
    result = invoke(tmp_path, "render", "campaigns/spring.toml")
    assert result.exit_code == 1
    assert result.output.strip() == (
        "error: "
        + str(tmp_path / "campaigns" / "contacts.csv")
        + ": 2 bad row(s) in the audience file:\n"
        "  line 3: 'nope' is not a valid address (An email address must have an @-sign.)\n"
        "  line 4: ok@tea.test already appears on line 2\n"
        "  hint: fix or remove these rows; nothing was sent"
    )
    assert not (tmp_path / "outbox").exists()


def test_missing_variable_lists_rows_and_exits_1(tmp_path: Path) -> None:
    make_workspace(
        tmp_path, campaign=CAMPAIGN.replace("20% off <all> green teas", "{{ contact.tier }}")
    )
    result = invoke(tmp_path, "render", "campaigns/spring.toml")
    assert result.exit_code == 1
    assert "contact.tier (used in offer) is missing for 3 contact(s)" in result.output
    assert not (tmp_path / "outbox").exists()


def test_unknown_key_in_workspace_settings(tmp_path: Path) -> None:
    make_workspace(tmp_path)
    (tmp_path / "mailer.toml").write_text('[footer]\npostal_adress = "x"\n')
    result = invoke(tmp_path, "render", "campaigns/spring.toml")
    assert result.exit_code == 1
    assert result.output.strip() == (
        "error: " + str(tmp_path / "mailer.toml") + ":2: unknown key 'footer.postal_adress'\n"
        "  hint: did you mean 'postal_address'?"
    )


def test_help_lists_render() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "render" in result.output
