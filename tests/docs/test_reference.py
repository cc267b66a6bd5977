"""The reference pages name every key the program reads, and every environment variable.

A key added to ``mailer.toml`` or to the campaign file, or a new ``MAILER_*`` variable, fails
here until docs/reference/ says what it does.
"""

from __future__ import annotations

import re

from mailer.core import campaign, settings
from mailer.schedule import model
from tests.docs.runner import DOCS, REPO


def page(name: str) -> str:
    return (DOCS / "reference" / name).read_text(encoding="utf-8")


def undocumented(keys: set[str] | tuple[str, ...], text: str) -> set[str]:
    """Keys the page names nowhere: as `key`, `key = ...`, or a table `[key]` / `[x.key]`."""
    forms = ("`{}`", "{} =", "[{}]", "[{}.", ".{}]", ".{}.")
    return {key for key in keys if not any(form.format(key) in text for form in forms)}


def test_every_mailer_toml_key_is_in_the_reference() -> None:
    text = page("mailer-toml.md")
    keys = set(settings._TOP_KEYS)
    for section, names in settings._SECTION_KEYS.items():
        assert f"[{section}]" in text, f"[{section}] is not in docs/reference/mailer-toml.md"
        keys |= set(names)
    assert not undocumented(keys, text)


def test_every_campaign_key_is_in_the_reference() -> None:
    text = page("campaign.md")
    keys = {
        *campaign._TOP_KEYS,
        *campaign._CONTENT_KEYS,
        *campaign._AUDIENCE_KEYS,
        *campaign._UTM_KEYS,
        *campaign._AB_KEYS,
        *campaign._LOCALE_KEYS,
        *model.KEYS,
    }
    assert not undocumented(keys, text)


def test_every_environment_variable_is_in_the_reference() -> None:
    text = page("mailer-toml.md")
    source = "\n".join(p.read_text(encoding="utf-8") for p in (REPO / "mailer").rglob("*.py"))
    variables = set(re.findall(r"\b(?:MAILER_[A-Z_]+|MAILGUN_[A-Z_]+|PGPASSWORD)\b", source))
    assert "MAILER_UNSUBSCRIBE_KEY" in variables
    assert not undocumented(variables, text)
