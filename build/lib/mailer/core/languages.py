"""Language tags, their fallback chain, and the workspace's texts per language.

``mailer.toml`` may give the footer's postal address and the unsubscribe
page's wording per language::

    [footer.locales.zh]
    postal_address = "中国杭州市西湖区柳巷 18 号 莲心茶馆 310000"

    [unsubscribe.page.ja]
    title = "配信を停止しました"

A reader's ``locale`` falls back one step at a time (``zh-Hant-TW`` →
``zh-hant`` → ``zh``) and then to the top-level text; it never jumps sideways.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from typing import Any, TypeVar

from mailer.core.errors import ConfigError
from mailer.core.tomlfile import TomlFile, check_keys

LANGUAGE_TAG = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*")

# What the unsubscribe page says (mailer serve); ``{sender}`` and ``{email}`` are filled in.
PAGE_TEXT_KEYS = (
    "title",
    "done",
    "no_more",
    "mistake",
    "button",
    "back_title",
    "back",
    "kept",
    "bad",
    "ask_title",
    "ask",
    "ask_button",
)

T = TypeVar("T")


def locale_chain(tag: str) -> list[str]:
    """``zh-Hant-TW`` → ["zh-hant-tw", "zh-hant", "zh"] (lower case; ``_`` read as ``-``)."""
    parts = [p for p in tag.strip().lower().replace("_", "-").split("-") if p]
    return ["-".join(parts[:n]) for n in range(len(parts), 0, -1)]


def for_locale(table: Mapping[str, T], tag: str | None) -> T | None:
    """The entry of ``table`` (keys in lower case) that ``tag`` falls back to, or None."""
    for key in locale_chain(tag) if tag else []:
        if key in table:
            return table[key]
    return None


def postal_addresses(footer: Mapping[str, Any], doc: TomlFile) -> dict[str, str]:
    """``[footer.locales.<tag>] postal_address`` for every language, keyed in lower case."""
    found: dict[str, str] = {}
    for tag, entry in _tagged_tables(footer, "locales", doc, "footer").items():
        check_keys(entry, ("postal_address",), doc, ConfigError, ("footer", "locales", tag))
        value = entry.get("postal_address")
        found[tag.lower()] = _text(value, doc, "footer", "locales", tag, "postal_address")
    return found


def page_texts(unsubscribe: Mapping[str, Any], doc: TomlFile) -> dict[str, dict[str, str]]:
    """``[unsubscribe.page.<tag>]`` wordings (any of ``PAGE_TEXT_KEYS``), keyed in lower case."""
    found: dict[str, dict[str, str]] = {}
    for tag, entry in _tagged_tables(unsubscribe, "page", doc, "unsubscribe").items():
        check_keys(entry, PAGE_TEXT_KEYS, doc, ConfigError, ("unsubscribe", "page", tag))
        texts = {
            key: _text(value, doc, "unsubscribe", "page", tag, key) for key, value in entry.items()
        }
        for key, text in texts.items():
            _check_placeholders(text, doc, "unsubscribe", "page", tag, key)
        found[tag.lower()] = texts
    return found


def _check_placeholders(text: str, doc: TomlFile, *keys: str) -> None:
    """Only ``{sender}`` and ``{email}`` are filled in: anything else would break the page."""
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
    except ValueError as exc:
        names = {f"? ({exc})"}
    unknown = names - {"sender", "email"}
    if unknown:
        raise ConfigError(
            f"{'.'.join(keys)} uses {', '.join(sorted(unknown))}: only {{sender}} and {{email}} "
            "are filled in",
            where=doc.where(*keys),
            hint="write a literal brace as {{ or }}",
        )


def _tagged_tables(
    parent: Mapping[str, Any], name: str, doc: TomlFile, section: str
) -> dict[str, Mapping[str, Any]]:
    tables = parent.get(name, {})
    if not isinstance(tables, dict):
        raise ConfigError(f"{section}.{name} must be a table", where=doc.where(section, name))
    for tag, entry in tables.items():
        if not isinstance(entry, dict) or not LANGUAGE_TAG.fullmatch(tag):
            raise ConfigError(
                f"{section}.{name}.{tag} must be a table named by a language tag, "
                f"like [{section}.{name}.zh]",
                where=doc.where(section, name, tag),
            )
    return tables


def _text(value: Any, doc: TomlFile, *keys: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{'.'.join(keys)} must be a non-empty string", where=doc.where(*keys))
    return value
