"""UTM tags on links: added at compile time to static links, per recipient to personal ones."""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from html import escape, unescape
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from markupsafe import Markup

from mailer.compose.protect import TOKEN, restore

HREF = re.compile(r'(<a\b[^>]*?\bhref=")([^"]*)(")', re.IGNORECASE)
UNTAGGED_SCHEMES = ("mailto:", "tel:", "sms:", "#")


def tag_links(html: str, utm: Mapping[str, str], spans: list[str]) -> str:
    """Add UTM parameters to every web link (not mailto:, tel:, or unsubscribe links).

    Static links are tagged now. A link that holds a Jinja token is only known
    per recipient, so it is wrapped in ``{% filter utm(...) %}`` to be tagged
    at render time.
    """
    if not utm:
        return html
    params = {f"utm_{key}": value for key, value in utm.items()}

    def tag(match: re.Match[str]) -> str:
        start, url, end = match.groups()
        raw = restore(url, spans)
        if untagged(raw):
            return match.group(0)
        if TOKEN.search(url):
            spans.append("{% filter utm(" + repr(params) + ") %}")
            spans.append("{% endfilter %}")
            opener, closer = len(spans) - 2, len(spans) - 1
            return f"{start}mlrtok{opener:05d}z{url}mlrtok{closer:05d}z{end}"
        return start + escape(add_utm(unescape(url), params)) + end

    return HREF.sub(tag, html)


TEXT_URL = re.compile(r"https?://[^\s<>()\[\]{}\"']+")


def untagged(url: str) -> bool:
    """Links left as they are by UTM tagging and click tracking: mailto:, tel:, sms:,
    anchors, and unsubscribe links."""
    lowered = url.lower()
    return lowered.startswith(UNTAGGED_SCHEMES) or "unsubscribe" in lowered


def tag_text_links(text: str, utm: Mapping[str, str]) -> str:
    """UTM-tag the literal web addresses of a plain-text template (not unsubscribe links)."""
    if not utm:
        return text
    params = {f"utm_{key}": value for key, value in utm.items()}
    return TEXT_URL.sub(
        lambda m: m.group(0) if untagged(m.group(0)) else add_utm(m.group(0), params), text
    )


def add_utm(url: str, params: Mapping[str, str]) -> str:
    """Add UTM parameters to a web URL, keeping its query string and any utm_ it already has."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return url
    present = {key for key, _ in parse_qsl(parts.query, keep_blank_values=True)}
    extra = urlencode([(k, v) for k, v in params.items() if k not in present])
    if not extra:
        return url
    # The existing query is kept byte for byte (re-encoding it could change its meaning).
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit(parts._replace(query=query))


@lru_cache(maxsize=4096)
def add_utm_cached(url: str, params: tuple[tuple[str, str], ...]) -> str:
    """``add_utm`` for hashable parameters, remembered (most links are the same for everyone)."""
    # Most personalised links are the same for everyone (product URLs): cache them.
    return add_utm(url, dict(params))


def utm_filter(value: Any, params: Mapping[str, str]) -> Any:
    """The ``utm`` Jinja filter: tags a link known only at render time."""
    # In HTML the filter body arrives escaped (Markup); unescape, tag, escape again.
    key = tuple(params.items())
    if isinstance(value, Markup):
        return Markup(escape(add_utm_cached(unescape(str(value)).strip(), key)))
    return add_utm_cached(str(value).strip(), key)
