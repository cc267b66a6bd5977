"""Headers on the wire, link tagging and the checks made for every contact before sending."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from mailer.campaign.prepared import prepare_campaign
from mailer.compose.links import add_utm
from mailer.compose.message import build_bytes, build_reference
from mailer.core.errors import TemplateError
from mailer.core.recipient import Recipient
from mailer.core.settings import load_settings
from mailer.delivery.transport import outbox_filename
from tests.compose.test_message import headers_for, summary
from tests.workspace import CAMPAIGN, SETTINGS, invoke, make_workspace


def parse(data: bytes) -> EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.default)  # type: ignore[return-value]


LONG_SUBJECTS = [
    "x" * 1200,  # one word, no place to fold: sent as encoded words
    "Read https://tea.test/" + "a" * 1100,
    "Note:  two  spaces  kept " * 12,
]
LONG_NAMES = ["Ann Lee " * 40, '"Lee, Ann" ' * 20, "A" * 300]


@pytest.mark.parametrize("subject", LONG_SUBJECTS)
@pytest.mark.parametrize("name", LONG_NAMES)
def test_long_ascii_headers_fold_within_78_and_parse_back(subject: str, name: str) -> None:
    headers = headers_for(subject, name.strip())
    data = build_bytes(headers, "a\n", "<p>a</p>\n")
    assert max(len(line) for line in data.split(b"\r\n")) <= 78
    msg = parse(data)
    assert msg["Subject"] == subject
    if " " in name.strip():  # the stdlib parser spaces out a name split into encoded words
        assert msg["To"].addresses[0].display_name == name.strip()
    reference = parse(
        build_reference(headers, "a\n", "<p>a</p>\n").as_bytes(policy=email.policy.SMTP)
    )
    assert summary(msg)["parts"] == summary(reference)["parts"]
    assert msg["Subject"] == reference["Subject"]


def test_idn_sender_domain_gives_an_ascii_message_id(tmp_path: Path) -> None:
    path = make_workspace(tmp_path, campaign=CAMPAIGN + '\n[sender]\nemail = "news@茶.test"\n')
    prepared = prepare_campaign(path, load_settings(tmp_path, env={}))
    msg = parse(prepared.build(next(prepared.recipients())).envelope.data)
    assert msg["Message-ID"].endswith("@xn--cl1a.test>")
    assert msg["From"].addresses[0].addr_spec == "news@xn--cl1a.test"


def test_preflight_lists_every_bad_header_value_before_anything_is_built(tmp_path: Path) -> None:
    subjects = CAMPAIGN.splitlines()[2]
    assert subjects.startswith("subjects = ")
    campaign = CAMPAIGN.replace(subjects, 'subject = "Tea for {{ contact.city }}"')
    contacts = (
        "email,first_name,city\n"
        'a@tea.test,Ann,"Rome\nBcc: all@evil.test"\n'
        "b@tea.test,Bob,Oslo\n"
        'c@tea.test,"Cy\rBcc: x@evil.test",Kyiv\n'
    )
    path = make_workspace(tmp_path, campaign=campaign, contacts=contacts)
    prepared = prepare_campaign(path, load_settings(tmp_path, env={}))
    with pytest.raises(TemplateError) as caught:
        prepared.preflight()
    assert str(caught.value) == (
        f"{path}: some contacts cannot be rendered:\n"
        "  contacts.csv line 2: the subject has a line break\n"
        "  contacts.csv line 5: the contact's name has a line break\n"
        "  hint: fix these contacts' data (or leave them out); nothing was sent"
    )


def test_smtputf8_addresses_are_refused_for_every_contact_at_once(tmp_path: Path) -> None:
    path = make_workspace(tmp_path)
    prepared = prepare_campaign(path, load_settings(tmp_path, env={}))
    people = [
        Recipient("用户@tea.test", "用户", {"first_name": "用户"}, "contact #1"),
        Recipient("ok@tea.test", "Ok", {"first_name": "Ok"}, "contact #2"),
    ]
    with pytest.raises(TemplateError) as caught:
        prepared.preflight(people)
    assert "contact #1: the address '用户@tea.test' has non-ASCII characters before the @" in str(
        caught.value
    )
    with pytest.raises(TemplateError):
        prepared.build(people[0])


def test_utm_tagging_keeps_the_existing_query_byte_for_byte() -> None:
    params = {"utm_source": "nl", "utm_medium": "email"}
    assert (
        add_utm("https://a.test/s?q=green%20tea&flag#top", params)
        == "https://a.test/s?q=green%20tea&flag&utm_source=nl&utm_medium=email#top"
    )
    tagged = "https://a.test/?utm_source=nl&utm_medium=email"
    assert add_utm(tagged, params) == tagged
    for url in ("mailto:a@b.test", "tel:+4420", "sms:+4420", "ftp://a.test/x"):
        assert add_utm(url, params) == url


def test_unsubscribe_url_from_contact_data_cannot_break_the_header(tmp_path: Path) -> None:
    settings = SETTINGS.replace(
        "https://tea.test/unsubscribe?t={{ token }}",
        "https://tea.test/退订?c={{ contact.city }}&t={{ token }}",
    )
    contacts = "email,first_name,city\na@tea.test,Ann,San José> <https://evil.test/\n"
    path = make_workspace(tmp_path, contacts=contacts)
    (tmp_path / "mailer.toml").write_text(settings, encoding="utf-8")
    prepared = prepare_campaign(path, load_settings(tmp_path, env={}))
    out = prepared.build(next(prepared.recipients()))
    msg = parse(out.envelope.data)
    links = [u.strip().strip("<>") for u in str(msg["List-Unsubscribe"]).split(",")]
    assert links[1].startswith(
        "https://tea.test/%E9%80%80%E8%AE%A2?c=San%20Jos%C3%A9%3E%20%3Chttps://evil.test/&t="
    )
    assert len(links) == 2
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert out.rendered.unsubscribe_url is not None
    assert out.rendered.unsubscribe_url.replace("&", "&amp;") in out.rendered.html


def test_outbox_file_names_are_unique_per_address() -> None:
    names = {
        outbox_filename(a)
        for a in ("bob@bücher.test", "bob@bächer.test", "a/b@x.test", "a_b@x.test", "a+b@x.test")
    }
    assert len(names) == 5
    assert outbox_filename("bob@bücher.test") == "bob@xn--bcher-kva.test"
    assert outbox_filename("ann@tea.test") == "ann@tea.test"


def test_render_user_mistakes_give_messages_not_tracebacks(tmp_path: Path) -> None:
    make_workspace(tmp_path)
    (tmp_path / "afile").write_text("x")
    result = invoke(tmp_path, "render", "campaigns/spring.toml", "--out", "afile")
    assert result.exit_code == 1
    assert result.output.strip() == (
        "error: afile: cannot create the outbox folder: File exists\n"
        "  hint: choose another folder with --out"
    )
    result = invoke(tmp_path, "render", "campaigns")
    assert (result.exit_code, result.output.strip()) == (
        1,
        "error: campaigns: this is a folder, not a TOML file",
    )
    template = tmp_path / "templates" / "promo.mjml"
    good = template.read_text()
    # Fails for one contact only (after the others rendered): nothing reaches the outbox.
    template.write_text(good.replace("{{ headline }}", "{{ 1 / (contact.city != 'Berlin') }}"))
    result = invoke(tmp_path, "render", "campaigns/spring.toml")
    line = next(i for i, t in enumerate(template.read_text().splitlines(), 1) if "1 / (" in t)
    assert (result.exit_code, result.output.strip()) == (
        1,
        f"error: templates/promo.mjml:{line}: the HTML template failed at this line: "
        "a division by zero\n"
        "  hint: it failed rendering for contacts.csv line 4; if only some contacts' data trip "
        "it, guard it with {% if ... %} or give a default: | default(...)",
    )
    assert not (tmp_path / "outbox").exists()  # not even the folders it would have made
    template.write_bytes(b"\xff\xfe<mjml>")
    result = invoke(tmp_path, "render", "campaigns/spring.toml")
    assert (result.exit_code, result.output.strip()) == (
        1,
        "error: templates/promo.mjml: the template is not UTF-8 text",
    )
    assert not (tmp_path / "outbox").exists()  # not even the folders it would have made
