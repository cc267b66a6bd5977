"""Unsubscribe tokens: genuine ones read back, forged, altered, expired or foreign ones do not."""

from __future__ import annotations

import pytest

from mailer.core.tokens import MAX_DAYS, make_token, read_token

KEY = b"k" * 32
NOW = 1_800_000_000.0
DAY = 86400.0


def test_a_token_reads_back_to_its_address_and_campaign() -> None:
    token = make_token("Ann@Tea.Test", "spring@2027", NOW, KEY)
    found = read_token(token, NOW + DAY, KEY)
    assert found is not None
    assert (found.email, found.campaign, found.day) == ("ann@tea.test", "spring@2027", NOW // DAY)
    assert token.isascii() and " " not in token and "/" not in token  # safe in a URL path


@pytest.mark.parametrize(
    "change",
    [
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # altered MAC
        lambda t: "x" + t[1:],  # altered payload
        lambda t: t.split(".")[0],  # no MAC
        lambda t: "not a token",
        lambda t: "",
        lambda t: "." * 5000,
    ],
)
def test_forged_or_altered_tokens_are_refused(change) -> None:
    token = make_token("ann@tea.test", "spring", NOW, KEY)
    assert read_token(change(token), NOW, KEY) is None


def test_a_token_signed_with_another_key_or_too_old_is_refused() -> None:
    token = make_token("ann@tea.test", "spring", NOW, KEY)
    assert read_token(token, NOW, b"other key") is None
    assert read_token(token, NOW + MAX_DAYS * DAY, KEY) is not None
    assert read_token(token, NOW + (MAX_DAYS + 1) * DAY, KEY) is None
    assert read_token(token, NOW - 2 * DAY, KEY) is None  # from the future
