"""What a campaign's language versions may take from the top level, and who gets which.

A ``[locales.<tag>]`` version gives its own subject, preheader, headline, offer
and button text. Everything else it leaves out would come from the top-level
texts, in the top-level language: a Japanese version silently carrying Chinese
paragraphs, a Chinese sign-off and a link to the Chinese shop. So a version
inherits only what the campaign declares the same in every language::

    inherit = ["content.cta_url", "content.hero_image", "data.accent"]

and whatever holds no text at all (numbers, booleans, dates). Every other
``[content]`` or ``[data]`` key the top level has must be given per version;
the error names each one, per version.

``fallback_locale`` names the version for readers whose language has none
(``"en"``: the English version for a French reader); without it they get the
top-level texts. Readers with no ``locale`` at all get the top-level texts.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, time
from typing import Any

from mailer.core.errors import CampaignError
from mailer.core.languages import LANGUAGE_TAG
from mailer.core.tomlfile import TomlFile

# The [content] keys a version may leave to the top level once declared in ``inherit``
# (the texts themselves are required of every version already).
INHERITABLE_CONTENT = ("cta_url", "hero_image")


def declared(doc: TomlFile) -> frozenset[str]:
    """The ``inherit = [...]`` list, checked: ``content.cta_url``, ``content.hero_image``
    or ``data.<a key of [data]>``."""
    value = doc.data.get("inherit", [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise CampaignError(
            'inherit must be a list of keys, like inherit = ["content.cta_url", "data.accent"]',
            where=doc.where("inherit"),
        )
    data = doc.data.get("data", {})
    allowed = {f"content.{k}" for k in INHERITABLE_CONTENT}
    allowed |= {f"data.{k}" for k in data} if isinstance(data, dict) else set()
    unknown = [v for v in value if v not in allowed]
    if unknown:
        raise CampaignError(
            f"inherit names {', '.join(unknown)}, which the top level does not have",
            where=doc.where("inherit"),
            hint="inherit lists content.cta_url, content.hero_image or keys of [data]",
        )
    return frozenset(value)


def _has_text(value: Any) -> bool:
    """Whether a value holds a string anywhere (a text a reader could see)."""
    if isinstance(value, str):
        return True
    if isinstance(value, Mapping):
        return any(_has_text(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_has_text(v) for v in value)
    return not isinstance(value, bool | int | float | date | datetime | time)


def inherited(doc: TomlFile, entry: Mapping[str, Any], inherit: frozenset[str]) -> list[str]:
    """The top-level keys with text that version ``entry`` would take without saying so."""
    content = entry.get("content", {})
    own_data = entry.get("data", {})
    top_content = doc.data.get("content", {})
    top_data = doc.data.get("data", {})
    gaps = [
        f"content.{k}"
        for k in INHERITABLE_CONTENT
        if isinstance(top_content, dict) and k in top_content and k not in content
    ]
    if isinstance(top_data, dict):
        gaps += [f"data.{k}" for k, v in top_data.items() if k not in own_data and _has_text(v)]
    return [g for g in gaps if g not in inherit]


def fallback_locale(doc: TomlFile, versions: Mapping[str, Any], top: str | None) -> str | None:
    """``fallback_locale``: a version's tag (lower case), or None for the top-level texts."""
    value = doc.data.get("fallback_locale")
    if value is None:
        return None
    tags = sorted(versions)
    if not isinstance(value, str) or not LANGUAGE_TAG.fullmatch(value):
        raise CampaignError(
            f'fallback_locale must be a language tag like "en", not {value!r}',
            where=doc.where("fallback_locale"),
        )
    if top is not None and value.lower() == top.lower():
        return None  # the top-level texts: the default anyway
    if value.lower() not in versions:
        raise CampaignError(
            f"fallback_locale {value!r} is not one of the campaign's versions",
            where=doc.where("fallback_locale"),
            hint="versions: " + ", ".join([top or "the top level", *tags]),
        )
    return value.lower()
