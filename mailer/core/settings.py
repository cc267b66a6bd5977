"""Workspace settings: ``mailer.toml`` + environment + flags, resolved once at the edge.

Precedence, highest first: CLI flag > environment > campaign > ``mailer.toml``
> defaults. ``load_settings`` applies the file, the environment and flags;
``Campaign`` loading applies the campaign's own overrides (sender, throttle)
between the environment and the file, by calling ``merged_with``.

Secrets never live here: the SMTP password is read from the environment
variable the settings name (``MAILER_SMTP_PASSWORD`` by default) at the moment
of connecting, and is never stored on these objects.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from mailer.core.days_off import DaysOffByHand, days_off_from
from mailer.core.demo import (
    DEMO_POSTAL_ADDRESS,
    DEMO_SENDER_EMAIL,
    DEMO_SENDER_NAME,
    DEMO_UNSUBSCRIBE_MAILTO,
    DEMO_UNSUBSCRIBE_URL,
)
from mailer.core.errors import ConfigError, MailerError
from mailer.core.languages import for_locale, page_texts, postal_addresses
from mailer.core.tomlfile import TomlFile, check_keys, read_toml
from mailer.core.workspace import SETTINGS_FILE as SETTINGS_FILE
from mailer.core.workspace import find_workspace


@dataclass(frozen=True)
class Sender:
    """Who the campaign is from: display name, address, optional Reply-To."""

    name: str = DEMO_SENDER_NAME
    email: str = DEMO_SENDER_EMAIL
    reply_to: str | None = None


@dataclass(frozen=True)
class Throttle:
    """Stacked sending limits. ``None`` means "no limit" for that window."""

    per_second: float | None = None
    per_hour: int | None = None
    per_day: int | None = None
    concurrency: int = 4
    per_domain: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Smtp:
    """How to reach the relay. No password: that comes from ``password_env`` at connect time."""

    url: str | None = None
    profile: str | None = None
    preset: str | None = None
    pool: int = 4
    timeout: float = 30.0
    insecure_skip_verify: bool = False
    password_env: str = "MAILER_SMTP_PASSWORD"
    # smtp:// only: "auto" upgrades to STARTTLS when the relay offers it, "none" never.
    tls: str = "auto"


@dataclass(frozen=True)
class Retry:
    """How a recipient whose delivery was deferred (4xx, greylisting) is retried.

    The n-th retry waits ``base_seconds * 2**(n-1)`` (at most ``max_seconds``,
    with jitter); after ``attempts`` tries the recipient is failed. Greylisting
    servers usually accept a retry after 1-5 minutes: keep the sum of the waits
    above that.
    """

    base_seconds: float = 30.0
    max_seconds: float = 900.0
    attempts: int = 5


@dataclass(frozen=True)
class Sending:
    """How a send run treats unknowns and stop requests (``[send]`` in mailer.toml).

    A run pauses once more than ``max_unknown`` messages, or ``max_unknown_share``
    of the messages it planned (whichever is larger), are unknown: the connection
    was lost, or the reply timed out, after the final "." (perhaps delivered).
    After SIGTERM or Ctrl-C, in-flight messages get ``stop_grace`` seconds to
    finish. A relay that nobody answers pauses the run after ``relay_down_limit``
    seconds of tries.
    """

    max_unknown: int = 10
    max_unknown_share: float = 0.01
    stop_grace: float = 8.0
    relay_down_limit: float = 60.0


@dataclass(frozen=True)
class FrequencyCapSetting:
    """At most ``max_messages`` campaign emails per contact in ``days`` days."""

    max_messages: int
    days: int


@dataclass(frozen=True)
class Feedback:
    """What bounces and complaints do (``[feedback]`` in mailer.toml).

    A hard bounce or a complaint suppresses the address at once; soft bounces
    suppress it after ``soft_bounce_limit`` within ``soft_bounce_days`` with no
    delivery between them (the big ESPs' default: 3 in 30 days). A running
    send pauses itself when its bounce, complaint or sender-side refusal rate
    passes the limit, once ``min_delivered`` messages have gone out (Gmail and
    Yahoo ask for a spam-complaint rate under 0.3 %).
    """

    soft_bounce_limit: int = 3
    soft_bounce_days: int = 30
    pause_bounce_rate: float = 0.05
    pause_complaint_rate: float = 0.003
    pause_sender_rate: float = 0.02
    min_delivered: int = 100
    # The bounce mailbox ``mailer bounces fetch`` reads: imaps://USER@HOST[:PORT]/FOLDER
    # (the password comes from MAILER_IMAP_PASSWORD), and where handled mail goes.
    imap: str | None = None
    done_folder: str = "Processed"


@dataclass(frozen=True)
class Serve:
    """``mailer serve`` behind a reverse proxy (``[serve]`` in mailer.toml).

    ``trusted_proxies``: addresses or networks (``"127.0.0.1"``, ``"10.0.0.0/8"``) whose
    X-Forwarded-For header names the real client (for the per-client rate limit).
    From any other peer the header is ignored: anyone can write it.
    """

    trusted_proxies: tuple[str, ...] = ()


@dataclass(frozen=True)
class SpamCheck:
    """``[spam]``: the spam-filter score ``mailer check`` asks SpamAssassin for."""

    threshold: float = 5.0  # at or above: an error (SpamAssassin's own default is 5.0)
    spamd: str | None = None  # "host:port" of a running spamd (spamc); else spamassassin -L


@dataclass(frozen=True)
class Settings:
    """Everything a command needs to know about the workspace."""

    root: Path = Path(".")
    sender: Sender = field(default_factory=Sender)
    postal_address: str = DEMO_POSTAL_ADDRESS
    # [footer.locales.<tag>] and [unsubscribe.page.<tag>], keyed by lower-case tag.
    postal_addresses: Mapping[str, str] = field(default_factory=dict)
    unsubscribe_pages: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    top_postal_address: str | None = None  # set once in_language picked another one
    unsubscribe_url: str | None = DEMO_UNSUBSCRIBE_URL
    unsubscribe_mailto: str | None = DEMO_UNSUBSCRIBE_MAILTO
    throttle: Throttle = field(default_factory=Throttle)
    retry: Retry = field(default_factory=Retry)
    smtp: Smtp = field(default_factory=Smtp)
    db_path: Path = Path("mailer.db")
    # [store] url: the PostgreSQL store instead of the SQLite file (password from PGPASSWORD).
    store_url: str | None = None
    # [store] busy_timeout: seconds a write waits for another process's lock on the
    # SQLite file before the run stops with "database is locked".
    store_busy_timeout: float = 30.0
    sending: Sending = field(default_factory=Sending)
    outbox: Path = Path("outbox")
    test_address: str | None = None
    default_timezone: str = "UTC"
    frequency_cap: FrequencyCapSetting | None = None
    dkim_key: Path | None = None
    dkim_selector: str | None = None
    dkim_ed25519_key: Path | None = None  # an optional Ed25519 co-signature (RFC 8463)
    dkim_ed25519_selector: str | None = None
    feedback: Feedback = field(default_factory=Feedback)
    serve: Serve = field(default_factory=Serve)
    # Click tracking ([tracking] clicks = true, url = "https://mail.example.com"): links
    # go through mailer serve's /c/<token>, which counts the click and redirects. Off
    # unless both are set.
    track_clicks_url: str | None = None
    # [doctor] return_path: the envelope (MAIL FROM) domain an ESP uses for you once a
    # custom MAIL FROM / return-path domain is set up there (mailer doctor checks its SPF).
    doctor_return_path: str | None = None
    spam: SpamCheck = field(default_factory=SpamCheck)
    # [calendar.days_off.<year>]: China's days in lieu and working weekends, by hand.
    days_off: DaysOffByHand = field(default_factory=DaysOffByHand)
    source: str = "defaults"

    @property
    def smtp_configured(self) -> bool:
        """True when a relay URL is known (otherwise sends go to the outbox)."""
        return self.smtp.url is not None

    def in_language(self, tag: str | None) -> Settings:
        """These settings as a reader of ``tag`` gets them: the footer's postal address
        in their language when ``[footer.locales]`` has one (falling back zh-TW -> zh),
        else the top-level one."""
        if not self.postal_addresses:
            return self
        top = self.top_postal_address or self.postal_address
        address = for_locale(self.postal_addresses, tag) or top
        return replace(self, postal_address=address, top_postal_address=top)

    def merged_with(self, **changes: Any) -> Settings:
        """A copy with some fields replaced (used for campaign-level overrides)."""
        return replace(self, **changes)


_TOP_KEYS = {
    "sender",
    "footer",
    "unsubscribe",
    "throttle",
    "retry",
    "smtp",
    "store",
    "send",
    "outbox",
    "test_address",
    "timezone",
    "frequency_cap",
    "dkim",
    "feedback",
    "tracking",
    "serve",
    "doctor",
    "spam",
    "calendar",
}
_SECTION_KEYS = {
    "calendar": {"days_off"},
    "sender": {"name", "email", "reply_to"},
    "footer": {"postal_address", "locales"},
    "unsubscribe": {"url", "mailto", "page"},
    "throttle": {"per_second", "per_hour", "per_day", "concurrency", "per_domain"},
    "retry": {"base_seconds", "max_seconds", "attempts"},
    "smtp": {
        "url",
        "profile",
        "preset",
        "pool",
        "timeout",
        "insecure_skip_verify",
        "password_env",
        "tls",
        "profiles",
    },
    "store": {"path", "url", "busy_timeout"},
    "send": {"max_unknown", "max_unknown_share", "stop_grace", "relay_down_limit"},
    "outbox": {"path"},
    "frequency_cap": {"max_messages", "days"},
    "feedback": {
        "soft_bounce_limit",
        "soft_bounce_days",
        "pause_bounce_rate",
        "pause_complaint_rate",
        "pause_sender_rate",
        "min_delivered",
        "imap",
        "done_folder",
    },
    "dkim": {"key", "selector", "ed25519_key", "ed25519_selector"},
    "tracking": {"clicks", "url"},
    "serve": {"trusted_proxies"},
    "doctor": {"return_path"},
    "spam": {"threshold", "spamd"},
}
SMTP_PROFILE_KEYS = _SECTION_KEYS["smtp"] - {"profile", "profiles"}
THROTTLE_KEYS = _SECTION_KEYS["throttle"]
SENDER_KEYS = _SECTION_KEYS["sender"]


def load_settings(
    root: Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    db: Path | None = None,
    smtp_url: str | None = None,
    smtp_profile: str | None = None,
) -> Settings:
    """Read ``mailer.toml`` in ``root`` (if any), then apply environment and flags.

    ``root`` defaults to the workspace found from the current folder
    (``mailer.core.workspace.find_workspace``: ``MAILER_WORKSPACE``, else the
    nearest folder upwards holding mailer.toml). Environment: ``MAILER_DB``,
    ``MAILER_STORE_URL``, ``MAILER_SMTP_URL``, ``MAILER_SMTP_PROFILE``,
    ``MAILER_OUTBOX``, ``MAILER_TEST_ADDRESS``. Flags (``db``, ``smtp_url``,
    ``smtp_profile``) beat the environment. Relative paths in the file and the
    environment are under the workspace; a ``db`` flag is relative to the
    current folder, where the user typed it.
    """
    env = os.environ if env is None else env
    root = Path(root) if root else find_workspace(Path.cwd(), env).root
    path = root / SETTINGS_FILE
    settings = Settings(root=root)
    # The chosen profile is applied on top of the [smtp] table only, never on top of
    # another profile: keys such as insecure_skip_verify must not leak between profiles.
    profile = smtp_profile or env.get("MAILER_SMTP_PROFILE")
    if path.exists():
        settings = _apply_file(settings, read_toml(path, ConfigError), profile)
    elif profile:
        settings = replace(settings, smtp=_profile(None, profile, settings.smtp))
    changes: dict[str, Any] = {}
    if db:
        changes["db_path"] = Path(db).absolute()
    elif env.get("MAILER_DB"):
        changes["db_path"] = Path(env["MAILER_DB"])
    if env.get("MAILER_STORE_URL"):
        changes["store_url"] = store_url(env["MAILER_STORE_URL"], "MAILER_STORE_URL")
    if env.get("MAILER_OUTBOX"):
        changes["outbox"] = Path(env["MAILER_OUTBOX"])
    if env.get("MAILER_TEST_ADDRESS"):
        changes["test_address"] = env["MAILER_TEST_ADDRESS"]
    url = smtp_url or env.get("MAILER_SMTP_URL")
    if url:
        changes["smtp"] = replace(settings.smtp, url=url)
    settings = replace(settings, **changes)
    return replace(
        settings, db_path=_under(root, settings.db_path), outbox=_under(root, settings.outbox)
    )


def store_url(url: object, where: str) -> str:
    """Check a PostgreSQL store URL: the right scheme, and no password in it."""
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("postgresql", "postgres"):
        raise ConfigError(
            f"the store url must be a postgresql:// URL, not {url!r}",
            where=where,
            hint="for the embedded SQLite store, set [store] path instead",
        )
    if parts.password is not None:
        raise ConfigError(
            "the store url carries a password",
            where=where,
            hint="remove it from the URL and set PGPASSWORD in the environment "
            "(or use ~/.pgpass): secrets stay out of files",
        )
    return str(url)


def _store_url_from(doc: TomlFile, default: str | None) -> str | None:
    url = doc.data.get("store", {}).get("url")
    return default if url is None else store_url(url, doc.where("store", "url"))


def _under(root: Path, path: Path) -> Path:
    return path if path.is_absolute() else root / path


def _apply_file(settings: Settings, doc: TomlFile, profile: str | None) -> Settings:
    data = doc.data
    check_keys(data, _TOP_KEYS, doc, ConfigError)
    for section, keys in _SECTION_KEYS.items():
        table = data.get(section)
        if table is None:
            continue
        if not isinstance(table, dict):
            raise ConfigError(f"'{section}' must be a table", where=doc.where(section))
        check_keys(table, keys, doc, ConfigError, (section,))
    sender = sender_from(data.get("sender", {}), doc, ConfigError, settings.sender)
    footer = data.get("footer", {})
    unsub = data.get("unsubscribe", {})
    _check_unsubscribe(unsub, doc)
    # Giving a url or a mailto replaces both defaults (one of them may be left out on
    # purpose); [unsubscribe.page.<tag>] wording alone leaves them.
    links = "url" in unsub or "mailto" in unsub
    address = footer.get("postal_address", settings.postal_address)
    if not isinstance(address, str) or not address.strip():
        raise ConfigError(
            "'footer.postal_address' must be a non-empty string: every marketing email "
            "carries the sender's postal address",
            where=doc.where("footer", "postal_address"),
        )
    cap = data.get("frequency_cap")
    dkim = data.get("dkim", {})
    return replace(
        settings,
        sender=sender,
        postal_address=footer.get("postal_address", settings.postal_address),
        postal_addresses=postal_addresses(footer, doc),
        unsubscribe_pages=page_texts(unsub, doc),
        unsubscribe_url=unsub.get("url", None if links else settings.unsubscribe_url),
        unsubscribe_mailto=unsub.get("mailto", None if links else settings.unsubscribe_mailto),
        throttle=throttle_from(data.get("throttle", {}), doc, ("throttle",), settings.throttle),
        retry=_retry_from(data.get("retry", {}), doc, settings.retry),
        smtp=_smtp_from(doc, profile),
        db_path=Path(data.get("store", {}).get("path", settings.db_path)),
        store_url=_store_url_from(doc, settings.store_url),
        store_busy_timeout=_positive(
            data.get("store", {}).get("busy_timeout", settings.store_busy_timeout),
            doc,
            ("store", "busy_timeout"),
        ),
        sending=_sending_from(data.get("send", {}), doc, settings.sending),
        outbox=Path(data.get("outbox", {}).get("path", settings.outbox)),
        test_address=data.get("test_address", settings.test_address),
        default_timezone=data.get("timezone", settings.default_timezone),
        frequency_cap=_cap_from(cap, doc) if cap else None,
        feedback=_feedback_from(data.get("feedback", {}), doc),
        track_clicks_url=_tracking_from(data.get("tracking", {}), doc),
        serve=_serve_from(data.get("serve", {}), doc),
        dkim_key=Path(dkim["key"]) if "key" in dkim else None,
        dkim_selector=dkim.get("selector"),
        dkim_ed25519_key=Path(dkim["ed25519_key"]) if "ed25519_key" in dkim else None,
        dkim_ed25519_selector=dkim.get("ed25519_selector"),
        doctor_return_path=_return_path_from(data.get("doctor", {}), doc),
        spam=_spam_from(data.get("spam", {}), doc),
        days_off=days_off_from(data.get("calendar", {}), doc),
        source=str(doc.path),
    )


def sender_from(
    table: Mapping[str, Any], doc: TomlFile, error: type[MailerError], base: Sender
) -> Sender:
    """``base`` with a ``[sender]`` table applied: one-line strings and valid addresses only."""
    from mailer.core.addresses import InvalidAddress, normalize_address

    for key, value in table.items():
        where = doc.where("sender", key)
        if not isinstance(value, str) or not value.strip():
            raise error(f"'sender.{key}' must be a non-empty string", where=where)
        if "\r" in value or "\n" in value:
            raise error(f"sender.{key} must be one line", where=where)
        if key in ("email", "reply_to"):
            try:
                normalize_address(value)
            except InvalidAddress as exc:
                raise error(
                    f"sender.{key} is not a valid address: {value!r} ({exc})", where=where
                ) from None
    return replace(base, **table)


def _check_unsubscribe(table: Mapping[str, Any], doc: TomlFile) -> None:
    """The unsubscribe URL and mailto go into a header: refuse anything that is not one."""
    from mailer.core.addresses import InvalidAddress, normalize_address

    url, mailto = table.get("url"), table.get("mailto")
    if url is not None:
        # Jinja placeholders ({{ token }}) are filled in per recipient: check the rest.
        bare = re.sub(r"\{\{.*?\}\}|\{%.*?%\}", "x", url) if isinstance(url, str) else ""
        parts = urlsplit(bare)
        if (
            parts.scheme not in ("http", "https")
            or not parts.netloc
            or any(c.isspace() or c in '<>"' for c in bare)
        ):
            raise ConfigError(
                f"unsubscribe.url is not a valid web address: {url!r}",
                where=doc.where("unsubscribe", "url"),
                hint='use a full URL such as "https://example.org/unsubscribe?t={{ token }}"',
            )
    if mailto is not None:
        try:
            if not isinstance(mailto, str):
                raise InvalidAddress("it must be a string")
            normalize_address(mailto)
        except InvalidAddress as exc:
            hint = "write just the address, without 'mailto:'" if "mailto:" in str(mailto) else None
            raise ConfigError(
                f"unsubscribe.mailto is not a valid address: {mailto!r} ({exc})",
                where=doc.where("unsubscribe", "mailto"),
                hint=hint,
            ) from None


def throttle_from(
    table: Mapping[str, Any], doc: TomlFile, prefix: tuple[str, ...], base: Throttle
) -> Throttle:
    """Build a ``Throttle`` from a TOML table on top of ``base``, checking types."""
    values: dict[str, Any] = {}
    for key in ("per_second", "per_hour", "per_day", "concurrency"):
        if key not in table:
            continue
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ConfigError(
                f"'{'.'.join((*prefix, key))}' must be a positive number, not {value!r}",
                where=doc.where(*prefix, key),
            )
        values[key] = value
    if "per_domain" in table:
        per_domain = table["per_domain"]
        if not isinstance(per_domain, dict) or not all(
            isinstance(v, int | float) and v > 0 for v in per_domain.values()
        ):
            raise ConfigError(
                "'per_domain' must map domains to positive messages-per-second numbers",
                where=doc.where(*prefix, "per_domain"),
                hint='per_domain = { "gmail.com" = 5 }',
            )
        values["per_domain"] = dict(per_domain)
    return replace(base, **values)


def _spam_from(table: Mapping[str, Any], doc: TomlFile) -> SpamCheck:
    threshold = table.get("threshold", SpamCheck.threshold)
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or threshold <= 0:
        raise ConfigError(
            f"'spam.threshold' must be a score above 0 (SpamAssassin's default is 5.0), "
            f"not {threshold!r}",
            where=doc.where("spam", "threshold"),
        )
    spamd = table.get("spamd")
    if spamd is not None and (not isinstance(spamd, str) or not spamd.rpartition(":")[2].isdigit()):
        raise ConfigError(
            f"'spam.spamd' must be \"host:port\" of a running spamd, not {spamd!r}",
            where=doc.where("spam", "spamd"),
        )
    return SpamCheck(float(threshold), spamd)


def _retry_from(table: Mapping[str, Any], doc: TomlFile, base: Retry) -> Retry:
    values: dict[str, Any] = {}
    for key, value in table.items():
        whole = key == "attempts"
        if (
            isinstance(value, bool)
            or not isinstance(value, int if whole else int | float)
            or value <= 0
        ):
            kind = "a whole number" if whole else "a number of seconds"
            raise ConfigError(
                f"'retry.{key}' must be {kind} above 0, not {value!r}",
                where=doc.where("retry", key),
            )
        values[key] = value
    return replace(base, **values)


def _positive(value: Any, doc: TomlFile, path: tuple[str, ...], whole: bool = False) -> Any:
    """``value`` when it is a number above 0 (a whole one when ``whole``), else ConfigError."""
    number = not isinstance(value, bool) and isinstance(value, int if whole else int | float)
    if not number or value <= 0:
        kind = "a whole number" if whole else "a number"
        raise ConfigError(
            f"'{'.'.join(path)}' must be {kind} above 0, not {value!r}", where=doc.where(*path)
        )
    return value


def _sending_from(table: Mapping[str, Any], doc: TomlFile, base: Sending) -> Sending:
    values = {
        key: _positive(value, doc, ("send", key), whole=key == "max_unknown")
        for key, value in table.items()
    }
    share = values.get("max_unknown_share", base.max_unknown_share)
    if share >= 1:
        raise ConfigError(
            f"'send.max_unknown_share' is a fraction below 1 (0.01 = 1 %), not {share!r}",
            where=doc.where("send", "max_unknown_share"),
        )
    return replace(base, **values)


def _smtp_from(doc: TomlFile, profile: str | None) -> Smtp:
    table = dict(doc.data.get("smtp", {}))
    chosen = profile or table.get("profile")
    base = Smtp(**{k: v for k, v in table.items() if k in SMTP_PROFILE_KEYS})
    return _profile(doc, chosen, base) if chosen else base


def _profile(doc: TomlFile | None, name: str, base: Smtp) -> Smtp:
    profiles = doc.data.get("smtp", {}).get("profiles", {}) if doc else {}
    if name not in profiles:
        known = ", ".join(sorted(profiles)) or "none defined"
        raise ConfigError(
            f"unknown SMTP profile '{name}' (known: {known})",
            where=str(doc.path) if doc else SETTINGS_FILE,
            hint="define it as [smtp.profiles." + name + "] with a url in mailer.toml",
        )
    table = profiles[name]
    check_keys(table, SMTP_PROFILE_KEYS, doc, ConfigError, ("smtp", "profiles", name))  # type: ignore[arg-type]
    return replace(base, profile=name, **table)


def _feedback_from(table: Mapping[str, Any], doc: TomlFile) -> Feedback:
    defaults = Feedback()
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key in ("imap", "done_folder"):
            values[key] = _mailbox_setting(key, value, doc)
            continue
        kind = type(getattr(defaults, key))
        number_ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not number_ok or value < 0 or (kind is int and not float(value).is_integer()):
            raise ConfigError(
                f"feedback.{key} must be a {'whole ' if kind is int else ''}number >= 0, "
                f"not {value!r}",
                where=doc.where("feedback", key),
            )
        if key.endswith("_rate") and value > 1:
            raise ConfigError(
                f"feedback.{key} is a share (0.05 is 5 %), not {value!r}",
                where=doc.where("feedback", key),
            )
        values[key] = kind(value)
    return replace(defaults, **values)


def _serve_from(table: Mapping[str, Any], doc: TomlFile) -> Serve:
    """``[serve] trusted_proxies``: a list of IP addresses or networks."""
    import ipaddress

    proxies = table.get("trusted_proxies", [])
    if not isinstance(proxies, list) or not all(isinstance(p, str) for p in proxies):
        raise ConfigError(
            "serve.trusted_proxies must be a list of addresses",
            where=doc.where("serve", "trusted_proxies"),
            hint='trusted_proxies = ["127.0.0.1"] (your reverse proxy)',
        )
    for proxy in proxies:
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError:
            raise ConfigError(
                f"serve.trusted_proxies: {proxy!r} is not an IP address or network",
                where=doc.where("serve", "trusted_proxies"),
                hint='give addresses like "127.0.0.1" or networks like "10.0.0.0/8"',
            ) from None
    return Serve(tuple(proxies))


def _return_path_from(table: Mapping[str, Any], doc: TomlFile) -> str | None:
    value = table.get("return_path")
    if value is None:
        return None
    name = value.strip().lower().rstrip(".") if isinstance(value, str) else ""
    if "." not in name or "@" in name or " " in name:
        raise ConfigError(
            f"doctor.return_path must be a domain name such as bounce.example.com, not {value!r}",
            where=doc.where("doctor", "return_path"),
        )
    return name


def _tracking_from(table: Mapping[str, Any], doc: TomlFile) -> str | None:
    """``[tracking] clicks = true`` with the https ``url`` where mailer serve answers."""
    clicks = table.get("clicks", False)
    if not isinstance(clicks, bool):
        raise ConfigError("tracking.clicks must be true or false", where=doc.where("tracking"))
    if not clicks:
        return None
    url = table.get("url")
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme != "https" or not parts.hostname or parts.query:
        raise ConfigError(
            "tracking.clicks needs tracking.url: the https address of mailer serve",
            where=doc.where("tracking"),
            hint='url = "https://mail.example.com" (links become https://mail.example.com/c/...)',
        )
    return str(url).rstrip("/")


def _mailbox_setting(key: str, value: Any, doc: TomlFile) -> str:
    """``feedback.imap`` (an imap:// or imaps:// URL with a user) or ``feedback.done_folder``."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"feedback.{key} must be text", where=doc.where("feedback", key))
    if key == "imap":
        parts = urlsplit(value)
        if parts.scheme not in ("imap", "imaps") or not parts.hostname or not parts.username:
            raise ConfigError(
                f"feedback.imap must look like imaps://USER@HOST/INBOX, not {value!r}",
                where=doc.where("feedback", key),
                hint="the password goes in the environment: MAILER_IMAP_PASSWORD",
            )
        if parts.password:
            raise ConfigError(
                "feedback.imap holds a password: passwords never go in files",
                where=doc.where("feedback", key),
                hint="remove it from the URL and export MAILER_IMAP_PASSWORD",
            )
    return value.strip()


def _cap_from(table: Mapping[str, Any], doc: TomlFile) -> FrequencyCapSetting:
    try:
        cap = FrequencyCapSetting(int(table["max_messages"]), int(table["days"]))
    except (KeyError, TypeError, ValueError):
        raise ConfigError(
            "frequency_cap needs whole numbers max_messages and days",
            where=doc.where("frequency_cap"),
            hint="[frequency_cap]\nmax_messages = 2\ndays = 7",
        ) from None
    if cap.max_messages < 1 or cap.days < 1:
        raise ConfigError(
            "frequency_cap values must be at least 1", where=doc.where("frequency_cap")
        )
    return cap
