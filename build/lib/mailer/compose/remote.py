"""Things an email fetches from other servers when it is opened, other than its images.

A web font (``<mj-font>``, ``@import url(https://fonts.googleapis.com/...)``)
is fetched from the font host on every open: the host learns who read the
mail, when and where, and many clients block it anyway. Scripts, frames and
embedded media do not run in email at all. Images are the sender's own choice
and the fold and size checks deal with them; everything else is listed here,
and web fonts can be taken out (``web_fonts = "strip"`` in a campaign).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

_URL = r"""(?:https?:)?//[^\s"')>]+"""
_PATTERNS = (
    ("web font", re.compile(rf"""@import\s+(?:url\(\s*)?["']?({_URL})""", re.IGNORECASE)),
    ("web font", re.compile(rf"""<link\b[^>]*\bhref=["']({_URL})["'][^>]*>""", re.IGNORECASE)),
    (
        "web font",
        re.compile(rf"""@font-face\s*\{{[^}}]*?url\(\s*["']?({_URL})""", re.IGNORECASE),
    ),
    (
        "script",
        re.compile(rf"""<script\b[^>]*\bsrc=["']({_URL})""", re.IGNORECASE),
    ),
    (
        "embedded page or media",
        re.compile(
            rf"""<(?:iframe|embed|video|audio|source|object)\b[^>]*\b(?:src|data)=["']({_URL})""",
            re.IGNORECASE,
        ),
    ),
)

_IMPORT_RULE = re.compile(rf"""@import\s+(?:url\(\s*)?["']?{_URL}["']?\s*\)?[^;]*;?""", re.I)
_LINK_TAG = re.compile(rf"""<link\b[^>]*\bhref=["']{_URL}["'][^>]*>\s*""", re.IGNORECASE)
_FONT_FACE = re.compile(r"@font-face\s*\{[^}]*\}", re.IGNORECASE)


@dataclass(frozen=True)
class Remote:
    """One resource fetched from another server when the email is opened."""

    kind: str  # "web font", "script", "embedded page or media"
    url: str

    @property
    def host(self) -> str:
        """The server it is fetched from."""
        return urlsplit(self.url if "://" in self.url else "https:" + self.url).netloc


def remote_resources(html: str) -> list[Remote]:
    """Every non-image resource ``html`` fetches from another server, in order, once each."""
    found: dict[str, Remote] = {}
    for kind, pattern in _PATTERNS:
        for match in pattern.finditer(html):
            found.setdefault(match.group(1), Remote(kind, match.group(1)))
    return list(found.values())


def strip_web_fonts(html: str) -> str:
    """``html`` without web-font imports: ``@import`` rules, ``<link>`` tags, ``@font-face``.

    The text falls back to the next font of its ``font-family`` list (MJML's
    default ends in Helvetica, Arial, sans-serif).
    """
    return _FONT_FACE.sub("", _IMPORT_RULE.sub("", _LINK_TAG.sub("", html)))
