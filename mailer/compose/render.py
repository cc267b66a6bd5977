"""Render a compiled campaign for one recipient: subject, preheader, HTML and text.

Also the per-recipient facts every stage agrees on: the A/B variant a person
gets (``assign_variant``), and their unsubscribe token.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2

from mailer.compose.compile import CompiledCampaign, tidy_text
from mailer.compose.locales import pick_locale
from mailer.core.errors import TemplateError
from mailer.core.recipient import Recipient
from mailer.core.sandbox import SandboxLimit, render_limited
from mailer.core.tokens import make_token


@dataclass(frozen=True)
class Rendered:
    """One recipient's email: what `send` sends and `preview` shows."""

    subject: str
    preheader: str
    html: str
    text: str
    variant: int
    unsubscribe_url: str | None


def assign_variant(campaign_id: str, email: str, count: int) -> int:
    """Deterministic A/B assignment: the same person always gets the same variant."""
    if count == 1:
        return 0
    digest = hashlib.sha256(f"{campaign_id}\0{email.lower()}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % count


def stand_in(
    base: Recipient, campaign_id: str, variant: int, count: int, address: str
) -> Recipient:
    """``base``'s data under an address nobody has that falls into A/B ``variant``.

    ``address`` is a pattern with ``{}`` for a number (``variant-{}@test-send.invalid``):
    numbers are tried until one hashes to the variant. Checks and [TEST] sends
    use it to show a variant no real recipient of a small audience got, and so
    that a [TEST] message's unsubscribe token belongs to nobody.
    """
    for number in range(100_000):
        email = address.format(number)
        if assign_variant(campaign_id, email, count) == variant:
            return replace(base, email=email, fields={**base.fields, "email": email})
    raise RuntimeError(f"no stand-in address found for variant {variant}")  # pragma: no cover


def variant_label(index: int) -> str:
    """A/B variant letters: 0 -> "A", 1 -> "B", ..."""
    return chr(ord("A") + index)


def unsubscribe_token(campaign_id: str, email: str, issued: float = 0.0, lang: str = "") -> str:
    """A signed per-recipient token for unsubscribe links (see ``mailer.core.tokens``).

    ``issued`` is when the message is made (Unix time): tokens expire after
    ``tokens.MAX_DAYS``, counted from it. ``lang``: the email's language.
    """
    return make_token(email, campaign_id, issued, lang=lang)


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
    compiled: CompiledCampaign,
    recipient: Recipient,
    render: _Render,
    variant: int | None = None,
    issued: float = 0.0,
    key: str | None = None,
) -> dict[str, Any]:
    """What subject templates see: everything but the rendered content."""
    campaign = compiled.campaign
    if variant is None:
        variant = assign_variant(campaign.id, recipient.email, len(compiled.subjects))
    context: dict[str, Any] = {
        **compiled.base_context,
        "contact": contact_view(recipient),
        "token": unsubscribe_token(
            key or campaign.id, recipient.email, issued, campaign.locale or ""
        ),
        "variant": variant,
        "occasion": occasion_for(
            compiled.base_context.get("occasions", {}), compiled.campaign.locale, recipient
        ),
    }
    url = (
        render(compiled.unsubscribe, context, "the unsubscribe URL")
        if compiled.unsubscribe
        else None
    )
    context["unsubscribe_url"] = quote(url.strip(), safe=_URL_SAFE) if url else None
    return context


def occasion_for(names: dict[str, str], version_locale: str | None, recipient: Recipient) -> str:
    """The scheduled day's name in the email's language: the language version's own
    ``locale`` when it declares one, else the contact's (Chinese for ``zh*``, else English)."""
    if not names:
        return ""
    locale = str(version_locale or recipient.fields.get("locale") or "").lower()
    return names["zh"] if locale.startswith("zh") else names["en"]


def render_subject(compiled: CompiledCampaign, recipient: Recipient) -> str:
    """This recipient's subject (their A/B variant), for checks made before sending."""
    compiled = pick_locale(compiled, recipient)
    render = _guarded(recipient)
    context = _header_context(compiled, recipient, render)
    return render(compiled.subjects[context["variant"]], context, "the subject").strip()


def render_for(
    compiled: CompiledCampaign,
    recipient: Recipient,
    *,
    variant: int | None = None,
    issued: float = 0.0,
    key: str | None = None,
) -> Rendered:
    """Render every part of the email for one recipient.

    ``variant`` overrides the recipient's A/B assignment (the preview's "what
    if they got subject B"); by default it is the one ``send`` uses. ``issued``
    (Unix time) dates the unsubscribe token; ``key`` (the journal key, default
    the campaign id) is the campaign it names, so an unsubscribe counts against
    the send it came from (``xmas@2027``). A campaign in several languages
    renders the version of the recipient's ``locale`` (``compose.locales``).
    """
    compiled = pick_locale(compiled, recipient)
    render = _guarded(recipient, compiled)
    context = _header_context(compiled, recipient, render, variant, issued, key)
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


# One part's render may take this long (a normal one takes well under a millisecond).
RENDER_SECONDS = 5.0

_Render = Callable[[jinja2.Template, Mapping[str, Any], str], str]


def _guarded(recipient: Recipient, compiled: CompiledCampaign | None = None) -> _Render:
    def render(template: jinja2.Template, context: Mapping[str, Any], part: str) -> str:
        where = recipient.source or recipient.email
        try:
            return render_limited(template, dict(context), RENDER_SECONDS)
        except (jinja2.UndefinedError, ArithmeticError, TypeError, ValueError, LookupError) as exc:
            found = failed_line(compiled, part, exc) if compiled is not None else None
            if found is None:
                raise TemplateError(
                    f"{part}: template variable missing: {exc}"
                    if isinstance(exc, jinja2.UndefinedError)
                    else f"{part}: template error: {plain_error(exc)}",
                    where=where,
                ) from None
            raise TemplateError(
                f"{part} failed at this line: {plain_error(exc)}",
                where=found,
                hint=f"it failed rendering for {where}; if only some contacts' data trip it, "
                "guard it with {% if ... %} or give a default: | default(...)",
            ) from None
        except SandboxLimit as exc:
            raise TemplateError(
                f"{part} was stopped: {exc}",
                where=where,
                hint="templates may not make huge strings or loop for long; "
                "look for a multiplied string, a big range() or nested loops",
            ) from None
        except Exception as exc:  # a template is user code: any failure is a user error
            raise TemplateError(
                f"{part}: template error: {type(exc).__name__}: {exc}", where=where
            ) from None

    return render


def plain_error(exc: BaseException) -> str:
    """A template failure in words, not a Python class name."""
    if isinstance(exc, jinja2.UndefinedError):
        return f"a value is missing ({exc.message})"
    if isinstance(exc, ZeroDivisionError):
        return "a division by zero"
    if isinstance(exc, TypeError):
        return f"a value is used in a way its kind does not allow ({exc})"
    if isinstance(exc, LookupError):
        return f"no such item ({exc})"
    return f"a value that does not fit ({exc})"


def failed_line(compiled: CompiledCampaign, part: str, exc: BaseException) -> str | None:
    """``template:line`` (as written) of the Jinja span that raised ``exc``; None if unknown.

    Jinja's traceback gives the line in the compiled source (after MJML); the
    Jinja spans on that line are found in the template as written.
    """
    parts = compiled.parts
    if part == "the HTML template":
        source, name = parts.html, parts.html_name
    elif part == "the text part" and not parts.text_name.endswith("(text part)"):
        source, name = parts.text, parts.text_name
    else:
        return None
    line = _template_frame_line(exc)
    path = Path(name)
    if line is None or not path.is_file():
        return None
    lines = source.splitlines()
    if line > len(lines):
        return None
    written = path.read_text(encoding="utf-8")
    for span in _suspects(_SPAN.findall(lines[line - 1]), exc):
        position = written.find(span)
        if position >= 0:
            return f"{name}:{written.count(chr(10), 0, position) + 1}"
    return None


_SPAN = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.DOTALL)
_CALLED = re.compile(r"(\w+)\(\)")
_NAMED = re.compile(r"attribute '(\w+)'|element (\w+)|'(\w+)' is undefined")


def _template_frame_line(exc: BaseException) -> int | None:
    """The last line Jinja's rewritten traceback reports in the template."""
    line = None
    trace = exc.__traceback__
    while trace is not None:
        if trace.tb_frame.f_code.co_filename == "<template>":
            line = trace.tb_lineno
        trace = trace.tb_next
    return line


def _suspects(spans: list[str], exc: BaseException) -> list[str]:
    """The spans on the failing line, the likeliest culprit first."""
    text = str(exc)
    words = [w for m in _NAMED.finditer(text) for w in m.groups() if w]
    words += _CALLED.findall(text)
    if isinstance(exc, ZeroDivisionError):
        words += ["/", "%"]
    return sorted(spans, key=lambda s: not any(w in s for w in words))


def template_path_of(compiled: CompiledCampaign) -> Path:
    """The template file a compiled campaign came from."""
    return compiled.campaign.template


def impersonal_text(text: str, recipient: Recipient, unsubscribe_url: str | None) -> str:
    """A recipient's rendered text with their personal data blanked out.

    The run log keeps one body per run to compare later campaigns against
    (repetition); it must not keep anyone's name, address or unsubscribe
    token, which ``contacts forget`` could not find there.
    """
    if unsubscribe_url:
        text = text.replace(unsubscribe_url, "<unsubscribe>")
    values = {recipient.email, recipient.name}
    values |= {v for v in recipient.fields.values() if isinstance(v, str)}
    # Longest first, so "Ann Lee" goes before "Ann"; one letter is not personal.
    for value in sorted((v for v in values if len(v.strip()) >= 2), key=len, reverse=True):
        text = text.replace(value, "·")
    return text
