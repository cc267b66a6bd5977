"""Subject and preheader: is the subject the core of the message, short and attractive?

The source material's rule: make the core of the message the subject, and make
it attractive (將宣傳內容的核心作為郵件的主題). ``score_subject`` is a documented
additive model: a subject starts at ``BASE`` (50: breaks no rule, says nothing
in particular) and each signal in ``WEIGHTS`` adds or takes points, clamped to
0–100. Every signal is shown as a reason, and every deduction is also a
``Finding`` so the user knows what to fix:

====================  ======  =====================================================
signal                points  why
====================  ======  =====================================================
key word              +12     each headline/offer key word the subject carries, up
                              to three: the core of the message is the subject (the
                              sender's own name does not count: "Update from Lotus
                              Tea House" carries no offer)
concrete detail       +10     a number, price, discount or date (9 折, 20%, ¥99):
                              specific beats vague
fits a phone          +10     12–40 display columns: read whole on a phone
subject-vague         −25     under 12 columns, or only generic words ("Hello",
                              "Newsletter", "无标题"): gives no reason to open
subject-off-message   −15     carries no key word of the headline or offer
subject-long          −15     over 40 columns: phones cut it
subject-too-long      −45     over 78 columns: cut everywhere (an error)
subject-spam          −10     each spam or pressure phrase, at most three
subject-caps          −10     ALL-CAPS words (acronyms aside) read as shouting
subject-punctuation   −10     !!! or ??? runs
subject-emoji         −10     more than two emoji
subject-claims        −25     absolute claims (最佳, 第一, 国家级, "best ever"):
                              banned in Chinese advertising (Advertising Law art. 9)
                              and distrusted everywhere
subject-health        −30     health claims (治愈, 防癌, "cures cancer"): forbidden for
                              anything but medicine (Advertising Law art. 17, the
                              FTC, EU health-claims rules)
subject-leet          −20     spam words spelt with digits (fr33, v1agra): the
                              oldest filter dodge, and filters know it
subject-stuffing      −20     the same word three times or more: keyword stuffing
subject-fake-reply    −45     RE:/FWD:/回复:/答复: on a first message is deceptive
                              (an error)
====================  ======  =====================================================

The weights are checked against a labelled set of real-style subjects
(``tests/checks/subject_set.py``, English and Chinese, several campaigns): in
every campaign a strong subject must outscore a weak one, with pairwise
accuracy kept at 0.9 or above by the tests. Chinese key words come from a real
segmenter (``rjieba``, the Rust port of jieba), not from character pairs.
Widths are display columns (CJK counts two), because phones cut subjects by
width, at roughly 33–48 columns.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

from mailer.checks.findings import (
    Finding,
    claim_patterns,
    display_width,
    error,
    patterns,
    spam_patterns,
    warning,
)

SUBJECT_WARN_COLUMNS = 40
SUBJECT_ERROR_COLUMNS = 78
PREHEADER_MIN_COLUMNS = 40
PREHEADER_MAX_COLUMNS = 100
MAX_EMOJI = 2

SUBJECT_VAGUE_COLUMNS = 12

# The model (see the module docstring for why each weight is what it is).
BASE = 50
WEIGHTS = {
    "key-word": 12,  # per key word carried, at most MAX_KEY_WORDS of them
    "concrete": 10,
    "phone-fit": 10,
    "subject-vague": -25,
    "subject-off-message": -15,
    "subject-long": -15,
    "subject-too-long": -45,
    "subject-spam": -10,  # per phrase, at most three times
    "subject-caps": -10,
    "subject-punctuation": -10,
    "subject-emoji": -10,
    "subject-claims": -25,
    "subject-health": -30,
    "subject-leet": -20,
    "subject-stuffing": -20,
    "subject-fake-reply": -45,
}
MAX_KEY_WORDS = 3
# Subjects that say nothing whatever the campaign, lower-cased, punctuation and spaces out.
_GENERIC = frozenset(
    {
        "hello", "hi", "hey", "newsletter", "news", "update", "updates", "info",
        "information", "message", "test", "no subject", "untitled", "sale", "offer",
        "our products", "check this out", "important", "greetings",
        "无标题", "無標題", "通知", "你好", "您好", "问候", "問候", "月刊", "新闻", "新聞",
        "消息", "资讯", "資訊", "邮件", "郵件", "促销", "促銷",
    }
)  # fmt: skip
_CONCRETE = re.compile(
    r"\d+(?:[.,]\d+)?\s*(?:%|％|折|元|块|塊|off\b|percent)"
    r"|[¥￥$€£]\s?\d+(?:[.,]\d+)*|\d+(?:[.,]\d+)?\s?(?:rmb|usd|eur|hkd|gbp)\b"
    r"|[一二三四五六七八九]折|半价|半價|买一送一|買一送一|包邮|包郵"
    r"|\b\d{1,2}\s+(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*"
    r"|\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\s+\d{1,2}\b"
    r"|\d{1,2}\s*[月/]\s*\d{1,2}\s*[日号號]?|\d+\s*-?\s*(?:hour|day|小时|小時|天)",
    re.IGNORECASE,
)

# Acronyms are not shouting.
_ACRONYMS = frozenset(
    [
        "VIP",
        "FAQ",
        "USA",
        "CEO",
        "PDF",
        "SMS",
        "DIY",
        "RSVP",
        "HTML",
        "API",
        "USB",
        "GPS",
        "ATM",
        "NYC",
        "EUR",
        "USD",
        "RMB",
        "HKD",
        "GBP",
    ]
)
_CAPS_WORD = re.compile(r"(?<![A-Za-z])[A-Z]{3,}(?![A-Za-z])")
_PUNCT_RUN = re.compile(r"[!！]{2,}|[?？]{2,}|[!?！？]{3,}")
_FAKE_REPLY = re.compile(
    r"^\s*(?:re(?:\[\d+\])?|fw|fwd|aw|sv|wg|rv|tr|回复|回覆|答复|答覆|转发|轉發|转寄|轉寄)\s*[:：]",
    re.IGNORECASE,
)
# Leetspeak: digits or symbols standing in for letters, read back as letters.
_LEET = str.maketrans("013457@$", "oieastas")
_LEET_WORD = re.compile(r"(?<![\w@$])(?=[\w@$]*[a-zA-Z])(?=[\w@$]*[013457@$])[\w@$]{3,}")
_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
# Words of space-separated scripts (Latin with accents, Greek, Cyrillic ...):
# letters, not Han or kana, which are written without spaces.
_LETTER = rf"[^\W\d_{_HAN}\u3040-\u30ff]"
_WORD = re.compile(rf"{_LETTER}+(?:['’]{_LETTER}+)?|\d{{2,}}%?")
_CJK_RUN = re.compile(rf"[{_HAN}]+")
_JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.DOTALL)

_STOPWORDS = frozenset(
    [
        "the",
        "and",
        "for",
        "you",
        "your",
        "our",
        "with",
        "from",
        "this",
        "that",
        "are",
        "was",
        "were",
        "will",
        "have",
        "has",
        "had",
        "not",
        "but",
        "all",
        "any",
        "can",
        "get",
        "got",
        "its",
        "it's",
        "into",
        "onto",
        "out",
        "over",
        "than",
        "then",
        "them",
        "they",
        "their",
        "there",
        "these",
        "those",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "how",
        "now",
        "new",
        "just",
        "more",
        "most",
        "some",
        "such",
        "only",
        "own",
        "same",
        "too",
        "very",
        "also",
        "here",
        "about",
        "after",
        "before",
        "again",
        "off",
        "until",
        "while",
        "each",
        "few",
        "both",
        "other",
        "per",
        "via",
        "let",
        "let's",
    ]
)
# Function characters that make a CJK two-character piece meaningless on its own.
_CJK_FILLER = set("的了是在和与與及或您你我们們他她它这這那就也都把被给給让讓吗嗎呢吧啊")


@dataclass(frozen=True)
class SubjectScore:
    """A subject variant's score (0–100), its width, and why points were taken or kept."""

    variant: str
    subject: str
    width: int
    score: int
    reasons: tuple[str, ...] = ()
    findings: tuple[Finding, ...] = field(default=(), repr=False)

    def to_dict(self) -> dict[str, object]:
        """Plain data for ``--json``."""
        return {
            "variant": self.variant,
            "subject": self.subject,
            "width": self.width,
            "score": self.score,
            "reasons": list(self.reasons),
        }


def key_words(text: str) -> list[str]:
    """The words that carry a headline or offer: Latin words, numbers, Chinese words.

    Chinese has no spaces: it is segmented by ``rjieba`` (jieba's dictionary),
    and the content words of two characters or more are kept (西湖, 龙井,
    明前茶 — not 的, 您, or a pair that straddles two words).
    """
    text = _JINJA.sub(" ", text)
    words: dict[str, None] = {}
    stems: set[str] = set()
    for match in _WORD.finditer(text):
        word = match.group(0).lower()
        short = len(word) < 3 and not word[0].isdigit()  # numbers: two digits are enough
        if word in _STOPWORDS or short or _stem(word) in stems:
            continue  # "teas" after "tea" says nothing new
        stems.add(_stem(word))
        words.setdefault(word, None)
    for run in _CJK_RUN.findall(text):
        for word, tag in _segment(run):
            if len(word) >= 2 and tag[:1] in _CONTENT_TAGS and not set(word) <= _CJK_FILLER:
                words.setdefault(word, None)
    return list(words)


# jieba part-of-speech tags of content words: nouns (n, nr, ns, nz ...), verbs,
# adjectives, idioms (i), abbreviations (j), time words (t), other nouns (l).
_CONTENT_TAGS = frozenset("nvaijtlg")


def _segment(text: str) -> list[tuple[str, str]]:
    """Chinese words with their part-of-speech tags (rjieba; its dictionary loads once)."""
    import rjieba

    return [(word, tag) for word, tag in rjieba.tag(text)]


def _stem(word: str) -> str:
    """A crude stem, so "teas" in the headline counts for "tea" in the subject."""
    word = word.lower().replace("’", "'").removesuffix("'s")
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def _carries(subject: str, word: str) -> bool:
    # Chinese has no spaces between words: a two-character piece matches inside
    # the subject. Other words match whole, so "one" is not found in "phone".
    if _CJK_RUN.fullmatch(word):
        return word in subject
    return _stem(word) in {_stem(w) for w in _WORD.findall(subject)}


# Emoji outside the two big blocks: ⌚⏰ (23xx), ⭐⬆ (2Bxx), 〰〽㊗㊙.
_EMOJI_EXTRA = frozenset(
    (
        *(0x231A, 0x231B, 0x2328, 0x23CF, *range(0x23E9, 0x23F4), *range(0x23F8, 0x23FB)),
        *(0x2B05, 0x2B06, 0x2B07, 0x2B1B, 0x2B1C, 0x2B50, 0x2B55),
        *(0x3030, 0x303D, 0x3297, 0x3299),
    )
)


def _is_emoji(code: int) -> bool:
    return 0x1F000 <= code <= 0x1FAFF or 0x2600 <= code <= 0x27BF or code in _EMOJI_EXTRA


def count_emoji(text: str) -> int:
    """Emoji in ``text``; a joined sequence (👩‍💻), a skin-tone variant or a flag counts once."""
    count = 0
    previous = ""
    flag_half = False
    for char in text:
        code = ord(char)
        is_modifier = 0x1F3FB <= code <= 0x1F3FF
        if 0x1F1E6 <= code <= 0x1F1FF:  # regional indicators: two letters make one flag
            flag_half = not flag_half
            count += flag_half
        elif _is_emoji(code) and not is_modifier and previous != "\u200d":
            flag_half = False
            count += 1
        previous = char
    return count


def score_subject(
    subject: str, *, variant: str = "", key_text: str = "", brand: str = ""
) -> SubjectScore:
    """Score one rendered subject with the model (module docstring).

    ``key_text`` is the headline and offer; ``brand`` the sender's name, whose
    words in a subject ("Update from Lotus Tea House") do not count as carrying
    the offer's key words.
    """
    where = f"subject {variant}".strip()
    width = display_width(subject)
    if not subject.strip():
        finding = error("subject-empty", "the subject is empty", where)
        return SubjectScore(variant, subject, 0, 0, ("-100 empty subject",), (finding,))
    own = _without(subject, brand)
    gains = _gains(own, key_text, width)
    losses: list[tuple[Finding, int]] = []
    losses += _length_rules(width, where)
    losses += _message_rules(subject, own, key_text, width, where)
    losses += _pattern_rules(subject, where)
    reasons = [f"+{points} {why}" for why, points in gains]
    reasons += [f"{points} {f.message}" for f, points in losses]
    total = BASE + sum(points for _why, points in gains) + sum(points for _f, points in losses)
    score = max(0, min(100, total))
    return SubjectScore(
        variant, subject, width, score, tuple(reasons), tuple(f for f, _p in losses)
    )


def _gains(subject: str, key_text: str, width: int) -> list[tuple[str, int]]:
    gains = []
    carried = [w for w in key_words(key_text) if _carries(subject, w)]
    if carried:
        points = WEIGHTS["key-word"] * min(len(carried), MAX_KEY_WORDS)
        gains.append(("carries key words: " + ", ".join(carried[:5]), points))
    concrete = _CONCRETE.search(subject)
    if concrete:
        gains.append((f"concrete detail: {concrete.group(0).strip()}", WEIGHTS["concrete"]))
    if SUBJECT_VAGUE_COLUMNS <= width <= SUBJECT_WARN_COLUMNS:
        gains.append((f"fits a phone ({width} columns)", WEIGHTS["phone-fit"]))
    return gains


def _length_rules(width: int, where: str) -> list[tuple[Finding, int]]:
    if width > SUBJECT_ERROR_COLUMNS:
        message = f"subject is {width} columns; over {SUBJECT_ERROR_COLUMNS} it is cut everywhere"
        return [(error("subject-too-long", message, where), WEIGHTS["subject-too-long"])]
    if width > SUBJECT_WARN_COLUMNS:
        message = (
            f"subject is {width} columns; phones show about 33–48, "
            f"keep it within {SUBJECT_WARN_COLUMNS}"
        )
        return [(warning("subject-long", message, where), WEIGHTS["subject-long"])]
    return []


def _without(subject: str, brand: str) -> str:
    """The subject with the sender's name taken out (case-insensitive)."""
    if not brand.strip():
        return subject
    return re.sub(re.escape(brand.strip()), " ", subject, flags=re.IGNORECASE)


def _message_rules(
    subject: str, own: str, key_text: str, width: int, where: str
) -> list[tuple[Finding, int]]:
    out: list[tuple[Finding, int]] = []
    bare = re.sub(r"[\W_]+", " ", subject.lower()).strip()
    if width < SUBJECT_VAGUE_COLUMNS or bare in _GENERIC:
        message = (
            f"{subject.strip()!r} is too short or too generic to give a reason to open; "
            "name the offer (what, how much, until when)"
        )
        out.append((warning("subject-vague", message, where), WEIGHTS["subject-vague"]))
    words = key_words(key_text)
    if words and not any(_carries(own, w) for w in words):
        sample = ", ".join(words[:6])
        message = f"subject carries none of the headline/offer key words ({sample})"
        out.append((warning("subject-off-message", message, where), WEIGHTS["subject-off-message"]))
    return out


def _pattern_rules(subject: str, where: str) -> list[tuple[Finding, int]]:
    out: list[tuple[Finding, int]] = []
    spam = spam_patterns(subject)
    if spam:
        message = "spam-trigger or pressure words: " + ", ".join(repr(s) for s in spam)
        points = WEIGHTS["subject-spam"] * min(len(spam), 3)
        out.append((warning("subject-spam", message, where), points))
    claims = claim_patterns(subject)
    if claims:
        message = "absolute claims: " + ", ".join(repr(c) for c in claims)
        out.append((warning("subject-claims", message, where), WEIGHTS["subject-claims"]))
    caps = [w for w in _CAPS_WORD.findall(subject) if w not in _ACRONYMS]
    if caps:
        message = "ALL-CAPS words read as shouting: " + ", ".join(caps)
        out.append((warning("subject-caps", message, where), WEIGHTS["subject-caps"]))
    runs = _PUNCT_RUN.findall(subject)
    if runs:
        message = "repeated punctuation: " + " ".join(runs)
        out.append((warning("subject-punctuation", message, where), WEIGHTS["subject-punctuation"]))
    emoji = count_emoji(subject)
    if emoji > MAX_EMOJI:
        message = f"{emoji} emoji; use at most {MAX_EMOJI}"
        out.append((warning("subject-emoji", message, where), WEIGHTS["subject-emoji"]))
    out += _dodge_rules(subject, where)
    if _FAKE_REPLY.match(subject):
        message = "subject pretends to be a reply or forward (RE:/FWD:/回复:); that is deceptive"
        out.append((error("subject-fake-reply", message, where), WEIGHTS["subject-fake-reply"]))
    return out


def _dodge_rules(subject: str, where: str) -> list[tuple[Finding, int]]:
    """Health claims, leetspeak and keyword stuffing."""
    out: list[tuple[Finding, int]] = []
    health = patterns("health_claims.txt").find(subject)
    if health:
        message = (
            "health claims: " + ", ".join(repr(h) for h in health) + "; only medicine may "
            "claim to prevent or cure illness (广告法 第十七条; FTC; EU health-claims rules)"
        )
        out.append((warning("subject-health", message, where), WEIGHTS["subject-health"]))
    leet = leetspeak(subject)
    if leet:
        message = "spam words spelt with digits or symbols: " + ", ".join(repr(w) for w in leet)
        out.append((warning("subject-leet", message, where), WEIGHTS["subject-leet"]))
    stuffed = stuffed_words(subject)
    if stuffed:
        message = "the same word again and again: " + ", ".join(repr(w) for w in stuffed)
        out.append((warning("subject-stuffing", message, where), WEIGHTS["subject-stuffing"]))
    return out


def leetspeak(text: str) -> list[str]:
    """Words like ``fr33`` or ``v1agra``: with digits read as letters, a spam phrase."""
    found = []
    for match in _LEET_WORD.finditer(text):
        word = match.group(0)
        plain = word.lower().translate(_LEET)
        if plain != word.lower() and (spam_patterns(plain) or plain in _LEET_TARGETS):
            found.append(word)
    return found


# Words spammers disguise that are not on the spam lists as such.
_LEET_TARGETS = frozenset(
    [
        "viagra", "cialis", "casino", "sex", "porn", "loan", "loans", "money", "cash",
        "sale", "deal", "bonus", "prize", "lottery", "winner", "crypto", "bitcoin", "pills",
    ]
)  # fmt: skip


def stuffed_words(text: str) -> list[str]:
    """Words (or Chinese words of two characters and more) used three times or more."""
    counts: dict[str, int] = {}
    for match in _WORD.finditer(text):
        word = _stem(match.group(0))
        if len(word) >= 3 and word not in _STOPWORDS:
            counts[word] = counts.get(word, 0) + 1
    for run in _CJK_RUN.findall(text):
        for word, _tag in _segment(run):
            if len(word) >= 2 and not set(word) <= _CJK_FILLER:
                counts[word] = counts.get(word, 0) + 1
    return [w for w, n in counts.items() if n >= 3]


def is_fake_reply(subject: str) -> bool:
    """True for a subject that pretends to answer or forward (``RE:``, ``Fwd:``, ``回复：``)."""
    return bool(_FAKE_REPLY.match(subject))


def check_preheader(preheader: str, subject: str, *, where: str = "preheader") -> list[Finding]:
    """Preheader present, 40–100 columns, saying something the subject does not."""
    text = preheader.strip()
    if not text:
        return [
            warning(
                "preheader-missing",
                "no preheader: inboxes will show the first text of the body instead",
                where,
            )
        ]
    findings: list[Finding] = []
    width = display_width(text)
    if width < PREHEADER_MIN_COLUMNS:
        message = f"preheader is {width} columns; aim for {PREHEADER_MIN_COLUMNS}–100"
        findings.append(warning("preheader-short", message, where))
    elif width > PREHEADER_MAX_COLUMNS:
        message = f"preheader is {width} columns; inboxes show about {PREHEADER_MAX_COLUMNS}"
        findings.append(warning("preheader-long", message, where))
    subject_l, text_l = subject.strip().lower(), text.lower()
    similar = difflib.SequenceMatcher(None, subject_l, text_l).ratio() >= 0.8
    if subject_l and (similar or text_l.startswith(subject_l)):
        message = "preheader repeats the subject; use it to add the next reason to open"
        findings.append(warning("preheader-repeats-subject", message, where))
    spam = spam_patterns(text)
    if spam:
        message = "spam-trigger or pressure words: " + ", ".join(repr(s) for s in spam)
        findings.append(warning("preheader-spam", message, where))
    return findings
