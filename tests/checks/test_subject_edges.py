"""Subject blind spots found from outside: currency in reasons, Chinese reply prefixes,
health claims, leetspeak and keyword stuffing."""

from __future__ import annotations

import pytest

from mailer.checks.subject import is_fake_reply, leetspeak, score_subject, stuffed_words

KEY = "Winter oolong tea, 15% off until 6 December"


def codes(subject: str) -> list[str]:
    return [f.code for f in score_subject(subject, key_text=KEY).findings]


@pytest.mark.parametrize(
    ("subject", "shown"),
    [
        ("Save £12 on winter oolong", "£12"),
        ("Winter oolong from $1,299.99 a case", "$1,299.99"),
        ("冬季乌龙茶 ¥128 起", "¥128"),
        ("Winter oolong: 25 EUR off", "25 EUR"),
    ],
)
def test_currency_amounts_are_shown_whole_in_the_reasons(subject, shown):
    reasons = score_subject(subject, key_text=KEY).reasons
    assert f"+10 concrete detail: {shown}" in reasons


@pytest.mark.parametrize(
    "subject",
    [
        "答复: 您的订单",
        "答复：关于会员",
        "回复: 您好",
        "答覆：訂單",
        "转寄: 新品",
        "Re[2]: your order",
    ],
)
def test_chinese_reply_and_forward_prefixes_are_fake_replies(subject):
    assert is_fake_reply(subject)
    assert "subject-fake-reply" in codes(subject)


@pytest.mark.parametrize(
    "subject",
    [
        "乌龙茶治愈失眠",
        "喝茶防癌，冬季乌龙",
        "Winter oolong cures cancer",
        "Oolong lowers blood pressure",
    ],
)
def test_health_claims_cost_points_and_say_why(subject):
    score = score_subject(subject, key_text=KEY)
    health = [f for f in score.findings if f.code == "subject-health"]
    assert health and "only medicine may claim" in health[0].message
    assert any(r.startswith("-30 health claims") for r in score.reasons)


def test_leetspeak_spam_words_are_caught_and_real_words_with_digits_are_not():
    assert leetspeak("FR33 winter oolong") == ["FR33"]
    assert leetspeak("Get v1agra and c4sh now") == ["v1agra", "c4sh"]
    assert leetspeak("iPhone15, mp3, B2B, 4k, covid19 and H2O") == []
    assert "subject-leet" in codes("fr33 winter oolong tea")


def test_keyword_stuffing_is_caught_in_english_and_chinese():
    assert stuffed_words("Tea tea TEA sale, teas for tea lovers") == ["tea"]
    assert stuffed_words("优惠优惠优惠 龙井茶") == ["优惠"]
    assert stuffed_words("Winter oolong tea: tea for the winter") == []
    assert "subject-stuffing" in codes("Oolong oolong oolong winter sale")


def test_a_clean_subject_keeps_its_score():
    score = score_subject("Winter oolongs 15% off until 6 Dec", key_text=KEY)
    assert score.findings == () and score.score == 100
