"""Click tracking, off by default: each web link goes through ``mailer serve``'s ``/c/<token>``.

The token is signed and holds the recipient, the campaign, the A/B variant and
the link itself, so the redirect can only ever go to the campaign's own link
(no open redirect) and the server needs no lookup. Unsubscribe, ``mailto:`` and
``tel:`` links are never rewritten; a contact whose ``tracking`` field says
no ("no", "false", "off", "0") gets the links untouched. No open pixel is
added: image proxies and Apple Mail Privacy Protection make opens meaningless.
"""

from __future__ import annotations

import re
from dataclasses import replace
from html import unescape

from mailer.compose.links import HREF, TEXT_URL, untagged
from mailer.compose.render import Rendered
from mailer.core.recipient import Recipient
from mailer.core.tokens import make_link_token

_OPTED_OUT = {"no", "false", "off", "0", "n"}


def opted_out(recipient: Recipient) -> bool:
    """The contact asked not to be tracked (a ``tracking`` field saying no)."""
    value = recipient.fields.get("tracking")
    if isinstance(value, bool):
        return not value
    return str(value).strip().lower() in _OPTED_OUT if value is not None else False


def track_links(
    rendered: Rendered, base_url: str, recipient: Recipient, campaign: str, variant: str
) -> Rendered:
    """``rendered`` with its web links (HTML and text) pointing at ``base_url``/c/<token>."""
    cache: dict[str, str] = {}

    def tracked(url: str) -> str:
        if url == rendered.unsubscribe_url or untagged(url) or not url.startswith("http"):
            return url
        if url not in cache:
            token = make_link_token(recipient.email, campaign, variant, url)
            cache[url] = f"{base_url}/c/{token}"
        return cache[url]

    def in_html(match: re.Match[str]) -> str:
        start, url, end = match.groups()
        target = tracked(unescape(url))
        return match.group(0) if target == unescape(url) else start + target + end

    html = HREF.sub(in_html, rendered.html)
    text = TEXT_URL.sub(lambda m: tracked(m.group(0)), rendered.text)
    return replace(rendered, html=html, text=text)
