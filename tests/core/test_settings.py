"""Workspace settings: precedence (flag > env > campaign > mailer.toml > defaults) and validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailer.core.campaign import load_campaign
from mailer.core.errors import ConfigError
from mailer.core.settings import Settings, load_settings
from tests.workspace import CAMPAIGN, SETTINGS, make_workspace

PROFILES = """
[smtp]
url = "smtp://127.0.0.1:2500"
profile = "prod"

[smtp.profiles.prod]
url = "smtp://127.0.0.1:2525"
pool = 8
insecure_skip_verify = true

[smtp.profiles.dev]
url = "smtp://127.0.0.1:1025"
"""


def test_defaults_without_a_settings_file(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, env={})
    assert settings.sender == Settings().sender
    assert settings.db_path == tmp_path / "mailer.db"
    assert settings.outbox == tmp_path / "outbox"
    assert not settings.smtp_configured


def test_file_beats_defaults_and_env_beats_file_and_flag_beats_env(tmp_path: Path) -> None:
    (tmp_path / "mailer.toml").write_text(
        SETTINGS + '\n[store]\npath = "file.db"\n[outbox]\npath = "file-out"\n' + PROFILES,
        encoding="utf-8",
    )
    file_only = load_settings(tmp_path, env={})
    assert file_only.sender.email == "news@teahouse.cn"
    assert file_only.db_path == tmp_path / "file.db"
    assert file_only.outbox == tmp_path / "file-out"
    assert file_only.smtp.url == "smtp://127.0.0.1:2525"  # the file's chosen profile
    env = {
        "MAILER_DB": "env.db",
        "MAILER_OUTBOX": "env-out",
        "MAILER_SMTP_URL": "smtp://127.0.0.1:3000",
    }
    with_env = load_settings(tmp_path, env=env)
    assert with_env.db_path == tmp_path / "env.db"
    assert with_env.outbox == tmp_path / "env-out"
    assert with_env.smtp.url == "smtp://127.0.0.1:3000"
    flags = load_settings(tmp_path, env=env, db=Path("flag.db"), smtp_url="smtp://127.0.0.1:4000")
    # A flag is typed where the user stands: relative to the current folder, not the workspace.
    assert flags.db_path == Path.cwd() / "flag.db"
    assert flags.smtp.url == "smtp://127.0.0.1:4000"


def test_a_chosen_profile_never_inherits_another_profiles_keys(tmp_path: Path) -> None:
    # prod (the file's default profile) turns TLS checks off; choosing dev must not keep that.
    (tmp_path / "mailer.toml").write_text(PROFILES, encoding="utf-8")
    for settings in (
        load_settings(tmp_path, env={"MAILER_SMTP_PROFILE": "dev"}),
        load_settings(tmp_path, env={}, smtp_profile="dev"),
    ):
        assert settings.smtp.profile == "dev"
        assert settings.smtp.url == "smtp://127.0.0.1:1025"
        assert settings.smtp.insecure_skip_verify is False
        assert settings.smtp.pool == 4
    flag_over_env = load_settings(tmp_path, env={"MAILER_SMTP_PROFILE": "dev"}, smtp_profile="prod")
    assert flag_over_env.smtp.profile == "prod" and flag_over_env.smtp.pool == 8


def test_campaign_beats_the_settings_file(tmp_path: Path) -> None:
    campaign = CAMPAIGN + '\n[sender]\nname = "Spring Desk"\n\n[throttle]\nper_second = 3\n'
    path = make_workspace(tmp_path, campaign=campaign)
    with (tmp_path / "mailer.toml").open("a", encoding="utf-8") as handle:
        handle.write("\n[throttle]\nper_second = 10\nper_hour = 500\n")
    loaded = load_campaign(path, load_settings(tmp_path, env={}))
    assert loaded.sender.name == "Spring Desk"  # campaign
    assert loaded.sender.email == "news@teahouse.cn"  # mailer.toml
    assert loaded.throttle.per_second == 3  # campaign
    assert loaded.throttle.per_hour == 500  # mailer.toml
    assert loaded.settings.sender == loaded.sender


BAD_SETTINGS = [
    (
        'mailto = "unsubscribe@tea.test"',
        'mailto = "u@tea.test\\r\\nBcc: all@evil.test"',
        ":11: unsubscribe.mailto is not a valid address: 'u@tea.test\\r\\nBcc: all@evil.test' "
        "(The part after the @-sign contains invalid characters: ':', '@', SPACE, U+000A, U+000D.)",
    ),
    (
        'mailto = "unsubscribe@tea.test"',
        'mailto = "mailto:unsubscribe@tea.test"',
        ":11: unsubscribe.mailto is not a valid address: 'mailto:unsubscribe@tea.test' "
        "(The email address contains invalid characters before the @-sign: ':'.)\n"
        "  hint: write just the address, without 'mailto:'",
    ),
    (
        'url = "https://tea.test/unsubscribe?t={{ token }}"',
        'url = "https://tea.test/u?t={{ token }}>, <https://evil.test/"',
        ":10: unsubscribe.url is not a valid web address: "
        "'https://tea.test/u?t={{ token }}>, <https://evil.test/'\n"
        '  hint: use a full URL such as "https://example.org/unsubscribe?t={{ token }}"',
    ),
    (
        'url = "https://tea.test/unsubscribe?t={{ token }}"',
        'url = "tea.test/unsubscribe"',
        ":10: unsubscribe.url is not a valid web address: 'tea.test/unsubscribe'\n"
        '  hint: use a full URL such as "https://example.org/unsubscribe?t={{ token }}"',
    ),
    ('name = "Tea House 茶馆"', "name = 5", ":2: 'sender.name' must be a non-empty string"),
    (
        'postal_address = "Tea House Ltd, 8 Garden Lane, 200000 Shanghai"',
        'postal_address = " "',
        ":7: 'footer.postal_address' must be a non-empty string: every marketing email "
        "carries the sender's postal address",
    ),
    (
        'name = "Tea House 茶馆"',
        'name = "Tea\\nBcc: all@evil.test"',
        ":2: sender.name must be one line",
    ),
    (
        'email = "news@teahouse.cn"',
        'email = "news@@tea.test"',
        ":3: sender.email is not a valid address: 'news@@tea.test' "
        "(The part after the @-sign contains invalid characters: '@'.)",
    ),
]


@pytest.mark.parametrize(("old", "new", "message"), BAD_SETTINGS)
def test_bad_settings_name_the_file_and_line(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    assert old in SETTINGS
    (tmp_path / "mailer.toml").write_text(SETTINGS.replace(old, new), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path, env={})
    assert str(caught.value) == f"{tmp_path / 'mailer.toml'}{message}"


def test_the_retry_schedule_comes_from_the_settings_file(tmp_path: Path) -> None:
    (tmp_path / "mailer.toml").write_text(
        "[retry]\nbase_seconds = 60\nmax_seconds = 1800\nattempts = 7\n", encoding="utf-8"
    )
    retry = load_settings(tmp_path, env={}).retry
    assert (retry.base_seconds, retry.max_seconds, retry.attempts) == (60, 1800, 7)
    (tmp_path / "mailer.toml").write_text("[retry]\nattempts = 2.5\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path, env={})
    assert str(caught.value) == (
        f"{tmp_path / 'mailer.toml'}:2: 'retry.attempts' must be a whole number above 0, not 2.5"
    )


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("[feedback]\npause_complaint_rate = 3\n", "feedback.pause_complaint_rate is a share"),
        ("[feedback]\nsoft_bounce_limit = 2.5\n", "feedback.soft_bounce_limit must be a whole"),
        ('[feedback]\nimap = "imaps://b:secret@mail.test/INBOX"\n', "holds a password"),
        ('[feedback]\nimap = "pop3://b@mail.test"\n', "must look like imaps://USER@HOST/INBOX"),
        ("[tracking]\nclicks = true\n", "tracking.clicks needs tracking.url"),
        ('[tracking]\nclicks = true\nurl = "http://mail.test"\n', "needs tracking.url"),
    ],
)
def test_feedback_and_tracking_settings_are_checked(
    tmp_path: Path, table: str, message: str
) -> None:
    make_workspace(tmp_path)
    (tmp_path / "mailer.toml").write_text(SETTINGS + "\n" + table, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_settings(tmp_path, env={})


def test_feedback_and_tracking_settings_are_read(tmp_path: Path) -> None:
    make_workspace(tmp_path)
    extra = (
        '\n[feedback]\nsoft_bounce_limit = 5\nimap = "imaps://b@mail.test/Bounces"\n'
        '\n[tracking]\nclicks = true\nurl = "https://mail.test/"\n'
    )
    (tmp_path / "mailer.toml").write_text(SETTINGS + extra, encoding="utf-8")
    settings = load_settings(tmp_path, env={})
    assert settings.feedback.soft_bounce_limit == 5
    assert settings.feedback.imap == "imaps://b@mail.test/Bounces"
    assert settings.track_clicks_url == "https://mail.test"
