"""`mailer send` / `mailer status` edge cases: resume hints, pauses, status of unknown ids,
[TEST] sends into the outbox, the TLS warning, and the progress bar on a terminal."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from mailer.cli import app
from tests.send_workspace import make_send_workspace
from tests.smtp_server import Faults, RecordingHandler, SmtpServer, self_signed_context

runner = CliRunner()


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("MAILER_SMTP_URL", "MAILER_SMTP_PROFILE", "MAILER_DB", "MAILER_OUTBOX"):
        monkeypatch.delenv(name, raising=False)
    make_send_workspace(tmp_path, 6)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def mailer(*args: str):
    return runner.invoke(app, list(args))


def test_pause_names_the_reason_and_the_exact_command_to_resume(workspace: Path) -> None:
    server = SmtpServer(RecordingHandler(Faults(tempfail_fraction=1.0))).start()
    try:
        result = mailer(
            "send", "campaigns/spring.toml", "--live", "--yes", "--no-browser",
            "--smtp", server.url, "--concurrency", "1", "--max-failures", "2",
        )  # fmt: skip
    finally:
        server.close()
    assert result.exit_code == 1, result.output
    assert "paused spring" in result.stdout and "sent spring" not in result.stdout
    assert result.stderr == (
        "error: paused after 2 failures in a row (last: 451 4.3.0 Temporary failure, try again "
        "later); the relay may be down or refusing us\n"
        "  hint: fix the relay, then resume with: mailer send campaigns/spring.toml --live "
        f"--smtp {server.url} --no-browser --concurrency 1 --max-failures 2\n"
    )
    assert server.handler.received == []
    status = json.loads(mailer("status", "spring", "--json").stdout)
    assert status["counts"]["sent"] == 0 and status["counts"]["sending"] == 0


def test_resume_command_quotes_and_omits_defaults() -> None:
    from mailer.cli.send_cmds import _resume_command

    given = [("--smtp", None), ("--no-browser", False), ("--db", Path("my db.sqlite"))]
    assert _resume_command(Path("campaigns/a b.toml"), given) == (
        "mailer send 'campaigns/a b.toml' --live --db 'my db.sqlite'"
    )


def test_status_of_a_campaign_never_sent_says_so_and_lists_known_ids(workspace: Path) -> None:
    first = mailer("status", "spring")
    assert first.exit_code == 0
    assert first.stderr == (
        "nothing has been sent for 'spring' yet (campaigns in the journal: none yet)\n"
    )
    sent = mailer("send", "campaigns/spring.toml", "--live", "--yes", "--no-browser")
    assert sent.exit_code == 0, sent.output
    typo = mailer("status", "sprnig")
    assert typo.exit_code == 0
    assert typo.stderr == (
        "nothing has been sent for 'sprnig' yet (campaigns in the journal: spring@outbox)\n"
    )
    assert "spring@outbox (outbox runs: files written, no mail sent): 6 recipient(s)" in (
        mailer("status", "spring").stdout
    )


def test_status_of_a_missing_campaign_file_is_an_error(workspace: Path) -> None:
    result = mailer("status", "campaigns/sprnig.toml")
    assert result.exit_code == 1
    assert result.stderr == (
        "error: campaign file not found: campaigns/sprnig.toml\n"
        "  hint: pass an existing campaign file, or a campaign id (see mailer status --help)\n"
    )


def test_test_send_without_a_relay_says_where_the_files_went(workspace: Path) -> None:
    result = mailer("send", "campaigns/spring.toml", "--test", "me@tea.test")
    assert result.exit_code == 0, result.output
    folder = workspace / "outbox" / "spring"
    lines = result.stdout.splitlines()
    assert lines[1] == (
        f"  written to {folder / 'test-A' / 'me@tea.test.eml'} "
        "(no relay configured: nothing was mailed)"
    )
    assert lines[3] == (
        f"  written to {folder / 'test-B' / 'me@tea.test.eml'} "
        "(no relay configured: nothing was mailed)"
    )
    assert (folder / "test-B" / "me@tea.test.eml").is_file()
    assert json.loads(mailer("status", "spring", "--json").stdout)["total"] == 0


def test_skipping_tls_verification_is_announced_loudly(workspace: Path) -> None:
    server = SmtpServer(starttls=self_signed_context()).start()
    url = f"smtp+starttls://127.0.0.1:{server.port}"
    try:
        result = mailer("send", "campaigns/spring.toml", "--live", "--yes", "--no-browser",
                        "--json", "--smtp", url, "--insecure-skip-tls-verify")  # fmt: skip
    finally:
        server.close()
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith(
        f"warning: the certificate of 127.0.0.1:{server.port} will NOT be verified "
        "(--insecure-skip-tls-verify / smtp.insecure_skip_verify)"
    )
    assert json.loads(result.stdout)["sent"] == 6


def test_progress_bar_on_a_terminal_shows_counts_and_relay_trouble(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mailer.cli import send_cmds

    screen = io.StringIO()
    terminal = Console(file=screen, force_terminal=True, width=160, color_system=None)
    monkeypatch.setattr(send_cmds, "err_console", terminal)
    # The relay hangs up on one message's DATA: the bar says the relay is not answering.
    server = SmtpServer(RecordingHandler(Faults(drop_at_data={"u2@c.test"}))).start()
    try:
        result = mailer("send", "campaigns/spring.toml", "--live", "--yes", "--no-browser",
                        "--smtp", server.url, "--concurrency", "1")  # fmt: skip
    finally:
        server.close()
    assert result.exit_code == 0, result.output
    shown = screen.getvalue()
    assert "sending" in shown and "6/6 sent 6 · failed 0" in shown
    assert "the relay is not answering; trying again in 0.5 s" in shown
    assert len(server.handler.received) == 6


def test_daily_quota_pause_says_when_to_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, smtp_server: SmtpServer
) -> None:
    for name in ("MAILER_SMTP_URL", "MAILER_SMTP_PROFILE", "MAILER_DB", "MAILER_OUTBOX"):
        monkeypatch.delenv(name, raising=False)
    make_send_workspace(tmp_path, 6, throttle="per_day = 4")
    monkeypatch.chdir(tmp_path)
    args = ("send", "campaigns/spring.toml", "--live", "--yes", "--no-browser",
            "--smtp", smtp_server.url)  # fmt: skip
    first = mailer(*args)
    assert first.exit_code == 1
    assert len(smtp_server.handler.received) == 4
    assert first.stderr.startswith(
        "error: the daily quota of 4 messages is used up; run `mailer send` again in about "
    )
    assert first.stderr.endswith(
        "  hint: when the quota allows, resume with: mailer send campaigns/spring.toml --live "
        f"--smtp {smtp_server.url} --no-browser\n"
    )
    # The quota is counted from the journal, so the next run knows it is spent too.
    again = mailer(*args, "--json")
    assert again.exit_code == 1
    assert json.loads(again.stdout)["sent"] == 0
    assert len(smtp_server.handler.received) == 4


def _login(server, session, envelope, mechanism, auth_data):  # aiosmtpd authenticator
    from aiosmtpd.smtp import AuthResult, LoginPassword

    ok = isinstance(auth_data, LoginPassword) and auth_data.password == b"pw-Xq7-secret"
    return AuthResult(success=ok, handled=False)


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_the_password_appears_in_no_output_and_no_file(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = SmtpServer(authenticator=_login).start()
    url = f"smtp://news@127.0.0.1:{server.port}"
    outputs = []
    try:
        for password in ("pw-Xq7-wrong", "pw-Xq7-secret"):
            monkeypatch.setenv("MAILER_SMTP_PASSWORD", password)
            for extra in ((), ("--json",)):
                result = mailer("send", "campaigns/spring.toml", "--live", "--yes",
                                "--no-browser", "--smtp", url, *extra)  # fmt: skip
                outputs.append(result.output + result.stderr)
            outputs.append(mailer("send", "campaigns/spring.toml", "--smtp", url,
                                  "--test", "me@tea.test").output)  # fmt: skip
    finally:
        server.close()
    assert "the relay refused the login for news: 535" in outputs[0]
    assert len(server.handler.received) == 6 + 2  # the campaign once, two [TEST] messages
    outputs += [mailer("status", "spring").output, mailer("status", "spring", "--json").output]
    files = b"".join(p.read_bytes() for p in workspace.rglob("*") if p.is_file())
    assert "pw-Xq7" not in "".join(outputs)
    assert b"pw-Xq7" not in files
    assert b"pw-Xq7" not in b"".join(m.data for m in server.handler.received)


def test_a_scheduled_campaign_is_not_sent_by_hand_without_saying_so(workspace: Path) -> None:
    # A greeting with a [schedule] belongs to run-due: a manual live send would mail
    # everyone now, and run-due would greet them again on the day.
    path = workspace / "campaigns" / "spring.toml"
    path.write_text(
        path.read_text(encoding="utf-8")
        + '\n[schedule]\nholiday = "Christmas Day"\ncountry = "US"\nyear = 2027\n',
        encoding="utf-8",
    )
    line = path.read_text(encoding="utf-8").splitlines().index("[schedule]") + 1
    assert mailer("send", "campaigns/spring.toml", "--no-browser").exit_code == 0  # dry run
    refused = mailer("send", "campaigns/spring.toml", "--live", "--yes", "--no-browser")
    assert refused.exit_code == 1
    assert refused.stderr.startswith(
        f"error: {Path('campaigns', 'spring.toml')}:{line}: this campaign has a [schedule]"
    )
    assert "add --ignore-schedule" in refused.stderr
    assert not (workspace / "outbox" / "spring").exists()
    sent = mailer(
        "send", "campaigns/spring.toml", "--live", "--yes", "--no-browser", "--ignore-schedule"
    )
    assert sent.exit_code == 0, sent.output
    assert len(list((workspace / "outbox" / "spring").glob("*.eml"))) == 6


def test_a_typo_in_the_schedule_stops_send_and_check(workspace: Path) -> None:
    path = workspace / "campaigns" / "spring.toml"
    path.write_text(
        path.read_text(encoding="utf-8") + '\n[schedule]\nholiday = "Christmas"\ncontry = "US"\n',
        encoding="utf-8",
    )
    for command in (["send"], ["check", "--no-browser"]):
        result = mailer(*command[:1], "campaigns/spring.toml", *command[1:])
        assert result.exit_code == 1, result.output
        assert "unknown key 'schedule.contry'" in result.stderr
        assert "did you mean 'country'?" in result.stderr


def test_a_send_without_the_fold_check_says_so_and_records_it(workspace: Path) -> None:
    sent = mailer("send", "campaigns/spring.toml", "--live", "--yes", "--no-browser")
    assert sent.exit_code == 0, sent.output
    assert "fold check  NOT run (--no-browser): key blocks unverified; recorded" in sent.stdout
    status = json.loads(mailer("status", "spring", "--json").stdout)
    assert status["runs"][-1]["note"].endswith("; fold check skipped")
