"""Japanese and Korean contact files told apart from Chinese ones (and from each other)
when they are not UTF-8: Shift-JIS, EUC-JP and EUC-KR reuse GBK's and Big5's byte ranges."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailer.audience.textfile import detect_encoding, plausibility

JAPANESE = (
    "email,first_name,last_name,city\n"
    "yamada@example.jp,太郎,山田,東京\nsato@example.jp,花子,佐藤,大阪\n"
    "suzuki@example.jp,一郎,鈴木,京都\ntanaka@example.jp,さくら,田中,横浜\n"
)
KANA = "email,name,city\na@example.com,やまだ たろう,とうきょう\nb@example.com,さとう はなこ,おおさか\n"
KANJI_ONLY = "email,first_name,last_name,city\nyamada@mail.test,太郎,山田,東京\nsato@mail.test,花子,佐藤,大阪\n"
KOREAN = (
    "email,first_name,last_name,city\n"
    "kim@example.kr,민준,김,서울\nlee@example.kr,서연,이,부산\npark@example.kr,지훈,박,인천\n"
)
KOREAN_LOCALE = (
    "email,first_name,last_name,locale\nkim@mail.test,민준,김,ko-KR\nlee@mail.test,서연,이,ko\n"
)
CHINESE = "email,first_name,last_name,city\nli@mail.test,雷,李,上海\nwang@mail.test,美,王,杭州\n"
TRADITIONAL = (
    "email,first_name,last_name,city\nchen@mail.test,佳慧,陳,臺北\nhuang@mail.test,嘉明,黃,香港\n"
)


@pytest.mark.parametrize(
    ("text", "codec", "family"),
    [
        (JAPANESE, "shift_jis", {"cp932", "shift_jis"}),
        (JAPANESE, "euc_jp", {"euc_jis_2004", "euc_jp"}),
        (KANA, "shift_jis", {"cp932", "shift_jis"}),
        (KANA, "euc_jp", {"euc_jis_2004", "euc_jp"}),
        (KANJI_ONLY, "shift_jis", {"cp932", "shift_jis"}),  # by JIS level-1 kanji alone
        (KOREAN, "euc_kr", {"cp949", "euc_kr"}),
        (KOREAN_LOCALE, "euc_kr", {"cp949", "euc_kr"}),
        (CHINESE, "gbk", {"gb18030"}),
        (TRADITIONAL, "big5", {"big5"}),
    ],
)
def test_each_sample_is_read_in_its_own_encoding(tmp_path: Path, text, codec, family):
    path = tmp_path / "contacts.csv"
    path.write_bytes(text.encode(codec))
    decoding = detect_encoding(path)
    assert decoding.guessed
    assert decoding.encoding in family
    assert path.read_bytes().decode(decoding.encoding) == text


def test_shift_jis_names_read_as_korean_are_rare_syllables():
    data = "山田 太郎 東京".encode("shift_jis")
    assert data.decode("cp949") == "랹밹 뫞쁚 뱦떈"  # valid CP949...
    assert plausibility(data, "cp949") < 0 < plausibility(data, "cp932")  # ...but noise


def test_euc_jp_kanji_without_any_hint_stays_a_guess_for_gb18030(tmp_path: Path):
    # EUC-JP and GB2312 share one layout: 山田 in EUC-JP is 怀拍 in GB2312, both common
    # characters. Without kana, .jp addresses or a ja locale nothing tells them apart;
    # the Chinese reading wins and is reported as a guess (`encoding = "euc_jp"` fixes it).
    path = tmp_path / "contacts.csv"
    path.write_bytes(KANJI_ONLY.encode("euc_jp"))
    decoding = detect_encoding(path)
    assert decoding.guessed and decoding.encoding == "gb18030"
    assert detect_encoding(path, "euc_jp").encoding == "euc_jp"
