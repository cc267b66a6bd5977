"""``mailer init [DIR]``: ask for (or take as flags) what a workspace needs, then write it.

The questions and the closing advice are in English or Chinese (``--lang``,
default: the system locale). ``--yes`` asks nothing: flags, else defaults.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from mailer.cli.app import app, console, run

_ASK = {
    "en": {
        "brand": "Brand (the sender's name readers see)",
        "sender": "Sender address (From)",
        "postal": "Postal address (printed in every email's footer)",
        "relay": "SMTP relay URL (leave empty: emails go to outbox/ as files)",
        "timezone": "Time zone",
    },
    "zh": {
        "brand": "品牌名称（收件人看到的发件人名称）",
        "sender": "发件地址（From）",
        "postal": "通信地址（印在每封邮件的页脚）",
        "relay": "SMTP 发信服务器 URL（留空：邮件以文件形式写入 outbox/）",
        "timezone": "时区",
    },
}
_DEFAULTS = {
    "en": ("My Shop", "news@my-shop.example", "My Shop, 1 High Street, Sample Town"),
    "zh": ("我的小店", "news@my-shop.example", "某省某市某区某路 1 号 我的小店"),
}
_DONE = {
    "en": """Next steps{cd}:
  mailer check campaigns/welcome.toml        checks, with the fold measured in Chromium
  mailer preview campaigns/welcome.toml      see it live in the browser
  mailer send campaigns/welcome.toml --test {sender}   one test email to you
  mailer send campaigns/welcome.toml --live  send it (to contacts.csv: only you so far)
  mailer contacts import FILE --dry-run      see how a contact file's columns are read
Keep .env secret: it holds MAILER_UNSUBSCRIBE_KEY (and your relay password, if any).""",
    "zh": """下一步{cd}：
  mailer check campaigns/welcome.toml        检查（在 Chromium 中测量首屏）
  mailer preview campaigns/welcome.toml      在浏览器中实时预览
  mailer send campaigns/welcome.toml --test {sender}   给自己发一封测试邮件
  mailer send campaigns/welcome.toml --live  正式发送（发给 contacts.csv：目前只有你自己）
  mailer contacts import 文件 --dry-run      先看看联系人文件的各列会被怎样读取
请妥善保管 .env：其中有 MAILER_UNSUBSCRIBE_KEY（以及发信服务器密码，如有）。""",
}
_NOTES = {
    "en": {
        "reserved-sender": "note: {sender} is on a reserved domain: fine for the outbox and "
        "a test server on this machine; a live send through any other relay refuses it. "
        "Change [sender] email in mailer.toml.",
        "nested": "note: a folder above this one is a workspace too; commands run here use "
        "this one.",
    },
    "zh": {
        "reserved-sender": "注意：{sender} 属于保留域名，只能用于 outbox 或本机的测试服务器；"
        "通过其他发信服务器正式发送时会被拒绝。请修改 mailer.toml 中的 [sender] email。",
        "nested": "注意：上级文件夹也是一个工作区；在这里运行的命令使用这一个。",
    },
}


@app.command()
def init(
    folder: Annotated[
        Path, typer.Argument(help="where to make the workspace", metavar="[DIR]")
    ] = Path("."),
    lang: Annotated[
        str | None,
        typer.Option("--lang", help="en or zh", show_default="from the system locale"),
    ] = None,
    brand: Annotated[str | None, typer.Option("--brand", help="the sender's name")] = None,
    sender: Annotated[
        str | None, typer.Option("--sender", metavar="ADDRESS", help="the From address")
    ] = None,
    postal_address: Annotated[
        str | None, typer.Option("--postal-address", help="the footer's postal address")
    ] = None,
    relay: Annotated[
        str | None,
        typer.Option(
            "--relay",
            metavar="URL",
            help="SMTP relay URL, or 'outbox' for files",
            show_default="outbox",
        ),
    ] = None,
    timezone: Annotated[
        str | None, typer.Option("--timezone", help="IANA time zone", show_default="the system's")
    ] = None,
    unsubscribe_url: Annotated[
        str | None,
        typer.Option(
            "--unsubscribe-url",
            metavar="URL",
            help="https URL with {{ token }} where mailer serve answers",
            show_default="mailto only",
        ),
    ] = None,
    yes: Annotated[
        bool,
        typer.Option(
            "--yes",
            "-y",
            help="ask no questions: take the flags, else the values shown by the questions",
        ),
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="overwrite files that exist")] = False,
) -> None:
    """Start a workspace: settings, a campaign, contacts, a key.

    Writes mailer.toml, campaigns/welcome.toml, templates/promotion.mjml, contacts.csv, a .env
    holding a fresh MAILER_UNSUBSCRIBE_KEY and a .gitignore that keeps .env out of git. Asks
    for brand, sender, postal address, relay and time zone on a terminal; --yes takes the
    flags (or the defaults) and asks nothing.

    Examples:

    \b
      mailer init shop
      mailer init --lang zh
      mailer init shop --yes --brand "Lotus Tea" --sender news@lotus-tea.cn --relay outbox
    """
    from mailer.services.init import InitRequest, init_workspace, system_language, system_timezone

    language = lang or system_language()
    if language not in _ASK:
        run(lambda: _bad_language(language))
    if not yes and not sys.stdin.isatty():
        run(_no_terminal)
    ask = _ASK[language]
    default_brand, default_sender, default_postal = _DEFAULTS[language]

    def value(given: str | None, key: str, default: str) -> str:
        if given is not None or yes:
            return given if given is not None else default
        return str(typer.prompt(ask[key], default=default or "", show_default=bool(default)))

    chosen_brand = value(brand, "brand", default_brand)
    request = InitRequest(
        folder=folder,
        brand=chosen_brand,
        sender=value(sender, "sender", default_sender),
        postal_address=value(postal_address, "postal", default_postal),
        relay=_relay(value(relay, "relay", "")),
        timezone=value(timezone, "timezone", system_timezone()),
        lang=language,
        unsubscribe_url=unsubscribe_url,
        force=force,
    )
    result = run(lambda: init_workspace(request))
    for path in result.written:
        console.print(f"wrote {path}", soft_wrap=True, highlight=False, markup=False)
    for note in result.notes:
        console.print(_NOTES[language][note].format(sender=request.sender), markup=False)
    here = folder.absolute() == Path.cwd()
    cd = "" if here else (f" (cd {folder} first)" if language == "en" else f"（先 cd {folder}）")
    console.print(
        _DONE[language].format(cd=cd, sender=request.sender.strip()),
        soft_wrap=True,
        markup=False,
    )


def _relay(text: str) -> str | None:
    text = text.strip()
    return None if text.lower() in ("", "outbox", "none") else text


def _bad_language(language: str) -> None:
    from mailer.core.errors import ConfigError

    raise ConfigError(f"unknown language {language!r}", hint="--lang en or --lang zh")


def _no_terminal() -> None:
    from mailer.core.errors import ConfigError

    raise ConfigError(
        "mailer init asks questions, and there is no terminal to ask on",
        hint="pass --yes with the values as flags: --brand, --sender, --postal-address, "
        "--relay, --timezone",
    )
