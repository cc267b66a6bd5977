"""Template mistakes found before anything is rendered: other tools' merge tags, unknown names.

Marketers bring templates from other tools. Their merge tags — ``*|FNAME|*``
(Mailchimp), ``[[FirstName]]``, ``%%FirstName%%``, ``{unsubscribe_text}`` —
are plain text to Jinja and would reach customers as written; ``{{FirstName}}``
is Jinja syntax but no variable of ours. ``lint_source`` finds both in a
template or a campaign text, with the line, and says what to write instead;
a name that is close to a real one (``contcat``) gets a "did you mean".
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass

import jinja2
from jinja2 import nodes

from mailer.compose.adopt import DETECT, KNOWN_FIELDS, WEB_VERSION, letters, translate_tag
from mailer.core.errors import TemplateError

# Names every part can use (see render._header_context and compile._base_context) ...
HEADER_NAMES = frozenset(
    {
        "contact",
        "token",
        "variant",
        "unsubscribe_url",
        "campaign",
        "sender",
        "postal_address",
        "unsubscribe_mailto",
        "hero",
        "data",
        "occasion",
    }
)
# ... and what the HTML and text parts see besides: the rendered campaign texts.
BODY_NAMES = HEADER_NAMES | {"subject", "preheader", "headline", "offer", "cta"}

# Other tools' merge tags. Single braces only around a bare word, so CSS
# ("p { margin: 0 }") and Jinja ("{{ x }}", "{% if %}") never match.
_FOREIGN = (
    ("Mailchimp", re.compile(r"\*\|\s*([A-Za-z][^|*\n]*?)\s*\|\*")),
    ("double-bracket", re.compile(r"\[\[\s*([A-Za-z][\w.-]*)\s*\]\]")),
    ("percent", re.compile(r"%%\s*([A-Za-z][\w.-]*)\s*%%")),
    ("single-brace", re.compile(r"(?<![{$#%])\{([A-Za-z_][\w.]*)\}(?!\})")),
    *DETECT,
)


@dataclass(frozen=True)
class Problem:
    """One mistake: the line it is on, what is wrong, what to write instead."""

    line: int
    message: str


def jinja_for(tag: str) -> str:
    """What to write instead of a foreign merge tag: the Jinja ``templates adopt`` writes
    (``*|END:IF|*`` -> ``{% endif %}``), or what to do when there is none."""
    translated = translate_tag(tag)
    if translated is not None:
        return translated
    name = tag.strip("{}[]*|% ")
    if letters(name.partition(":")[2] or name) in WEB_VERSION:
        return "a link to a web copy of your own, or nothing (mailer hosts no web version)"
    return "Jinja by hand: {{ contact.<field> }}, {% if ... %} ... {% endif %}"


def foreign_tags(source: str) -> list[Problem]:
    """Other tools' merge tags in ``source``, each with its line and the Jinja to use."""
    found = []
    for tool, pattern in _FOREIGN:
        for match in pattern.finditer(source):
            line = source.count("\n", 0, match.start()) + 1
            message = (
                f"{match.group(0)} is a {tool} merge tag, which mailer would send as it is; "
                f"write {jinja_for(match.group(0))} instead"
            )
            found.append(Problem(line, message))
    return sorted(found, key=lambda p: p.line)


_HANDLEBARS = re.compile(r"\{\{\s*([#/^>]|else\b)\s*(\w*)\s*([\w.]*)[^}]*\}\}")
_AT_OFFSET = re.compile(r"\s+at \d+$")


def syntax_problems(env: jinja2.Environment, source: str) -> list[Problem]:
    """A Jinja syntax error in ``source``, at its line as written, in plain words.

    Checked on the template as written, before MJML: afterwards the line
    numbers are those of MJML's output, not the author's.
    """
    try:
        env.parse(source)
    except jinja2.TemplateSyntaxError as exc:
        line = exc.lineno or 1
        text = source.splitlines()[line - 1] if line <= source.count("\n") + 1 else ""
        handlebars = _HANDLEBARS.search(text)
        if handlebars:
            return [Problem(line, _handlebars_message(handlebars))]
        message = _AT_OFFSET.sub("", exc.message or "invalid syntax")
        shown = " ".join(text.split())[:80]
        return [Problem(line, f"Jinja syntax error: {message}, in: {shown}")]
    return []


def _handlebars_message(match: re.Match[str]) -> str:
    """What to write in Jinja for a Handlebars block tag."""
    tag, helper, value = match.group(0), match.group(2), match.group(3) or "x"
    if match.group(1) == "#" and helper == "each":
        jinja = f"{{% for item in {value} %}} … {{% endfor %}}"
    elif match.group(1) == "#" and helper == "unless":
        jinja = f"{{% if not {value} %}} … {{% endif %}}"
    elif match.group(1) == "#":
        jinja = f"{{% if {value if helper == 'if' else helper} %}} … {{% endif %}}"
    else:
        jinja = "{% if ... %} … {% else %} … {% endif %} around the block"
    return f"{tag} is Handlebars/Mustache, which Jinja cannot read; write {jinja}"


def unknown_names(env: jinja2.Environment, source: str, known: Iterable[str]) -> list[Problem]:
    """Top-level names ``source`` reads that no part of a campaign provides."""
    try:
        tree = env.parse(source)
    except jinja2.TemplateSyntaxError:
        return []  # reported, with its line, when the template is compiled
    available = set(known) | set(env.globals) | _assigned(tree)
    found: dict[str, Problem] = {}
    for node in tree.find_all(nodes.Name):
        if node.ctx != "load" or node.name in available or node.name in found:
            continue
        found[node.name] = Problem(node.lineno, _unknown_message(node.name, available))
    return sorted(found.values(), key=lambda p: p.line)


def _assigned(tree: nodes.Template) -> set[str]:
    """Names the template sets itself: {% set %}, loop targets, macros and their arguments."""
    names = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
    names |= {m.name for m in tree.find_all(nodes.Macro)}
    return names | {"loop", "caller", "varargs", "kwargs"}


def _unknown_message(name: str, available: set[str]) -> str:
    if letters(name) in KNOWN_FIELDS:
        return (
            f"{{{{ {name} }}}} looks like another tool's merge field; "
            f"write {jinja_for('{{ ' + name + ' }}')} instead"
        )
    close = difflib.get_close_matches(name, sorted(available), n=1, cutoff=0.7)
    if close:
        return f"there is no template variable {name!r}; did you mean {close[0]!r}?"
    return (
        f"there is no template variable {name!r}; contact fields are written "
        f"contact.<column> (e.g. {{{{ contact.{name} }}}})"
    )


def lint_source(env: jinja2.Environment, source: str, known: Iterable[str], where: str) -> None:
    """Raise ``TemplateError`` listing every foreign merge tag and unknown name in ``source``.

    ``where`` names the file, with the line ``source`` starts on in it when it
    does not start the file (``campaign.toml:12`` for a campaign text).
    """
    foreign = foreign_tags(source)
    problems = list(foreign)
    problems += [
        p for p in syntax_problems(env, source) if p.line not in {q.line for q in problems}
    ]
    problems += unknown_names(env, source, known)
    if not problems:
        return
    # Other tools' tags: `templates adopt` rewrites them all (the CLI names it).
    advice = "adopt-template" if foreign else None
    first_line = 1
    if _ends_with_line(where):
        file, _, line_text = where.rpartition(":")
        first_line += int(line_text) - 1
    else:
        file = where
    lines = [f"{file}:{first_line + p.line - 1}: {p.message}" for p in problems]
    if len(lines) == 1:
        raise TemplateError(
            problems[0].message,
            where=f"{file}:{first_line + problems[0].line - 1}",
            advice=advice,
        )
    raise TemplateError(
        f"{len(lines)} template problem(s):\n  " + "\n  ".join(lines),
        hint="mailer templates are Jinja: {{ contact.first_name }}, {{ unsubscribe_url }}",
        advice=advice,
    )


def _ends_with_line(where: str) -> bool:
    head, _, tail = where.rpartition(":")
    return bool(head) and tail.isdigit()
