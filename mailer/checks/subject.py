"""Subject and preheader: is the subject the core of the message, short and attractive?

The source material's rule: make the core of the message the subject, and make
it attractive (將宣傳內容的核心作為郵件的主題). A subject scores 0–100; every
deduction comes with a reason and a ``Finding`` so the user knows what to fix.
Widths are display columns (CJK counts two), because phones cut subjects by
width, at roughly 33–48 columns.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

from mailer.checks.findings import Finding, display_width, error, spam_patterns, warning

SUBJECT_WARN_COLUMNS = 40
SUBJECT_ERROR_COLUMNS = 78
PREHEADER_MIN_COLUMNS = 40
PREHEADER_MAX_COLUMNS = 100
MAX_EMOJI = 2

# Points taken off per rule. Errors cost more than warnings: an error alone
# drops a subject below 60.
PENALTY = {
    "subject-too-long": 45,
    "subject-long": 15,
    "subject-off-message": 20,
    "subject-spam": 10,  # per phrase, at most three times
    "subject-caps": 10,
    "subject-punctuation": 10,
    "subject-emoji": 10,
    "subject-fake-reply": 45,
}

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
_FAKE_REPLY = re.compile(r"^\s*(?:re|fw|fwd|aw|sv|回复|回覆|转发|轉發)\s*[:：]", re.IGNORECASE)
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
    """The words that carry a headline or offer: Latin words, numbers, CJK two-character pieces."""
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
        pieces = [run] if len(run) <= 2 else [run[i : i + 2] for i in range(len(run) - 1)]
        for piece in pieces:
            if not (set(piece) & _CJK_FILLER):
                words.setdefault(piece, None)
    return list(words)


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


def score_subject(subject: str, *, variant: str = "", key_text: str = "") -> SubjectScore:
    """Score one rendered subject against the rules; ``key_text`` is headline + offer."""
    where = f"subject {variant}".strip()
    width = display_width(subject)
    if not subject.strip():
        finding = error("subject-empty", "the subject is empty", where)
        return SubjectScore(variant, subject, 0, 0, ("-100 empty subject",), (finding,))
    findings: list[tuple[Finding, int]] = []
    findings += _length_rules(width, where)
    findings += _message_rules(subject, key_text, where)
    findings += _pattern_rules(subject, where)
    reasons = [f"-{points} {f.message}" for f, points in findings]
    if width <= SUBJECT_WARN_COLUMNS:
        reasons.insert(0, f"+ fits a phone ({width} columns)")
    carried = [w for w in key_words(key_text) if _carries(subject, w)]
    if carried:
        reasons.insert(0, "+ carries key words: " + ", ".join(carried[:5]))
    score = max(0, 100 - sum(points for _f, points in findings))
    return SubjectScore(
        variant, subject, width, score, tuple(reasons), tuple(f for f, _p in findings)
    )


def _length_rules(width: int, where: str) -> list[tuple[Finding, int]]:
    if width > SUBJECT_ERROR_COLUMNS:
        message = f"subject is {width} columns; over {SUBJECT_ERROR_COLUMNS} it is cut everywhere"
        return [(error("subject-too-long", message, where), PENALTY["subject-too-long"])]
    if width > SUBJECT_WARN_COLUMNS:
        message = (
            f"subject is {width} columns; phones show about 33–48, "
            f"keep it within {SUBJECT_WARN_COLUMNS}"
        )
        return [(warning("subject-long", message, where), PENALTY["subject-long"])]
    return []


def _message_rules(subject: str, key_text: str, where: str) -> list[tuple[Finding, int]]:
    words = key_words(key_text)
    if not words or any(_carries(subject, w) for w in words):
        return []
    sample = ", ".join(words[:6])
    message = f"subject carries none of the headline/offer key words ({sample})"
    return [(warning("subject-off-message", message, where), PENALTY["subject-off-message"])]


def _pattern_rules(subject: str, where: str) -> list[tuple[Finding, int]]:
    out: list[tuple[Finding, int]] = []
    spam = spam_patterns(subject)
    if spam:
        message = "spam-trigger or pressure words: " + ", ".join(repr(s) for s in spam)
        points = PENALTY["subject-spam"] * min(len(spam), 3)
        out.append((warning("subject-spam", message, where), points))
    caps = [w for w in _CAPS_WORD.findall(subject) if w not in _ACRONYMS]
    if caps:
        message = "ALL-CAPS words read as shouting: " + ", ".join(caps)
        out.append((warning("subject-caps", message, where), PENALTY["subject-caps"]))
    runs = _PUNCT_RUN.findall(subject)
    if runs:
        message = "repeated punctuation: " + " ".join(runs)
        out.append((warning("subject-punctuation", message, where), PENALTY["subject-punctuation"]))
    emoji = count_emoji(subject)
    if emoji > MAX_EMOJI:
        message = f"{emoji} emoji; use at most {MAX_EMOJI}"
        out.append((warning("subject-emoji", message, where), PENALTY["subject-emoji"]))
    if _FAKE_REPLY.match(subject):
        message = "subject pretends to be a reply or forward (RE:/FWD:); that is deceptive"
        out.append((error("subject-fake-reply", message, where), PENALTY["subject-fake-reply"]))
    return out


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
