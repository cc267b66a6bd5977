"""What HTML and CSS features a document uses: tokens (kind, name, value) with where they are.

One scanner reads both the rendered email and the template it came from. On
an MJML template every attribute of an ``mj-*`` tag counts as a CSS
declaration (``border-radius="6px"`` becomes ``border-radius: 6px``) and
``<mj-style>`` as a style sheet, so a feature in the rendered HTML can be
traced to the template line that asked for it; a feature the template never
asked for was written by MJML on purpose (its Outlook fallbacks, its column
classes) and is not the author's to fix.

HTML comments are skipped, so Outlook's conditional blocks (``<!--[if mso]>``)
are never read; what sits between ``<!--[if !mso]><!-->`` and
``<!--<![endif]-->`` is marked as hidden from Outlook for Windows.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser

Token = tuple[str, str, str]  # (kind, name, value) as in compat_features.Probe

_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)
_JINJA_COMMENT = re.compile(r"\{#.*?#\}", re.DOTALL)
_FUNCTION = re.compile(r"(?<![\w-])([a-z][a-z-]*)\(", re.IGNORECASE)
_UNIT = re.compile(r"(?<![\w.#-])\d*\.?\d+(rem|vw|vh|vmin|vmax|ch|ex|cm|mm|in|pt|pc)\b")
_WORD = re.compile(r"[a-z][a-z-]*", re.IGNORECASE)
_MEDIA_FEATURE = re.compile(r"\(\s*([a-z-]+)", re.IGNORECASE)
_PSEUDO = re.compile(r"(::?[a-z][a-z-]*)", re.IGNORECASE)
_STRINGS = re.compile(r"\"[^\"]*\"|'[^']*'|\([^)]*\)")
_IMAGE_EXT = re.compile(r"\.([a-z0-9]{3,4})(?:[?#]|$)", re.IGNORECASE)
# Attributes of mj-* tags that are not CSS (they are MJML's own or HTML's).
_MJ_NOT_CSS = frozenset(
    [
        "href",
        "src",
        "alt",
        "title",
        "css-class",
        "mj-class",
        "rel",
        "target",
        "name",
        "align",
        "vertical-align",
        "inline",
        "lang",
        "dir",
        "owa",
        "path",
        "mode",
        "icon-position",
    ]
)
_CSS_HOLDERS = ("style", "mj-style")
# MJML draws these sections' background images in VML for Outlook (its v:rect/v:fill),
# so their background-* attributes are MJML's to render everywhere, not the author's.
_MJ_VML_BACKGROUND = frozenset(("mj-section", "mj-wrapper", "mj-hero"))


@dataclass
class Occurrence:
    """Where a token was first seen, and whether every occurrence hides from Outlook."""

    line: int
    context: str
    only_not_mso: bool = True


@dataclass
class Scan:
    """Every token a document uses, first occurrence each."""

    tokens: dict[Token, Occurrence] = field(default_factory=dict)

    def add(self, token: Token, line: int, context: str, not_mso: bool) -> None:
        """Record one occurrence of ``token`` at ``line`` (1-based) in ``context``."""
        seen = self.tokens.get(token)
        if seen is None:
            self.tokens[token] = Occurrence(line, context, not_mso)
        elif not not_mso:
            seen.only_not_mso = False


def declaration_tokens(text: str) -> Iterator[tuple[Token, int]]:
    """Tokens in a list of declarations (``a: b; c: d``), with each one's character offset."""
    offset = 0
    for part in text.split(";"):
        name, colon, value = part.partition(":")
        prop = name.strip().lower()
        if colon and prop:
            yield from ((t, offset) for t in value_tokens(prop, value))
        offset += len(part) + 1


def value_tokens(prop: str, value: str) -> Iterator[Token]:
    """The property, its keywords, functions and units, ``!important``, custom properties."""
    if prop.startswith("--"):
        yield ("variable", "var", "")
        return
    yield ("property", prop, "")
    lowered = value.lower()
    if "!important" in lowered.replace(" ", ""):
        yield ("important", "important", "")
    bare = _STRINGS.sub(" ", lowered)
    for word in _WORD.findall(bare):
        yield ("value", prop, word)
    for function in _FUNCTION.findall(lowered):
        yield ("variable", "var", "") if function == "var" else ("function", function, "")
    for unit in _UNIT.findall(lowered):
        yield ("unit", unit, "")


def stylesheet_tokens(css: str) -> Iterator[tuple[Token, int, str]]:
    """Tokens in a style sheet: at-rules, media features, selectors and declarations.

    Yields ``(token, character offset, context)``; the context is the rule's
    selector or at-rule prelude. Nesting (a rule inside a rule) is a token too.
    """
    css = _COMMENT.sub(lambda m: " " * len(m.group(0)), css)
    stack: list[tuple[str, str]] = []  # ("rules" or "decls", the selector or prelude)
    start = 0
    for match in re.finditer(r"[{};]", css):
        chunk, at = css[start : match.start()], start
        text = chunk.strip()
        lead = at + len(chunk) - len(chunk.lstrip())
        mark = match.group(0)
        if mark == "{":
            if text.startswith("@"):
                name = re.match(r"@([\w-]+)", text)
                keyword = name.group(1).lower() if name else ""
                yield ("at-rule", keyword, ""), lead, text
                if keyword == "media":
                    for feature in _MEDIA_FEATURE.findall(text):
                        yield ("media", feature.lower(), ""), lead, text
                holds = keyword in ("media", "supports", "document", "layer", "container")
                stack.append(("rules" if holds else "decls", text))
            else:
                if stack and stack[-1][0] == "decls":
                    yield ("combinator", "&", ""), lead, text
                yield from ((t, lead, text) for t in selector_tokens(text))
                stack.append(("decls", text))
        elif mark == ";" and text.startswith("@"):
            name = re.match(r"@([\w-]+)", text)
            yield ("at-rule", name.group(1).lower() if name else "", ""), lead, text
        elif text and stack and stack[-1][0] == "decls":
            selector = stack[-1][1]
            yield from ((t, lead + o, selector) for t, o in declaration_tokens(text))
        if mark == "}" and stack:
            stack.pop()
        start = match.end()


def selector_tokens(selector: str) -> Iterator[Token]:
    """Pseudo-classes and -elements, attribute selectors and combinators in a selector."""
    for pseudo in _PSEUDO.findall(re.sub(r"\[[^\]]*\]", "", selector)):
        yield ("selector", pseudo.lower(), "")
    if "[" in selector:
        yield ("combinator", "[", "")
    bare = re.sub(r"\[[^\]]*\]|\([^)]*\)", "", selector)
    for mark in (">", "+", "~", "*"):
        if mark in bare:
            yield ("combinator", mark, "")


class _Scanner(HTMLParser):
    def __init__(self, mjml: bool) -> None:
        super().__init__(convert_charrefs=True)
        self.scan = Scan()
        self.mjml = mjml
        self.not_mso = False
        self.in_css = 0
        self.context = ""

    def _add(self, token: Token, line: int, context: str) -> None:
        self.scan.add(token, line, context, self.not_mso)

    def handle_comment(self, data: str) -> None:
        if re.match(r"\s*\[if\s+!mso", data):
            self.not_mso = True
        elif "<![endif]" in data:
            self.not_mso = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        line = self.getpos()[0]
        described = _describe(tag, attrs)
        self._add(("element", tag, ""), line, described)
        values = {k: v or "" for k, v in attrs}
        for name, value in values.items():
            self._add(("attribute", name, ""), line, described)
            if name == "style":
                for token, offset in declaration_tokens(value):
                    self._add(token, line + value.count("\n", 0, offset), described)
            elif tag in _MJ_VML_BACKGROUND and name.startswith("background"):
                continue
            elif self.mjml and tag.startswith("mj-") and name not in _MJ_NOT_CSS:
                for token in value_tokens(name, value):
                    self._add(token, line, described)
        self._element_attribute(tag, values, line, described)
        if tag in _CSS_HOLDERS:
            self.in_css += 1
            self.context = described

    def _element_attribute(self, tag: str, values: dict[str, str], line: int, what: str) -> None:
        kind = values.get("type", "").lower()
        if tag in ("input", "button") and kind:
            self._add(("element-attribute", tag, kind), line, what)
        if tag == "meta" and values.get("name", "").lower() == "color-scheme":
            self._add(("element-attribute", "meta", "color-scheme"), line, what)
        source = values.get("src", "") if tag in ("img", "mj-image") else ""
        if source.startswith("data:image"):
            self._add(("data-image", "base64", ""), line, what)
        elif ext := _IMAGE_EXT.search(source):
            self._add(("image", ext.group(1).lower(), ""), line, what)

    def handle_endtag(self, tag: str) -> None:
        if tag in _CSS_HOLDERS and self.in_css:
            self.in_css -= 1

    def handle_data(self, data: str) -> None:
        if not self.in_css:
            return
        line = self.getpos()[0]
        for token, offset, context in stylesheet_tokens(data):
            self._add(token, line + data.count("\n", 0, offset), context[:80])


def _describe(tag: str, attrs: list[tuple[str, str | None]]) -> str:
    """``<span class="promo-code">``: the tag with its class (or id), for a finding."""
    shown = [f'{k}="{v}"' for k, v in attrs if k in ("class", "css-class", "id") and v]
    return "<" + " ".join([tag, *shown[:1]]) + ">"


def scan_html(html: str, *, mjml: bool = False) -> Scan:
    """The features ``html`` uses (``mjml``: read ``mj-*`` attributes as CSS, for a template).

    Jinja comments are blanked first (keeping their line breaks): the markup
    they talk about is not in the email.
    """
    html = _JINJA_COMMENT.sub(lambda m: "\n" * m.group(0).count("\n"), html)
    scanner = _Scanner(mjml)
    scanner.feed(html)
    scanner.close()
    return scanner.scan
