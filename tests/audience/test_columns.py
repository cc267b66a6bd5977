"""Import that shows what it understood: column names in English and Chinese, --map, dry runs,
Excel's semicolon CSV and "Unicode text", and the same header rules for a campaign's CSV audience."""

from __future__ import annotations

import codecs
import sqlite3
import unicodedata
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from mailer.audience import store
from mailer.audience.admin import get_contact
from mailer.audience.columns import recognised_names
from mailer.audience.csv_source import open_csv_audience
from mailer.audience.importer import import_contacts, inspect_contacts
from mailer.cli import app
from mailer.cli.contacts_cmds import IMPORT_EPILOG
from mailer.core.errors import AudienceError

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
CHINESE = """邮箱,姓名,手机,城市,生日,订单数,最近购买,会员等级
lin@shop.cn,林晓梅,138 0013 8000,杭州,1988-02-14,14,2026-11-20,金卡
zhang@shop.cn,张伟,139 0000 0000,上海,,6,2026-10-02,
"""


@pytest.fixture
def conn(tmp_path: Path) -> sqlite3.Connection:
    return store.connect(tmp_path / "mailer.db")


def mailer(cwd: Path, *args: str) -> Result:
    old = Path.cwd()
    import os

    os.chdir(cwd)
    try:
        return CliRunner().invoke(app, list(args))
    finally:
        os.chdir(old)


def test_chinese_headers_fill_the_built_in_fields(conn: sqlite3.Connection, tmp_path: Path) -> None:
    path = tmp_path / "客户.csv"
    path.write_text(CHINESE, encoding="utf-8")
    layout = inspect_contacts(path)
    assert [(c.header, c.kind, c.name, c.how) for c in layout.columns] == [
        ("邮箱", "field", "email", "recognised"),
        ("姓名", "field", "name", "recognised"),
        ("手机", "attr", "phone", "recognised"),
        ("城市", "attr", "city", "recognised"),
        ("生日", "field", "birthday", "recognised"),
        ("订单数", "field", "orders", "recognised"),
        ("最近购买", "field", "last_order_at", "recognised"),
        ("会员等级", "attr", "会员等级", "extra"),
    ]
    assert layout.columns[1].samples == ["林晓梅", "张伟"]
    result = import_contacts(conn, path, now=NOW)
    assert (result.inserted, result.rejected) == (2, [])
    lin = get_contact(conn, "lin@shop.cn", now=NOW).fields
    assert (lin["orders"], lin["birthday"], lin["last_order_at"]) == (
        14,
        "1988-02-14",
        "2026-11-20",
    )
    assert (lin["phone"], lin["city"], lin["会员等级"]) == ("138 0013 8000", "杭州", "金卡")


def test_map_names_a_columns_field_or_leaves_it_out(
    conn: sqlite3.Connection, tmp_path: Path
) -> None:
    path = tmp_path / "x.csv"
    path.write_text("联系人邮件,联系方式,备注\na@shop.cn,+86 1,secret\n", encoding="utf-8")
    with pytest.raises(AudienceError, match="no email column"):
        inspect_contacts(path)
    mapping = {"联系人邮件": "email", "联系方式": "手机", "备注": "-"}
    import_contacts(conn, path, now=NOW, mapping=mapping)
    fields = get_contact(conn, "a@shop.cn", now=NOW).fields
    assert fields["phone"] == "+86 1" and "备注" not in fields
    with pytest.raises(AudienceError, match="no column 'mail' to map"):
        inspect_contacts(path, mapping={"mail": "email"})
    with pytest.raises(
        AudienceError, match="columns '联系人邮件' and '联系方式' both fill the field"
    ):
        inspect_contacts(path, mapping={"联系人邮件": "email", "联系方式": "email"})


def test_excel_semicolon_csv_with_decimal_commas(conn: sqlite3.Connection, tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    text = "E-Mail;Vorname;Umsatz;total_spent;PLZ\r\nanna@shop.de;Anna;3,5;1260,5;01234\r\n"
    path.write_bytes(codecs.BOM_UTF8 + text.encode("cp1252"))
    layout = inspect_contacts(path)
    assert layout.delimiter == ";" and layout.decimal_comma
    import_contacts(conn, path, now=NOW, mapping={"Vorname": "first_name"})
    anna = get_contact(conn, "anna@shop.de", now=NOW).fields
    assert (anna["first_name"], anna["total_spent"], anna["umsatz"]) == ("Anna", 1260.5, 3.5)
    assert anna["plz"] == "01234"  # a code with a leading zero stays text


def test_excel_unicode_text_is_utf16_with_tabs(conn: sqlite3.Connection, tmp_path: Path) -> None:
    path = tmp_path / "unicode.txt"
    text = "电子邮件\t姓名\t城市\r\nlin@shop.cn\t林晓梅\t杭州\r\nzhang@shop.cn\t张伟\t上海\r\n"
    path.write_bytes(text.encode("utf-16"))  # Python writes the BOM, as Excel does
    result = import_contacts(conn, path, now=NOW)
    assert (result.rows, result.inserted, result.rejected) == (2, 2, [])
    assert get_contact(conn, "zhang@shop.cn", now=NOW).fields["city"] == "上海"


def test_jsonl_keys_follow_the_same_names(conn: sqlite3.Connection, tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text(
        '{"邮箱": "a@shop.cn", "订单数": 3}\n{"email": "b@shop.cn", "E-Mail": "c@shop.cn"}\n',
        encoding="utf-8",
    )
    result = import_contacts(conn, path, now=NOW)
    assert get_contact(conn, "a@shop.cn", now=NOW).fields["orders"] == 3
    assert [(r.line, r.reason) for r in result.rejected] == [
        (2, "keys 'email' and 'E-Mail' both fill the field 'email'")
    ]


# -- through the command line ---------------------------------------------------------
def test_the_cli_shows_the_columns_and_a_dry_run_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "客户.csv").write_text(CHINESE, encoding="utf-8")
    result = mailer(tmp_path, "contacts", "import", "客户.csv", "--dry-run")
    assert result.exit_code == 0, result.output
    lines = [line.rstrip() for line in result.stdout.splitlines()]
    assert lines[:4] == [
        "reading 客户.csv: UTF-8, separated by commas",
        "  column     field                 samples",
        "  邮箱     → email                 lin@shop.cn, zhang@shop.cn",
        "  姓名     → name                  林晓梅, 张伟",
    ]
    assert "  会员等级 → extra field 会员等级  金卡" in lines
    assert "dry run of 客户.csv: 2 rows read, nothing was written" in lines
    assert not (tmp_path / "mailer.db").exists()


def test_a_failed_import_creates_no_database(tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text("name,city\nAnn,Lima\n", encoding="utf-8")
    result = mailer(tmp_path, "contacts", "import", "bad.csv")
    assert result.exit_code == 1 and "no email column" in result.output
    assert "--map" in result.output  # the CLI says how to name the column
    # A failure after the database was opened: the rejects file cannot be written.
    (tmp_path / "some.csv").write_text("email\nnot-an-address\na@shop.cn\n", encoding="utf-8")
    result = mailer(tmp_path, "contacts", "import", "some.csv", "--rejects", "no/such/dir.csv")
    assert result.exit_code == 1 and "cannot write the rejects file" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv", "some.csv"]


def test_help_lists_every_recognised_name() -> None:
    """The CLI's list (written out, so --help imports nothing) is the importer's own."""
    expected = []
    for name, aliases in recognised_names().items():
        line = f"  {name:<15}"
        words = [a.replace("_", " ").replace("e mail", "e-mail") for a in aliases]
        for number, word in enumerate(words):
            piece = word + ("," if number < len(words) - 1 else "")
            if _width(line) + 1 + _width(piece) > 86 and line.strip() != name:
                expected.append(line.rstrip())
                line = " " * 17 + piece
            else:
                line += ("" if line.endswith(" ") else " ") + piece
        expected.append(line.rstrip())
    assert "\n".join(expected) in IMPORT_EPILOG
    shown = CliRunner().invoke(app, ["contacts", "import", "--help"]).output
    assert "邮箱, 电子邮件, 邮件地址" in shown and "--map" in shown and "--dry-run" in shown


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


# -- a campaign's CSV audience: the same header rules --------------------------------
def test_a_campaign_audience_reads_the_same_names_and_refuses_two_email_columns(
    tmp_path: Path,
) -> None:
    path = tmp_path / "people.csv"
    path.write_text(CHINESE, encoding="utf-8")
    people = list(open_csv_audience(path))
    assert [p.email for p in people] == ["lin@shop.cn", "zhang@shop.cn"]
    # The field's name and the column's own: {{ contact.name }} and {{ contact.姓名 }}.
    assert people[0].fields["name"] == people[0].fields["姓名"] == "林晓梅"
    assert people[0].fields["phone"] == "138 0013 8000" and people[0].name == "林晓梅"
    twice = tmp_path / "twice.csv"
    twice.write_text("email,E-Mail\nold@shop.cn,new@shop.cn\n", encoding="utf-8")
    with pytest.raises(AudienceError, match="columns 'email' and 'E-Mail' both fill the field"):
        open_csv_audience(twice)


def test_a_campaign_audience_reads_excel_semicolons_and_unicode_text(tmp_path: Path) -> None:
    semi = tmp_path / "semi.csv"
    semi.write_text("E-Mail;Name;Stadt\nanna@shop.de;Anna Weber;Köln\n", encoding="utf-8")
    anna = next(iter(open_csv_audience(semi)))
    assert (anna.email, anna.name, anna.fields["stadt"]) == ("anna@shop.de", "Anna Weber", "Köln")
    utf16 = tmp_path / "unicode.txt"
    utf16.write_bytes("邮箱\t姓名\r\nlin@shop.cn\t林晓梅\r\n".encode("utf-16"))
    lin = next(iter(open_csv_audience(utf16)))
    assert (lin.email, lin.name) == ("lin@shop.cn", "林晓梅")
