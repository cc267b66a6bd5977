"""`mailer send --live` runs the pre-send checks, the fold in real Chromium included.

The send CLI tests pass --no-browser for speed; these prove the default path
measures the fold, refuses a campaign whose call to action sits below it,
refuses (rather than skips) when Chromium is missing, and that --force is
recorded in the journal.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from mailer.cli import app
from tests.checks.test_fold import CHROMIUM, TALL_TEMPLATE, needs_chromium
from tests.workspace import make_workspace


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("MAILER_SMTP_URL", "MAILER_SMTP_PROFILE", "MAILER_DB", "MAILER_OUTBOX"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MAILER_CHROMIUM", CHROMIUM)
    make_workspace(tmp_path)
    (tmp_path / "templates" / "promo.mjml").write_text(TALL_TEMPLATE, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def mailer(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


@needs_chromium
@pytest.mark.browser
def test_live_send_measures_the_fold_and_refuses_a_cta_below_it(workspace: Path) -> None:
    refused = mailer("send", "campaigns/spring.toml", "--live", "--yes")
    assert refused.exit_code == 1, refused.output
    assert refused.stderr.startswith("error: spring: ")
    assert "[fold-below] phone 375×667" in refused.stderr
    assert "the call to action ends at" in refused.stderr
    assert not (workspace / "outbox").exists()  # nothing was sent
    # The same campaign without the browser has no errors: the refusal came from Chromium.
    assert mailer("check", "campaigns/spring.toml", "--no-browser").exit_code == 0


@needs_chromium
@pytest.mark.browser
def test_force_sends_despite_fold_errors_and_the_journal_records_it(workspace: Path) -> None:
    forced = mailer("send", "campaigns/spring.toml", "--live", "--yes", "--force", "--json")
    assert forced.exit_code == 0, forced.output
    assert "--force: sending despite " in forced.stderr
    assert len(list((workspace / "outbox" / "spring").glob("*.eml"))) == 3
    status = json.loads(mailer("status", "spring", "--json").stdout)
    assert status["runs"][0]["forced"] is True


def test_live_send_without_chromium_refuses_instead_of_skipping_the_fold(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = workspace / "no-chromium"
    monkeypatch.setenv("MAILER_CHROMIUM", str(missing))
    for extra in ([], ["--force"]):
        refused = mailer("send", "campaigns/spring.toml", "--live", "--yes", *extra)
        assert refused.exit_code == 1
        assert refused.stderr.startswith(f"error: fold check: Chromium not found at {missing}")
        assert "apt-get install -y chromium" in refused.stderr
    assert not (workspace / "outbox").exists()


@pytest.mark.parametrize(
    "relay,severity",
    [
        (None, "info"),  # the outbox: files on disk
        ("smtp://127.0.0.1:2525", "warning"),  # a local test server
        ("smtp://localhost:1025", "warning"),
        ("smtp://mail.teahouse.cn:587", "error"),  # a relay that delivers to people
    ],
)
def test_demo_values_are_refused_only_through_a_relay_that_delivers(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, relay: str | None, severity: str
) -> None:
    settings = (workspace / "mailer.toml").read_text(encoding="utf-8")
    (workspace / "mailer.toml").write_text(
        settings.replace("news@teahouse.cn", "news@lotus-tea.test"), encoding="utf-8"
    )
    if relay:
        monkeypatch.setenv("MAILER_SMTP_URL", relay)
    result = mailer("check", "campaigns/spring.toml", "--no-browser", "--json")
    findings = {f["code"]: f for f in json.loads(result.stdout)["findings"]}
    assert findings["sender-reserved"]["severity"] == severity
    assert "lotus-tea.test" in findings["sender-reserved"]["message"]
    assert (result.exit_code == 1) == (severity == "error")
