"""CSV audiences stream from the file: validated once, read again on each pass, nothing kept."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from email_validator import validate_email

from mailer.audience import csv_source
from mailer.audience.csv_source import open_csv_audience
from mailer.core import addresses
from mailer.core.addresses import InvalidAddress, normalize_address
from mailer.core.errors import AudienceError


def write(path: Path, rows: list[str]) -> Path:
    path.write_text("email,first_name\n" + "".join(f"{row}\n" for row in rows), encoding="utf-8")
    return path


def test_rows_stream_again_on_every_pass(tmp_path: Path) -> None:
    path = write(tmp_path / "a.csv", ["ann@tea.test,Ann", "Bob <BOB@Tea.Test>,Bob"])
    audience = open_csv_audience(path)
    assert audience.count == 2
    first = [(r.email, r.name, r.source) for r in audience]
    assert first == [
        ("ann@tea.test", "Ann", "a.csv line 2"),
        ("BOB@tea.test", "Bob", "a.csv line 3"),
    ]
    assert [(r.email, r.name, r.source) for r in audience] == first


def test_every_bad_row_is_reported_in_line_order(tmp_path: Path) -> None:
    path = write(
        tmp_path / "a.csv",
        ["ann@tea.test,Ann", "not-an-address,X", "ANN@tea.test,Again", "bob@tea.test,Bob"],
    )
    with pytest.raises(AudienceError) as caught:
        open_csv_audience(path)
    text = str(caught.value)
    assert text.index("line 3: 'not-an-address'") < text.index(
        "line 4: ANN@tea.test already appears on line 2"
    )
    assert "2 bad row(s)" in text


def test_a_hash_collision_is_not_taken_for_a_duplicate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Duplicates are found by hash; every hash colliding must still report only true repeats."""
    monkeypatch.setattr(csv_source, "hash", lambda text: 7, raising=False)
    path = write(tmp_path / "a.csv", ["ann@tea.test,A", "bob@tea.test,B", "Ann@tea.test,C"])
    with pytest.raises(AudienceError) as caught:
        open_csv_audience(path)
    assert "1 bad row(s)" in str(caught.value)
    assert "line 4: Ann@tea.test already appears on line 2" in str(caught.value)
    ok = write(tmp_path / "b.csv", ["ann@tea.test,A", "bob@tea.test,B", "cy@tea.test,C"])
    assert open_csv_audience(ok).count == 3


def test_a_file_changed_after_the_check_is_not_sent_from(tmp_path: Path) -> None:
    path = write(tmp_path / "a.csv", ["ann@tea.test,Ann"])
    audience = open_csv_audience(path)
    write(path, ["ann@tea.test,Ann", "eve@@bad,Eve"])
    os.utime(path, ns=(1, 1))
    with pytest.raises(AudienceError, match="changed after it was checked"):
        list(audience)
    assert not audience.unchanged()


PLAIN = [
    "ann@Shop.Example.COM",
    "Ann.Lee+tag@shop.example.com",
    "o'brien@shop.example.com",
    "x" * 64 + "@shop.example.com",
    "a{b}|c~d@shop.example.com",
    "first.last@sub.shop.example.com",
]
NOT_PLAIN = [
    "x" * 65 + "@shop.example.com",  # local part too long
    "a..b@shop.example.com",
    ".ann@shop.example.com",
    "ann.@shop.example.com",
    '"quoted"@shop.example.com',
    "用户@shop.example.com",
    "ann@-shop.example.com",
    "ann@shop.example.com.",
    "ann@" + "a" * 250 + ".com",
]


@pytest.mark.parametrize("address", PLAIN + NOT_PLAIN)
def test_the_shortcut_agrees_with_email_validator(address: str) -> None:
    """After a domain is accepted once, the shortcut gives email-validator's exact verdict."""
    addresses._GOOD_DOMAINS.update({"shop.example.com", "sub.shop.example.com"})
    try:
        expected = validate_email(
            address, check_deliverability=False, test_environment=True, allow_smtputf8=False
        ).normalized
    except Exception:
        expected = None
    try:
        got: str | None = normalize_address(address)
    except InvalidAddress:
        got = None
    assert got == expected
    if address in PLAIN:
        assert addresses.plain_address(address) == expected  # the shortcut itself answered


# --- real-world files ---------------------------------------------------------------------

GBK_CONTACTS = (
    "email,first_name,city\nli@tea.test,李雷,上海\nhan@tea.test,韩梅梅,北京\n"
    "wang@tea.test,王小明,广州\n"
)


def test_a_gbk_audience_renders_and_the_check_says_how_it_was_read(tmp_path: Path) -> None:
    from mailer.campaign.prepared import prepare_campaign
    from mailer.checks.gate import run_checks
    from mailer.core.settings import load_settings
    from tests.workspace import CAMPAIGN, make_workspace

    campaign = make_workspace(tmp_path)
    (tmp_path / "campaigns" / "contacts.csv").write_bytes(GBK_CONTACTS.encode("gbk"))
    prepared = prepare_campaign(campaign, load_settings(tmp_path, env={}))
    first = prepared.build(next(prepared.recipients()))
    assert "Spring tea, 李雷" in first.rendered.html
    [warning] = [
        f for f in run_checks(prepared, browser=False).findings if f.code == "audience-encoding"
    ]
    assert "read as gb18030 (a guess)" in warning.message
    assert 'encoding = "gb18030" under [audience]' in warning.message
    # Named in the campaign: no guess, no warning.
    campaign.write_text(
        CAMPAIGN.replace('csv = "contacts.csv"', 'csv = "contacts.csv"\nencoding = "gbk"')
    )
    named = prepare_campaign(campaign, load_settings(tmp_path, env={}))
    assert not [
        f for f in run_checks(named, browser=False).findings if f.code == "audience-encoding"
    ]


def test_a_huge_cell_is_a_bad_row_of_the_audience(tmp_path: Path) -> None:
    path = write(tmp_path / "a.csv", ["ann@tea.test,Ann", f"bob@tea.test,{'B' * 140_000}"])
    with pytest.raises(AudienceError) as caught:
        open_csv_audience(path)
    assert "line 3: the 'first_name' cell is 140,000 characters long" in str(caught.value)


def test_an_unknown_encoding_name_is_a_clear_error(tmp_path: Path) -> None:
    path = write(tmp_path / "a.csv", ["ann@tea.test,Ann"])
    with pytest.raises(AudienceError, match="unknown encoding 'klingon'"):
        open_csv_audience(path, "klingon")


def test_an_empty_cell_printed_as_it_is_stops_the_render(tmp_path: Path) -> None:
    from tests.workspace import CAMPAIGN, invoke, make_workspace

    offer = "\"{{ contact.city }}的朋友，{{ contact.first_name | default('朋友', true) }}\""
    make_workspace(
        tmp_path,
        campaign=CAMPAIGN.replace('"20% off <all> green teas"', offer),
        contacts="email,first_name,city\nann@tea.test,Ann,\nbob@tea.test,,上海\n",
    )
    result = invoke(tmp_path, "render", "campaigns/spring.toml")
    assert result.exit_code == 1
    assert "contact.city (printed in offer) is empty for 1 contact(s): contacts.csv line 2" in (
        result.output
    )
    assert "default('...', true)" in result.output
    assert not (tmp_path / "outbox").exists()
