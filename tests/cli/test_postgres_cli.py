"""The commands on the PostgreSQL store (MAILER_STORE_URL), end to end through the CLI.

A real PostgreSQL server on loopback and a real aiosmtpd relay: import, lists,
segments, suppression, a live send to a database list, status, report, export
and forget, and no SQLite file written along the way.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mailer.audience.store import open_store
from tests.smtp_server import SmtpServer
from tests.workspace import CAMPAIGN, invoke, make_workspace

LIST_CAMPAIGN = CAMPAIGN.replace('csv = "contacts.csv"', 'list = "news"')


@pytest.fixture
def workspace(tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    make_workspace(tmp_path, campaign=LIST_CAMPAIGN)
    monkeypatch.setenv("MAILER_STORE_URL", pg_url)
    return tmp_path


def ok(root: Path, *args: str) -> str:
    result = invoke(root, *args)
    assert result.exit_code == 0, result.output
    return result.output


def test_the_commands_run_on_postgresql(
    workspace: Path, pg_url: str, smtp_server: SmtpServer
) -> None:
    imported = ok(workspace, "contacts", "import", "campaigns/contacts.csv", "--list", "news")
    assert "new         3" in imported
    assert "news" in ok(workspace, "lists") and "3" in ok(workspace, "lists")
    assert ok(workspace, "segment", "count", "city == 'Berlin'", "--list", "news").split()[0] == "1"
    ok(workspace, "suppress", "ANN@tea.test")  # another case than the contact's
    sent = invoke(workspace, "send", "campaigns/spring.toml", "--live", "--yes", "--no-browser",
                  "--smtp", smtp_server.url, "--json")  # fmt: skip
    assert sent.exit_code == 0, sent.output
    assert json.loads(sent.output)["sent"] == 2
    assert sorted(smtp_server.handler.delivered_to()) == [
        "bob@xn--bcher-kva.test",
        "lilei@tea.test",
    ]
    status = json.loads(ok(workspace, "status", "spring", "--json"))
    assert status["counts"]["sent"] == 2
    report = json.loads(ok(workspace, "report", "campaigns/spring.toml", "--json"))
    assert report["statuses"]["sent"] == 2
    assert {d["domain"]: d["sent"] for d in report["domains"]} == {
        "tea.test": 1,
        "bücher.test": 1,
    }
    assert report["overview"]["delivered"]["count"] == 2 and report["languages"]
    every = json.loads(ok(workspace, "report", "--all", "--json"))
    assert [row["campaign"] for row in every["campaigns"]] == ["spring"]
    ok(workspace, "report", "campaigns/spring.toml", "--html", str(workspace / "r.html"))
    again = invoke(workspace, "send", "campaigns/spring.toml", "--live", "--yes", "--no-browser",
                   "--smtp", smtp_server.url, "--json")  # fmt: skip
    assert json.loads(again.output)["sent"] == 0  # the journal remembers: nobody twice
    # on this store a live send is a job (workers elsewhere could have joined): both closed
    jobs = json.loads(ok(workspace, "jobs", "--json"))
    assert [j["status"] for j in jobs] == ["done", "done"]
    exported = workspace / "out.csv"
    ok(workspace, "contacts", "export", "--out", str(exported))
    assert exported.read_text(encoding="utf-8").count("@") == 3
    ok(workspace, "contacts", "forget", "bob@bücher.test", "--yes")
    conn = open_store(workspace / "mailer.db", pg_url)
    assert conn.execute("SELECT count(*) FROM contacts").fetchone()[0] == 2
    conn.close()
    assert not (workspace / "mailer.db").exists()  # everything went to PostgreSQL


def test_a_live_send_that_cannot_start_leaves_no_job_for_workers(workspace: Path) -> None:
    ok(workspace, "contacts", "import", "campaigns/contacts.csv", "--list", "news")
    failed = invoke(workspace, "send", "campaigns/spring.toml", "--live", "--yes", "--no-browser",
                    "--smtp", "smtp://127.0.0.1:9")  # fmt: skip
    assert failed.exit_code == 1 and "cannot connect to the SMTP relay" in failed.output
    (job,) = json.loads(ok(workspace, "jobs", "--json"))
    assert job["status"] == "cancelled" and "failed" in job["note"]
