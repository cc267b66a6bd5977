"""A campaign whose audience is a list and a segment of the database, sent end to end.

`mailer send` to the outbox (no relay configured) on a real SQLite file: the
segment picks the recipients, suppressed contacts never get a message, and the
workspace frequency cap holds contacts back.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from mailer.cli import app
from tests.workspace import CAMPAIGN, make_workspace

runner = CliRunner()
CONTACTS = """email,first_name,city,tags,orders
ann@tea.test,Ann,上海,vip,5
bo@tea.test,Bo,上海,,1
cy@tea.test,Cy,Berlin,vip,7
dee@tea.test,Dee,上海,vip,0
"""


def _db_campaign(campaign_id: str, segment: str) -> str:
    text = CAMPAIGN.replace('id = "spring"', f'id = "{campaign_id}"')
    return text.replace('csv = "contacts.csv"', f'list = "shop"\nsegment = "{segment}"')


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    make_workspace(tmp_path, contacts=CONTACTS)
    monkeypatch.chdir(tmp_path)
    for name in ("MAILER_DB", "MAILER_SMTP_URL", "MAILER_OUTBOX"):
        monkeypatch.delenv(name, raising=False)
    result = mailer("contacts", "import", "campaigns/contacts.csv", "--list", "shop")
    assert result.exit_code == 0, result.output
    return tmp_path


def mailer(*args: str) -> Result:
    return runner.invoke(app, list(args), input="y\n")


def campaign(root: Path, campaign_id: str, segment: str) -> str:
    path = root / "campaigns" / f"{campaign_id}.toml"
    path.write_text(_db_campaign(campaign_id, segment), encoding="utf-8")
    return str(path)


def sent_to(root: Path, campaign_id: str) -> list[str]:
    return sorted(p.stem for p in (root / "outbox" / campaign_id).glob("*.eml"))


def test_list_and_segment_audience_sends_to_the_segment_minus_suppressed(
    workspace: Path,
) -> None:
    assert mailer("suppress", "ann@tea.test", "--reason", "unsubscribed").exit_code == 0
    path = campaign(workspace, "vip-spring", "'vip' in tags and customer")
    dry = mailer("send", path, "--no-browser", "--json")
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.stdout)["would_send"] == 1
    live = mailer("send", path, "--no-browser", "--live", "--yes")
    assert live.exit_code == 0, live.output
    assert sent_to(workspace, "vip-spring") == ["cy@tea.test"]
    eml = (workspace / "outbox" / "vip-spring" / "cy@tea.test.eml").read_text(encoding="utf-8")
    assert "ann@tea.test" not in eml


def test_forget_deletes_the_persons_outbox_files(workspace: Path) -> None:
    path = campaign(workspace, "all-spring", "true")
    assert mailer("send", path, "--no-browser", "--live", "--yes").exit_code == 0
    assert mailer("render", path).exit_code == 0
    before = sorted(p.relative_to(workspace).as_posix() for p in workspace.rglob("bo@tea.test.*"))
    # the send's .eml (render rewrites it in the same folder) and render's .html
    assert before == ["outbox/all-spring/bo@tea.test.eml", "outbox/all-spring/bo@tea.test.html"]
    forgot = mailer("contacts", "forget", "Bo@Tea.test", "--yes")
    assert forgot.exit_code == 0, forgot.output
    assert forgot.stdout.splitlines()[0] == (
        "forgot bo@tea.test: contact erased, 1 send-journal rows anonymised, 2 outbox files deleted"
    )
    assert list(workspace.rglob("bo@tea.test.*")) == []
    others = sorted(p.relative_to(workspace).as_posix() for p in workspace.rglob("ann@tea.test.*"))
    assert others == [p.replace("bo@", "ann@") for p in before]  # nobody else's files


def test_a_typo_in_the_segment_stops_the_send_before_anything_leaves(workspace: Path) -> None:
    path = campaign(workspace, "typo", "'vip' in tag")
    result = mailer("send", path, "--no-browser", "--live", "--yes")
    assert result.exit_code == 1
    assert "unknown field 'tag'" in result.stderr and "did you mean 'tags'?" in result.stderr
    assert not (workspace / "outbox" / "typo").exists()


def test_frequency_cap_holds_contacts_back_across_campaigns(workspace: Path, smtp_server) -> None:
    # Through a real relay: outbox runs are files, not mail, and count towards no cap.
    with (workspace / "mailer.toml").open("a", encoding="utf-8") as settings:
        settings.write("\n[frequency_cap]\nmax_messages = 1\ndays = 7\n")
    relay = ("--smtp", smtp_server.url)
    first = campaign(workspace, "first", "city == '上海'")
    assert mailer("send", first, *relay, "--no-browser", "--live", "--yes").exit_code == 0
    assert sorted(smtp_server.handler.delivered_to()) == [
        "ann@tea.test",
        "bo@tea.test",
        "dee@tea.test",
    ]
    shown = mailer("segment", "show", "true", "--list", "shop")
    assert "3 held back by the frequency cap of 1 in 7 days" in shown.stdout
    second = campaign(workspace, "second", "true")
    dry = mailer("send", second, *relay, "--no-browser", "--json")
    assert json.loads(dry.stdout)["skipped"]["frequency_capped"] == 3
    assert json.loads(dry.stdout)["would_send"] == 1
    live = mailer("send", second, *relay, "--no-browser", "--live", "--yes")
    assert live.exit_code == 0, live.output
    assert "held back (frequency cap)  3" in live.stdout  # the confirmation summary
    assert "3 by the frequency cap" in live.stdout  # the report
    assert smtp_server.handler.delivered_to().count("cy@tea.test") == 1
    assert len(smtp_server.handler.delivered_to()) == 4
    # A resumed run of the first campaign does not cap itself (its own rows do not count).
    again = mailer("send", first, *relay, "--no-browser", "--json")
    assert json.loads(again.stdout)["skipped"]["frequency_capped"] == 0


def test_an_outbox_run_does_not_stop_the_real_send(workspace: Path, smtp_server) -> None:
    # README command 1 "sends" to the outbox; the real send later must still reach everyone.
    path = campaign(workspace, "everyone", "true")
    assert mailer("send", path, "--no-browser", "--live", "--yes").exit_code == 0
    assert len(sent_to(workspace, "everyone")) == 4
    again = mailer("send", path, "--no-browser", "--json")  # outbox again: already written
    assert json.loads(again.stdout)["skipped"]["already_sent"] == 4
    real = mailer("send", path, "--smtp", smtp_server.url, "--no-browser", "--live", "--yes")
    assert real.exit_code == 0, real.output
    assert sorted(smtp_server.handler.delivered_to()) == [
        "ann@tea.test",
        "bo@tea.test",
        "cy@tea.test",
        "dee@tea.test",
    ]
    status = mailer("status", path)
    assert "everyone: 4 recipient(s) in the journal" in status.stdout
    assert "outbox runs (files, not mail): 4 recipient(s); see mailer status everyone@outbox" in (
        status.stdout
    )
