"""Which language version of a campaign a recipient gets.

The contact's ``locale`` field picks it, falling back one step at a time:
``zh-Hant-TW`` → ``zh-Hant`` → ``zh`` → the campaign's ``fallback_locale``
version when it names one (a French reader of a Chinese shop gets English),
else the top-level texts. The chain never jumps sideways (a ``zh-TW`` reader is
not sent ``zh-CN`` because it exists). A contact without a ``locale`` gets the
top-level texts: the version the sender wrote first, for their own readers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mailer.compose.compile import CompiledCampaign
from mailer.core.languages import locale_chain
from mailer.core.recipient import Recipient

DEFAULT = "default"


def locale_key(
    locales: Mapping[str, Any],
    fields: Mapping[str, Any],
    fallback: str | None = None,
    top: str | None = None,
) -> str | None:
    """The key of ``locales`` a contact's ``locale`` falls back to, or None (the top level).

    ``fallback``: the version for a language with none; ``top``: the top-level
    texts' own language (its readers are not sent to the fallback).
    """
    value = fields.get("locale")
    if not locales or not isinstance(value, str) or not value.strip():
        return None
    chain = locale_chain(value)
    for tag in chain:
        if tag in locales:
            return tag
    if top is not None and set(chain) & set(locale_chain(top)):
        return None
    return fallback


def pick_locale(compiled: CompiledCampaign, recipient: Recipient) -> CompiledCampaign:
    """The version ``recipient`` gets (the campaign itself when it has one language)."""
    campaign = compiled.campaign
    key = locale_key(compiled.locales, recipient.fields, campaign.fallback_locale, campaign.locale)
    return compiled if key is None else compiled.locales[key]


def version_label(compiled: CompiledCampaign, version: CompiledCampaign, variant: int) -> str:
    """The A/B variant's label, with the language in front when there are several: "en A".

    ``version`` is the one ``pick_locale`` chose for the recipient.
    """
    letter = chr(ord("A") + variant)
    if not compiled.locales:
        return letter
    return f"{version.campaign.locale or DEFAULT} {letter}"
