"""Accessibility (WCAG 2.1 AA where it applies to email): what the HTML alone tells.

* 1.1.1 images: ``alt`` on every image (``alt=""`` for decoration); a linked
  image is the link's only name, so its alt must say where the link goes; an
  alt that is a file name says nothing;
* 3.1.1 language: ``lang`` on ``<html>``, matching the language version, and
  ``dir="rtl"`` for right-to-left languages (screen readers pick their voice
  and reading order from them);
* 2.4.4 link purpose: link text that says where it goes, not "click here".

Contrast (1.4.3) and tap-target size need the laid-out page: ``access_browser``
measures them in the fold check's Chromium.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from mailer.checks.findings import Finding, warning

RTL = frozenset(("ar", "he", "fa", "ur", "yi", "ps", "sd", "ug", "dv"))
# Link texts that do not say where the link goes (compared lower-case, punctuation stripped).
VAGUE_LINKS = frozenset(
    """click here|here|click|this|link|this link|more|read more|learn more|see more|
    go|continue|details|click this link|tap here|点击这里|点击此处|点这里|点此|这里|此处|
    点击|更多|了解更多|查看更多|詳情|点击查看|按此|點擊這裡|點此|這裡|更多資訊|こちら|
    ここをクリック|여기|여기를 클릭""".replace("\n", "")
    .replace("    ", "")
    .split("|")
)
_FILE_NAME = re.compile(r"^[\w-]+\.(png|jpe?g|gif|webp|svg)$|^(img|image|dsc|photo)[_-]?\d*$", re.I)
_PUNCTUATION = re.compile(r"[\s\W_»›→>]+$|^[\s\W_«‹←<]+")


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.html_attrs: dict[str, str | None] | None = None
        self.links: list[dict[str, object]] = []  # href, text, images' alts, line
        self.images: list[tuple[dict[str, str | None], int]] = []
        self.link: dict[str, object] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        line = self.getpos()[0]
        if tag == "html" and self.html_attrs is None:
            self.html_attrs = values
        elif tag == "a" and values.get("href"):
            label = values.get("aria-label") or values.get("title") or ""
            self.link = {
                "href": values["href"],
                "text": [],
                "alts": [],
                "line": line,
                "label": label,
            }
            self.links.append(self.link)
        elif tag == "img":
            self.images.append((values, line))
            if self.link is not None:
                self.link["alts"].append(values.get("alt"))  # type: ignore[attr-defined]

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self.link = None

    def handle_data(self, data: str) -> None:
        if self.link is not None:
            self.link["text"].append(data)  # type: ignore[attr-defined]


def check_access(html: str, language: str | None) -> list[Finding]:
    """The static accessibility rules on one rendered email of language ``language``."""
    reader = _Reader()
    reader.feed(html)
    reader.close()
    return [
        *_language(reader.html_attrs, language),
        *_images(reader),
        *_link_texts(reader),
    ]


def _language(attrs: dict[str, str | None] | None, language: str | None) -> list[Finding]:
    attrs = attrs or {}
    lang = (attrs.get("lang") or "").strip()
    where = "html <html>"
    if not lang:
        message = (
            "the <html> element has no lang attribute: screen readers guess the language "
            'and may read Chinese with an English voice; set <mjml lang="…">'
        )
        return [warning("a11y-lang", message, where)]
    findings = []
    primary = lang.split("-")[0].lower()
    wanted = (language or "").split("-")[0].lower()
    if wanted and primary != wanted:
        message = (
            f'this language version is {language!r} but <html lang="{lang}">: screen '
            "readers read it with the wrong voice; set lang per version "
            "(for example lang=\"{{ contact.locale | default('en') }}\")"
        )
        findings.append(warning("a11y-lang", message, where))
    direction = (attrs.get("dir") or "").lower()
    if primary in RTL and direction != "rtl":
        message = f'lang="{lang}" is written right to left but <html> has dir="{direction}"'
        findings.append(warning("a11y-dir", message + '; set dir="rtl"', where))
    return findings


def _images(reader: _Reader) -> list[Finding]:
    findings = []
    for values, _line in reader.images:
        alt = values.get("alt")
        src = str(values.get("src") or "?")[:80]
        if alt is not None and _FILE_NAME.match(alt.strip()):
            message = f"the image {src} has alt={alt!r}, a file name: describe what it shows"
            findings.append(warning("a11y-alt", message, "html <img>"))
    nameless = []
    for link in reader.links:
        text = " ".join("".join(link["text"]).split())  # type: ignore[arg-type]
        alts = [a for a in link["alts"] if a and a.strip()]  # type: ignore[attr-defined]
        if link["alts"] and not text and not alts and not link.get("label"):
            nameless.append(str(link["href"]).split("?")[0][:60])
    if nameless:
        nameless = list(dict.fromkeys(nameless))
        shown = ", ".join(nameless[:3]) + (
            f" and {len(nameless) - 3} more" if len(nameless) > 3 else ""
        )
        message = (
            f"linked images without alt text (to {shown}), so the link has no "
            "name: screen readers read out the address; give each image an alt that says "
            "where the link goes"
        )
        findings.append(warning("a11y-link-name", message, "html <a>"))
    return findings


def _link_texts(reader: _Reader) -> list[Finding]:
    """Vague link texts, unless another link to the same place names it (a card's title
    link and its "Read more": the purpose is clear from that context, WCAG 2.4.4)."""
    vague: dict[str, None] = {}
    named: set[str] = set()
    candidates = []
    for link in reader.links:
        text = " ".join("".join(link["text"]).split())  # type: ignore[arg-type]
        if link.get("label") or _PUNCTUATION.sub("", text).lower() not in VAGUE_LINKS:
            named.add(str(link["href"]))
        else:
            candidates.append((str(link["href"]), text))
    for href, text in candidates:
        if href not in named:
            vague.setdefault(text, None)
    if not vague:
        return []
    listed = ", ".join(repr(t) for t in vague)
    message = (
        f"link text {listed} does not say where the link goes (screen-reader users "
        "jump from link to link): name the destination, e.g. 'See the new teas' rather "
        "than 'click here'"
    )
    return [warning("a11y-link-text", message, "html <a>")]
