"""Load and validate a campaign file (TOML) into a frozen ``Campaign``.

A campaign names its template, sender, subject (or A/B variants), preheader,
key content (headline, offer, call to action, optional hero image), audience,
throttle, UTM tags and free data for the template. Every mistake is reported
with the file and, where the key can be found, the line.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from mailer.core import locale_rules
from mailer.core.errors import CampaignError
from mailer.core.languages import LANGUAGE_TAG
from mailer.core.settings import (
    SENDER_KEYS,
    THROTTLE_KEYS,
    Sender,
    Settings,
    Throttle,
    sender_from,
    throttle_from,
)
from mailer.core.tomlfile import TomlFile, check_keys, read_toml

TEMPLATE_SUFFIXES = (".mjml", ".html")

_TOP_KEYS = (
    "id",
    "template",
    "subject",
    "subjects",
    "preheader",
    "sender",
    "content",
    "audience",
    "throttle",
    "utm",
    "data",
    "schedule",
    "web_fonts",
    "locale",
    "locales",
    "inherit",
    "fallback_locale",
    "ab",
)
_CONTENT_KEYS = ("headline", "offer", "cta_text", "cta_url", "hero_image", "hero_alt")
_AUDIENCE_KEYS = ("csv", "list", "segment", "encoding")
_UTM_KEYS = ("source", "medium", "campaign", "content", "term")
# The id names the outbox folder and sits in every Message-ID: plain ASCII, no path separators.
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,79}")


@dataclass(frozen=True)
class Content:
    """The key information: it must sit above the fold. Strings may hold Jinja."""

    headline: str
    offer: str
    cta_text: str
    cta_url: str
    hero_image: str | None = None
    hero_alt: str | None = None


@dataclass(frozen=True)
class AbTest:
    """``[ab]``: send ``test_share`` of the audience first (split A/B as usual), wait, then
    send the winning subject to everyone else."""

    test_share: float
    wait: timedelta
    pick_by: str = "clicks"  # "clicks" (most), "unsubscribes" (fewest) or "manual"
    default: str = "A"  # the variant sent when the test shows no clear winner
    min_per_variant: int = 100  # fewer sends per variant than this: no winner claimed


@dataclass(frozen=True)
class AudienceSpec:
    """Who receives the campaign: a CSV file, or a list and/or a segment of the database."""

    csv: Path | None = None
    list: str | None = None
    segment: str | None = None
    encoding: str | None = None  # of the CSV file; None: detected

    def describe(self) -> str:
        """A short human description, also used to compare audiences across runs."""
        if self.csv:
            return f"csv:{self.csv.name}"
        parts = [f"list:{self.list}" if self.list else "all contacts"]
        if self.segment:
            parts.append(f"segment:{self.segment}")
        return " ".join(parts)


@dataclass(frozen=True)
class Campaign:
    """A validated campaign file, with workspace settings folded in."""

    id: str
    path: Path
    template: Path
    subjects: tuple[str, ...]
    preheader: str
    sender: Sender
    content: Content
    audience: AudienceSpec
    throttle: Throttle
    settings: Settings
    utm: Mapping[str, str] = field(default_factory=dict)
    data: Mapping[str, Any] = field(default_factory=dict)
    schedule_table: Mapping[str, Any] | None = None
    # "strip": take web-font imports (<mj-font>, @import, @font-face) out of the HTML, so
    # opening the email asks no font host for anything; "keep" (the default) leaves them.
    web_fonts: str = "keep"
    doc: TomlFile | None = None
    # Several languages in one campaign: ``locale`` is the language of the top-level
    # texts (``locale = "zh-CN"``); ``translations`` are the ``[locales.<tag>]`` versions,
    # full campaigns of their own, keyed by lower-case tag ("en", "zh-tw").
    locale: str | None = None
    translations: Mapping[str, Campaign] = field(default_factory=dict)
    # The version for readers whose language has none (lower-case tag; None: the top level).
    fallback_locale: str | None = None
    ab: AbTest | None = None  # [ab]: a test share first, the winning subject to the rest

    def where(self, *keys: str) -> str:
        """``file:line`` of a key in the campaign file, for error messages."""
        return self.doc.where(*keys) if self.doc else str(self.path)

    def subject_where(self) -> str:
        """``file:line`` of the subject: ``subjects = [...]`` (A/B) or ``subject = "..."``."""
        many = self.doc is not None and "subjects" in self.doc.data
        return self.where("subjects" if many else "subject")


def load_campaign(path: Path | str, settings: Settings) -> Campaign:
    """Read ``path`` and return a validated ``Campaign`` or raise ``CampaignError``."""
    path = Path(path)
    doc = read_toml(path, CampaignError)
    data = doc.data
    check_keys(data, _TOP_KEYS, doc, CampaignError)
    for table, keys in (
        ("content", _CONTENT_KEYS),
        ("audience", _AUDIENCE_KEYS),
        ("utm", _UTM_KEYS),
        ("sender", SENDER_KEYS),
        ("throttle", THROTTLE_KEYS),
    ):
        check_keys(_table(doc, table), keys, doc, CampaignError, (table,))
    sender = sender_from(_table(doc, "sender"), doc, CampaignError, settings.sender)
    base = Campaign(
        id=_campaign_id(doc),
        path=path,
        template=find_template(_required_str(doc, "template"), doc, settings),
        subjects=_subjects(doc),
        preheader=_required_str(doc, "preheader"),
        sender=sender,
        content=_content(doc),
        audience=_audience(doc),
        throttle=throttle_from(_table(doc, "throttle"), doc, ("throttle",), settings.throttle),
        settings=replace(settings, sender=sender).in_language(_locale_tag(doc)),
        utm=_utm(doc),
        data=_table(doc, "data"),
        schedule_table=_table(doc, "schedule") or None,
        web_fonts=_web_fonts(doc),
        doc=doc,
        locale=_locale_tag(doc),
    )
    base = replace(base, ab=_ab_test(doc, len(base.subjects)))
    if base.ab is not None and base.schedule_table is not None:
        raise CampaignError(
            "a campaign has either [ab] (a test share, then the winner) or [schedule], not both",
            where=doc.where("ab"),
            hint="a scheduled greeting can still compare subjects: subjects = [...] splits A/B",
        )
    versions = translations(doc, base)
    return replace(
        base,
        translations=versions,
        fallback_locale=locale_rules.fallback_locale(doc, versions, base.locale),
    )


def _web_fonts(doc: TomlFile) -> str:
    value = doc.data.get("web_fonts", "keep")
    if value not in ("keep", "strip"):
        raise CampaignError(
            f'web_fonts must be "keep" or "strip", not {value!r}',
            where=doc.where("web_fonts"),
            hint='web_fonts = "strip" takes font imports out, so no font host learns who read it',
        )
    return str(value)


def _table(doc: TomlFile, name: str) -> dict[str, Any]:
    value = doc.data.get(name, {})
    if not isinstance(value, dict):
        raise CampaignError(f"'{name}' must be a table ([{name}])", where=doc.where(name))
    return value


def _required_str(doc: TomlFile, *keys: str) -> str:
    table: Any = doc.data
    for key in keys[:-1]:
        table = table.get(key, {})
    value = table.get(keys[-1])
    dotted = ".".join(keys)
    if value is None:
        where = doc.where(*keys[:-1]) if len(keys) > 1 else str(doc.path)
        raise CampaignError(f"missing required field '{dotted}'", where=where)
    if not isinstance(value, str) or not value.strip():
        raise CampaignError(f"'{dotted}' must be a non-empty string", where=doc.where(*keys))
    return value


def _campaign_id(doc: TomlFile) -> str:
    value = doc.data.get("id", doc.path.stem)
    if not isinstance(value, str) or not _ID.fullmatch(value):
        given = "id" in doc.data
        raise CampaignError(
            f"{'the' if given else 'the default'} campaign id {value!r} is not usable: "
            "use ASCII letters, digits, '.', '_' and '-' (at most 80)",
            where=doc.where("id") if given else str(doc.path),
            hint=None if given else 'add id = "..." to the campaign file',
        )
    return value


def _utm(doc: TomlFile) -> dict[str, str]:
    utm: dict[str, str] = {}
    for key, value in _table(doc, "utm").items():
        if isinstance(value, bool) or not isinstance(value, str | int | float) or value == "":
            raise CampaignError(
                f"'utm.{key}' must be a non-empty string", where=doc.where("utm", key)
            )
        utm[key] = str(value)
    return utm


def _optional_str(doc: TomlFile, table: str, key: str) -> str | None:
    value = _table(doc, table).get(key)
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise CampaignError(
            f"'{table}.{key}' must be a non-empty string", where=doc.where(table, key)
        )
    return value


def _subjects(doc: TomlFile) -> tuple[str, ...]:
    has_one, has_many = "subject" in doc.data, "subjects" in doc.data
    if has_one and has_many:
        raise CampaignError(
            "give either 'subject' or 'subjects' (A/B variants), not both",
            where=doc.where("subjects"),
        )
    if has_one:
        return (_one_line(doc, "subject", _required_str(doc, "subject")),)
    variants = doc.data.get("subjects")
    if variants is None:
        raise CampaignError(
            "missing required field 'subject'",
            where=str(doc.path),
            hint='add subject = "..." (or subjects = ["A", "B"] for an A/B test)',
        )
    if (
        not isinstance(variants, list)
        or not variants
        or not all(isinstance(v, str) and v.strip() for v in variants)
    ):
        raise CampaignError(
            "'subjects' must be a list of non-empty strings", where=doc.where("subjects")
        )
    return tuple(_one_line(doc, "subjects", v) for v in variants)


def _one_line(doc: TomlFile, key: str, subject: str) -> str:
    if "\r" in subject or "\n" in subject:
        raise CampaignError(
            f"'{key}' must be one line: a line break in a header would inject mail headers",
            where=doc.where(key),
        )
    return subject


def check_address(address: str, where: str, label: str) -> str:
    """Validate an email address (syntax only, no DNS) and return its normalised form."""
    from mailer.core.addresses import InvalidAddress, normalize_address

    try:
        return normalize_address(address)
    except InvalidAddress as exc:
        raise CampaignError(
            f"{label} is not a valid address: {address!r} ({exc})", where=where
        ) from None


def _content(doc: TomlFile) -> Content:
    if "content" not in doc.data:
        raise CampaignError(
            "missing required table [content]",
            where=str(doc.path),
            hint="add [content] with headline, offer, cta_text and cta_url",
        )
    content = Content(
        headline=_required_str(doc, "content", "headline"),
        offer=_required_str(doc, "content", "offer"),
        cta_text=_required_str(doc, "content", "cta_text"),
        cta_url=_required_str(doc, "content", "cta_url"),
        hero_image=_optional_str(doc, "content", "hero_image"),
        hero_alt=_optional_str(doc, "content", "hero_alt"),
    )
    _check_url(content.cta_url, doc.where("content", "cta_url"), "content.cta_url")
    if content.hero_image is not None:
        _check_url(content.hero_image, doc.where("content", "hero_image"), "content.hero_image")
        if not content.hero_alt:
            raise CampaignError(
                "content.hero_image needs content.hero_alt (text shown when images are off)",
                where=doc.where("content", "hero_image"),
            )
    return content


def _check_url(url: str, where: str, label: str) -> None:
    if "{{" in url:  # personalised URL: checked per recipient by `mailer check`
        return
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or " " in url:
        raise CampaignError(
            f"{label} is not a valid web address: {url!r}",
            where=where,
            hint="use a full URL such as https://shop.example.org/offer",
        )


def _audience(doc: TomlFile) -> AudienceSpec:
    table = _table(doc, "audience")
    if not table:
        raise CampaignError(
            "missing required table [audience]",
            where=str(doc.path),
            hint='add [audience] with csv = "contacts.csv", '
            'or list = "NAME" and/or segment = "..."',
        )
    if "csv" in table and ("list" in table or "segment" in table):
        raise CampaignError(
            "an audience is either a csv file or a list/segment of the database, not both",
            where=doc.where("audience"),
        )
    csv, list_name, segment, encoding = (_optional_str(doc, "audience", k) for k in _AUDIENCE_KEYS)
    if encoding is not None and csv is None:
        raise CampaignError(
            "audience.encoding is for a csv audience", where=doc.where("audience", "encoding")
        )
    if csv is not None:
        path = (doc.path.parent / csv).resolve()
        if not path.is_file():
            raise CampaignError(
                f"audience file not found: {csv}", where=doc.where("audience", "csv")
            )
        return AudienceSpec(csv=path, encoding=encoding)
    return AudienceSpec(list=list_name, segment=segment)


# The starter templates (promotion, newsletter, holiday) installed with the package.
BUILT_IN_TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def template_dirs(doc_path: Path, settings: Settings) -> list[Path]:
    """Where templates are looked for: next to the campaign, ../templates, <workspace>/templates,
    then the built-in starter templates (a workspace's own file of the same name wins)."""
    dirs = [
        doc_path.parent,
        doc_path.parent.parent / "templates",
        settings.root / "templates",
        BUILT_IN_TEMPLATES,
    ]
    unique: list[Path] = []
    for folder in dirs:
        resolved = folder.resolve()
        if resolved not in unique:
            unique.append(resolved)
    return unique


def find_template(name: str, doc: TomlFile, settings: Settings) -> Path:
    """Resolve a template name (``promotion``, ``promotion.mjml``, ``path/x.html``) to a file."""
    dirs = template_dirs(doc.path, settings)
    candidates = (
        [name]
        if Path(name).suffix in TEMPLATE_SUFFIXES
        else [name + suffix for suffix in TEMPLATE_SUFFIXES]
    )
    for folder in dirs:
        for candidate in candidates:
            path = folder / candidate
            if path.is_file():
                return path
    known = sorted(
        {
            p.stem
            for folder in dirs
            if folder.is_dir()
            for p in folder.iterdir()
            if p.suffix in TEMPLATE_SUFFIXES
        }
    )
    close = difflib.get_close_matches(Path(name).stem, known, n=1)
    hint = f"did you mean '{close[0]}'?" if close else "available: " + (", ".join(known) or "none")
    raise CampaignError(f"unknown template '{name}'", where=doc.where("template"), hint=hint)


# --- several languages ------------------------------------------------------------

_LOCALE_KEYS = ("subject", "subjects", "preheader", "content", "data")


def _locale_tag(doc: TomlFile) -> str | None:
    value = doc.data.get("locale")
    if value is None:
        return None
    if not isinstance(value, str) or not LANGUAGE_TAG.fullmatch(value):
        raise CampaignError(
            f'locale must be a language tag like "zh-CN" or "en", not {value!r}',
            where=doc.where("locale"),
        )
    return value


@dataclass(frozen=True)
class LocaleView(TomlFile):
    """One ``[locales.<tag>]`` version seen as a whole campaign file: its own keys where it
    has them (errors point at them), the top-level ones for everything else."""

    tag: str = ""
    own: Mapping[str, Any] = field(default_factory=dict)

    def where(self, *keys: str) -> str:
        """The line in ``[locales.<tag>]`` when the version has the key, else the top level."""
        table: Any = self.own
        for key in keys:
            if not isinstance(table, Mapping) or key not in table:
                return super().where(*keys)
            table = table[key]
        return super().where("locales", self.tag, *keys)


def translations(doc: TomlFile, base: Campaign) -> dict[str, Campaign]:
    """Every ``[locales.<tag>]`` version, complete, or one error naming every missing text.

    A version must give its own subject (or subjects), preheader, headline, offer
    and button text (and the hero image's alt text when there is a hero image):
    a reader must never get half a translation. The button's URL, the hero image
    and ``[data]`` keys holding text come from the top level only when declared in
    ``inherit`` (``mailer.core.locale_rules``); otherwise each version gives them.
    """
    table = _table(doc, "locales")
    found: dict[str, Campaign] = {}
    gaps: list[str] = []
    inherit = locale_rules.declared(doc) if table else frozenset()
    borrowed: list[str] = []
    first_borrower = ""
    for tag, entry in table.items():
        if not isinstance(entry, dict) or not LANGUAGE_TAG.fullmatch(tag):
            raise CampaignError(
                f"locales.{tag} must be a table named by a language tag, like [locales.en]",
                where=doc.where("locales", tag),
            )
        check_keys(entry, _LOCALE_KEYS, doc, CampaignError, ("locales", tag))
        content = entry.get("content", {})
        if not isinstance(content, dict):
            raise CampaignError(
                f"locales.{tag}.content must be a table", where=doc.where("locales", tag)
            )
        check_keys(content, _CONTENT_KEYS, doc, CampaignError, ("locales", tag, "content"))
        missing = [] if ("subject" in entry or "subjects" in entry) else ["subject"]
        missing += [k for k in ("preheader",) if k not in entry]
        needed = ["headline", "offer", "cta_text"] + (
            ["hero_alt"] if base.content.hero_image else []
        )
        missing += [f"content.{k}" for k in needed if k not in content]
        if missing:
            gaps.append(f"{tag}: {', '.join(missing)}")
            continue
        taken = locale_rules.inherited(doc, entry, inherit)
        if taken:
            borrowed.append(f"[locales.{tag}] inherits {', '.join(taken)}")
            first_borrower = first_borrower or tag
        found[tag.lower()] = _translated(doc, base, tag, entry)
    if gaps:
        raise CampaignError(
            "missing translations (" + "; ".join(gaps) + ")",
            where=doc.where("locales"),
            hint="every [locales.<tag>] gives its own subject, preheader, headline, offer "
            "and cta_text",
        )
    if borrowed:
        top = f"the top-level ({base.locale}) texts" if base.locale else "the top-level texts"
        raise CampaignError(
            "; ".join(borrowed) + f" from {top}: its readers would get another language",
            where=doc.where("locales", first_borrower),
            hint="give them in the version ([locales.<tag>.data], [locales.<tag>.content]), "
            'or declare them the same in every language: inherit = ["content.cta_url", ...]',
        )
    if base.locale and base.locale.lower() in found:
        raise CampaignError(
            f"[locales.{base.locale}] repeats the top-level locale {base.locale!r}",
            where=doc.where("locales", base.locale),
            hint="the top-level texts are that version; remove one of them",
        )
    return found


def _translated(doc: TomlFile, base: Campaign, tag: str, entry: Mapping[str, Any]) -> Campaign:
    data = {k: v for k, v in doc.data.items() if k not in ("subject", "subjects", "locales")}
    data.update({k: entry[k] for k in ("subject", "subjects", "preheader") if k in entry})
    data["content"] = {**_table(doc, "content"), **entry.get("content", {})}
    data["data"] = {**_table(doc, "data"), **entry.get("data", {})}
    view = LocaleView(doc.path, doc.text, data, tag=tag, own=entry)
    return replace(
        base,
        subjects=_subjects(view),
        preheader=_required_str(view, "preheader"),
        content=_content(view),
        data=data["data"],
        doc=view,
        locale=tag,
        settings=base.settings.in_language(tag),
    )


# --- A/B test share --------------------------------------------------------------

_AB_KEYS = ("test_share", "wait", "pick_by", "default", "min_per_variant")
_WAIT = re.compile(r"(\d+(?:\.\d+)?)\s*([mhd])")


def _ab_test(doc: TomlFile, variants: int) -> AbTest | None:
    table = _table(doc, "ab")
    if not table:
        return None
    check_keys(table, _AB_KEYS, doc, CampaignError, ("ab",))
    if variants < 2:
        raise CampaignError(
            "[ab] needs two or more subjects to compare",
            where=doc.where("ab"),
            hint='subjects = ["...", "..."]',
        )
    share = table.get("test_share")
    if isinstance(share, bool) or not isinstance(share, int | float) or not 0 < share < 1:
        raise CampaignError(
            f"ab.test_share must be a share between 0 and 1 (0.2 is 20 %), not {share!r}",
            where=doc.where("ab", "test_share") if "test_share" in table else doc.where("ab"),
        )
    wait = _WAIT.fullmatch(str(table.get("wait", "")).strip())
    if not wait:
        raise CampaignError(
            f'ab.wait must be a duration like "4h", "90m" or "1d", not {table.get("wait")!r}',
            where=doc.where("ab", "wait") if "wait" in table else doc.where("ab"),
        )
    unit = {"m": "minutes", "h": "hours", "d": "days"}[wait.group(2)]
    pick_by = table.get("pick_by", "clicks")
    if pick_by not in ("clicks", "unsubscribes", "manual"):
        raise CampaignError(
            f'ab.pick_by must be "clicks", "unsubscribes" or "manual", not {pick_by!r}',
            where=doc.where("ab", "pick_by"),
        )
    default = str(table.get("default", "A")).upper()
    if len(default) != 1 or not 0 <= ord(default) - ord("A") < variants:
        raise CampaignError(
            f"ab.default must name one of the {variants} variants (A, B, ...), not {default!r}",
            where=doc.where("ab", "default"),
        )
    minimum = table.get("min_per_variant", 100)
    if isinstance(minimum, bool) or not isinstance(minimum, int) or minimum < 1:
        raise CampaignError(
            "ab.min_per_variant must be a whole number >= 1",
            where=doc.where("ab", "min_per_variant"),
        )
    return AbTest(
        float(share), timedelta(**{unit: float(wait.group(1))}), pick_by, default, minimum
    )
