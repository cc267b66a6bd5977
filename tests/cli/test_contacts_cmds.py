"""`mailer contacts|suppress|lists|segment` through Typer's CliRunner, on real database files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from mailer.audience import store
from mailer.cli import app

runner = CliRunner()

CONTACTS = """\ufeffemail,first_name,city,tags,orders,total_spent,last_order_at
"Ann Lee <Ann@Example.com>",,Shanghai,vip,5,500,2026-11-01
broken,,Lima,,,,
bo@bücher.de,Bo,Berlin,,1,20,2025-01-01
ann@example.com,,Shanghai,vip;tea,6,,
"""


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "mailer.db"


def mailer(db: Path, *args: str, **kwargs: Any) -> Result:
    return runner.invoke(app, [*args, "--db", str(db)], **kwargs)


def imported(db: Path, tmp_path: Path) -> Path:
    path = tmp_path / "contacts.csv"
    path.write_text(CONTACTS, encoding="utf-8")
    result = mailer(db, "contacts", "import", str(path), "--list", "news")
    assert result.exit_code == 0, result.output
    return path


def test_import_prints_summary_and_rejected_lines(db: Path, tmp_path: Path) -> None:
    path = tmp_path / "contacts.csv"
    path.write_text(CONTACTS, encoding="utf-8")
    result = mailer(db, "contacts", "import", str(path), "--list", "news")
    assert result.exit_code == 0
    lines = [line.rstrip() for line in result.stdout.splitlines()]
    assert lines == [
        # First what was understood: each column's field, with sample values ...
        f"reading {path}: UTF-8, separated by commas",
        "  column          field             samples",
        "  email         → email             Ann Lee <Ann@Example.co…, broken, bo@bücher.de",
        "  first_name    → first_name        Bo",
        "  city          → extra field city  Shanghai, Lima, Berlin",
        "  tags          → tags              vip, vip;tea",
        "  orders        → orders            5, 1, 6",
        "  total_spent   → total_spent       500, 20",
        "  last_order_at → last_order_at     2026-11-01, 2025-01-01",
        # ... then what the import did.
        f"imported {path}: 4 rows read",
        "  new         2",
        "  updated     0",
        "  merged      1  (same address again in the file)",
        "  rejected    1",
        "  list        news",
        f"rejected rows (all of them in {tmp_path / 'contacts.rejects.csv'}):",
        "  line 3: invalid email address: An email address must have an @-sign.",
    ]
    assert (tmp_path / "contacts.rejects.csv").read_text(encoding="utf-8").splitlines()[1] == (
        "3,invalid email address: An email address must have an @-sign.,broken,,Lima,,,,"
    )


def test_unknown_segment_field_exits_1_with_did_you_mean(db: Path, tmp_path: Path) -> None:
    imported(db, tmp_path)
    result = mailer(db, "segment", "count", "citty == 'Shanghai'")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == "error: segment: unknown field 'citty'\n  hint: did you mean 'city'?\n"


def test_internals_are_refused_on_the_command_line(db: Path) -> None:
    result = mailer(db, "segment", "count", "().__class__.__base__")
    assert result.exit_code == 1
    assert result.stderr == (
        "error: segment: segment expressions cannot reach Python internals ('__base__')\n"
        "  hint: a segment compares contact fields, e.g. city == 'Shanghai' and orders >= 3\n"
    )


def test_segment_count_save_list_and_show(db: Path, tmp_path: Path) -> None:
    imported(db, tmp_path)
    assert mailer(db, "segment", "count", "'vip' in tags").stdout == "1\n"
    saved = mailer(db, "segment", "save", "shanghai", "city == 'Shanghai'")
    assert saved.stdout == "saved segment shanghai: 1 contacts match today\n"
    assert mailer(db, "segment", "count", "shanghai", "--list", "news").stdout == "1\n"
    listed = mailer(db, "segment", "list")
    assert "shanghai" in listed.stdout and "city == 'Shanghai'" in listed.stdout
    shown = mailer(db, "segment", "show", "customer")
    assert shown.exit_code == 0
    assert "ann@example.com" in shown.stdout and "bo@bücher.de" in shown.stdout
    assert shown.stdout.rstrip().endswith("showing 2 of 2")
    missing = mailer(db, "segment", "count", "customer", "--list", "vips")
    assert missing.exit_code == 1
    assert missing.stderr == "error: no list named 'vips'\n  hint: lists: news\n"


def test_rfm_grid(db: Path, tmp_path: Path) -> None:
    imported(db, tmp_path)
    result = mailer(db, "segment", "rfm")
    assert result.exit_code == 0
    rows = {line.split()[1]: line.split()[3:13:2] for line in result.stdout.splitlines()
            if line.startswith("│ R")}  # fmt: skip
    assert rows["R5"] == ["0", "0", "0", "0", "1"] and rows["R1"] == ["1", "0", "0", "0", "0"]
    assert "0 contacts without orders (RFM 0, not in the grid)" in result.stdout


def test_suppress_address_and_file(db: Path, tmp_path: Path) -> None:
    imported(db, tmp_path)
    first = mailer(db, "suppress", "ANN@example.com", "--reason", "unsubscribed")
    assert first.stdout == "suppressed ann@example.com (unsubscribed)\n"
    assert mailer(db, "suppress", "ann@example.com").stdout == (
        "ann@example.com was already suppressed\n"
    )
    assert mailer(db, "segment", "count", "true").stdout == "1\n"
    listing = tmp_path / "bounces.txt"
    listing.write_text("bo@bücher.de\nnot-an-address\nzed@example.com\n", encoding="utf-8")
    result = mailer(db, "suppress", str(listing), "--reason", "bounced")
    assert result.stdout.splitlines() == [
        f"suppressed 2 addresses from {listing} (bounced)",
        "  line 2: invalid email address: An email address must have an @-sign.",
    ]
    bad = mailer(db, "suppress", "nobody", "--reason", "manual")
    assert (bad.exit_code, bad.stderr) == (
        1,
        "error: 'nobody' is neither an address nor a file\n  hint: give an address or a file\n",
    )
    reason = mailer(db, "suppress", "x@example.com", "--reason", "angry")
    assert reason.stderr == (
        "error: unknown suppression reason 'angry'\n"
        "  hint: use one of: unsubscribed, bounced, complained, manual\n"
    )


def test_lists_list_show_export_forget(
    db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the workspace whose outbox forget cleans
    monkeypatch.delenv("MAILER_OUTBOX", raising=False)
    imported(db, tmp_path)
    lists = mailer(db, "lists")
    assert "│ news │ 2       │" in lists.stdout
    listing = mailer(db, "contacts", "list", "--list", "news")
    assert "showing 2 of 2 contacts in list news" in listing.stdout
    shown = mailer(db, "contacts", "show", "ann@example.com")
    assert "Shanghai" in shown.stdout and "vip, tea" in shown.stdout
    out = tmp_path / "export.jsonl"
    exported = mailer(db, "contacts", "export", "--out", str(out))
    assert exported.stdout == f"exported 2 contacts to {out}\n"
    as_csv = tmp_path / "export.csv"  # the format follows the suffix unless --format says
    assert mailer(db, "contacts", "export", "--out", str(as_csv)).exit_code == 0
    assert as_csv.read_text(encoding="utf-8").startswith("email,")
    assert json.loads(out.read_text().splitlines()[0])["tags"] == ["vip", "tea"]
    record = mailer(db, "contacts", "export", "--email", "ann@example.com")
    assert json.loads(record.stdout)["lists"] == ["news"]
    mailer(db, "suppress", "ann@example.com", "--reason", "unsubscribed")
    refused = mailer(db, "contacts", "forget", "ann@example.com", input="n\n")
    assert refused.exit_code == 1 and "nothing erased" in refused.stdout
    forgot = mailer(db, "contacts", "forget", "ann@example.com", input="y\n")
    assert forgot.exit_code == 0
    assert forgot.stdout.splitlines()[-2:] == [
        "forgot ann@example.com: contact erased, 0 send-journal rows anonymised, "
        "0 outbox files deleted",
        "the address stays on the suppression list",
    ]
    again = mailer(db, "contacts", "forget", "nobody@example.com", "--yes")
    assert again.stderr == (
        "error: no contact with address nobody@example.com\n  hint: mailer contacts list\n"
    )


def test_database_path_from_env_and_settings_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "people.csv"
    path.write_text("email\na@example.com\n", encoding="utf-8")
    env_db = tmp_path / "env.db"
    result = runner.invoke(app, ["contacts", "import", str(path)], env={"MAILER_DB": str(env_db)})
    assert result.exit_code == 0, result.output
    assert [tuple(r) for r in store.connect(env_db).execute("SELECT email FROM contacts")] == [
        ("a@example.com",)
    ]
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "mailer.toml").write_text('[store]\npath = "data/people.db"\n')
    (workspace / "data").mkdir()
    monkeypatch.chdir(workspace)
    monkeypatch.delenv("MAILER_DB", raising=False)
    assert runner.invoke(app, ["contacts", "import", str(path)]).exit_code == 0
    assert (workspace / "data" / "people.db").exists()


def test_segment_show_reports_suppressed_and_capped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import UTC, datetime, timedelta

    (tmp_path / "mailer.toml").write_text("[frequency_cap]\nmax_messages = 1\ndays = 7\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MAILER_DB", raising=False)
    db = tmp_path / "mailer.db"
    imported(db, tmp_path)
    mailer(db, "suppress", "bo@bücher.de")
    sent = (datetime.now(UTC) - timedelta(days=1)).isoformat(timespec="seconds")
    store.connect(db).execute(
        "INSERT INTO journal (campaign_id, email, status, queued_at, updated_at, sent_at)"
        " VALUES ('c1', 'ann@example.com', 'sent', ?, ?, ?)",
        (sent, sent, sent),
    )
    result = mailer(db, "segment", "show", "customer")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == (
        "showing 0 of 0 (1 suppressed, 1 held back by the frequency cap of 1 in 7 days)"
    )


def test_user_mistakes_never_show_a_traceback(db: Path, tmp_path: Path) -> None:
    people = tmp_path / "nested.jsonl"
    people.write_text(
        json.dumps({"email": "n@example.com", "kids": [1, 2], "prefs": {"tea": "green"}}) + "\n",
        encoding="utf-8",
    )
    assert mailer(db, "contacts", "import", str(people)).exit_code == 0
    shown = mailer(db, "contacts", "show", "n@example.com")
    assert shown.exit_code == 0, shown.output
    assert "1, 2" in shown.stdout and '{"tea": "green"}' in shown.stdout
    missing = mailer(db, "contacts", "import", str(tmp_path / "x.csv"))
    assert missing.exit_code == 1 and missing.stderr == (
        f"error: {tmp_path / 'x.csv'} does not exist\n  hint: give a CSV or JSON Lines file\n"
    )
    export = mailer(db, "contacts", "export", "--out", str(tmp_path / "no" / "out.jsonl"))
    assert export.exit_code == 1
    assert export.stderr.startswith("error: cannot write the export to ")
    for command in (["contacts", "list"], ["segment", "show", "true"]):
        limit = mailer(db, *command, "--limit", "0")
        assert limit.exit_code == 2 and "--limit" in limit.output
    assert not any(r.exception and not isinstance(r.exception, SystemExit) for r in (shown, export))


def test_suppress_file_says_how_many_rejects_it_did_not_show(db: Path, tmp_path: Path) -> None:
    listing = tmp_path / "bounces.txt"
    # the first line has no '@': taken as a header, skipped
    listing.write_text("".join(f"bad{i}\n" for i in range(13)) + "ok@example.com\n")
    result = mailer(db, "suppress", str(listing), "--reason", "bounced")
    lines = result.stdout.splitlines()
    assert lines[0] == f"suppressed 1 addresses from {listing} (bounced)"
    assert len(lines) == 12 and lines[-1] == "  ... and 2 more"
