"""MIME building: the fast byte builder must parse back exactly like the EmailMessage build."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from mailer.campaign.prepared import prepare_campaign
from mailer.compose.message import Headers, build_bytes, build_reference, list_unsubscribe
from mailer.core.settings import Sender, load_settings
from tests.workspace import make_workspace

SUBJECTS = [
    "Spring tea is here",
    "李雷，新春快乐！送您一份新年礼",
    "A rather long ASCII subject line that goes well past the seventy-eight column fold point",
    'Mixed 混合 subject with émojis 🍵🎉 and "quotes"',
    "",
    "春茶上新：西湖龙井明前茶九折，" * 8,  # several encoded words, split between characters
    "🍵" * 40 + "a" + "é" * 30,  # four-, one- and two-byte characters across word breaks
]
NAMES = ["", "Ann Lee", "李雷", 'Lee, Ann "the tea fan"', "Zoë Ångström", "欧阳" * 30]
BODIES = [
    ("plain text\nsecond line with trailing space \n", "<p>" + "x" * 5000 + "</p>\n"),
    ("中文正文，" * 400 + "\n", "<p>" + "中文正文，" * 400 + "</p>\n"),
    (
        "=3D looks encoded\n.leading dot\nFrom the start\n",
        '<a href="https://a.test/?a=1&b=2">x</a>\n',
    ),
]


def parse(data: bytes) -> EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.default)  # type: ignore[return-value]


def headers_for(subject: str, name: str) -> Headers:
    unsub, one_click = list_unsubscribe("https://tea.test/u?t=abc", "unsubscribe@tea.test")
    return Headers(
        sender=Sender("Tea House 茶馆", "news@tea.test", "hello@tea.test"),
        to_name=name,
        to_email="someone@bücher.test",
        subject=subject,
        message_id="<0123456789abcdef.spring@tea.test>",
        date="Sun, 22 Nov 2026 08:00:00 +0000",
        list_unsubscribe=unsub,
        one_click=one_click,
    )


def summary(msg: EmailMessage) -> dict[str, object]:
    names = [
        "From",
        "To",
        "Reply-To",
        "Subject",
        "Date",
        "Message-ID",
        "List-Unsubscribe",
        "List-Unsubscribe-Post",
        "MIME-Version",
    ]
    parts = [
        (p.get_content_type(), p.get_content_charset(), p.get_content()) for p in msg.iter_parts()
    ]
    return {
        # strip(): the stdlib keeps the fold's leading space when a header starts folded
        "headers": {n: str(msg[n]).strip() if msg[n] is not None else None for n in names},
        "type": msg.get_content_type(),
        "parts": parts,
    }


@pytest.mark.parametrize("subject", SUBJECTS)
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("bodies", BODIES, ids=["ascii", "cjk", "tricky"])
def test_fast_build_parses_back_like_emailmessage(subject: str, name: str, bodies) -> None:
    text, html = bodies
    headers = headers_for(subject, name)
    fast = parse(build_bytes(headers, text, html))
    reference = parse(build_reference(headers, text, html).as_bytes(policy=email.policy.SMTP))
    assert summary(fast) == summary(reference)
    assert fast.defects == [] and all(p.defects == [] for p in fast.iter_parts())


@pytest.mark.parametrize("subject", SUBJECTS)
def test_no_line_over_78_on_the_wire(subject: str) -> None:
    data = build_bytes(
        headers_for(subject, "李雷"), "t\n" + "y" * 3000, "<p>" + "z" * 9000 + "</p>"
    )
    assert b"\n" not in data.replace(b"\r\n", b"")  # CRLF only
    assert max(len(line) for line in data.split(b"\r\n")) <= 78


def test_chinese_subject_and_names_round_trip() -> None:
    msg = parse(
        build_bytes(headers_for("新春快乐：送您一份新年礼", "李雷"), "你好\n", "<p>你好</p>\n")
    )
    assert msg["Subject"] == "新春快乐：送您一份新年礼"
    assert msg["From"].addresses[0].display_name == "Tea House 茶馆"
    assert msg["To"].addresses[0].display_name == "李雷"
    assert msg["To"].addresses[0].addr_spec == "someone@xn--bcher-kva.test"
    assert msg.get_body(("plain",)).get_content().splitlines() == ["你好"]


def test_list_unsubscribe_one_click_only_for_https() -> None:
    value, one_click = list_unsubscribe("http://tea.test/u", "u@tea.test")
    assert not one_click
    assert value == "<mailto:u@tea.test?subject=unsubscribe>,\r\n <http://tea.test/u>"
    assert list_unsubscribe(None, "u@tea.test") == (
        "<mailto:u@tea.test?subject=unsubscribe>",
        False,
    )
    msg = parse(build_bytes(headers_for("x", ""), "a\n", "<p>a</p>\n"))
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["List-Unsubscribe"] == (
        "<mailto:unsubscribe@tea.test?subject=unsubscribe>, <https://tea.test/u?t=abc>"
    )


def test_campaign_message_has_all_headers_and_parts(tmp_path: Path) -> None:
    path = make_workspace(tmp_path)
    prepared = prepare_campaign(path, load_settings(tmp_path))
    people = list(prepared.recipients())
    outgoing = prepared.build(people[0])
    msg = parse(outgoing.envelope.data)
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert msg["From"] == "Tea House 茶馆 <news@teahouse.cn>"
    assert msg["To"] == "李雷 <lilei@tea.test>"
    assert msg["Reply-To"] == "hello@tea.test"
    assert msg["Message-ID"].endswith("@teahouse.cn>")
    assert msg["Date"].datetime is not None
    assert msg["Subject"] == outgoing.subject
    assert outgoing.envelope.sender == "news@teahouse.cn"
    assert outgoing.envelope.recipient == "lilei@tea.test"
    # the same recipient keeps the same Message-ID (dedupe after a crash); others differ
    assert prepared.build(people[0]).envelope.message_id == outgoing.envelope.message_id
    assert prepared.build(people[1]).envelope.message_id != outgoing.envelope.message_id
    assert (
        prepared.build(people[0], salt="test").envelope.message_id != outgoing.envelope.message_id
    )
