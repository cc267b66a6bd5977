"""``mailer init`` end to end, and the workspace found from any folder below it.

Every command here is a real ``python -m mailer`` process run in the new
workspace with no MAILER_* variable in its environment: what it needs (the
unsubscribe key) must come from the ``.env`` that init wrote.
"""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest

from mailer.core.workspace import find_workspace, load_dotenv, read_dotenv
from tests.smtp_server import SmtpServer

REPO = Path(__file__).resolve().parents[2]
BRAND = "Lotus Tea House"
SENDER = "hello@lotus-tea.cn"
POSTAL = "Lotus Tea House, 18 Willow Lane, Hangzhou 310000, China"
UNSUB = "https://mail.lotus-tea.cn/u/{{ token }}"


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without MAILER_* (the suite's own key included), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILER_")}
    return {**env, "PYTHONPATH": str(REPO), **extra}


def mailer(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mailer", *args],
        cwd=cwd,
        env=env or clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def ok(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    done = mailer(cwd, *args, env=env)
    assert done.returncode == 0, f"mailer {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def init(parent: Path, *extra: str) -> Path:
    ok(
        parent, "init", "shop", "--yes", "--lang", "en", "--brand", BRAND, "--sender", SENDER,
        "--postal-address", POSTAL, "--timezone", "Asia/Shanghai", *extra,
    )  # fmt: skip
    return parent / "shop"


def test_init_then_render_check_and_a_live_send_to_a_local_relay(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    root = init(tmp_path, "--relay", smtp_server.url, "--unsubscribe-url", UNSUB)
    names = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    assert names == {
        "mailer.toml", ".env", ".gitignore", "contacts.csv",
        "campaigns/welcome.toml", "templates/promotion.mjml",
    }  # fmt: skip
    assert ".env" in (root / ".gitignore").read_text().splitlines()
    key = read_dotenv(root / ".env")["MAILER_UNSUBSCRIBE_KEY"]
    assert len(key) == 64 and key not in (root / "mailer.toml").read_text()
    assert (root / ".env").stat().st_mode & 0o077 == 0

    rendered = ok(root, "render", "campaigns/welcome.toml")
    assert "recipients    1" in rendered
    checked = ok(root, "check", "campaigns/welcome.toml", "--no-browser", "--offline")
    assert "0 error(s)" in checked
    # With the key from .env, the https unsubscribe link is signed and the live send goes.
    sent = ok(root, "send", "campaigns/welcome.toml", "--live", "--yes", "--no-browser")
    assert "sent" in sent and SENDER in sent  # the confirmation shows the From line
    assert smtp_server.handler.delivered_to() == [SENDER]
    msg = BytesParser(policy=policy.default).parsebytes(smtp_server.handler.received[0].data)
    assert msg["From"] == f"{BRAND} <{SENDER}>"
    assert "https://mail.lotus-tea.cn/u/" in str(msg["List-Unsubscribe"])
    assert POSTAL in msg.get_body(("html",)).get_content()  # type: ignore[union-attr]


def test_the_same_workspace_passes_the_fold_check_in_chromium(tmp_path: Path) -> None:
    root = init(tmp_path)
    checked = ok(root, "check", "campaigns/welcome.toml", "--offline")
    assert "0 error(s)" in checked and "fold check: ran in Chromium" in checked


def test_without_the_env_file_the_placeholder_key_stops_a_live_send(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    root = init(tmp_path, "--relay", smtp_server.url, "--unsubscribe-url", UNSUB)
    (root / ".env").unlink()
    done = mailer(root, "send", "campaigns/welcome.toml", "--live", "--yes", "--no-browser")
    assert done.returncode == 1
    assert "[unsubscribe-key]" in done.stderr
    assert smtp_server.handler.received == []


def test_init_refuses_to_overwrite_and_writes_nothing_unless_forced(tmp_path: Path) -> None:
    root = tmp_path / "shop"
    (root / "campaigns").mkdir(parents=True)
    (root / "campaigns" / "welcome.toml").write_text("# mine\n")
    args = ("init", "shop", "--yes", "--sender", SENDER, "--timezone", "UTC")
    done = mailer(tmp_path, *args)
    assert done.returncode == 1
    assert "already holds campaigns/welcome.toml; nothing was written" in done.stderr
    assert "--force" in done.stderr
    assert sorted(p.name for p in root.rglob("*")) == ["campaigns", "welcome.toml"]
    ok(tmp_path, *args, "--force")
    assert 'id = "welcome"' in (root / "campaigns" / "welcome.toml").read_text()


def test_init_without_a_terminal_asks_for_yes_and_refuses_bad_values(tmp_path: Path) -> None:
    done = mailer(tmp_path, "init", "shop")
    assert done.returncode == 1 and "--yes" in done.stderr
    bad = mailer(tmp_path, "init", "shop", "--yes", "--sender", "not-an-address")
    assert bad.returncode == 1 and "sender address is not valid" in bad.stderr
    relay = mailer(tmp_path, "init", "shop", "--yes", "--relay", "smtp://mail.teahouse.cn:587")
    assert relay.returncode == 1 and "reserved domain" in relay.stderr  # the default sender
    assert not (tmp_path / "shop").exists()
    # A test server on this machine takes the demo sender (a live send only warns there).
    local = mailer(tmp_path, "init", "shop", "--yes", "--relay", "smtp://127.0.0.1:2525")
    assert local.returncode == 0, local.stderr
    assert "reserved domain" in local.stdout  # the note says what a real relay would do


def test_init_in_chinese_writes_chinese_texts_that_render(tmp_path: Path) -> None:
    ok(tmp_path, "init", "店", "--yes", "--sender", SENDER, "--timezone", "Asia/Shanghai",
       env=clean_env(LANG="zh_CN.UTF-8"))  # fmt: skip
    root = tmp_path / "店"
    assert "我的小店的第一封来信" in (root / "campaigns" / "welcome.toml").read_text()
    assert (root / "contacts.csv").read_text().startswith("邮箱,姓名,城市")
    assert "recipients    1" in ok(root, "render", "campaigns/welcome.toml")
    html = next((root / "outbox" / "welcome").glob("*.html")).read_text()
    assert "退订" in html and "您好" in html


def test_a_demo_sender_is_fine_for_the_outbox(tmp_path: Path) -> None:
    ok(tmp_path, "init", "demo", "--yes", "--timezone", "UTC")
    root = tmp_path / "demo"
    sent = ok(root, "send", "campaigns/welcome.toml", "--live", "--yes", "--no-browser")
    assert "sent" in sent
    assert list((root / "outbox" / "welcome").glob("*.eml"))


# -- the workspace, found like git finds a repository ---------------------------------
def test_commands_work_from_a_subfolder_and_with_workspace(tmp_path: Path) -> None:
    root = init(tmp_path)
    # From campaigns/: settings, database and outbox are the workspace's, not the folder's.
    ok(root / "campaigns", "render", "welcome.toml")
    assert list((root / "outbox" / "welcome").glob("*.eml"))
    assert not (root / "campaigns" / "outbox").exists()
    ok(root / "campaigns", "contacts", "import", "../contacts.csv")
    assert (root / "mailer.db").is_file() and not (root / "campaigns" / "mailer.db").exists()
    # From elsewhere: --workspace, or MAILER_WORKSPACE.
    listed = ok(tmp_path, "--workspace", "shop", "contacts", "list")
    assert SENDER in listed
    listed = ok(tmp_path, "contacts", "list", env=clean_env(MAILER_WORKSPACE=str(root)))
    assert SENDER in listed
    missing = mailer(tmp_path, "--workspace", "nowhere", "contacts", "list")
    assert missing.returncode == 1 and "'nowhere' is not a folder" in missing.stderr


def test_the_shipped_example_runs_from_inside_campaigns(tmp_path: Path) -> None:
    env = clean_env(MAILER_DB=str(tmp_path / "x.db"), MAILER_OUTBOX=str(tmp_path / "out"))
    out = ok(REPO / "campaigns", "send", "promotion.toml", "--live", "--yes", "--no-browser",
             "--json", env=env)  # fmt: skip
    assert '"sent": 12' in out
    # The demo's own sender and footer, from the repository's mailer.toml.
    eml = next((tmp_path / "out" / "winter-oolong-2026").glob("*.eml")).read_bytes()
    assert b"hello@lotus-tea.test" in eml


def test_each_command_names_its_workspace_on_a_terminal_only(tmp_path: Path) -> None:
    root = init(tmp_path)
    leader, follower = pty.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "mailer", "contacts", "list"],
            cwd=root / "campaigns", env=clean_env(), stdout=subprocess.PIPE, stderr=follower,
            stdin=subprocess.DEVNULL, text=True, timeout=120,
        )  # fmt: skip
        os.close(follower)
        follower = -1
        shown = os.read(leader, 4096).decode()
    finally:
        if follower != -1:
            os.close(follower)
        os.close(leader)
    assert done.returncode == 0
    assert "workspace: .. (mailer.toml)" in shown
    assert "workspace" not in done.stdout  # stdout stays clean for scripts
    piped = mailer(root / "campaigns", "contacts", "list")
    assert "workspace" not in piped.stderr  # and nothing when stderr is not a terminal


# -- the discovery and .env rules themselves -----------------------------------------
def test_find_workspace_rules(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "mailer.toml").write_text("")
    found = find_workspace(tmp_path / "a" / "b", env={})
    assert (found.root, found.how) == (tmp_path / "a", "found")
    assert find_workspace(tmp_path, env={}).how == "none"
    given = find_workspace(tmp_path / "a" / "b", env={"MAILER_WORKSPACE": str(tmp_path)})
    assert (given.root, given.how) == (tmp_path, "given")
    assert found.describe(tmp_path / "a" / "b") == ".. (mailer.toml)"


def test_dotenv_never_overrides_the_environment(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "# secrets\nexport A=\"from file\"\nB=file # note\nC='quoted # kept'\n"
    )
    environ = {"A": "real"}
    assert load_dotenv(tmp_path, environ) == ["B", "C"]
    assert environ == {"A": "real", "B": "file", "C": "quoted # kept"}
    (tmp_path / ".env").write_text("A=1\nthis is not a variable\n")
    from mailer.core.errors import ConfigError

    with pytest.raises(ConfigError, match="not a NAME=value line") as caught:
        read_dotenv(tmp_path / ".env")
    assert str(caught.value.where).endswith(".env:2")


def test_init_asks_on_a_terminal_and_offers_defaults(tmp_path: Path) -> None:
    """No flags, a terminal: each value is asked for (an empty answer takes the default)."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "mailer", "init", "shop", "--lang", "en"],
        cwd=tmp_path, env=clean_env(), stdin=follower, stdout=follower, stderr=follower,
    )  # fmt: skip
    os.close(follower)
    os.write(leader, f"{BRAND}\n{SENDER}\n{POSTAL}\n\nEurope/London\n".encode())
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closes when mailer exits
            break
        if not chunk:
            break
        shown += chunk
    os.close(leader)
    assert process.wait(timeout=120) == 0, shown.decode(errors="replace")
    text = shown.decode()
    for question in ("Brand", "Sender address", "Postal address", "SMTP relay URL", "Time zone"):
        assert question in text
    settings = (tmp_path / "shop" / "mailer.toml").read_text()
    assert f'email = "{SENDER}"' in settings and 'timezone = "Europe/London"' in settings
    assert "[smtp]\nurl" not in settings  # an empty relay answer: the outbox
