"""`mailer send` and `mailer status` through Typer's CliRunner, with exact user-facing text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mailer.cli import app
from tests.send_workspace import make_send_workspace
from tests.smtp_server import Faults, RecordingHandler, SmtpServer, self_signed_context
from tests.workspace import CAMPAIGN, make_workspace

runner = CliRunner()


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("MAILER_SMTP_URL", "MAILER_SMTP_PROFILE", "MAILER_DB", "MAILER_OUTBOX"):
        monkeypatch.delenv(name, raising=False)
    make_send_workspace(tmp_path, 6)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def mailer(*args: str, input: str | None = None):
    return runner.invoke(app, list(args), input=input)


def lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.splitlines()]


def test_dry_run_is_the_default_and_sends_nothing(workspace: Path) -> None:
    result = mailer("send", "campaigns/spring.toml")
    assert result.exit_code == 0, result.output
    out = lines(result.output)
    assert out[0].strip() == "dry run: spring (nothing was sent)"
    assert out[1].split() == ["audience", "6"]
    assert out[2].split() == ["to", "send", "6"]
    assert out[-1] == "To send for real: add --live (you will be asked to confirm)."
    assert not (workspace / "outbox").exists()
    status = json.loads(mailer("status", "spring", "--json").output)
    assert status["total"] == 0 and status["runs"] == []


def test_live_send_without_a_terminal_or_yes_is_refused(workspace: Path) -> None:
    result = mailer("send", "campaigns/spring.toml", "--live", "--no-browser")
    assert result.exit_code == 1
    assert result.stderr == (
        "error: refusing to send without confirmation: there is no terminal to ask on\n"
        "  hint: check the dry run (mailer send CAMPAIGN), then add --yes to confirm\n"
    )
    assert "about to send spring" in result.stdout
    assert "outbox → " in result.stdout
    assert not (workspace / "outbox").exists()


def test_confirmation_question_no_sends_nothing_yes_sends(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mailer.cli import send_views

    monkeypatch.setattr(send_views, "is_interactive", lambda: True)
    declined = mailer("send", "campaigns/spring.toml", "--live", "--no-browser", input="n\n")
    assert declined.exit_code == 1
    assert "Send 6 message(s) now? [y/N]: n\nNothing was sent." in declined.output
    accepted = mailer("send", "campaigns/spring.toml", "--live", "--no-browser", input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert len(list((workspace / "outbox" / "spring").glob("*.eml"))) == 6


def test_outbox_send_then_resume_and_status(workspace: Path) -> None:
    first = mailer("send", "campaigns/spring.toml", "--live", "--yes", "--no-browser", "--json")
    assert first.exit_code == 0, first.output
    report = json.loads(first.stdout)
    assert (report["sent"], report["complete"], report["transport"]) == (
        6,
        True,
        f"outbox → {workspace / 'outbox' / 'spring'}",
    )
    again = json.loads(
        mailer("send", "campaigns/spring.toml", "--live", "--yes", "--no-browser", "--json").stdout
    )
    assert (again["sent"], again["skipped"]["already_sent"]) == (0, 6)
    status = mailer("status", "campaigns/spring.toml")
    assert status.exit_code == 0
    assert (
        "spring@outbox (outbox runs: files written, no mail sent): 6 recipient(s) in the journal"
        in status.output
    )
    assert "│ sent       │     6 │" in status.output
    assert "last run #2" in status.output and "sent 0, failed 0, pending 0" in status.output


def test_smtp_send_reports_failures_with_their_reply(workspace: Path) -> None:
    server = SmtpServer(RecordingHandler(Faults(reject={"u4@b.test"}))).start()
    try:
        result = mailer(
            "send", "campaigns/spring.toml", "--live", "--yes", "--no-browser",
            "--smtp", server.url,
        )  # fmt: skip
    finally:
        server.close()
    assert result.exit_code == 0, result.output
    assert (
        "  failed u4@b.test: 550 5.1.1 <u4@b.test>: Recipient address rejected: User unknown"
        in lines(result.output)
    )
    assert len(server.handler.received) == 5
    status = json.loads(mailer("status", "spring", "--json").stdout)
    assert status["counts"]["sent"] == 5 and status["counts"]["failed"] == 1
    assert status["failures"] == [
        {
            "email": "u4@b.test",
            "code": 550,
            "reply": "5.1.1 <u4@b.test>: Recipient address rejected: User unknown",
            "attempts": 1,
            "bounce": True,
            "updated_at": status["failures"][0]["updated_at"],
        }
    ]
    text = mailer("status", "spring").output
    assert (
        "failed u4@b.test: 550 5.1.1 <u4@b.test>: Recipient address rejected: User unknown "
        "(hard bounce, suppressed)" in text
    )


def test_test_send_goes_to_one_address_marked_test(workspace: Path) -> None:
    server = SmtpServer().start()
    try:
        result = mailer(
            "send", "campaigns/spring.toml", "--test", "me@tea.test", "--smtp", server.url
        )
    finally:
        server.close()
    assert result.exit_code == 0, result.output
    out = lines(result.output)
    assert out[0].startswith("variant A: 250 [TEST] ") and out[0].endswith("  → me@tea.test")
    assert out[1] == "variant B: 250 [TEST] Spring tea is here  → me@tea.test"
    assert out[2] == "Test messages are not recorded in the journal."
    assert [m.rcpt_tos for m in server.handler.received] == [["me@tea.test"]] * 2
    assert json.loads(mailer("status", "spring", "--json").stdout)["total"] == 0


def test_bad_relay_url_is_a_clean_error(workspace: Path) -> None:
    result = mailer("send", "campaigns/spring.toml", "--live", "--yes", "--smtp", "ftp://x.test")
    assert result.exit_code == 1
    assert result.stderr == (
        "error: SMTP URL: unknown SMTP URL scheme 'ftp' in 'ftp://x.test'\n"
        "  hint: use smtp://host:port, smtp+starttls://user@host:587 or smtps://user@host:465\n"
    )


def test_check_errors_block_the_send_unless_forced_and_force_is_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MAILER_SMTP_URL", raising=False)
    campaign = CAMPAIGN.replace('"Spring tea is here"', '"RE: your spring tea order"')
    make_workspace(tmp_path, campaign=campaign)
    monkeypatch.chdir(tmp_path)
    refused = mailer("send", "campaigns/spring.toml", "--live", "--yes", "--no-browser")
    assert refused.exit_code == 1
    assert refused.stderr.startswith(
        "error: spring: 1 pre-send check error(s):\n  [subject-fake-reply]"
    )
    assert not (tmp_path / "outbox").exists()
    forced = mailer("send", "campaigns/spring.toml", "--live", "--yes", "--no-browser", "--force")
    assert forced.exit_code == 0, forced.output
    assert "--force: sending despite 1 check error(s) (recorded)" in forced.stderr
    status = json.loads(mailer("status", "spring", "--json").stdout)
    assert status["runs"][0]["forced"] is True
    assert "(checks overridden with --force)" in mailer("status", "spring").output


def test_self_signed_relay_is_refused_unless_told_to_skip_verification(workspace: Path) -> None:
    server = SmtpServer(starttls=self_signed_context()).start()
    url = f"smtp+starttls://127.0.0.1:{server.port}"
    try:
        refused = mailer("send", "campaigns/spring.toml", "--live", "--yes", "--no-browser",
                         "--smtp", url)  # fmt: skip
        accepted = mailer("send", "campaigns/spring.toml", "--live", "--yes", "--no-browser",
                          "--smtp", url, "--insecure-skip-tls-verify")  # fmt: skip
    finally:
        server.close()
    assert refused.exit_code == 1
    assert refused.stderr.startswith(
        f"error: 127.0.0.1:{server.port}: the relay's TLS certificate could not be verified ("
    )
    assert refused.stderr.endswith(
        "  hint: fix the relay's certificate; for a local test relay only, pass "
        "--insecure-skip-tls-verify (or smtp.insecure_skip_verify = true)\n"
    )
    assert accepted.exit_code == 0, accepted.output
    assert f"smtp+starttls://127.0.0.1:{server.port} (4 connections, TLS NOT VERIFIED)" in (
        accepted.stdout
    )
    assert len(server.handler.received) == 6
