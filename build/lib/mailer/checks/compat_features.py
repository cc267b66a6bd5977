"""How each Can I Email feature shows in an email's HTML: a ``Probe`` per feature slug.

Can I Email names features by slug (``css-display-flex``, ``html-video``,
``css-pseudo-class-hover``); this module says what to look for in the rendered
HTML for each one. Most follow the slug's own convention (``css-<property>``,
``html-<element>``, ``css-at-<rule>``, ``css-pseudo-class-<name>``); the rest
are listed by hand. A slug with no probe is not checked (the refresh script
lists them, so a new feature in the data is seen, not silently ignored).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Kind = Literal[
    "element",  # an HTML element: <video>
    "attribute",  # an HTML attribute on any element: srcset=
    "element-attribute",  # an element with an attribute value: <input type="checkbox">
    "href",  # a link whose href starts with the value: "#", "mailto:"
    "property",  # a CSS property name: border-radius
    "value",  # a CSS property with a value keyword: display: flex
    "function",  # a CSS function in a value: clamp(
    "at-rule",  # @font-face
    "media",  # a media feature in @media: (prefers-color-scheme
    "selector",  # a pseudo-class or pseudo-element: :hover, ::before
    "combinator",  # a selector part: [attr], >, +, ~, *
    "unit",  # a CSS unit after a number: 2rem
    "important",  # !important
    "variable",  # custom properties: --x / var(
    "image",  # an image file type by extension: .webp
    "data-image",  # an image inlined as a data: URL
]


@dataclass(frozen=True)
class Probe:
    """What to look for: ``kind`` and its arguments (a name, and a value for some kinds)."""

    kind: Kind
    name: str
    value: str = ""


def _p(kind: Kind, *names: str, value: str = "") -> tuple[Probe, ...]:
    return tuple(Probe(kind, n, value) for n in names)


# Features not worth checking: universal basics (px, %, <p>, class selectors),
# things that are not in an HTML body (AMP, BIMI, the doctype) or not detectable here.
SKIPPED = frozenset(
    [
        "amp",
        "bimi",
        "css-comments",
        "html-comments",
        "html-doctype",
        "image-mp4",
        "image-apng",
        "image-hdr",
        "css-unit-px",
        "css-unit-percent",
        "css-unit-initial",
        "css-selector-class",
        "css-selector-type",
        "css-selector-descendant",
        "css-selector-grouping",
        "css-selector-chaining",
        "css-selector-id",
        "html-body",
        "html-div",
        "html-span",
        "html-p",
        "html-table",
        "html-img",
        "html-style",
        "html-lists",
        "html-h1-h6",
        "html-strong",
        "html-link",
        "css-inert-attribute",
        "css-sytem-ui",
        "image-jpg",
        "image-png",
        "image-gif",
        "css-font",
        "css-width",
        "css-height",
        "css-padding",
        "css-margin",
        "css-border",
        "css-background",
        "css-background-color",
        "css-font-size",
        "css-font-weight",
        "css-line-height",
        "css-text-align",
        "css-display",
        "css-color-scheme",
        "css-rgb",
        "html-width",
        "html-height",
        "html-align",
        "html-valign",
        "html-cellpadding",
        "html-cellspacing",
        "html-target",
        "html-lang",
        "html-dir",
        "html-role",
        "html-aria-hidden",
        "html-aria-label",
        "html-aria-labelledby",
        "html-aria-describedby",
        "html-anchor-links",
        "html-mailto-links",
        "css-vertical-align",
        "css-text-decoration",
        "css-direction",
        "css-unit-em",
        "css-important",
    ]
)

_HAND: dict[str, tuple[Probe, ...]] = {
    "css-display-flex": _p("value", "display", value="flex")
    + _p("value", "display", value="inline-flex"),
    "css-display-grid": _p("value", "display", value="grid")
    + _p("value", "display", value="inline-grid"),
    "css-display-none": _p("value", "display", value="none"),
    "css-flex-direction": _p("value", "flex-direction", value="column"),
    "css-flex-wrap": _p("value", "flex-wrap", value="wrap"),
    "css-gap": _p("property", "gap", "column-gap", "row-gap"),
    "css-grid-template": _p(
        "property",
        "grid-template",
        "grid-template-areas",
        "grid-template-columns",
        "grid-template-rows",
    ),
    "css-inset": _p("property", "inset", "inset-block", "inset-inline"),
    "css-left-right-top-bottom": _p("property", "left", "right", "top", "bottom"),
    "css-block-inline-size": _p("property", "block-size", "inline-size"),
    "css-border-inline-block": _p("property", "border-inline", "border-block"),
    "css-border-radius-logical": _p(
        "property",
        "border-start-start-radius",
        "border-start-end-radius",
        "border-end-start-radius",
        "border-end-end-radius",
    ),
    "css-margin-block-start-end": _p("property", "margin-block-start", "margin-block-end"),
    "css-margin-inline-block": _p("property", "margin-inline", "margin-block"),
    "css-margin-inline-start-end": _p("property", "margin-inline-start", "margin-inline-end"),
    "css-padding-block-start-end": _p("property", "padding-block-start", "padding-block-end"),
    "css-padding-inline-block": _p("property", "padding-inline", "padding-block"),
    "css-padding-inline-start-end": _p("property", "padding-inline-start", "padding-inline-end"),
    "css-column-layout-properties": _p(
        "property", "columns", "column-fill", "column-rule", "column-span", "column-width"
    ),
    "css-intrinsic-size": _p("function", "fit-content")
    + _p("value", "width", value="min-content")
    + _p("value", "width", value="max-content"),
    "css-modern-color": _p("function", "lch", "oklch", "lab", "oklab"),
    "css-linear-gradient": _p("function", "linear-gradient"),
    "css-radial-gradient": _p("function", "radial-gradient"),
    "css-conic-gradient": _p("function", "conic-gradient"),
    "css-unit-calc": _p("function", "calc"),
    "css-rgba": _p("function", "rgba"),
    "css-variables": _p("variable", "var"),
    "css-nesting": _p("combinator", "&"),
    "css-at-media-device-pixel-ratio": _p(
        "media", "-webkit-device-pixel-ratio", "-webkit-min-device-pixel-ratio"
    ),
    "css-at-media-hover": _p("media", "hover", "any-hover"),
    "css-pseudo-class-lang": _p("selector", ":lang"),
    "css-selector-adjacent-sibling": _p("combinator", "+"),
    "css-selector-attribute": _p("combinator", "["),
    "css-selector-child": _p("combinator", ">"),
    "css-selector-general-sibling": _p("combinator", "~"),
    "css-selector-universal": _p("combinator", "*"),
    "html-semantics": _p(
        "element",
        "article",
        "aside",
        "details",
        "figcaption",
        "figure",
        "footer",
        "header",
        "main",
        "mark",
        "nav",
        "section",
        "summary",
        "time",
    ),
    "html-image-maps": _p("element", "map", "area") + _p("attribute", "usemap"),
    "html-svg": _p("element", "svg"),
    "html-srcset": _p("attribute", "srcset", "sizes"),
    "html-loading-attribute": _p("attribute", "loading"),
    "html-aria-live": _p("attribute", "aria-live"),
    "html-background": _p("attribute", "background"),
    "html-hidden": _p("attribute", "hidden"),
    "html-popover": _p("attribute", "popover"),
    "html-required": _p("attribute", "required"),
    "html-meta-color-scheme": _p("element-attribute", "meta", value="color-scheme"),
    "html-button-reset": _p("element-attribute", "button", value="reset"),
    "html-button-submit": _p("element-attribute", "button", value="submit"),
    "html-address": _p("element", "address"),
    "image-base64": _p("data-image", "base64"),
    "image-svg": _p("image", "svg"),
    "image-heif": _p("image", "heif", "heic"),
    "image-tiff": _p("image", "tif", "tiff"),
}

_ELEMENT = re.compile(r"^html-([a-z0-9]+)$")
_INPUT = re.compile(r"^html-input-([a-z]+)$")
_PROPERTY = re.compile(r"^[a-z-]+$")


def probes_for(slug: str, title: str) -> tuple[Probe, ...]:
    """The probes for one Can I Email feature; empty when it is skipped or not detectable."""
    if slug in SKIPPED:
        return ()
    if slug in _HAND:
        return _HAND[slug]
    if slug.startswith("css-at-media-"):
        return _p("media", slug.removeprefix("css-at-media-"))
    if slug.startswith("css-at-"):
        return _p("at-rule", slug.removeprefix("css-at-"))
    if slug.startswith("css-pseudo-class-"):
        return _p("selector", ":" + slug.removeprefix("css-pseudo-class-"))
    if slug.startswith("css-pseudo-element-"):
        return _p("selector", "::" + slug.removeprefix("css-pseudo-element-"))
    if slug.startswith("css-function-"):
        return _p("function", slug.removeprefix("css-function-"))
    if slug.startswith("css-unit-"):
        return _p("unit", slug.removeprefix("css-unit-"))
    if slug.startswith("image-"):
        return _p("image", slug.removeprefix("image-"))
    if slug.startswith("css-"):
        name = title.replace(" property", "").strip()
        return _p("property", name) if _PROPERTY.match(name) else ()
    if match := _INPUT.match(slug):
        return _p("element-attribute", "input", value=match.group(1))
    if (match := _ELEMENT.match(slug)) and "element" in title:
        return _p("element", match.group(1))
    if match := _ELEMENT.match(slug):
        return _p("attribute", match.group(1))
    return ()


# What degrades gracefully: a client without it shows square corners, no shadow, no
# hover effect, the desktop layout: worth knowing (info), not worth a warning.
COSMETIC = frozenset(
    [
        "css-border-radius",
        "css-box-shadow",
        "css-text-shadow",
        "css-letter-spacing",
        "css-white-space",
        "css-pseudo-class-hover",
        "css-pseudo-class-focus",
        "css-pseudo-class-active",
        "css-pseudo-class-visited",
        "css-pseudo-class-link",
        "css-transition",
        "css-animation",
        "css-at-keyframes",
        "css-opacity",
        "css-at-media",
        "css-at-media-prefers-color-scheme",
        "css-at-media-prefers-reduced-motion",
        "css-at-media-orientation",
        "css-at-media-hover",
        "css-at-media-device-pixel-ratio",
        "css-cursor",
        "css-outline",
        "css-outline-offset",
        "css-text-decoration-color",
        "css-text-decoration-line",
        "css-text-decoration-style",
        "css-text-decoration-thickness",
        "css-text-decoration-skip-ink",
        "css-text-underline-offset",
        "css-text-underline-position",
        "css-font-kerning",
        "css-hyphens",
        "css-user-select",
        "css-max-width",
        "css-min-width",
        "css-max-height",
        "css-min-height",
        "css-text-overflow",
        "css-word-break",
        "css-overflow-wrap",
        "css-word-wrap",
        "css-text-transform",
        "css-font-stretch",
        "css-text-wrap",
        "css-accent-color",
        "css-filter",
        "css-mix-blend-mode",
        "css-background-blend-mode",
        "css-selector-attribute",
        "css-selector-child",
        "css-selector-adjacent-sibling",
        "css-selector-general-sibling",
        "css-selector-universal",
        "css-pseudo-class-first-child",
        "css-pseudo-class-last-child",
        "css-pseudo-class-not",
        "css-pseudo-class-nth-child",
        "css-pseudo-class-nth-of-type",
        "css-box-sizing",
        "css-list-style-position",
        "css-border-spacing",
        "css-pseudo-element-placeholder",
        "css-pseudo-class-focus-visible",
        "css-pseudo-class-focus-within",
    ]
)
