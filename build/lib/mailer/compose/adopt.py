"""Other tools' merge tags rewritten as mailer's Jinja: a template brought from elsewhere.

Marketers bring templates from Mailchimp (``*|FNAME|*``, ``*|IF:X|*``),
SendGrid (``{{first_name}}`` Handlebars, ``-first_name-``, ``[Sender_Name]``),
Mailgun (``%recipient.first_name%``), Campaign Monitor (``[firstname,fallback=there]``),
Klaviyo and Shopify (Liquid: ``{{ first_name | default: "there" }}``) and others
(``[[FirstName]]``, ``%%FirstName%%``). ``adopt_template`` rewrites what it
understands and lists, with its line, what it does not; the result is checked
to be valid Jinja. Those tools print an empty value for a missing field, so a
contact field becomes ``{{ contact.x | default('', true) }}``, which does the
same under mailer's ``StrictUndefined``.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field

import jinja2

# Names the templates of every campaign can use (see lint.BODY_NAMES).
JINJA_NAMES_OF_MAILER = frozenset(
    {
        "contact", "token", "variant", "unsubscribe_url", "campaign", "sender", "postal_address",
        "unsubscribe_mailto", "hero", "data", "occasion", "subject", "preheader", "headline",
        "offer", "cta", "loop", "true", "false", "none", "True", "False", "None",
    }
)  # fmt: skip

# Common merge-field names in other tools, by their letters only, and ours.
KNOWN_FIELDS = {
    "firstname": "contact.first_name",
    "fname": "contact.first_name",
    "first": "contact.first_name",
    "givenname": "contact.first_name",
    "recipientfname": "contact.first_name",
    "lastname": "contact.last_name",
    "lname": "contact.last_name",
    "surname": "contact.last_name",
    "familyname": "contact.last_name",
    "recipientlname": "contact.last_name",
    "name": "contact.name",
    "fullname": "contact.name",
    "recipientname": "contact.name",
    "email": "contact.email",
    "emailaddress": "contact.email",
    "recipientemail": "contact.email",
    "unsubscribe": "unsubscribe_url",
    "unsub": "unsubscribe_url",
    "unsubscribeurl": "unsubscribe_url",
    "unsubscribelink": "unsubscribe_url",
    "unsubscribetext": "unsubscribe_url",
    "tagunsubscribeurl": "unsubscribe_url",
    "mailinglistunsubscribeurl": "unsubscribe_url",
    "unsubscribepreferences": "unsubscribe_url",
    "optout": "unsubscribe_url",
    "address": "postal_address",
    "listaddress": "postal_address",
    "listaddressline": "postal_address",
    "listaddresshtml": "postal_address",
    "senderaddress": "postal_address",
    "company": "sender.name",
    "companyname": "sender.name",
    "listname": "sender.name",
    "listcompany": "sender.name",
    "sendername": "sender.name",
    "fromname": "sender.name",
    "listemail": "sender.email",
    "senderemail": "sender.email",
    "fromemail": "sender.email",
    # The campaign's own texts, which templates from other tools fill in with tags too.
    "headline": "headline",
    "subject": "subject",
    "mcsubject": "subject",
    "title": "subject",
    "preheader": "preheader",
    "preview": "preheader",
    "previewtext": "preheader",
    "mcpreviewtext": "preheader",
    "offer": "offer",
}
# Links to a copy of the email on the sender's website: mailer does not host one.
WEB_VERSION = {
    "permalink", "shortpermalink", "permalinklabel", "webview", "webviewtext", "webversion",
    "viewonline", "archive", "archivelink", "weblink", "mcarchive",
}  # fmt: skip
# Parts of the sender's address that mailer keeps as one postal_address.
ADDRESS_PARTS = {"sendercity", "senderstate", "senderzip", "sendercountry", "senderaddress2"}
# Roots other tools put contact fields under: {{ person.first_name }}, customer., subscriber.
FOREIGN_ROOTS = ("person", "customer", "subscriber", "recipient", "user", "profile", "member")


@dataclass(frozen=True)
class Untranslated:
    """A tag left as it was: its line, the tag, and why."""

    line: int
    tag: str
    reason: str


@dataclass
class Adopted:
    """The rewritten template, what was changed and what could not be."""

    source: str
    text: str
    changes: int = 0
    tools: set[str] = field(default_factory=set)
    untranslated: list[Untranslated] = field(default_factory=list)
    error: str | None = None  # the result is not valid Jinja (then it must not be written)

    @property
    def changed(self) -> bool:
        """True when something was rewritten."""
        return self.text != self.source


class _Skip(Exception):
    """A tag this module recognises but cannot translate (the message says why)."""


# Names the template being adopted sets itself ({% for p in ... %}, {% set x %}): never
# taken for another tool's fields. Set per call of adopt_template.
_ASSIGNED: ContextVar[frozenset[str]] = ContextVar("assigned", default=frozenset())
_ASSIGNS = re.compile(r"\{%-?\s*(?:for\s+([\w\s,]+?)\s+in\b|set\s+(\w+)|macro\s+\w+\(([^)]*)\))")


def _roots() -> frozenset[str]:
    return JINJA_NAMES_OF_MAILER | _ASSIGNED.get()


def assigned_names(source: str) -> frozenset[str]:
    """Loop variables, ``set`` names and macro arguments a Jinja template defines."""
    names: set[str] = set()
    for found in _ASSIGNS.finditer(source):
        for group in found.groups():
            if group:
                names |= {part.split("=")[0].strip() for part in group.split(",")}
    return frozenset(n for n in names if n)


def letters(name: str) -> str:
    """A field name by its letters only: ``First_Name`` -> ``firstname``."""
    return re.sub(r"[^a-z]", "", name.lower())


def jinja_name(name: str) -> str:
    """The mailer expression another tool's field name most likely means.

    ``FNAME`` -> ``contact.first_name``; ``unsubscribe`` -> ``unsubscribe_url``;
    anything else is a contact field, in snake case (``ShoeSize`` -> ``contact.shoe_size``).
    Raises ``_Skip`` for a link to a web version (mailer hosts none).
    """
    root, _, rest = name.partition(".")
    if rest and root.lower() in FOREIGN_ROOTS:
        name = rest
    key = letters(name)
    if key in WEB_VERSION:
        raise _Skip("a link to a web copy of the email: mailer hosts none; remove it or link "
                    "a page of your own")  # fmt: skip
    if key in ADDRESS_PARTS:
        raise _Skip("part of the sender's address: mailer prints the whole postal address with "
                    "{{ postal_address }}; remove this part")  # fmt: skip
    if key in KNOWN_FIELDS:
        return KNOWN_FIELDS[key]
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()
    snake = re.sub(r"\W+", "_", snake).strip("_")
    if not snake or not (snake[0].isalpha() or snake[0] == "_"):
        raise _Skip(f"{name!r} cannot be a field name")
    return "contact." + snake


def printed(expression: str, fallback: str = "") -> str:
    """``{{ expr }}``; a contact field prints ``fallback`` when missing or empty, as
    the other tools print it."""
    if expression.startswith("contact."):
        return "{{ " + f"{expression} | default({_string(fallback)}, true)" + " }}"
    return "{{ " + expression + " }}"


def tested(expression: str) -> str:
    """The expression as an ``if`` test that a missing contact field makes false."""
    if expression.startswith("contact."):
        return f"{expression} | default('', true)"
    return expression


def _string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _value(text: str) -> str:
    """A literal from another tool's comparison: a number as is, anything else a string."""
    text = text.strip().strip("\"'")
    return text if re.fullmatch(r"-?\d+(?:\.\d+)?", text) else _string(text)


# -- Mailchimp ---------------------------------------------------------------------------
_MC = re.compile(r"\*\|\s*([^|*]+?)\s*\|\*")
_MC_TEST = re.compile(r"(?P<name>[A-Za-z][\w:-]*)\s*(?P<op>!=|>=|<=|=|>|<)?\s*(?P<value>.*)")


def _mailchimp(match: re.Match[str]) -> str:
    inner = match.group(1)
    head, sep, rest = inner.partition(":")
    kind = head.upper() if sep else ""
    if inner.upper() in ("END:IF", "END:IFNOT", "END:INTERESTED"):
        return "{% endif %}"
    if inner.upper() in ("ELSE:", "ELSE"):
        return "{% else %}"
    if kind in ("IF", "IFNOT", "ELSEIF"):
        condition = _mc_condition(rest)
        if kind == "IFNOT":
            return "{% if not (" + condition + ") %}"
        return "{% " + ("elif " if kind == "ELSEIF" else "if ") + condition + " %}"
    if kind in ("INTERESTED", "DATE", "RSSITEMS", "RSSFEED", "FEEDBLOCK", "REWARDS", "UNIQID"):
        raise _Skip(f"Mailchimp's {kind} has no counterpart in mailer")
    if inner.upper() in ("CURRENT_YEAR", "DATE", "REWARDS", "UNIQID", "HTML:REWARDS"):
        raise _Skip("Mailchimp fills this in itself; write the text, or a [data] value")
    name = inner.partition(":")[2] if kind in ("MC", "LIST", "HTML") else inner
    key = letters(inner)
    expression = KNOWN_FIELDS.get(key) or jinja_name(name)
    return printed(expression)


def _mc_condition(text: str) -> str:
    found = _MC_TEST.fullmatch(text.strip())
    if not found:
        raise _Skip(f"cannot read the condition {text!r}")
    expression = jinja_name(found["name"])
    if not found["op"]:
        return tested(expression)
    op = "==" if found["op"] == "=" else found["op"]
    number = re.fullmatch(r"-?\d+(?:\.\d+)?", found["value"].strip())
    left = f"({expression} | default({0 if number else _string('')}))"
    if not expression.startswith("contact."):
        left = expression
    return f"{left} {op} {_value(found['value'])}"


# -- Handlebars (SendGrid dynamic templates, Mandrill, Postmark) --------------------------
_HB_BLOCK = re.compile(
    r"\{\{\s*(#if|#unless|else|/if|/unless|#each|/each|#with|/with)\b\s*([^}]*)\}\}"
)
_HB_RAW = re.compile(r"\{\{\{\s*([A-Za-z_][\w.]*)\s*\}\}\}")


def _handlebars_block(match: re.Match[str]) -> str:
    word, argument = match.group(1), match.group(2).strip()
    if word == "else" and not argument:
        return "{% else %}"
    if word in ("/if", "/unless"):
        return "{% endif %}"
    if word in ("#if", "#unless") and re.fullmatch(r"[A-Za-z_][\w.]*", argument):
        test = tested(_mapped(argument))
        return "{% if " + (f"not ({test})" if word == "#unless" else test) + " %}"
    raise _Skip(f"Handlebars {match.group(0)!r}: write the Jinja by hand ({{% for %}}, "
                "{% if %}; see the template guide)")  # fmt: skip


def _handlebars_raw(match: re.Match[str]) -> str:
    # {{{ x }}} prints unescaped HTML there; mailer escapes contact data, on purpose.
    return printed(_mapped(match.group(1)))


def _mapped(name: str) -> str:
    """A name from a Handlebars or Liquid expression as mailer's (ours are kept)."""
    root = name.partition(".")[0]
    if root in _roots():
        return name
    return jinja_name(name)


# -- Liquid (Klaviyo, Shopify, Customer.io) and plain {{ name }} ----------------------------
_VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][\w.]*)\s*((?:\|[^{}|]*)*)\}\}")
_LIQUID_TAG = re.compile(r"\{%-?\s*(elsif|unless|endunless)\b([^%]*?)-?%\}")
_LIQUID_FILTERS = {"upcase": "upper", "downcase": "lower", "capitalize": "capitalize",
                   "strip": "trim", "escape": "e", "url_encode": "urlencode"}  # fmt: skip


def _variable(match: re.Match[str]) -> str:
    name, filters = match.group(1), match.group(2)
    pieces = [f.strip() for f in filters.split("|")[1:]] if filters else []
    foreign_filters = any(":" in p or p.split("(")[0].strip() in _LIQUID_FILTERS for p in pieces)
    if name.partition(".")[0] in _roots() and not foreign_filters:
        return match.group(0)  # mailer's own Jinja
    expression = _mapped(name)
    fallback: str | None = None
    jinja_filters = []
    for piece in pieces:
        filter_name, _, argument = piece.partition(":")
        filter_name = filter_name.strip()
        if filter_name == "default" and argument:
            fallback = json.loads(argument.strip()) if argument.strip()[:1] == '"' else (
                argument.strip().strip("'"))  # fmt: skip
        elif filter_name in _LIQUID_FILTERS and not argument:
            jinja_filters.append(_LIQUID_FILTERS[filter_name])
        elif "(" in piece or (not argument and re.fullmatch(r"\w+", filter_name)):
            jinja_filters.append(piece)  # a Jinja filter already
        else:
            raise _Skip(f"the Liquid filter {piece!r} has no translation here")
    if expression.startswith("contact.") or fallback is not None:
        jinja_filters.insert(0, f"default({_string(fallback or '')}, true)")
    body = " | ".join([expression, *jinja_filters])
    return "{{ " + body + " }}"


def _liquid_tag(match: re.Match[str]) -> str:
    word, argument = match.group(1), match.group(2).strip()
    if word == "endunless":
        return "{% endif %}"
    condition = _liquid_condition(argument)
    if word == "elsif":
        return "{% elif " + condition + " %}"
    return "{% if not (" + condition + ") %}"


_IF_TAG = re.compile(r"\{%-?\s*(if|elif)\s+([^%]*?)\s*-?%\}")


def _if_tag(match: re.Match[str]) -> str:
    word, argument = match.group(1), match.group(2)
    bare = re.sub(r"(['\"]).*?\1", "", argument)  # no strings
    bare = re.sub(r"\|\s*\w+|\bis\s+(?:not\s+)?\w+", "", bare)  # no filters, no tests
    names = re.findall(r"[A-Za-z_][\w.]*", bare)
    words = {"and", "or", "not", "in"}
    if all(n.partition(".")[0] in _roots() or n in words for n in names):
        return match.group(0)  # mailer's own Jinja
    return "{% " + word + " " + _liquid_condition(argument) + " %}"


def _liquid_condition(text: str) -> str:
    tokens = re.findall(
        r"\"[^\"]*\"|'[^']*'|[A-Za-z_][\w.]*|-?\d+(?:\.\d+)?|==|!=|>=|<=|>|<|\S", text
    )
    out = []
    for number, token in enumerate(tokens):
        if token in ("and", "or", "not", "==", "!=", ">=", "<=", ">", "<"):
            out.append(token)
        elif token[:1] in "\"'" or re.fullmatch(r"-?\d+(?:\.\d+)?", token):
            out.append(_value(token))
        elif token in ("contains", "blank", "empty", "nil") or not re.fullmatch(r"[\w.]+", token):
            raise _Skip(f"the condition {text.strip()!r} needs rewriting by hand")
        else:
            expression = _mapped(token)
            compared = number + 1 < len(tokens) and tokens[number + 1] in ("==", "!=", ">", "<",
                                                                            ">=", "<=")  # fmt: skip
            if expression.startswith("contact.") and compared:
                literal = tokens[number + 2] if number + 2 < len(tokens) else ""
                empty = "0" if re.fullmatch(r"-?\d+(?:\.\d+)?", literal) else "''"
                out.append(f"({expression} | default({empty}))")
            else:
                out.append(tested(expression))
    return " ".join(out)


# -- Mailgun, SendGrid, Campaign Monitor, and the bracket and percent styles -------------------
_MAILGUN = re.compile(r"%(recipient\.[A-Za-z_][\w]*|recipient_[a-z]+|[a-z_]*unsubscribe_url)%")
_SENDGRID_BRACKET = re.compile(r"\[(Sender_[A-Za-z]+|Unsubscribe(?:_Preferences)?|Weblink)\]")
_SENDGRID_DASH = re.compile(r"(?<![\w-])-([A-Za-z_][A-Za-z0-9_]*)-(?![\w-])")
_CM_FALLBACK = re.compile(r"\[([A-Za-z][\w]*)\s*,\s*fallback=([^\]]*)\]")
_CM_PLAIN = re.compile(r"\[(firstname|lastname|fullname|email)\]", re.IGNORECASE)
_CM_UNSUB = re.compile(r"<unsubscribe>(.*?)</unsubscribe>", re.DOTALL | re.IGNORECASE)
_CM_WEB = re.compile(r"<webversion>(.*?)</webversion>", re.DOTALL | re.IGNORECASE)
_DOUBLE_BRACKET = re.compile(r"\[\[\s*([A-Za-z][\w.-]*)\s*\]\]")
_PERCENT = re.compile(r"%%\s*([A-Za-z][\w.-]*)\s*%%")
_SINGLE_BRACE = re.compile(r"(?<![{$#%])\{([A-Za-z_][\w.]*)\}(?!\})")


def _mailgun(match: re.Match[str]) -> str:
    return printed(jinja_name(match.group(1).replace("recipient_", "recipient.")))


def _field(match: re.Match[str]) -> str:
    return printed(jinja_name(match.group(1)))


def _sendgrid_dash(match: re.Match[str]) -> str:
    name = match.group(1)
    if "_" not in name and letters(name) not in KNOWN_FIELDS:
        return match.group(0)  # "-ever-" in prose: not a tag
    return printed(jinja_name(name))


def _cm_fallback(match: re.Match[str]) -> str:
    return printed(jinja_name(match.group(1)), match.group(2))


def _cm_unsubscribe(match: re.Match[str]) -> str:
    return '<a href="{{ unsubscribe_url }}">' + match.group(1) + "</a>"


def _cm_web(match: re.Match[str]) -> str:
    raise _Skip("a link to a web copy of the email: mailer hosts none; remove it")


Rule = tuple[str, re.Pattern[str], Callable[[re.Match[str]], str]]
RULES: list[Rule] = [
    ("Mailchimp", _MC, _mailchimp),
    ("Handlebars", _HB_BLOCK, _handlebars_block),
    ("Handlebars", _HB_RAW, _handlebars_raw),
    ("Liquid", _LIQUID_TAG, _liquid_tag),
    ("Liquid", _IF_TAG, _if_tag),
    ("Handlebars/Liquid", _VARIABLE, _variable),
    ("Mailgun", _MAILGUN, _mailgun),
    ("SendGrid", _SENDGRID_BRACKET, _field),
    ("double-bracket", _DOUBLE_BRACKET, _field),
    ("Campaign Monitor", _CM_FALLBACK, _cm_fallback),
    ("Campaign Monitor", _CM_PLAIN, _field),
    ("Campaign Monitor", _CM_UNSUB, _cm_unsubscribe),
    ("Campaign Monitor", _CM_WEB, _cm_web),
    ("percent", _PERCENT, _field),
    ("single-brace", _SINGLE_BRACE, _field),
    ("SendGrid", _SENDGRID_DASH, _sendgrid_dash),
]


# Tags the lint reports as other tools' (never sent as they are): unmistakable ones only.
DETECT: list[tuple[str, re.Pattern[str]]] = [
    ("Handlebars", re.compile(r"\{\{\s*(?:[#/][A-Za-z]+\b[^{}]*|else)\s*\}\}|\{\{\{[^{}]*\}\}\}")),
    ("Liquid", re.compile(r"\{%-?\s*(?:elsif|unless|endunless)\b[^%]*%\}")),
    ("Liquid", re.compile(r"\{\{[^{}|]*\|\s*default:[^{}]*\}\}")),
    ("Mailgun", _MAILGUN),
    ("SendGrid", _SENDGRID_BRACKET),
    ("Campaign Monitor", _CM_FALLBACK),
]


def translate_tag(tag: str) -> str | None:
    """The Jinja for one foreign tag (``*|END:IF|*`` -> ``{% endif %}``), or None."""
    for _tool, pattern, rewrite in RULES:
        found = pattern.fullmatch(tag)
        if found:
            try:
                result = rewrite(found)
            except _Skip:
                return None
            return None if result == tag else result
    return None


def adopt_template(source: str) -> Adopted:
    """Rewrite every foreign merge tag ``source`` holds; list the ones it cannot."""
    adopted = Adopted(source, source)
    token = _ASSIGNED.set(assigned_names(source))
    try:
        for tool, pattern, rewrite in RULES:
            adopted.text = pattern.sub(
                functools.partial(_apply, adopted, tool, rewrite), adopted.text
            )
    finally:
        _ASSIGNED.reset(token)
    adopted.untranslated.sort(key=lambda u: u.line)
    try:
        jinja2.Environment().parse(adopted.text)
    except jinja2.TemplateSyntaxError as exc:
        adopted.error = f"line {exc.lineno}: {exc.message}"
    return adopted


def _apply(
    adopted: Adopted, tool: str, rewrite: Callable[[re.Match[str]], str], match: re.Match[str]
) -> str:
    try:
        result = rewrite(match)
    except _Skip as skip:
        line = adopted.text.count("\n", 0, match.start()) + 1
        adopted.untranslated.append(Untranslated(line, match.group(0), str(skip)))
        return match.group(0)
    if result != match.group(0):
        adopted.changes += 1
        adopted.tools.add(tool)
    return result
