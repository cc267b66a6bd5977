"""Subject scoring and preheader rules: one test per rule, asserting the finding code."""

from __future__ import annotations

import pytest

from mailer.checks.findings import compile_patterns, display_width
from mailer.checks.subject import check_preheader, count_emoji, key_words, score_subject
from mailer.core.errors import CheckError

KEY = "Spring teas are here: 20% off every green tea until 15 April"


def codes(score_or_findings: object) -> list[str]:
    findings = getattr(score_or_findings, "findings", score_or_findings)
    return [f.code for f in findings]  # type: ignore[attr-defined]


def test_display_width_counts_cjk_as_two_columns() -> None:
    assert display_width("Tea") == 3
    assert display_width("新春快乐") == 8
    assert display_width("新春 sale") == 9
    assert display_width("ｆｕｌｌ") == 8  # full-width Latin
    assert display_width("café") == 4
    assert display_width("e\u0301") == 1  # combining accent takes no column


def test_good_subject_scores_high_with_reasons() -> None:
    score = score_subject("Spring green tea: 20% off", variant="A", key_text=KEY)
    assert score.findings == ()
    assert score.score == 100
    assert score.width == 25
    # "teas" and "tea" share a stem: listed once, in the headline's form.
    assert score.reasons[0] == "+36 carries key words: spring, teas, 20%, green"
    assert score.reasons[1:] == ("+10 concrete detail: 20%", "+10 fits a phone (25 columns)")


def test_chinese_subject_carries_key_words() -> None:
    score = score_subject("晓梅，新春快乐！茶礼加赠试饮装", key_text="新春茶礼每单附赠试饮装")
    assert score.findings == ()
    assert score.width == 30
    assert "新春" in key_words("新春茶礼")


def test_chinese_key_words_match_inside_a_sentence_without_spaces() -> None:
    key = "新春茶礼每单附赠试饮装"
    carried = score_subject("年货节：每单都送试饮装", key_text=key)
    assert carried.findings == ()
    assert carried.reasons[0] == "+12 carries key words: 试饮装"  # a word, not pairs
    off = score_subject("晓梅，祝您新年好", key_text=key)
    assert codes(off) == ["subject-off-message"]
    assert "新春" in off.findings[0].message
    # Words from the segmenter: no function characters, no pairs across two words.
    assert key_words("您的专属礼物") == ["专属", "礼物"]


def test_latin_key_words_match_whole_words_and_plurals() -> None:
    assert codes(score_subject("Phone deals this week", key_text="One tea a day")) == [
        "subject-off-message"
    ]  # "one" is not a word of "phone"
    assert codes(score_subject("Tea time", key_text="Spring teas")) == ["subject-vague"]  # short
    assert codes(score_subject("Spring tea time", key_text="Spring teas")) == []
    assert codes(score_subject("Thé vert à -20 %", key_text="Nos thés verts de printemps")) == []
    assert key_words("Frühling: grüner Tee {{ contact.first_name }}") == [
        "frühling",
        "grüner",
        "tee",
    ]


def test_display_width_of_emoji_sequences() -> None:
    assert display_width("👩\u200d💻") == 2  # a joined sequence is one emoji
    assert display_width("👍🏽") == 2  # the skin-tone modifier takes no column
    assert display_width("🇨🇳") == 2  # two regional indicators, one flag
    assert display_width("❤️") == 2  # emoji presentation makes it wide
    assert display_width("❤") == 1
    assert display_width("soft\u00adhyphen\u2060") == 10


def test_subject_long_warning_past_40_columns() -> None:
    subject = "Spring green tea: twenty percent off every leaf"  # 47 columns
    score = score_subject(subject, key_text=KEY)
    assert codes(score) == ["subject-long"]
    assert score.findings[0].severity == "warning"
    assert score.score == 50 + 36 - 15  # three key words, too long for a phone


def test_cjk_subject_long_by_columns_not_characters() -> None:
    subject = "新春茶礼到了，西湖龙井和安吉白茶都在这里等您"  # 22 characters, 44 columns
    assert codes(score_subject(subject, key_text="新春茶礼")) == ["subject-long"]
    # The same four characters six times over is keyword stuffing as well.
    stuffed = score_subject("新春茶礼" * 6, key_text="新春茶礼")
    assert codes(stuffed) == ["subject-long", "subject-stuffing"]


def test_subject_too_long_error_past_78_columns() -> None:
    subject = "Spring green tea " + "x" * 70
    score = score_subject(subject, key_text=KEY)
    assert codes(score) == ["subject-too-long"]
    assert score.findings[0].severity == "error"
    assert score.score < 60


def test_subject_off_message_when_no_key_words() -> None:
    score = score_subject("News from us this week", key_text=KEY)
    assert codes(score) == ["subject-off-message"]
    assert "spring" in score.findings[0].message


def test_spam_words_english() -> None:
    score = score_subject("Spring tea: act now, click here", key_text=KEY)
    assert codes(score) == ["subject-spam"]
    assert "'act now'" in score.findings[0].message
    assert "'click here'" in score.findings[0].message


def test_spam_words_chinese() -> None:
    score = score_subject("新春茶礼免费送，马上抢购", key_text="新春茶礼")
    assert codes(score) == ["subject-spam"]
    assert "'免费'" in score.findings[0].message


def test_spam_word_matches_whole_words_only() -> None:
    assert codes(score_subject("Spring tea for freedom lovers", key_text=KEY)) == []


def test_all_caps_words_but_not_acronyms() -> None:
    score = score_subject("Spring tea SALE for VIP members", key_text=KEY)
    assert codes(score) == ["subject-caps"]
    assert score.findings[0].message.endswith(": SALE")


def test_repeated_punctuation() -> None:
    assert codes(score_subject("Spring tea is here!!!", key_text=KEY)) == ["subject-punctuation"]
    assert codes(score_subject("新春茶礼？？", key_text="新春茶礼")) == ["subject-punctuation"]
    assert codes(score_subject("Spring tea is here!", key_text=KEY)) == []


def test_more_than_two_emoji() -> None:
    assert count_emoji("🍵🌸") == 2
    assert count_emoji("👩‍💻") == 1  # one joined sequence
    assert count_emoji("🇨🇳🇬🇧") == 2  # two flags, not four letters
    assert count_emoji("⭐⏰") == 2  # emoji outside the two big blocks
    assert codes(score_subject("Spring tea ⭐⭐⭐", key_text=KEY)) == ["subject-emoji"]
    assert codes(score_subject("Spring tea 🍵🌸🎉", key_text=KEY)) == ["subject-emoji"]
    assert codes(score_subject("Spring tea 🍵🌸", key_text=KEY)) == []


@pytest.mark.parametrize("subject", ["RE: spring tea", "Fwd: spring tea", "回复：新春茶礼"])
def test_fake_reply_or_forward(subject: str) -> None:
    score = score_subject(subject, key_text=KEY + " 新春茶礼")
    assert codes(score) == ["subject-fake-reply"]
    assert score.findings[0].severity == "error"


def test_empty_subject() -> None:
    score = score_subject("  ", key_text=KEY)
    assert codes(score) == ["subject-empty"]
    assert score.score == 0


def test_preheader_good() -> None:
    preheader = "Fresh leaves from the first spring harvest, picked last week in Hangzhou"
    assert check_preheader(preheader, "Spring green tea: 20% off") == []


def test_preheader_missing() -> None:
    assert codes(check_preheader("", "Spring tea")) == ["preheader-missing"]


def test_preheader_short_and_long() -> None:
    assert codes(check_preheader("Fresh leaves", "Spring tea")) == ["preheader-short"]
    assert codes(check_preheader("Fresh leaves " * 10, "Spring tea")) == ["preheader-long"]


def test_preheader_repeating_the_subject() -> None:
    subject = "Spring green tea: 20% off every leaf this week"
    found = check_preheader(subject + " only", subject)
    assert codes(found) == ["preheader-repeats-subject"]


def test_pattern_files_are_extensible_and_bad_regex_names_the_line() -> None:
    extra = compile_patterns("spam_en.txt", ["# comment", "", "tea party", r"re:\bsp[a]m+\b"])
    assert extra.find("A TEA PARTY with spammm") == ["TEA PARTY", "spammm"]
    with pytest.raises(CheckError) as caught:
        compile_patterns("claims.txt", ["ok", "re:(unclosed"])
    assert caught.value.where == "mailer/data/claims.txt:2"
