"""``mailer init``: a new workspace that renders, checks and sends from its first minute.

It writes ``mailer.toml`` (sender, postal address, relay or outbox, time
zone), a starter campaign, the starter MJML template (key-block classes
included), a ``contacts.csv`` holding only the sender (so a first live send
reaches nobody but you), a ``.env`` with a fresh ``MAILER_UNSUBSCRIBE_KEY``
and a ``.gitignore`` that keeps ``.env``, the database and the outbox out of
version control. Nothing is overwritten unless asked; nothing is written when
any value is wrong. English or Chinese texts (``lang``).
"""

from __future__ import annotations

import json
import os
import secrets
import string
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path

from mailer.core.addresses import InvalidAddress, normalize_address
from mailer.core.campaign import BUILT_IN_TEMPLATES
from mailer.core.demo import reserved_tld
from mailer.core.errors import ConfigError
from mailer.core.tokens import KEY_ENV
from mailer.core.workspace import DOTENV, SETTINGS_FILE
from mailer.delivery.relay import parse_smtp_url

LANGUAGES = ("en", "zh")
STARTER_TEMPLATE = "promotion"
CAMPAIGN_FILE = "campaigns/welcome.toml"


@dataclass(frozen=True)
class InitRequest:
    """What the new workspace needs to know (asked for, or given as flags)."""

    folder: Path
    brand: str
    sender: str
    postal_address: str
    relay: str | None  # an SMTP URL; None: write emails to the outbox folder
    timezone: str
    lang: str = "en"
    unsubscribe_url: str | None = None  # where `mailer serve` answers, if public already
    force: bool = False  # overwrite files that exist


@dataclass
class InitResult:
    """What was written, and what the user should know about it."""

    folder: Path
    written: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # codes: "reserved-sender", "nested"
    campaign: Path = Path(CAMPAIGN_FILE)


def system_language(env: dict[str, str] | os._Environ[str] | None = None) -> str:
    """``zh`` when the system locale is Chinese (LC_ALL, LC_MESSAGES, LANG), else ``en``."""
    env = os.environ if env is None else env
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(name)
        if value:
            return "zh" if value.lower().startswith("zh") else "en"
    return "en"


def system_timezone(env: dict[str, str] | os._Environ[str] | None = None) -> str:
    """The machine's IANA time zone (``TZ``, else /etc/localtime's link), else UTC."""
    env = os.environ if env is None else env
    candidates = [env.get("TZ", "").lstrip(":")]
    try:
        link = os.readlink("/etc/localtime")
        candidates.append(link.partition("zoneinfo/")[2])
    except OSError:
        pass
    for name in candidates:
        if name and _is_zone(name):
            return name.removeprefix("Etc/") if name in ("Etc/UTC", "Etc/GMT") else name
    return "UTC"


def existing_files(folder: Path) -> list[Path]:
    """The files ``init`` would write that already exist in ``folder``."""
    return [path for path in _targets(folder) if path.exists()]


def init_workspace(request: InitRequest) -> InitResult:
    """Check every value, then write the workspace (see the module docstring)."""
    folder = request.folder
    sender = _checked(request)
    existing = existing_files(folder)
    if existing and not request.force:
        shown = ", ".join(str(p.relative_to(folder)) for p in existing)
        raise ConfigError(
            f"{folder} already holds {shown}; nothing was written",
            hint="choose an empty folder, or overwrite them on purpose",
            advice="init-overwrite",
        )
    texts = _texts(request, sender)
    result = InitResult(folder)
    if reserved_tld(sender.rpartition("@")[2]):
        result.notes.append("reserved-sender")
    if any((parent / SETTINGS_FILE).is_file() for parent in folder.absolute().parents):
        result.notes.append("nested")
    try:
        for relative, text in texts.items():
            path = folder / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            if relative == DOTENV:
                path.chmod(0o600)  # the key is a secret: readable by its owner only
            result.written.append(path)
    except OSError as exc:
        raise ConfigError(
            f"cannot write the workspace: {exc.strerror or exc}", where=str(exc.filename or folder)
        ) from None
    return result


def _targets(folder: Path) -> list[Path]:
    return [folder / name for name in _NAMES]


_NAMES = (
    SETTINGS_FILE,
    DOTENV,
    ".gitignore",
    "contacts.csv",
    CAMPAIGN_FILE,
    f"templates/{STARTER_TEMPLATE}.mjml",
)


def _checked(request: InitRequest) -> str:
    """Every value checked before anything is written; returns the normalised sender."""
    if request.lang not in LANGUAGES:
        raise ConfigError(f"unknown language {request.lang!r}", hint="en or zh")
    for label, value in (("brand", request.brand), ("postal address", request.postal_address)):
        if not value.strip() or "\n" in value or "\r" in value:
            raise ConfigError(f"the {label} must be one non-empty line, not {value!r}")
    try:
        sender = normalize_address(request.sender.strip())
    except InvalidAddress as exc:
        raise ConfigError(f"the sender address is not valid: {request.sender!r} ({exc})") from None
    if not _is_zone(request.timezone):
        raise ConfigError(
            f"unknown time zone {request.timezone!r}",
            hint="an IANA name such as Asia/Shanghai, Europe/London or UTC",
        )
    if request.relay:
        parse_smtp_url(request.relay, where="relay")
        if reserved_tld(sender.rpartition("@")[2]):
            raise ConfigError(
                f"{sender} is on a reserved domain, which a real relay must not send from",
                hint="give an address of your own domain, or no relay (emails go to outbox/)",
            )
    url = request.unsubscribe_url
    if url and (not url.startswith("https://") or "{{ token }}" not in url):
        raise ConfigError(
            f"the unsubscribe URL must be https and carry {{{{ token }}}}, not {url!r}",
            hint="for example https://mail.your-shop.com/u/{{ token }} (served by mailer serve)",
        )
    return sender


def _is_zone(name: str) -> bool:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _q(value: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's)."""
    return json.dumps(value, ensure_ascii=False)


def _texts(request: InitRequest, sender: str) -> dict[str, str]:
    words = _WORDS[request.lang]
    domain = sender.rpartition("@")[2]
    values = {
        "brand": _q(request.brand.strip())[1:-1],  # inside the campaign's TOML strings
        "sender": sender,
        "domain": domain,
    }
    return {
        SETTINGS_FILE: _settings_text(request, sender, words),
        DOTENV: words["dotenv"].format(key_env=KEY_ENV, key=secrets.token_hex(32)),
        ".gitignore": _GITIGNORE,
        "contacts.csv": words["contacts"].format(sender=sender),
        CAMPAIGN_FILE: _campaign_text(request.lang, values),
        f"templates/{STARTER_TEMPLATE}.mjml": (
            BUILT_IN_TEMPLATES / f"{STARTER_TEMPLATE}.mjml"
        ).read_text(encoding="utf-8"),
    }


def _settings_text(request: InitRequest, sender: str, words: dict[str, str]) -> str:
    lines = [
        words["toml_head"].format(brand=request.brand.strip()),
        f"timezone = {_q(request.timezone)}",
        words["toml_test"],
        f"test_address = {_q(sender)}",
        "",
        "[sender]",
        f"name = {_q(request.brand.strip())}",
        f"email = {_q(sender)}",
        "",
        "[footer]",
        words["toml_footer"],
        f"postal_address = {_q(request.postal_address.strip())}",
        "",
        "[unsubscribe]",
        words["toml_unsubscribe"],
        f"mailto = {_q(sender)}",
    ]
    if request.unsubscribe_url:
        lines.append(f"url = {_q(request.unsubscribe_url)}")
    else:
        lines.append(words["toml_unsubscribe_url"])
    lines.append("")
    if request.relay:
        lines += ["[smtp]", words["toml_smtp"], f"url = {_q(request.relay)}", ""]
    else:
        lines += [words["toml_outbox"], ""]
    return "\n".join(lines)


def _campaign_text(lang: str, values: dict[str, str]) -> str:
    # $brand and $domain, not {brand}: the campaign's own {{ }} are Jinja.
    source = BUILT_IN_TEMPLATES / "starter" / f"welcome-{lang}.toml"
    return string.Template(source.read_text(encoding="utf-8")).substitute(values)


_GITIGNORE = """# Written by mailer init: secrets, the database and generated mail stay out of git.
.env
mailer.db
mailer.db-*
outbox/
*.rejects.csv
*.rejects.jsonl
"""

_EN = {
    "toml_head": (
        "# The settings of {brand}'s mail workspace (written by mailer init); edit freely.\n"
        "# Every mailer command run in this folder, or any folder below it, uses this file."
    ),
    "toml_test": '# Where the preview\'s "send a test" button sends.',
    "toml_footer": "# The postal address every marketing email carries (anti-spam laws ask).",
    "toml_unsubscribe": (
        "# Readers can unsubscribe by writing to this address (List-Unsubscribe: mailto)."
    ),
    "toml_unsubscribe_url": (
        "# One-click unsubscribe links need `mailer serve` on a public https address; then set\n"
        '# url = "https://mail.your-domain.com/u/{{ token }}"'
    ),
    "toml_smtp": "# The relay. Its password goes in .env as MAILER_SMTP_PASSWORD, never here.",
    "toml_outbox": (
        "# No [smtp] url yet: `mailer send --live` writes each email as a file in outbox/.\n"
        "# To send for real, add:\n"
        "# [smtp]\n"
        '# url = "smtp+starttls://user@smtp.your-provider.com:587"'
    ),
    "dotenv": (
        "# Secrets for this workspace; mailer reads this file, and never overrides a variable\n"
        "# already set in the environment. Keep it out of git (see .gitignore).\n"
        "# Signs unsubscribe links: keep it, and keep it secret (a new key breaks old links).\n"
        "{key_env}={key}\n"
        "# The relay's password, if it needs one:\n"
        "# MAILER_SMTP_PASSWORD=\n"
    ),
    "contacts": "email,first_name,last_name,city\n{sender},,,\n",
}

_ZH = {
    "toml_head": (
        "# {brand} 的邮件工作区设置（由 mailer init 生成），可随意修改。\n"
        "# 在本文件夹及其任何子文件夹中运行的 mailer 命令都使用这个文件。"
    ),
    "toml_test": "# 预览页的“发送测试邮件”按钮发到这里。",
    "toml_footer": "# 每封营销邮件都必须带上的实际通信地址（反垃圾邮件法规要求）。",
    "toml_unsubscribe": "# 读者可以写信到这个地址退订（List-Unsubscribe: mailto）。",
    "toml_unsubscribe_url": (
        "# 一键退订链接需要在公网 https 地址上运行 `mailer serve`，然后设置：\n"
        '# url = "https://mail.your-domain.com/u/{{ token }}"'
    ),
    "toml_smtp": "# 发信服务器。密码写在 .env 的 MAILER_SMTP_PASSWORD 中，不要写在这里。",
    "toml_outbox": (
        "# 还没有 [smtp] url：`mailer send --live` 会把每封邮件写成 outbox/ 里的文件。\n"
        "# 要真正发信，加上：\n"
        "# [smtp]\n"
        '# url = "smtp+starttls://user@smtp.your-provider.com:587"'
    ),
    "dotenv": (
        "# 本工作区的密钥；mailer 会读取这个文件，但不会覆盖环境中已设置的变量。\n"
        "# 不要提交到 git（见 .gitignore）。\n"
        "# 用于给退订链接签名：请妥善保管（换新密钥后旧链接将失效）。\n"
        "{key_env}={key}\n"
        "# 发信服务器的密码（如需要）：\n"
        "# MAILER_SMTP_PASSWORD=\n"
    ),
    "contacts": "邮箱,姓名,城市\n{sender},,\n",
}

_WORDS = {"en": _EN, "zh": _ZH}
