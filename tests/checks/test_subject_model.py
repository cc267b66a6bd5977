"""The subject model against a labelled set: strong subjects outrank weak ones."""

from __future__ import annotations

from mailer.checks.subject import BASE, WEIGHTS, key_words, score_subject
from tests.checks.subject_set import CAMPAIGNS, pairs, size

KEY_ZH = "明前龙井上新。西湖龙井明前茶 9 折，限时一周"


BRAND = "Lotus Tea House"  # the sender of every campaign in the set


def score(subject: str, key: str) -> int:
    return score_subject(subject, key_text=key, brand=BRAND).score


def test_the_labelled_set_is_big_enough_and_mixed() -> None:
    assert size() >= 40
    assert any("zh" in name for name in CAMPAIGNS) and any("en" in name for name in CAMPAIGNS)


def test_pairwise_accuracy_on_the_labelled_set_is_at_least_0_9() -> None:
    wins = 0.0
    wrong = []
    for name, key, strong, weak in pairs():
        a, b = score(strong, key), score(weak, key)
        wins += 1.0 if a > b else 0.5 if a == b else 0.0
        if a <= b:
            wrong.append(f"{name}: {strong!r} {a} vs {weak!r} {b}")
    accuracy = wins / len(pairs())
    assert accuracy >= 0.9, "\n".join(wrong)


def test_the_issue_s_examples_rank_as_a_marketer_would() -> None:
    good = score("春茶上新：西湖龙井明前茶 9 折", KEY_ZH)
    for vague in ("Hello", "Newsletter", "无标题"):
        assert score(vague, KEY_ZH) <= good - 40, vague
    claims = score_subject("最佳茶叶，全国第一，国家级品质！！！", key_text=KEY_ZH)
    assert claims.score <= 30
    assert "subject-claims" in {f.code for f in claims.findings}


def test_chinese_key_words_are_words_not_character_pairs() -> None:
    assert key_words(KEY_ZH) == ["上新", "西湖", "龙井", "明前茶", "限时"] or set(
        key_words(KEY_ZH)
    ) >= {"西湖", "龙井", "明前茶"}
    assert "前龙" not in key_words(KEY_ZH) and "旦快" not in key_words("元旦快乐，新年茶礼")


def test_every_reason_shows_its_points_and_they_add_up() -> None:
    result = score_subject(
        "Spring green teas: 20% off until 15 April", key_text=CAMPAIGNS["spring-en"][0]
    )
    points = sum(int(reason.split(" ", 1)[0]) for reason in result.reasons)
    assert min(100, BASE + points) == result.score
    assert f"+{WEIGHTS['concrete']} concrete detail: 20%" in result.reasons


def test_absolute_claims_are_errors_in_a_chinese_campaign_and_warnings_elsewhere(tmp_path):
    from mailer.campaign.prepared import prepare_campaign
    from mailer.checks.content import check_claims
    from mailer.checks.gate import run_checks
    from mailer.core.settings import load_settings
    from tests.workspace import CAMPAIGN, make_workspace

    [zh] = check_claims([("subject", "全国第一的龙井")], chinese=True)
    assert (zh.severity, zh.code) == ("error", "claims") and "广告法 第九条" in zh.message
    [en] = check_claims([("subject", "The best ever tea")])
    assert (en.severity, en.code) == ("warning", "claims")
    # The workspace's campaign has a Chinese subject variant: the whole campaign is Chinese.
    campaign = make_workspace(
        tmp_path, campaign=CAMPAIGN.replace("20% off <all>", "全国第一 20% off")
    )
    prepared = prepare_campaign(campaign, load_settings(tmp_path, env={}))
    report = run_checks(prepared, browser=False)
    assert "claims" in {f.code for f in report.errors}
