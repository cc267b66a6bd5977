"""Compile a campaign once, then render it per recipient.

Compiling (once per campaign):
    template source ─► protect Jinja spans as opaque tokens ─► MJML ─► inline CSS
    ─► tag links with UTM parameters ─► restore the Jinja spans ─► Jinja templates
The tokens are why MJML and the CSS inliner never see (and never mangle) Jinja:
an HTML5 serialiser would turn ``{% if a > 1 %}`` into ``{% if a &gt; 1 %}``.

Rendering (per recipient) is then only Jinja: subject, preheader, key content,
HTML and text, all from templates compiled once. Templates run in Jinja's
sandbox with ``StrictUndefined``; HTML output autoescapes contact data.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from html import escape, unescape
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup

from mailer.core.campaign import Campaign
from mailer.core.errors import TemplateError
from mailer.core.recipient import Recipient

_JINJA_SPAN = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)
_TOKEN = re.compile(r"(?:<!--)?mlrtok(\d{5})z(?:-->)?")
_COMMENT_TOKEN = re.compile(r"<!--(mlrtok\d{5}z)-->")
_TOKEN_NUMBER = re.compile(r"mlrtok(\d{5})z")
_HREF = re.compile(r'(<a\b[^>]*?\bhref=")([^"]*)(")', re.IGNORECASE)
# MJML renders <mj-preview> as the first hidden div of the body; the text part skips it.
_PREVIEW_DIV = re.compile(r'<div style="display:\s*none;[^"]*">.*?</div>', re.DOTALL)
UNTAGGED_SCHEMES = ("mailto:", "tel:", "sms:", "#")


@dataclass(frozen=True)
class Rendered:
    """One recipient's email: what `send` sends and `preview` shows."""

    subject: str
    preheader: str
    html: str
    text: str
    variant: int
    unsubscribe_url: str | None


@dataclass(frozen=True)
class CompiledCampaign:
    """Jinja templates for every part of a campaign, compiled once."""

    campaign: Campaign
    subjects: tuple[jinja2.Template, ...]
    preheader: jinja2.Template
    content: Mapping[str, jinja2.Template]
    html: jinja2.Template
    text: jinja2.Template
    unsubscribe: jinja2.Template | None
    sources: Mapping[str, str]  # part name -> Jinja source, for the variables check
    base_context: Mapping[str, Any]

    def tag_url(self, url: str) -> str:
        """The URL with this campaign's UTM parameters."""
        utm = self.campaign.utm
        if not utm:
            return url
        return _add_utm_cached(url, tuple((f"utm_{k}", v) for k, v in utm.items()))


def _finalize_none(value: Any) -> Any:
    return "" if value is None else value


@lru_cache(maxsize=2)
def environment(autoescape: bool) -> jinja2.Environment:
    """The sandboxed Jinja environment for HTML (autoescaping) or text parts."""
    env = ImmutableSandboxedEnvironment(
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        finalize=_finalize_none,
    )
    env.filters["utm"] = _utm_filter
    return env


class ConstantTemplate:
    """A part with no Jinja syntax: rendering it is returning the text."""

    def __init__(self, text: str):
        self.text = text

    def render(self, *args: Any, **kwargs: Any) -> str:
        """Return the text unchanged (same signature as ``jinja2.Template.render``)."""
        return self.text


def _compile(source: str, name: str, *, html: bool) -> jinja2.Template:
    if not html and "{" not in source:
        return ConstantTemplate(source)  # type: ignore[return-value]
    try:
        return environment(html).from_string(source)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(
            f"Jinja syntax error: {exc.message}", where=f"{name}:{exc.lineno}"
        ) from None


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


def _inside_tag(source: str, position: int) -> bool:
    """True when ``position`` is between a tag's ``<`` and ``>`` (i.e. in an attribute)."""
    return source.rfind("<", 0, position) > source.rfind(">", 0, position)


def restore(text: str, spans: list[str]) -> str:
    """Put the Jinja spans back where ``protect`` took them out."""
    return _TOKEN.sub(lambda m: spans[int(m.group(1))], text)


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


def mjml_to_html(source: str, where: str) -> str:
    """Compile MJML to HTML with no web fonts (privacy: no request to a font host)."""
    import mjml

    try:
        return str(mjml.mjml2html(source, fonts={}))
    except Exception as exc:  # mjml raises plain ValueError/RuntimeError with the parser's words
        raise TemplateError(
            f"MJML could not compile the template: {exc}",
            where=where,
            hint="check that tags are closed and that Jinja {% %} blocks between sections "
            "are wrapped in <mj-raw>",
        ) from None


def inline_css(html: str) -> str:
    """Move <style> rules into style attributes, keeping @media rules for phones."""
    import css_inline

    inliner = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)
    return str(inliner.inline(html))


_TABLE_CLOSE = re.compile(r"(</td>|</tr>|</table>)(?!\n)", re.IGNORECASE)


def break_lines(html: str) -> str:
    """Start a new line after closing table tags.

    MJML writes the body as a few very long lines. Whitespace between table
    cells, rows and tables does not render, so breaking there is invisible,
    keeps decoded lines far below the 998-character limit, and lets the MIME
    encoder reuse the encoding of lines that are the same for every recipient.
    (Not after ``</div>``: MJML columns are inline-blocks, and a newline
    between them would render as a gap.)
    """
    return _TABLE_CLOSE.sub(r"\1\n", html)


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
        if raw.lower().startswith(UNTAGGED_SCHEMES) or "unsubscribe" in raw.lower():
            return match.group(0)
        if _TOKEN.search(url):
            spans.append("{% filter utm(" + repr(params) + ") %}")
            spans.append("{% endfilter %}")
            opener, closer = len(spans) - 2, len(spans) - 1
            return f"{start}mlrtok{opener:05d}z{url}mlrtok{closer:05d}z{end}"
        return start + escape(add_utm(unescape(url), params)) + end

    return _HREF.sub(tag, html)


_TEXT_URL = re.compile(r"https?://[^\s<>()\[\]{}\"']+")


def tag_text_links(text: str, utm: Mapping[str, str]) -> str:
    """UTM-tag the literal web addresses of a plain-text template (not unsubscribe links)."""
    if not utm:
        return text
    params = {f"utm_{key}": value for key, value in utm.items()}
    return _TEXT_URL.sub(
        lambda m: m.group(0) if "unsubscribe" in m.group(0) else add_utm(m.group(0), params), text
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
def _add_utm_cached(url: str, params: tuple[tuple[str, str], ...]) -> str:
    # Most personalised links are the same for everyone (product URLs): cache them.
    return add_utm(url, dict(params))


def _utm_filter(value: Any, params: Mapping[str, str]) -> Any:
    # In HTML the filter body arrives escaped (Markup); unescape, tag, escape again.
    key = tuple(params.items())
    if isinstance(value, Markup):
        return Markup(escape(_add_utm_cached(unescape(str(value)).strip(), key)))
    return _add_utm_cached(str(value).strip(), key)


def html_to_text(html: str) -> str:
    """Plain-text alternative from HTML, keeping link targets visible."""
    from inscriptis import get_text
    from inscriptis.css_profiles import CSS_PROFILES
    from inscriptis.model.config import ParserConfig

    body = _PREVIEW_DIV.sub("", html, count=1)
    config = ParserConfig(css=CSS_PROFILES["strict"], display_links=True)
    text = get_text(body, config)
    # Centred cells come out padded with spaces; a linked image has no text: show its URL.
    text = _EMPTY_LINK.sub(r"\1", text)
    lines = [line.strip() for line in text.splitlines()]
    return tidy_text("\n".join(lines))


_EMPTY_LINK = re.compile(r"\[\s*\]\(([^)\s]*)\)")
_BLANK_RUNS = re.compile(r"\n[ \t]*(?:\n[ \t]*){2,}")


def tidy_text(text: str) -> str:
    """At most one blank line in a row, no blank lines at either end, one final newline."""
    return _BLANK_RUNS.sub("\n\n", text).strip() + "\n"


def _read_template(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise TemplateError("the template is not UTF-8 text", where=str(path)) from None
    except OSError as exc:
        raise TemplateError(f"cannot read the template: {exc.strerror}", where=str(path)) from None


def compile_campaign(campaign: Campaign) -> CompiledCampaign:
    """Compile every part of the campaign once: subjects, preheader, content, HTML, text."""
    template_path = campaign.template
    source = _read_template(template_path)
    protected, spans = protect(source)
    where = str(template_path)
    html = mjml_to_html(protected, where) if template_path.suffix == ".mjml" else protected
    html = break_lines(inline_css(html))
    check_order(html, spans, where)
    html = tag_links(html, campaign.utm, spans)
    html_source = restore(html, spans)
    text_path = template_path.with_suffix(".txt")
    if text_path.is_file():
        text_source = tag_text_links(_read_template(text_path), campaign.utm)
        text_name = str(text_path)
    else:
        # The text converter drops comments: turn statement tokens back into text first.
        bare = _COMMENT_TOKEN.sub(r"\1", html)
        text_source, text_name = restore(html_to_text(bare), spans), f"{where} (text part)"
    content = {
        "headline": campaign.content.headline,
        "offer": campaign.content.offer,
        "cta_text": campaign.content.cta_text,
        "cta_url": campaign.content.cta_url,
    }
    unsubscribe = campaign.settings.unsubscribe_url
    sources = {
        **{f"subject #{i + 1}": s for i, s in enumerate(campaign.subjects)},
        "preheader": campaign.preheader,
        **content,
        "html": html_source,
        "text": text_source,
    }
    return CompiledCampaign(
        campaign=campaign,
        subjects=tuple(
            _compile(s, campaign.where("subject"), html=False) for s in campaign.subjects
        ),
        preheader=_compile(campaign.preheader, campaign.where("preheader"), html=False),
        content={
            k: _compile(v, campaign.where("content", k), html=False) for k, v in content.items()
        },
        html=_compile(html_source, where, html=True),
        text=_compile(text_source, text_name, html=False),
        unsubscribe=_compile(unsubscribe, "mailer.toml [unsubscribe] url", html=False)
        if unsubscribe
        else None,
        sources=sources,
        base_context=_base_context(campaign),
    )


def _base_context(campaign: Campaign) -> dict[str, Any]:
    settings = campaign.settings
    hero = (
        {"url": campaign.content.hero_image, "alt": campaign.content.hero_alt}
        if campaign.content.hero_image
        else None
    )
    return {
        "campaign": {"id": campaign.id},
        "sender": {
            "name": campaign.sender.name,
            "email": campaign.sender.email,
            "reply_to": campaign.sender.reply_to,
        },
        "postal_address": settings.postal_address,
        "unsubscribe_mailto": settings.unsubscribe_mailto,
        "hero": hero,
        "data": campaign.data,
    }


def assign_variant(campaign_id: str, email: str, count: int) -> int:
    """Deterministic A/B assignment: the same person always gets the same variant."""
    if count == 1:
        return 0
    digest = hashlib.sha256(f"{campaign_id}\0{email.lower()}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % count


def variant_label(index: int) -> str:
    """A/B variant letters: 0 -> "A", 1 -> "B", ..."""
    return chr(ord("A") + index)


def unsubscribe_token(campaign_id: str, email: str) -> str:
    """A per-recipient token for unsubscribe links.

    Keyed with ``MAILER_UNSUBSCRIBE_KEY`` when set, so tokens cannot be forged;
    the key lives in the environment, never in a file.
    """
    key = os.environ.get("MAILER_UNSUBSCRIBE_KEY", "mailer-unkeyed").encode()
    message = f"{campaign_id}\0{email.lower()}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:32]


def contact_view(recipient: Recipient) -> dict[str, Any]:
    """What templates see as ``contact``: the fields, with None treated as missing."""
    view = {k: v for k, v in recipient.fields.items() if v is not None}
    view.setdefault("email", recipient.email)
    view.setdefault("name", recipient.name)
    return view


# Characters a URL may carry as they are; anything else (spaces, CR/LF, <, >, ", non-ASCII
# from contact data) is percent-encoded, so the link cannot break out of a header or attribute.
_URL_SAFE = "!#$%&'()*+,-./:;=?@[]_~"


def _header_context(
    compiled: CompiledCampaign, recipient: Recipient, render: _Render, variant: int | None = None
) -> dict[str, Any]:
    """What subject templates see: everything but the rendered content."""
    campaign = compiled.campaign
    if variant is None:
        variant = assign_variant(campaign.id, recipient.email, len(compiled.subjects))
    context: dict[str, Any] = {
        **compiled.base_context,
        "contact": contact_view(recipient),
        "token": unsubscribe_token(campaign.id, recipient.email),
        "variant": variant,
    }
    url = (
        render(compiled.unsubscribe, context, "the unsubscribe URL")
        if compiled.unsubscribe
        else None
    )
    context["unsubscribe_url"] = quote(url.strip(), safe=_URL_SAFE) if url else None
    return context


def render_subject(compiled: CompiledCampaign, recipient: Recipient) -> str:
    """This recipient's subject (their A/B variant), for checks made before sending."""
    render = _guarded(recipient)
    context = _header_context(compiled, recipient, render)
    return render(compiled.subjects[context["variant"]], context, "the subject").strip()


def render_for(
    compiled: CompiledCampaign, recipient: Recipient, *, variant: int | None = None
) -> Rendered:
    """Render every part of the email for one recipient.

    ``variant`` overrides the recipient's A/B assignment (the preview's "what
    if they got subject B"); by default it is the one ``send`` uses.
    """
    render = _guarded(recipient)
    context = _header_context(compiled, recipient, render, variant)
    variant = context["variant"]
    subject = render(compiled.subjects[variant], context, "the subject").strip()
    preheader = render(compiled.preheader, context, "the preheader").strip()
    content = {k: render(t, context, f"content.{k}").strip() for k, t in compiled.content.items()}
    context.update(
        subject=subject,
        preheader=preheader,
        headline=content["headline"],
        offer=content["offer"],
        # Tagged here too, so a .txt template's {{ cta.url }} carries the UTM tags
        # (tagging is idempotent: the HTML's link filter leaves existing utm_ alone).
        cta={"text": content["cta_text"], "url": compiled.tag_url(content["cta_url"])},
    )
    return Rendered(
        subject=subject,
        preheader=preheader,
        html=render(compiled.html, context, "the HTML template"),
        # Conditionals leave blank lines behind; tidy after rendering, not before.
        text=tidy_text(render(compiled.text, context, "the text part")),
        variant=variant,
        unsubscribe_url=context["unsubscribe_url"],
    )


_Render = Callable[[jinja2.Template, Mapping[str, Any], str], str]


def _guarded(recipient: Recipient) -> _Render:
    def render(template: jinja2.Template, context: Mapping[str, Any], part: str) -> str:
        where = recipient.source or recipient.email
        try:
            return template.render(context)
        except jinja2.UndefinedError as exc:
            raise TemplateError(
                f"{part}: template variable missing: {exc.message}", where=where
            ) from None
        except Exception as exc:  # a template is user code: any failure is a user error
            raise TemplateError(
                f"{part}: template error: {type(exc).__name__}: {exc}", where=where
            ) from None

    return render


def template_path_of(compiled: CompiledCampaign) -> Path:
    """The template file a compiled campaign came from."""
    return compiled.campaign.template
