"""Contacts in a real SQLite file: import, suppression, frequency cap, forget, export."""

from __future__ import annotations

import contextlib
import csv
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from email_validator import EmailNotValidError, validate_email

from mailer.audience import importer as audience_import
from mailer.audience import store
from mailer.audience.admin import export_contacts, forget_contact, get_contact, list_lists
from mailer.audience.contact_address import contact_address
from mailer.audience.frequency import FrequencyCap
from mailer.audience.importer import import_contacts
from mailer.audience.selection import count_segment, select_recipients
from mailer.audience.suppressions import is_suppressed, suppress, suppress_file
from mailer.core.errors import AudienceError

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


@pytest.fixture
def conn(tmp_path: Path) -> sqlite3.Connection:
    return store.connect(tmp_path / "mailer.db")


def write(path: Path, text: str, *, bom: bool = False) -> Path:
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


MESSY = """email,First Name,city,tags,orders,total_spent,last_order_at,Postal Code
Ann@Example.com,Ann,Shanghai,vip;new,5,300.5,2026-10-01,01234
"Li Lei <lilei@example.com>",,Beijing,,1,20,2025-01-01,
not-an-address,Bob,Paris,,,,,
pat@bücher.de,Pat,Berlin,,0,,,
ANN@EXAMPLE.COM,,Shanghai,vip,6,,,
zoe@example.com,Zoe,Lima,,two,,,
"""


def emails(conn: sqlite3.Connection) -> list[str]:
    return [r[0] for r in conn.execute("SELECT email FROM contacts ORDER BY id")]


def test_messy_csv_imports_valid_rows_and_reports_rejects_by_line(
    conn: sqlite3.Connection, tmp_path: Path
) -> None:
    source = write(tmp_path / "people.csv", MESSY, bom=True)
    result = import_contacts(conn, source, list_name="news", now=NOW)
    assert (result.rows, result.inserted, result.updated, result.merged) == (6, 3, 0, 1)
    assert [(r.line, r.reason) for r in result.rejected] == [
        (4, "invalid email address: An email address must have an @-sign."),
        (7, "orders 'two' is not a whole number"),
    ]
    assert emails(conn) == ["ann@example.com", "lilei@example.com", "pat@bücher.de"]
    ann = get_contact(conn, "ann@example.com", now=NOW).fields
    # the second ANN row merged in: newer orders, tags replaced, zip code stays text
    assert (ann["orders"], ann["tags"], ann["postal_code"]) == (6, ["vip"], "01234")
    assert (ann["first_name"], ann["total_spent"], ann["city"]) == ("Ann", 300.5, "Shanghai")
    li = get_contact(conn, "LiLei@Example.com", now=NOW).fields
    assert (li["first_name"], li["last_name"], li["name"]) == ("Li", "Lei", "Li Lei")
    assert result.rejects_file == tmp_path / "people.rejects.csv"
    with result.rejects_file.open(encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0][:4] == ["line", "reason", "email", "First Name"]
    assert [r[0] for r in rows[1:]] == ["4", "7"] and rows[1][2] == "not-an-address"
    assert [(i.name, i.members) for i in list_lists(conn)] == [("news", 3)]


def test_reimport_updates_instead_of_duplicating(conn: sqlite3.Connection, tmp_path: Path) -> None:
    import_contacts(conn, write(tmp_path / "a.csv", MESSY), now=NOW)
    again = write(tmp_path / "b.csv", "email,city,tier\nann@example.com,Hangzhou,gold\n")
    result = import_contacts(conn, again, now=NOW)
    assert (result.inserted, result.updated, result.rejected) == (0, 1, [])
    assert len(emails(conn)) == 3
    fields = get_contact(conn, "ann@example.com", now=NOW).fields
    assert (fields["city"], fields["tier"], fields["orders"]) == ("Hangzhou", "gold", 6)


def test_jsonl_import_keeps_types_and_line_numbers(
    conn: sqlite3.Connection, tmp_path: Path
) -> None:
    lines = [
        {"email": "a@example.com", "tags": ["vip", "tea"], "orders": 3, "vip_level": 2},
        "not json",
        {"email": "b@example.com", "birthday": "--02-29", "timezone": "Asia/Shanghai"},
        {"email": "c@example.com", "customer": True},
    ]
    text = "\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n"
    result = import_contacts(conn, write(tmp_path / "c.jsonl", text), now=NOW)
    assert [(r.line, r.reason) for r in result.rejected] == [
        (2, "not a JSON object"),
        (4, "column 'customer' is computed by mailer and cannot be imported"),
    ]
    a = get_contact(conn, "a@example.com", now=NOW).fields
    assert (a["tags"], a["orders"], a["vip_level"]) == (["vip", "tea"], 3, 2)
    assert get_contact(conn, "b@example.com", now=NOW).fields["birthday"] == "--02-29"
    assert result.rejects_file and result.rejects_file.suffix == ".jsonl"


def test_file_level_errors_name_the_file_and_line(conn: sqlite3.Connection, tmp_path: Path) -> None:
    with pytest.raises(AudienceError) as caught:
        import_contacts(conn, write(tmp_path / "x.csv", "name,city\nAnn,Lima\n"), now=NOW)
    assert str(caught.value) == (
        f"{tmp_path / 'x.csv'}:1: no email column (columns: name, city)\n"
        "  hint: name the address column 'email' (or 邮箱, E-Mail, ...)"
    )
    with pytest.raises(AudienceError, match="column 'rfm' is computed by mailer"):
        import_contacts(conn, write(tmp_path / "y.csv", "email,rfm\na@example.com,5\n"), now=NOW)


def test_a_line_that_does_not_decode_is_rejected_not_fatal(
    conn: sqlite3.Connection, tmp_path: Path
) -> None:
    # Told the file is UTF-8, a line that is not is rejected alone.
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"email,city\na@example.com,Lima\nb@example.com,K\xf6ln\nc@example.com,Rome\n")
    result = import_contacts(conn, path, now=NOW, encoding="utf-8")
    assert [(r.line, r.reason) for r in result.rejected] == [
        (3, "not valid text in the file's encoding")
    ]
    assert emails(conn) == ["a@example.com", "c@example.com"]


GBK_ROWS = (
    "email,first_name,city\nli@x.test,李雷,上海\nhan@x.test,韩梅梅,北京\nwang@x.test,王小明,广州\n"
)


@pytest.mark.parametrize(
    ("codec", "expected"),
    [
        ("gbk", "GB18030 (guessed: the file is not UTF-8)"),
        ("utf-16", "UTF-16"),
        ("utf-8-sig", "UTF-8"),
    ],
)
def test_the_encoding_is_detected_and_said(
    conn: sqlite3.Connection, tmp_path: Path, codec: str, expected: str
) -> None:
    path = tmp_path / "contacts.csv"
    path.write_bytes(GBK_ROWS.encode(codec))
    result = import_contacts(conn, path, now=NOW)
    assert result.rejected == [] and result.encoding is not None
    assert result.encoding.describe() == expected
    names = conn.execute("SELECT first_name, attributes FROM contacts ORDER BY id").fetchall()
    assert [n[0] for n in names] == ["李雷", "韩梅梅", "王小明"]
    assert "上海" in names[0][1]


def test_a_gbk_file_imports_through_the_cli_and_says_how_it_was_read(tmp_path: Path) -> None:
    from tests.workspace import invoke, make_workspace

    make_workspace(tmp_path)
    (tmp_path / "gbk.csv").write_bytes(GBK_ROWS.encode("gbk"))
    result = invoke(tmp_path, "contacts", "import", "gbk.csv")
    assert result.exit_code == 0, result.output
    lines = [" ".join(line.split()) for line in result.output.splitlines()]
    assert "encoding GB18030 (guessed: the file is not UTF-8)" in lines
    assert "rejected 0" in lines and "new 3" in lines


def test_a_huge_cell_rejects_its_row_and_keeps_the_others(
    conn: sqlite3.Connection, tmp_path: Path
) -> None:
    note = "x" * 200_000  # over Python's csv limit of 131,072 and mailer's of 65,536
    path = write(
        tmp_path / "big.csv",
        f"email,note\na@example.com,short\nb@example.com,{note}\nc@example.com,fine\n",
    )
    result = import_contacts(conn, path, now=NOW)
    assert [(r.line, r.reason) for r in result.rejected] == [
        (3, "the 'note' cell is 200,000 characters long (the limit is 65,536)")
    ]
    assert emails(conn) == ["a@example.com", "c@example.com"]


def test_a_name_with_a_line_break_is_rejected_at_import(
    conn: sqlite3.Connection, tmp_path: Path
) -> None:
    path = write(
        tmp_path / "names.csv",
        'email,first_name\na@example.com,Ann\nb@example.com,"Bob\nBcc: x@evil.test"\n',
    )
    result = import_contacts(conn, path, now=NOW)
    assert [(r.line, r.reason) for r in result.rejected] == [
        (3, "the first_name has a line break in it; put it on one line")
    ]
    assert emails(conn) == ["a@example.com"]


def test_import_is_one_transaction(
    conn: sqlite3.Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import_contacts(
        conn, write(tmp_path / "first.csv", "email,city\nkeep@example.com,Lima\n"), now=NOW
    )
    before = conn.execute("SELECT * FROM contacts").fetchall()
    rows = "".join(f"user{i}@example.com,Oslo\n" for i in range(50))
    rows += "keep@example.com,Changed\n"
    big = write(tmp_path / "big.csv", "email,city\n" + rows)
    monkeypatch.setattr(audience_import, "BATCH_SIZE", 10)
    real, calls = audience_import._write_batch, []

    def failing(*args: object) -> None:
        calls.append(1)
        if len(calls) == 3:  # two batches written, then the "power cut"
            raise KeyboardInterrupt
        real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(audience_import, "_write_batch", failing)
    with pytest.raises(KeyboardInterrupt):
        import_contacts(conn, big, list_name="oslo", now=NOW)
    assert conn.execute("SELECT * FROM contacts").fetchall() == before
    assert list_lists(conn) == []
    assert not conn.in_transaction


def test_ten_megabyte_file(conn: sqlite3.Connection, tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    note = "x" * 150
    with path.open("w", encoding="utf-8") as out:
        out.write("email,first_name,city,orders,note\n")
        i = 0
        while out.tell() < 10 * 1024 * 1024:
            out.write(f"u{i}@shop{i % 50}.example.com,Name{i},City{i % 7},{i % 9},{note}\n")
            i += 1
    result = import_contacts(conn, path, list_name="big", now=NOW)
    assert path.stat().st_size >= 10 * 1024 * 1024
    assert (result.inserted, result.rejected) == (i, [])
    assert count_segment(conn, "city == 'City3' and orders >= 4", now=NOW) == sum(
        1 for k in range(i) if k % 7 == 3 and k % 9 >= 4
    )


ODD_ADDRESSES = [
    "plain@example.com", "a.b.c@example.com", "x+tag@example.co.uk", ".lead@example.com",
    "trail.@example.com", "two..dots@example.com", "o'neil@example.com", "{x}@example.com",
    "a" * 64 + "@example.com", "a" * 65 + "@example.com", "u@" + "d" * 250 + ".com",
    "u@-bad.example.com", "u@localhost", "u@example", "u@exa_mple.com", "UPPER@EXAMPLE.COM",
    "u@bücher.de", "用户@例子.广告", "Name <n@example.com>", "u@[127.0.0.1]", '"q"@example.com',
    "u@example.com.", "u@sub.example.com", "u@x.test", "ü@example.com",
]  # fmt: skip


@pytest.mark.parametrize("address", ODD_ADDRESSES)
def test_fast_path_agrees_with_email_validator(address: str) -> None:
    def reference() -> str | None:
        try:
            info = validate_email(
                address, check_deliverability=False, allow_display_name=True, test_environment=True
            )
        except EmailNotValidError:
            return None
        return info.normalized.lower()

    def ours() -> str | None:
        try:
            return contact_address(address)[0]
        except EmailNotValidError:
            return None

    expected = reference()
    assert ours() == expected
    domain = address.rpartition("@")[2].rstrip(">").lower()
    # a plain address at that domain puts the domain in the fast-path cache
    with contextlib.suppress(EmailNotValidError):
        contact_address(f"warm@{domain}")
    assert ours() == expected


def people(conn: sqlite3.Connection, tmp_path: Path, count: int = 6) -> None:
    text = "email,city,orders\n" + "".join(
        f"p{i}@example.com,{'Shanghai' if i % 2 else 'Lima'},{i}\n" for i in range(count)
    )
    import_contacts(conn, write(tmp_path / "people.csv", text), list_name="all", now=NOW)


def test_suppressed_addresses_are_never_selected(conn: sqlite3.Connection, tmp_path: Path) -> None:
    people(conn, tmp_path)
    assert suppress(conn, "P1@Example.com", "unsubscribed", "test", now=NOW)
    assert not suppress(conn, "p1@example.com", "bounced", "smtp", now=NOW)
    assert is_suppressed(conn, "P1@EXAMPLE.COM") and not is_suppressed(conn, "p2@example.com")
    for list_name, segment in [(None, None), ("all", None), (None, "city == 'Shanghai'")]:
        selection = select_recipients(conn, list_name=list_name, segment=segment, now=NOW)
        got = [r.email for r in selection.recipients]
        assert "p1@example.com" not in got
        assert selection.suppressed_skipped == 1
        assert len(got) == selection.selected == selection.matched - 1
    # the row-by-row path (a filter SQL cannot express) obeys suppression too
    selection = select_recipients(conn, list_name=None, segment="city|lower == 'shanghai'", now=NOW)
    assert [r.email for r in selection.recipients] == ["p3@example.com", "p5@example.com"]
    assert count_segment(conn, "city == 'Shanghai'", now=NOW) == 2


def test_suppress_file_reports_bad_lines(conn: sqlite3.Connection, tmp_path: Path) -> None:
    path = write(
        tmp_path / "out.csv", "email\na@example.com\nnope\nA@example.com\n\nb@example.com\n"
    )
    result = suppress_file(conn, path, "manual", now=NOW)
    assert (result.added, result.already) == (2, 1)
    assert [(r.line, r.reason) for r in result.rejected] == [
        (3, "invalid email address: An email address must have an @-sign.")
    ]


def journal(conn: sqlite3.Connection, campaign: str, email: str, status: str, ago: float) -> None:
    sent = (NOW - timedelta(days=ago)).isoformat(timespec="seconds")
    conn.execute(
        "INSERT INTO journal (campaign_id, email, status, queued_at, updated_at, sent_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (campaign, email, status, sent, sent, sent if status == "sent" else None),
    )


def test_frequency_cap_holds_back_and_reports(conn: sqlite3.Connection, tmp_path: Path) -> None:
    people(conn, tmp_path)
    journal(conn, "c1", "p0@example.com", "sent", 1)
    journal(conn, "c2", "p0@example.com", "sent", 6.9)  # p0: 2 in the window -> capped
    journal(conn, "c1", "p2@example.com", "sent", 2)
    journal(conn, "c2", "p2@example.com", "sent", 8)  # outside the 7-day window
    journal(conn, "c1", "p4@example.com", "sent", 1)
    journal(conn, "c2", "p4@example.com", "failed", 1)  # failures do not count
    journal(conn, "c1", "p5@example.com", "sent", 1)
    journal(conn, "now", "p5@example.com", "sent", 0.1)  # this campaign's own row
    suppress(conn, "p3@example.com", "complained", now=NOW)
    cap = FrequencyCap(max_messages=2, days=7)
    selection = select_recipients(
        conn, list_name="all", segment=None, frequency_cap=cap, now=NOW, campaign_id="now"
    )
    got = [r.email for r in selection.recipients]
    assert got == ["p1@example.com", "p2@example.com", "p4@example.com", "p5@example.com"]
    assert (selection.matched, selection.suppressed_skipped, selection.capped) == (6, 1, 1)
    other = select_recipients(conn, list_name="all", segment=None, frequency_cap=cap, now=NOW)
    assert other.capped == 2  # counted for any other campaign
    with pytest.raises(AudienceError, match="frequency cap must be at least 1"):
        FrequencyCap(0, 7)


def test_recipient_carries_everything_templates_see(
    conn: sqlite3.Connection, tmp_path: Path
) -> None:
    text = (
        "email,first_name,last_name,locale,timezone,birthday,tags,orders,total_spent,"
        "last_order_at,city\n"
        "mei@example.com,Mei,Wang,zh_CN,Asia/Shanghai,1990-11-22,vip,3,99.5,2026-10-23,Shanghai\n"
        "tom@example.com,Tom,,en,,,,,,,\n"
    )
    import_contacts(conn, write(tmp_path / "p.csv", text), now=NOW)
    selection = select_recipients(conn, list_name=None, segment="customer", now=NOW)
    (mei,) = list(selection.recipients)
    assert (mei.name, mei.source, mei.contact_id) == ("Wang Mei", "contact #1", 1)
    assert mei.fields == {
        "email": "mei@example.com", "first_name": "Mei", "last_name": "Wang", "name": "Wang Mei",
        "locale": "zh-CN", "timezone": "Asia/Shanghai", "birthday": "1990-11-22",
        "tags": ["vip"], "orders": 3, "total_spent": 99.5, "last_order_at": "2026-10-23",
        "last_order_days": 30, "customer": True, "birthday_today": True, "city": "Shanghai",
        "rfm": {"recency": 1, "frequency": 1, "monetary": 1},
    }  # fmt: skip
    tom = next(select_recipients(conn, list_name=None, segment="not customer", now=NOW).recipients)
    assert tom.fields["city"] is None and tom.fields["last_order_days"] is None


def test_unknown_list_is_an_error(conn: sqlite3.Connection, tmp_path: Path) -> None:
    people(conn, tmp_path)
    with pytest.raises(AudienceError) as caught:
        select_recipients(conn, list_name="vips", segment=None, now=NOW)
    assert str(caught.value) == "no list named 'vips'\n  hint: lists: all"


def test_forget_erases_data_but_keeps_suppression(conn: sqlite3.Connection, tmp_path: Path) -> None:
    people(conn, tmp_path)
    suppress(conn, "p1@example.com", "unsubscribed", now=NOW)
    journal(conn, "c1", "p1@example.com", "sent", 1)
    result = forget_contact(conn, "P1@example.com")
    assert (result.contact_erased, result.journal_rows, result.suppressed) == (True, 1, True)
    assert "p1@example.com" not in emails(conn)
    assert conn.execute("SELECT count(*) FROM list_members").fetchone()[0] == 5
    assert conn.execute("SELECT count(*) FROM journal WHERE email LIKE 'p1@%'").fetchone()[0] == 0
    assert is_suppressed(conn, "p1@example.com")
    # the person comes back through an import: still never selected
    import_contacts(conn, write(tmp_path / "back.csv", "email\np1@example.com\n"), now=NOW)
    selection = select_recipients(conn, list_name=None, segment=None, now=NOW)
    assert "p1@example.com" not in [r.email for r in selection.recipients]
    forget_contact(conn, "p2@example.com")
    with pytest.raises(AudienceError, match=r"no contact with address p2@example\.com"):
        forget_contact(conn, "p2@example.com")


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_export_round_trips_through_import(
    conn: sqlite3.Connection, tmp_path: Path, fmt: str
) -> None:
    import_contacts(conn, write(tmp_path / "in.csv", MESSY), list_name="news", now=NOW)
    out = tmp_path / f"out.{fmt}"
    assert export_contacts(conn, out, list_name="news", fmt=fmt) == 3
    copy = store.connect(tmp_path / "copy.db")
    result = import_contacts(copy, out, now=NOW)
    assert result.rejected == [] and result.inserted == 3
    columns = "email, first_name, last_name, tags, attributes, orders, total_spent, last_order_at"
    query = f"SELECT {columns} FROM contacts ORDER BY email"
    original = [tuple(r) for r in conn.execute(query)]
    copied = [tuple(r) for r in copy.execute(query)]
    normal = [(*r[:4], json.loads(r[4]), *r[5:]) for r in original]
    assert [(*r[:4], json.loads(r[4]), *r[5:]) for r in copied] == normal


def test_display_names_unquoted_and_east_asian(conn: sqlite3.Connection, tmp_path: Path) -> None:
    text = (
        "email,locale\n"
        "陈佳慧 <Chen.Jiahui@post.test>,zh-TW\n"
        '"Ann Lee" <ann@example.com>,en\n'
        "Li Lei <li@example.com>,zh-CN\n"
    )
    result = import_contacts(conn, write(tmp_path / "names.csv", text), now=NOW)
    assert result.rejected == []
    people = select_recipients(conn, list_name=None, segment=None, now=NOW).recipients
    assert [(r.email, r.name, r.fields["first_name"]) for r in people] == [
        ("chen.jiahui@post.test", "陈佳慧", "陈佳慧"),
        ("ann@example.com", "Ann Lee", "Ann"),
        ("li@example.com", "Li Lei", "Li Lei"),
    ]


def test_display_name_never_garbles_names_already_known(
    conn: sqlite3.Connection, tmp_path: Path
) -> None:
    import_contacts(
        conn, write(tmp_path / "a.csv", "email,first_name,last_name\nc@x.com,佳慧,陈\n"), now=NOW
    )
    import_contacts(
        conn,
        write(tmp_path / "b.csv", "email,orders\n陈佳慧 <c@x.com>,2\nBo Li <b@x.com>,1\n"),
        now=NOW,
    )
    got = {r.email: (r.fields["first_name"], r.fields["last_name"], r.fields["orders"])
           for r in select_recipients(conn, list_name=None, segment=None, now=NOW).recipients}  # fmt: skip
    assert got == {"c@x.com": ("佳慧", "陈", 2), "b@x.com": ("Bo", "Li", 1)}
    import_contacts(conn, write(tmp_path / "c.csv", "email,first_name\nb@x.com,Bob\n"), now=NOW)
    assert get_contact(conn, "b@x.com", now=NOW).fields["name"] == "Bob Li"


def test_chinese_column_names_become_fields(conn: sqlite3.Connection, tmp_path: Path) -> None:
    text = "email,城市,会员 等级\na@example.com,上海,金卡\nb@example.com,北京,\n"
    import_contacts(conn, write(tmp_path / "zh.csv", text), now=NOW)
    # 城市 is a recognised name: the field is city, as for an English file.
    segment = "city == '上海' and 会员_等级 == '金卡'"
    assert count_segment(conn, segment, now=NOW) == 1
    assert count_segment(conn, segment, force_rows=True, now=NOW) == 1
    with pytest.raises(AudienceError, match="did you mean '会员_等级'"):
        count_segment(conn, "会员_等 == '金卡'", now=NOW)
    with pytest.raises(AudienceError, match=r"column '1st' cannot be a field name"):
        import_contacts(conn, write(tmp_path / "bad.csv", "email,1st\na@example.com,x\n"), now=NOW)


def test_unwritable_rejects_file_imports_nothing(conn: sqlite3.Connection, tmp_path: Path) -> None:
    source = write(tmp_path / "people.csv", MESSY)
    target = tmp_path / "no-such-folder" / "rejects.csv"
    with pytest.raises(AudienceError) as caught:
        import_contacts(conn, source, list_name="news", rejects_path=target, now=NOW)
    assert str(caught.value).startswith(f"cannot write the rejects file {target}: ")
    assert "nothing was imported" in str(caught.value)
    assert emails(conn) == [] and list_lists(conn) == [] and not conn.in_transaction


def test_file_shape_errors_are_clear(conn: sqlite3.Connection, tmp_path: Path) -> None:
    array = write(tmp_path / "people.json", '[\n {"email": "a@example.com"},\n {"email": "b"}\n]\n')
    with pytest.raises(AudienceError) as caught:
        import_contacts(conn, array, now=NOW)
    assert str(caught.value).startswith(
        f"{array}:1: the file is a JSON array; contacts are read as JSON Lines"
    )
    twice = write(tmp_path / "two.csv", "email,City,mail,city\na@example.com,Lima,b@x.com,Oslo\n")
    with pytest.raises(AudienceError) as caught:
        import_contacts(conn, twice, now=NOW)
    assert str(caught.value) == (
        f"{twice}:1: columns 'email' and 'mail' both fill the field 'email'\n"
        "  hint: rename or remove one of them, or map one to another field"
    )
    with pytest.raises(AudienceError, match="columns 'City' and 'city' both fill the extra field"):
        import_contacts(
            conn, write(tmp_path / "c.csv", "email,City,city\na@example.com,X,Y\n"), now=NOW
        )
    with pytest.raises(AudienceError, match="is a folder, not a file"):
        import_contacts(conn, tmp_path, now=NOW)
    assert emails(conn) == []


def test_addresses_that_need_smtputf8_are_rejected_by_line(
    conn: sqlite3.Connection, tmp_path: Path
) -> None:
    text = "email\nü@example.com\nu@bücher.de\n用户@例子.广告\nplain@xn--bcher-kva.de\n"
    result = import_contacts(conn, write(tmp_path / "idn.csv", text), now=NOW)
    reason = (
        "the part before the @ has non-ASCII characters (it needs SMTPUTF8, "
        "which mailer cannot send to)"
    )
    assert [(r.line, r.reason) for r in result.rejected] == [(2, reason), (4, reason)]
    # the internationalised domain is kept in Unicode, whichever form it came in
    assert emails(conn) == ["u@bücher.de", "plain@bücher.de"]


def test_suppression_lookups_normalise_like_contacts(
    conn: sqlite3.Connection, tmp_path: Path
) -> None:
    suppress(conn, "Pat@Bücher.de", "unsubscribed", now=NOW)
    assert is_suppressed(conn, "pat@xn--bcher-kva.de")
    assert is_suppressed(conn, "Pat <PAT@BÜCHER.DE>")
    path = write(
        tmp_path / "out.csv",
        'email,reason\n"Lee, Ann <ann@example.com>",left\n"Bo <bo@example.com>\nc@example.com\n',
    )
    result = suppress_file(conn, path, "manual", now=NOW)
    # a stray quote on line 3 cannot swallow the lines after it
    assert (result.added, result.rejected) == (3, [])
    for address in ("ann@example.com", "bo@example.com", "c@example.com"):
        assert is_suppressed(conn, address)
    with pytest.raises(AudienceError, match="unknown suppression reason 'gone'"):
        suppress_file(conn, write(tmp_path / "empty.txt", "email\n"), "gone", now=NOW)


def test_export_to_a_bad_place_is_a_clear_error(conn: sqlite3.Connection, tmp_path: Path) -> None:
    import_contacts(conn, write(tmp_path / "in.csv", MESSY), now=NOW)
    with pytest.raises(
        AudienceError, match=r"cannot write the export to .*missing.*: No such file"
    ):
        export_contacts(conn, tmp_path / "missing" / "out.jsonl")
    with pytest.raises(AudienceError, match="cannot write the export to"):
        export_contacts(conn, tmp_path)


def test_forget_leaves_no_trace_in_the_database_file(tmp_path: Path) -> None:
    db = tmp_path / "erase.db"
    conn = store.connect(db)
    rows = "".join(f"keep{i}@example.com,Lima\n" for i in range(200))
    text = "email,city\nsecret.person@example.com,Unforgettable-City\n" + rows
    import_contacts(conn, write(tmp_path / "p.csv", text), now=NOW)
    # As on SQLite builds whose default is off (this one's may be on):
    # forget must switch it on itself.
    conn.execute("PRAGMA secure_delete = OFF")
    forget_contact(conn, "secret.person@example.com")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    wal = db.with_name("erase.db-wal")
    data = db.read_bytes() + (wal.read_bytes() if wal.exists() else b"")
    assert b"secret.person" not in data and b"Unforgettable-City" not in data
    assert b"keep7@example.com" in data


def test_an_unclosed_quote_is_named_with_the_lines_it_swallowed(
    conn: sqlite3.Connection, tmp_path: Path
) -> None:
    text = (
        'email,city,note\na@example.com,Lima,"two\nlines"\n'
        'b@example.com,"Oslo\nc@example.com,Rome,\nd@example.com,Bonn,\n'
    )
    result = import_contacts(conn, write(tmp_path / "quote.csv", text), now=NOW)
    reason = 'a quoted cell runs from line 4 to line 6: is a closing quote (") missing?'
    assert [(r.line, r.reason) for r in result.rejected] == [(4, reason)]
    assert emails(conn) == ["a@example.com"]  # the legitimate two-line note is kept
    assert get_contact(conn, "a@example.com", now=NOW).fields["note"] == "two\nlines"
    one_column = write(tmp_path / "q1.csv", 'email\n"a@example.com\nb@example.com\n')
    result = import_contacts(conn, one_column, now=NOW)
    assert [(r.line, r.reason) for r in result.rejected] == [
        (2, 'a quoted cell runs from line 2 to line 3: is a closing quote (") missing?')
    ]


def test_two_imports_in_the_same_second_fill_only_their_own_lists(
    conn: sqlite3.Connection, tmp_path: Path
) -> None:
    # Timestamps have one-second resolution: list membership must not be decided by them.
    import_contacts(
        conn, write(tmp_path / "a.csv", "email\na@example.com\n"), list_name="a", now=NOW
    )
    import_contacts(
        conn, write(tmp_path / "b.csv", "email\nb@example.com\n"), list_name="b", now=NOW
    )
    members = {info.name: info.members for info in list_lists(conn)}
    assert members == {"a": 1, "b": 1}
    only_b = select_recipients(conn, list_name="b", segment=None, now=NOW)
    assert [r.email for r in only_b.recipients] == ["b@example.com"]
