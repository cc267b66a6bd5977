"""Content and compliance rules for one rendered email (HTML, text part, MIME bytes).

Every rule is a pure function of strings/bytes returning ``Finding``s, so a
test can craft a bad email and assert the code. The HTML is read once into an
``HtmlFacts`` summary (stdlib parser: no browser, no network).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesHeaderParser
from email.utils import getaddresses
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from mailer.checks.findings import Finding, Severity, claim_patterns, error, info, warning
from mailer.compose.remote import remote_resources
from mailer.core.tokens import KEY_ENV, has_real_key

KB = 1024
HTML_WARN_BYTES = 80 * KB
HTML_CLIP_BYTES = 102 * KB  # Gmail clips the message ("[Message clipped]") past this
WORD_WARN = 300
IMAGE_ONLY_WORDS = 20
PARITY_MIN = 0.7
KEY_CLASSES = ("mailer-headline", "mailer-offer", "mailer-cta")
PLACEHOLDER_HOSTS = ("example.com", "example.org", "example.net")
FREEMAIL = frozenset(
    [
        "gmail.com",
        "googlemail.com",
        "yahoo.com",
        "hotmail.com",
        "outlook.com",
        "live.com",
        "aol.com",
        "icloud.com",
        "qq.com",
        "163.com",
        "126.com",
        "sina.com",
    ]
)

_VOID = frozenset(
    [
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "source",
        "track",
        "wbr",
    ]
)
_HIDDEN_TEXT = frozenset(("script", "style", "title", "head"))
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'’-]*|[\u3400-\u9fff\uf900-\ufaff]")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_UNSUB_TEXT = re.compile(r"unsubscribe|opt[ -]?out|退订|退訂|取消订阅|取消訂閱", re.IGNORECASE)


@dataclass
class HtmlFacts:
    """What the rules need from an HTML body: title, text, links, images, key blocks."""

    title: str | None = None
    text_parts: list[str] = field(default_factory=list)
    hidden_parts: list[str] = field(default_factory=list)  # display:none body text (preheader)
    links: list[tuple[str, str]] = field(default_factory=list)  # (href, link text)
    images: list[dict[str, str | None]] = field(default_factory=list)
    key_blocks: dict[str, int] = field(default_factory=dict)  # outermost elements per class
    cta_links: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        """The visible text, whitespace collapsed."""
        return " ".join(" ".join(self.text_parts).split())


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.facts = HtmlFacts()
        self.stack: list[tuple[str, frozenset[str], bool]] = []  # (tag, classes, hidden)
        self.link: list[str] | None = None  # text of the <a> being read
        self.href = ""
        self.in_title = False

    def _inside(self, name: str) -> bool:
        return any(name == tag or name in classes for tag, classes, _h in self.stack)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        classes = frozenset((values.get("class") or "").split())
        for key in KEY_CLASSES:
            if key in classes and not self._inside(key):
                self.facts.key_blocks[key] = self.facts.key_blocks.get(key, 0) + 1
        if tag == "img":
            self.facts.images.append(values)
        elif tag == "a" and values.get("href") is not None:
            self.link, self.href = [], values["href"] or ""
            if self._inside("mailer-cta") or "mailer-cta" in classes:
                self.facts.cta_links.append(self.href)
        elif tag == "title":
            self.in_title = True
            self.facts.title = ""
        if tag not in _VOID:
            style = (values.get("style") or "").replace(" ", "").lower()
            hidden = tag in _HIDDEN_TEXT or "display:none" in style or "hidden" in values
            self.stack.append((tag, classes, hidden))

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self.link is not None:
            self.facts.links.append((self.href, " ".join("".join(self.link).split())))
            self.link = None
        if tag == "title":
            self.in_title = False
        for depth in range(len(self.stack) - 1, -1, -1):
            if self.stack[depth][0] == tag:  # close it and anything left open inside it
                del self.stack[depth:]
                break

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.facts.title = (self.facts.title or "") + data
        # Hidden text (the preheader div, display:none tricks) is not what readers see.
        if any(hidden for _t, _c, hidden in self.stack):
            if not any(tag in _HIDDEN_TEXT for tag, _c, _h in self.stack):
                self.facts.hidden_parts.append(data)
            return
        self.facts.text_parts.append(data)
        if self.link is not None:
            self.link.append(data)


def read_html(html: str) -> HtmlFacts:
    """Parse an HTML body into ``HtmlFacts`` (comments, incl. Outlook conditionals, skipped)."""
    reader = _Reader()
    reader.feed(html)
    reader.close()
    if reader.link is not None:  # an unclosed <a> still counts as a link
        reader.facts.links.append((reader.href, "".join(reader.link).strip()))
    return reader.facts


def word_count(text: str) -> int:
    """Words for "shorter is better": Latin words, plus Chinese characters at two per word."""
    cjk = len(_CJK.findall(text))
    latin = len(_WORD.findall(text)) - cjk
    return latin + (cjk + 1) // 2


def check_size(html: str) -> list[Finding]:
    """HTML over 80 KB is heavy; over 102 KB Gmail clips it and hides the footer."""
    size = len(html.encode("utf-8"))
    if size >= HTML_CLIP_BYTES:
        message = f"HTML is {size / KB:.0f} KB; Gmail clips messages over 102 KB"
        return [error("html-size", message, "html")]
    if size >= HTML_WARN_BYTES:
        message = f"HTML is {size / KB:.0f} KB; keep it under 80 KB (Gmail clips at 102 KB)"
        return [warning("html-size", message, "html")]
    return []


def check_images(facts: HtmlFacts) -> list[Finding]:
    """Images need alt text (many clients block images); an email must not be only images."""
    findings: list[Finding] = []
    missing = [
        str(img.get("src") or "?")
        for img in facts.images
        if img.get("alt") is None and not _is_pixel(img)
    ]
    if missing:
        message = f"{len(missing)} image(s) without alt text: " + ", ".join(missing[:3])
        findings.append(warning("img-alt-missing", message, "html <img>"))
    words = word_count(facts.text)
    if facts.images and words < IMAGE_ONLY_WORDS:
        message = (
            f"only {words} words of text next to {len(facts.images)} image(s): image-only "
            "emails look like spam and show nothing when images are blocked"
        )
        findings.append(error("image-only", message, "html"))
    return findings


def _is_pixel(img: dict[str, str | None]) -> bool:
    return img.get("width") in ("0", "1") and img.get("height") in ("0", "1")


def classify_url(url: str) -> tuple[str, str] | None:
    """``(code, reason)`` when a link or image address is unusable in an email, else None."""
    url = url.strip()
    lowered = url.lower()
    if lowered.startswith(("mailto:", "tel:", "sms:")):
        return None
    if not url or url.startswith("#"):
        return "link-placeholder", f"placeholder link {url or '(empty)'!r}"
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if any(host == h or host.endswith("." + h) for h in PLACEHOLDER_HOSTS):
        return "link-placeholder", f"placeholder address {url}"
    if parts.scheme in ("http", "https") and host:
        return (
            ("link-insecure", f"insecure http:// address {url}") if parts.scheme == "http" else None
        )
    if parts.scheme == "data":
        return None
    return "link-relative", f"relative or unusable address {url!r}: mail clients have no base URL"


def check_links(facts: HtmlFacts) -> list[Finding]:
    """Links and image sources: no placeholders, no relative paths, no plain http://."""
    findings: list[Finding] = []
    targets = [(href, "html <a>") for href, _t in facts.links]
    targets += [(str(img.get("src") or ""), "html <img>") for img in facts.images]
    for url, where in targets:
        verdict = classify_url(url)
        if verdict:
            code, reason = verdict
            findings.append(Finding(_LINK_SEVERITY[code], code, reason, where))
    return findings


_LINK_SEVERITY: dict[str, Severity] = {
    "link-placeholder": "error",
    "link-relative": "error",
    "link-insecure": "warning",
}


def check_cta(facts: HtmlFacts) -> list[Finding]:
    """Exactly one primary call to action, marked with the ``mailer-cta`` class, with a link."""
    count = facts.key_blocks.get("mailer-cta", 0)
    if count == 0:
        message = "no primary call to action (an element with class mailer-cta)"
        return [error("cta-missing", message, "html")]
    if count > 1:
        message = f"{count} primary calls to action; ask for one thing (keep one mailer-cta)"
        return [error("cta-multiple", message, "html")]
    if not facts.cta_links:
        return [error("cta-missing", "the mailer-cta block holds no link", "html")]
    return []


def check_title(facts: HtmlFacts, subject: str) -> list[Finding]:
    """``<title>`` equals the subject (some clients and web views show it)."""
    title = " ".join((facts.title or "").split())
    if facts.title is None or not title:
        return [warning("title-mismatch", "the HTML has no <title>; set it to the subject", "html")]
    if title != " ".join(subject.split()):
        message = f"<title> {title!r} differs from the subject {subject!r}"
        return [warning("title-mismatch", message, "html <title>")]
    return []


def check_words(facts: HtmlFacts) -> list[Finding]:
    """Shorter is better: respect the reader's time (warning past 300 words)."""
    words = word_count(facts.text)
    if words > WORD_WARN:
        message = f"{words} words; shorter is better — aim for under {WORD_WARN}"
        return [warning("word-count", message, "html")]
    return [info("word-count", f"{words} words", "html")]


def _tokens(text: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(text)}


def check_parity(facts: HtmlFacts, text: str) -> list[Finding]:
    """The text part says what the HTML says, including the call-to-action link."""
    if not text.strip():
        return [error("text-missing", "no plain-text part", "text")]
    html_words = _tokens(facts.text)
    if html_words:
        covered = len(html_words & _tokens(text)) / len(html_words)
        if covered < PARITY_MIN:
            message = f"the text part carries only {covered:.0%} of the HTML's words"
            return [warning("text-parity", message, "text")]
    missing = [href for href in facts.cta_links if href and href not in text]
    if missing:
        message = "the call-to-action link is missing from the text part: " + missing[0]
        return [warning("text-parity", message, "text")]
    return []


def check_preheader_in_html(facts: HtmlFacts, preheader: str) -> list[Finding]:
    """The preheader is in the HTML (MJML's ``<mj-preview>``), or inboxes never show it."""
    wanted = " ".join(preheader.split())
    if not wanted:
        return []  # a missing preheader is reported by the preheader rule
    body = " ".join(" ".join(facts.hidden_parts + facts.text_parts).split())
    if wanted in body:
        return []
    message = (
        "the preheader is not in the HTML, so inboxes show the body's first text instead; "
        "add <mj-preview>{{ preheader }}</mj-preview> to the template's <mj-head>"
    )
    return [warning("preheader-not-in-html", message, "html")]


def check_unsubscribe_link(
    facts: HtmlFacts, unsubscribe_url: str | None, mailto: str | None = None
) -> list[Finding]:
    """A visible link to this campaign's own unsubscribe page (or its unsubscribe address).

    A link that only *says* "Unsubscribe" is not enough: one whose target is
    ``#`` or another site (a template's placeholder, a copy-paste from another
    tool) leaves readers who click it subscribed, and unsubscribing them is
    the law (CAN-SPAM, GDPR, China's Advertising Law art. 43).
    """
    targets = [t for t in (unsubscribe_url, f"mailto:{mailto}" if mailto else None) if t]
    labelled = [(href, text) for href, text in facts.links if _UNSUB_TEXT.search(f"{href} {text}")]
    if not targets:  # nothing configured to compare with: the link's words are all we have
        return [] if labelled else [_no_unsubscribe_link()]
    if any(_same_target(href, targets) for href, _ in facts.links):
        return []
    if labelled:
        href, text = labelled[0]
        label = " ".join(text.split()) or "unsubscribe"
        message = (
            f"the {label!r} link goes to {href or '(nothing)'!r}, "
            "not to this campaign's unsubscribe page, so readers who click it stay "
            'subscribed; use href="{{ unsubscribe_url }}"'
        )
        return [error("unsubscribe-not-yours", message, "html footer")]
    return [_no_unsubscribe_link()]


def _no_unsubscribe_link() -> Finding:
    message = 'no unsubscribe link in the HTML; add <a href="{{ unsubscribe_url }}">Unsubscribe</a>'
    return error("unsubscribe-missing", message, "html footer")


def _same_target(href: str, targets: list[str]) -> bool:
    """``href`` leads where one of ``targets`` does (UTM tags and fragments aside)."""
    if href.lower().startswith("mailto:"):
        address = href[7:].split("?")[0].strip().lower()
        return any(t.lower().startswith("mailto:") and t[7:].lower() == address for t in targets)
    return _bare_url(href) in {_bare_url(t) for t in targets}


def _bare_url(url: str) -> str:
    parts = urlsplit(url.strip())
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if not k.startswith("utm_")
    ]
    return urlunsplit(
        (parts.scheme.lower(), parts.netloc.lower(), parts.path, urlencode(query), "")
    )


def check_remote_resources(html: str) -> list[Finding]:
    """Warn about what opening the email fetches from other servers, besides images."""
    findings = []
    for item in remote_resources(html):
        if item.kind == "web font":
            message = (
                f"a web font from {item.host} is fetched each time the email is opened: that "
                "host learns who read it and when (and many clients block it); use a system "
                'font stack, or set web_fonts = "strip" in the campaign'
            )
        else:
            message = (
                f"a {item.kind} from {item.host} ({item.url[:80]}): email clients do not run "
                "or show it, and fetching it tells that host who opened the mail; remove it"
            )
        findings.append(warning("remote-resource", message, "html"))
    return findings


def check_postal_address(facts: HtmlFacts, address: str) -> list[Finding]:
    """The sender's postal address appears in the email (anti-spam laws ask for it)."""
    wanted = " ".join(address.split()).lower()
    if not wanted:
        message = "no postal address configured"
        return [error("postal-address-missing", message, "mailer.toml [footer] postal_address")]
    text = facts.text.lower()
    position = text.find(wanted)
    if position < 0:
        message = f"the postal address {address!r} is not in the email"
        return [error("postal-address-missing", message, "html footer")]
    if position < len(text) / 2:
        message = "the postal address sits in the first half of the email; put it in the footer"
        return [warning("postal-address-position", message, "html")]
    return []


def check_unsubscribe_key(unsubscribe_url: str | None) -> list[Finding]:
    """A web unsubscribe link must be signed with a secret key of the sender's own."""
    if not unsubscribe_url or not unsubscribe_url.startswith("https://") or has_real_key():
        return []
    message = (
        f"{KEY_ENV} is not set: unsubscribe links are signed with a public placeholder, so "
        "anyone could unsubscribe anyone and mailer serve will not accept them; "
        f'export {KEY_ENV}="$(openssl rand -hex 32)" and keep it'
    )
    return [warning("unsubscribe-key", message, "unsubscribe link")]


def check_headers(data: bytes) -> list[Finding]:
    """The built message: List-Unsubscribe (+ one-click) and an honest, complete From."""
    # Headers only: parsing the bodies too would cost five times as much.
    msg = BytesHeaderParser(policy=policy.default).parsebytes(data)
    findings: list[Finding] = []
    unsub = msg.get("List-Unsubscribe")
    if not unsub:
        message = "no List-Unsubscribe header; Gmail and Yahoo require it for bulk mail"
        findings.append(error("list-unsubscribe-missing", message, "headers"))
    elif "https://" in str(unsub) and not msg.get("List-Unsubscribe-Post"):
        message = "List-Unsubscribe has a web link but no List-Unsubscribe-Post (one-click)"
        findings.append(warning("list-unsubscribe-one-click", message, "headers"))
    findings += _sender_findings(str(msg.get("From") or ""))
    return findings


def _sender_findings(from_header: str) -> list[Finding]:
    addresses = getaddresses([from_header]) if from_header else []
    if not addresses or "@" not in addresses[0][1]:
        return [error("sender-missing", "the message has no valid From address", "headers From")]
    name, address = addresses[0]
    domain = address.rpartition("@")[2].lower()
    findings: list[Finding] = []
    if not name.strip():
        message = f"From has no display name ({address}); say who you are"
        findings.append(warning("sender-name-missing", message, "headers From"))
    if any(domain == h or domain.endswith("." + h) for h in PLACEHOLDER_HOSTS):
        findings.append(
            error("sender-placeholder", f"placeholder sender {address}", "headers From")
        )
    elif domain in FREEMAIL:
        message = f"sending as {address}: free-mail domains fail DMARC from a mailing service"
        findings.append(warning("sender-freemail", message, "headers From"))
    return findings


def check_claims(texts: Sequence[tuple[str, str]], *, chinese: bool = False) -> list[Finding]:
    """Absolute or exaggerated claims (最佳, 第一, 国家级, "100% guaranteed" …) in any part.

    In a Chinese campaign they are errors: China's Advertising Law (广告法, art. 9)
    forbids 最佳, 第一, 国家级 and their like in advertising, with fines from
    200,000 yuan. Elsewhere they are warnings: legal, but they cost trust.
    """
    findings = []
    for where, text in texts:
        found = claim_patterns(text)
        if not found:
            continue
        listed = ", ".join(repr(c) for c in found)
        if chinese:
            message = (
                f"absolute claims {listed}: China's Advertising Law (广告法 第九条) forbids "
                "them in advertising; say what is true and specific instead "
                "(send --force overrides, and the run log records it)"
            )
            findings.append(error("claims", message, where))
        else:
            message = f"absolute or exaggerated claims: {listed}"
            findings.append(warning("claims", message, where))
    return findings


_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def is_chinese(*texts: str) -> bool:
    """True when the texts (a campaign's subject, headline, offer) are written in Chinese."""
    return any(_HAN.search(text) for text in texts)


# Template filler left in: "Lorem ipsum", and bracketed tokens a template's author meant
# to be replaced ("[type_of_action]", "[Company Name]", "[Insert text here]").
_LOREM = re.compile(r"\blorem ipsum\b|\bdolor sit amet\b|\bconsectetur adipiscing\b", re.I)
_BRACKETED = re.compile(
    r"\[(?:[A-Za-z]+_[A-Za-z0-9_]+|(?:[A-Za-z]+ )*(?:name|company|address|link|url|date|"
    r"title|text|here|email|phone|city|product|price|image|logo|number|amount|code)"
    r"(?: [A-Za-z]+)*)\](?!\()",  # not a link in the text part: [text](url)
    re.I,
)
_FILL_IN = re.compile(r"\b(?:insert|add|type|enter) (?:your |the )?[a-z ]{0,20}\bhere\b", re.I)


def check_placeholders(facts: HtmlFacts, text: str) -> list[Finding]:
    """Filler text a template came with: an error (readers would get it as it is)."""
    found: dict[str, None] = {}
    for part in (facts.text, " ".join(facts.hidden_parts), text):
        for pattern in (_LOREM, _BRACKETED, _FILL_IN):
            for match in pattern.finditer(part):
                found.setdefault(match.group(0), None)
    if not found:
        return []
    listed = ", ".join(repr(f) for f in list(found)[:5])
    message = (
        f"placeholder text left in the email: {listed}; replace it with the campaign's "
        "words ({{ headline }}, {{ offer }}, {{ cta.text }}) or take it out"
    )
    return [error("placeholder", message, "html")]


def check_relative_images(facts: HtmlFacts) -> list[Finding]:
    """Images with a relative path: no mail client can load them (there is no base URL)."""
    relative = [
        str(img.get("src") or "")
        for img in facts.images
        if (verdict := classify_url(str(img.get("src") or ""))) and verdict[0] == "link-relative"
    ]
    if not relative:
        return []
    message = (
        f"{len(relative)} image(s) with a relative path ({', '.join(relative[:3])}): mail "
        "clients have no base URL, so readers see a broken image; use https:// addresses"
    )
    return [error("image-relative", message, "html <img>")]


def check_campaign_content(facts: HtmlFacts, texts: Sequence[str]) -> list[Finding]:
    """The template shows none of the campaign's content (headline, offer, call to action).

    A template from elsewhere renders its own demo words: the email would go
    out without the campaign's message.
    """
    if not any(t.strip() for t in texts):
        return []
    body = " ".join(facts.text.split()).lower()
    hrefs = " ".join(href for href, _t in facts.links)
    for wanted in texts:
        wanted = " ".join(wanted.split()).lower()
        if wanted and (wanted in body or wanted in hrefs.lower()):
            return []
    message = (
        "the template shows none of the campaign's content (headline, offer, call to action "
        "text or link): readers would get the template's own words; put {{ headline }}, "
        "{{ offer }} and {{ cta.url }} / {{ cta.text }} in it"
    )
    return [warning("content-unused", message, "html")]
