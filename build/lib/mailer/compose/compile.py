"""Compile a campaign once: template source to Jinja templates for every part.

    template source ─► protect Jinja spans as opaque tokens ─► MJML ─► inline CSS
    ─► tag links with UTM parameters ─► restore the Jinja spans ─► Jinja templates

The tokens (``mailer.compose.protect``) are why MJML and the CSS inliner never
see, and never mangle, Jinja. Rendering per recipient (``mailer.compose.render``)
is then only Jinja. Templates run in Jinja's sandbox with ``StrictUndefined``;
HTML output autoescapes contact data.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from mailer.compose.links import add_utm_cached, tag_links, tag_text_links, utm_filter
from mailer.compose.lint import BODY_NAMES, HEADER_NAMES, lint_source
from mailer.compose.protect import COMMENT_TOKEN, check_order, protect, restore, source_offset
from mailer.compose.remote import strip_web_fonts
from mailer.core.campaign import Campaign
from mailer.core.errors import TemplateError
from mailer.core.marketing_days import find_day
from mailer.core.sandbox import LimitedSandbox

# MJML renders <mj-preview> as the first hidden div of the body; the text part skips it.
_PREVIEW_DIV = re.compile(r'<div style="display:\s*none;[^"]*">.*?</div>', re.DOTALL)


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
    parts: CampaignSources  # what it was compiled from (a worker process compiles it again)
    # The campaign's other language versions ([locales.<tag>]), by lower-case tag;
    # ``mailer.compose.locales.pick_locale`` chooses one per recipient.
    locales: Mapping[str, CompiledCampaign] = field(default_factory=dict)

    def tag_url(self, url: str) -> str:
        """The URL with this campaign's UTM parameters."""
        utm = self.campaign.utm
        if not utm:
            return url
        return add_utm_cached(url, tuple((f"utm_{k}", v) for k, v in utm.items()))


@lru_cache(maxsize=2)
def environment(autoescape: bool) -> jinja2.Environment:
    """The sandboxed Jinja environment for HTML (autoescaping) or text parts."""
    env = LimitedSandbox(
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters["utm"] = utm_filter
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


def mjml_to_html(protected: str, where: str, source: str | None = None) -> str:
    """Compile MJML to HTML with no web fonts (privacy: no request to a font host).

    ``protected`` is the template with its Jinja spans as tokens; ``source``,
    the template as written, lets an error name the line it is on.
    """
    import mjml

    try:
        return str(mjml.mjml2html(mjml_compatible(protected), fonts={}))
    except Exception as exc:  # mjml raises plain ValueError/RuntimeError with the parser's words
        message, line = _mjml_error(str(exc), protected, source)
        raise TemplateError(
            f"MJML could not compile the template: {message}",
            where=f"{where}:{line}" if line else where,
            hint="check that every tag is closed and spelled as MJML names it (mj-section, "
            "mj-column, ...), and that Jinja {% %} blocks between sections are wrapped in "
            "<mj-raw>",
        ) from None


_POSITION = re.compile(r"\s*at position (\d+):(\d+)")


def _mjml_error(text: str, protected: str, source: str | None) -> tuple[str, int | None]:
    """The parser's message without its byte offsets, and the template line they point at."""
    found = _POSITION.search(text)
    if not found:
        return text, None
    raw = protected.encode("utf-8")[: int(found.group(1))]
    offset = len(raw.decode("utf-8", errors="ignore"))
    if source is not None:
        offset = source_offset(source, offset)
        return _POSITION.sub("", text), source.count("\n", 0, offset) + 1
    return _POSITION.sub("", text), protected.count("\n", 0, offset) + 1


# A tag's attributes, and a quoted value with a line break in it.
_TAG = re.compile(r"<[A-Za-z][^<>]*>")
_BROKEN_VALUE = re.compile(r"(\"[^\"]*\n[^\"]*\"|'[^']*\n[^']*')")
_HEAD = re.compile(r"<mj-head\b.*?</mj-head>", re.DOTALL)
_STYLE = re.compile(r"(<mj-style\b[^>]*>)(.*?)(</mj-style>)", re.DOTALL)
_HTML_COMMENT = re.compile(r"<!--(?!mlrtok\d{5}z-->).*?-->", re.DOTALL)  # Jinja tokens stay
_CSS_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)
_BETWEEN_TAGS = re.compile(r">[ \t\r\n]+<")


def mjml_compatible(source: str) -> str:
    """MJML as people write it, in the form the MJML compiler (mrml) accepts.

    Each change keeps the meaning and works around a difference from the
    reference (JavaScript) MJML, found by compiling templates from the wild:

    * an attribute value spread over lines comes out with the line break
      written as the two characters ``\\n``, which is not CSS (the inliner then
      fails on any element a ``<style>`` rule also matches): in an attribute a
      line break is whitespace, so it becomes a space;
    * in ``<mj-head>``, comments are refused (``<!-- Global Attributes -->``
      inside ``<mj-attributes>``), and so is whitespace between elements that
      does not start with a line break (a tab, a space): comments go, and such
      whitespace becomes a line break;
    * in ``<mj-style>``, CSS comments that mention tags (``/* for <p> */``)
      are parsed as tags: CSS comments go.
    """

    def flatten(tag: re.Match[str]) -> str:
        return _BROKEN_VALUE.sub(lambda v: " ".join(v.group(0).split()), tag.group(0))

    def style(match: re.Match[str]) -> str:
        return match.group(1) + _CSS_COMMENT.sub("", match.group(2)) + match.group(3)

    def head(match: re.Match[str]) -> str:
        text = _STYLE.sub(style, _HTML_COMMENT.sub("", match.group(0)))
        return _BETWEEN_TAGS.sub(">\n<", text)

    source = _TAG.sub(flatten, source) if "\n" in source else source
    return _HEAD.sub(head, source)


def inline_css(html: str, where: str = "the template") -> str:
    """Move <style> rules into style attributes, keeping @media rules for phones."""
    import css_inline

    inliner = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)
    try:
        return str(inliner.inline(html))
    except Exception as exc:  # css_inline.InlineError: CSS it cannot parse
        raise TemplateError(
            f"the CSS inliner could not read the template's CSS: {exc}",
            where=where,
            hint="look for a style attribute or <mj-style> rule that is not valid CSS "
            "(a stray ';', an unclosed '{')",
        ) from None


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


@dataclass(frozen=True)
class CampaignSources:
    """A campaign's parts as Jinja source, after MJML, CSS inlining and UTM tagging.

    Plain data (it pickles): a worker process compiles exactly these templates
    (``compile_sources``), without reading the template files again, which might
    have changed since the campaign was checked.
    """

    campaign: Campaign
    html: str
    html_name: str  # where errors in the HTML point (the template file)
    text: str
    text_name: str


def campaign_sources(campaign: Campaign) -> CampaignSources:
    """Turn the campaign's template into Jinja sources for its HTML and text parts."""
    template_path = campaign.template
    source = _read_template(template_path)
    protected, spans = protect(source)
    where = str(template_path)
    html = mjml_to_html(protected, where, source) if template_path.suffix == ".mjml" else protected
    if campaign.web_fonts == "strip":
        html = strip_web_fonts(html)
    html = break_lines(inline_css(html, where))
    check_order(html, spans, where)
    html = tag_links(html, campaign.utm, spans)
    html_source = restore(html, spans)
    text_path = template_path.with_suffix(".txt")
    if text_path.is_file():
        text_source = tag_text_links(_read_template(text_path), campaign.utm)
        text_name = str(text_path)
    else:
        # The text converter drops comments: turn statement tokens back into text first.
        bare = COMMENT_TOKEN.sub(r"\1", html)
        text_source, text_name = restore(html_to_text(bare), spans), f"{where} (text part)"
    return CampaignSources(campaign, html_source, where, text_source, text_name)


def compile_campaign(campaign: Campaign) -> CompiledCampaign:
    """Compile every part of the campaign once: subjects, preheader, content, HTML, text.

    First the texts as written are checked for other tools' merge tags and
    names no part provides (``mailer.compose.lint``), each reported at its line.
    """
    lint_campaign(campaign)
    return compile_sources(campaign_sources(campaign))


def lint_campaign(campaign: Campaign) -> None:
    """Foreign merge tags and unknown names in the campaign's texts and templates."""
    env = environment(False)
    texts = [(s, campaign.subject_where()) for s in campaign.subjects]
    texts.append((campaign.preheader, campaign.where("preheader")))
    for key in ("headline", "offer", "cta_text", "cta_url"):
        texts.append((getattr(campaign.content, key), campaign.where("content", key)))
    for text, where in texts:
        lint_source(env, text, HEADER_NAMES, where)
    template = campaign.template
    lint_source(env, _read_template(template), BODY_NAMES, str(template))
    text_path = template.with_suffix(".txt")
    if text_path.is_file():
        lint_source(env, _read_template(text_path), BODY_NAMES, str(text_path))


def compile_sources(parts: CampaignSources) -> CompiledCampaign:
    """Jinja templates for every part, from the sources ``campaign_sources`` made."""
    campaign = parts.campaign
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
        "html": parts.html,
        "text": parts.text,
    }
    return CompiledCampaign(
        campaign=campaign,
        subjects=tuple(
            _compile(s, campaign.subject_where(), html=False) for s in campaign.subjects
        ),
        preheader=_compile(campaign.preheader, campaign.where("preheader"), html=False),
        content={
            k: _compile(v, campaign.where("content", k), html=False) for k, v in content.items()
        },
        html=_compile(parts.html, parts.html_name, html=True),
        text=_compile(parts.text, parts.text_name, html=False),
        unsubscribe=_compile(unsubscribe, "mailer.toml [unsubscribe] url", html=False)
        if unsubscribe
        else None,
        sources=sources,
        base_context=_base_context(campaign),
        parts=parts,
        locales={tag: compile_campaign(t) for tag, t in campaign.translations.items()},
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
        "occasions": _occasion_names(campaign),
    }


def _occasion_names(campaign: Campaign) -> dict[str, str]:
    """The scheduled day's name by language ({"zh": "中秋节", "en": "Mid-Autumn Festival"}),
    for ``{{ occasion }}``; empty when the campaign is not scheduled on a named day."""
    table = campaign.schedule_table or {}
    name = table.get("day") or table.get("holiday")
    if not isinstance(name, str):
        return {}
    found = find_day(name)
    return {"zh": found.zh, "en": found.en} if found else {"zh": name, "en": name}
