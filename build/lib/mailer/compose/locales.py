"""Which language version of a campaign a recipient gets.

The contact's ``locale`` field picks it, falling back one step at a time:
``zh-Hant-TW`` → ``zh-Hant`` → ``zh`` → the campaign's top-level texts. The
chain never jumps sideways (a ``zh-TW`` reader is not sent ``zh-CN`` because
it exists): the top-level version is the one the sender chose as the default.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mailer.compose.compile import CompiledCampaign
from mailer.core.languages import locale_chain
from mailer.core.recipient import Recipient

DEFAULT = "default"


def locale_key(locales: Mapping[str, Any], fields: Mapping[str, Any]) -> str | None:
    """The key of ``locales`` a contact's ``locale`` falls back to, or None (the default)."""
    value = fields.get("locale")
    for tag in locale_chain(value) if locales and isinstance(value, str) else []:
        if tag in locales:
            return tag
    return None


def pick_locale(compiled: CompiledCampaign, recipient: Recipient) -> CompiledCampaign:
    """The version ``recipient`` gets (the campaign itself when it has one language)."""
    key = locale_key(compiled.locales, recipient.fields)
    return compiled if key is None else compiled.locales[key]


def version_label(compiled: CompiledCampaign, version: CompiledCampaign, variant: int) -> str:
    """The A/B variant's label, with the language in front when there are several: "en A".

    ``version`` is the one ``pick_locale`` chose for the recipient.
    """
    letter = chr(ord("A") + variant)
    if not compiled.locales:
        return letter
    return f"{version.campaign.locale or DEFAULT} {letter}"
