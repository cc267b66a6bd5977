"""Jinja spans made opaque while MJML and the CSS inliner work on a template.

``protect`` swaps every ``{{ }}``/``{% %}``/``{# #}`` span for a token
(``mlrtok00012z``) that HTML tools pass through untouched, ``restore`` puts
the spans back. An HTML5 serialiser would otherwise turn ``{% if a > 1 %}``
into ``{% if a &gt; 1 %}``; ``check_order`` catches the one thing tokens
cannot prevent: a parser moving a statement away from where it was written.
"""

from __future__ import annotations

import itertools
import re

from mailer.core.errors import TemplateError

_JINJA_SPAN = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)
TOKEN = re.compile(r"(?:<!--)?mlrtok(\d{5})z(?:-->)?")
COMMENT_TOKEN = re.compile(r"<!--(mlrtok\d{5}z)-->")
_TOKEN_NUMBER = re.compile(r"mlrtok(\d{5})z")


def protect(source: str) -> tuple[str, list[str]]:
    """Replace every Jinja span with an opaque token; return the text and the spans.

    A statement (``{% ... %}``) outside a tag becomes an HTML comment token.
    MJML turns a column's children into table rows, and the HTML5 parser in
    the CSS inliner moves stray *text* between rows out in front of the table
    ("foster parenting"), which would make ``{% if %}...{% endif %}`` wrap
    nothing. Comments are left where they are.
    """
    spans: list[str] = []

    def token(match: re.Match[str]) -> str:
        spans.append(match.group(0))
        name = f"mlrtok{len(spans) - 1:05d}z"
        if match.group(0).startswith("{%") and not _inside_tag(source, match.start()):
            return f"<!--{name}-->"
        return name

    return _JINJA_SPAN.sub(token, source), spans


def source_offset(source: str, position: int) -> int:
    """Where in ``source`` a character offset of its protected text came from.

    Tokens are shorter or longer than the Jinja spans they replace; an error
    reported at an offset of the protected text (MJML's parser) is mapped
    back, so the message can give the line of the template as written.
    """
    shift = 0
    for count, match in enumerate(_JINJA_SPAN.finditer(source)):
        start = match.start() + shift
        if start >= position:
            break
        is_comment = match.group(0).startswith("{%") and not _inside_tag(source, match.start())
        token = len(f"mlrtok{count:05d}z") + (7 if is_comment else 0)  # "<!--" + "-->"
        if position < start + token:  # inside the token: the span's start
            return match.start()
        shift += token - len(match.group(0))
    return position - shift


def _inside_tag(source: str, position: int) -> bool:
    """True when ``position`` is between a tag's ``<`` and ``>`` (i.e. in an attribute)."""
    return source.rfind("<", 0, position) > source.rfind(">", 0, position)


def restore(text: str, spans: list[str]) -> str:
    """Put the Jinja spans back where ``protect`` took them out."""
    return TOKEN.sub(lambda m: spans[int(m.group(1))], text)


def check_order(text: str, spans: list[str], where: str) -> None:
    """Refuse a compiled template whose Jinja statements were moved out of source order.

    Only statements matter: MJML legitimately reorders attributes and head
    items, which moves ``{{ }}`` expressions but never changes their meaning.
    """
    numbers = [int(n) for n in _TOKEN_NUMBER.findall(text) if spans[int(n)].startswith("{%")]
    for before, after in itertools.pairwise(numbers):
        if after < before:
            raise TemplateError(
                "a Jinja block was moved by the HTML parser (it sits where HTML allows no text)",
                where=where,
                hint="put {% if %}/{% for %} around whole <mj-section>s or inside <mj-text>",
            )
