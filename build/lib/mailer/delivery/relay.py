"""Which SMTP relay to use and how: relay URLs, published presets, TLS settings.

The relay is a URL — ``smtp://host:port`` (plain), ``smtp+starttls://user@host:587``
(STARTTLS required) or ``smtps://user@host:465`` (implicit TLS) — from the
command line, ``MAILER_SMTP_URL`` or a ``mailer.toml`` profile. A password in
the URL is refused: the AUTH password is read from the environment variable the
settings name, at connect time (``mailer.delivery.smtp``).
"""

from __future__ import annotations

import ipaddress
import ssl
from dataclasses import dataclass, replace
from urllib.parse import unquote, urlsplit

from mailer.core.errors import ConfigError
from mailer.core.settings import Settings, Throttle

SCHEMES = {
    "smtp": (False, False, 25),
    "smtp+starttls": (False, True, 587),
    "smtps": (True, False, 465),
}


_URL_HINT = "use smtp://host:port, smtp+starttls://user@host:587 or smtps://user@host:465"


@dataclass(frozen=True)
class Preset:
    """Published sending limits of a common relay (check your own account's numbers)."""

    description: str
    throttle: Throttle


# Conservative defaults from the relays' documentation; accounts differ, so a
# campaign's or mailer.toml's [throttle] table overrides any of these numbers.
PRESETS: dict[str, Preset] = {
    "ses-sandbox": Preset("Amazon SES sandbox", Throttle(per_second=1, per_day=200, concurrency=1)),
    "ses": Preset(
        "Amazon SES production (starting quota)", Throttle(per_second=14, per_day=50_000)
    ),
    "gmail": Preset(
        "Gmail / Google Workspace SMTP", Throttle(per_second=1, per_day=2_000, concurrency=2)
    ),
    "outlook": Preset(
        "Microsoft 365 SMTP AUTH", Throttle(per_second=0.5, per_day=10_000, concurrency=1)
    ),
    "sendgrid-free": Preset(
        "SendGrid free plan", Throttle(per_second=1, per_day=100, concurrency=2)
    ),
    "mailgun": Preset("Mailgun", Throttle(per_second=20, per_hour=100_000)),
    "postmark": Preset("Postmark", Throttle(per_second=10, concurrency=4)),
}


@dataclass(frozen=True)
class Relay:
    """Where and how to connect. Holds the *name* of the password variable, never the password."""

    host: str
    port: int
    implicit_tls: bool = False
    starttls: bool = False
    username: str | None = None
    verify: bool = True
    pool: int = 4
    timeout: float = 30.0
    password_env: str = "MAILER_SMTP_PASSWORD"
    local_hostname: str | None = None
    # smtp:// only: "auto" upgrades to STARTTLS when the relay offers it; "none" never.
    tls: str = "auto"

    @property
    def where(self) -> str:
        """``host:port`` for messages."""
        return f"{self.host}:{self.port}"

    def describe(self) -> str:
        """A one-line description without secrets: ``smtps://user@host:465 (4 connections)``."""
        scheme = "smtps" if self.implicit_tls else "smtp+starttls" if self.starttls else "smtp"
        user = f"{self.username}@" if self.username else ""
        encrypted = self.implicit_tls or self.starttls
        tls = ", TLS NOT VERIFIED" if encrypted and not self.verify else ""
        return f"{scheme}://{user}{self.where} ({self.pool} connections{tls})"


TLS_MODES = ("auto", "none")


def parse_smtp_url(url: str, *, where: str = "SMTP URL") -> Relay:
    """Parse a relay URL into a ``Relay``; a password in the URL is refused."""
    shown = redact_url(url)
    if shown != url:
        # Checked first, on the raw text: no other error message may repeat the password.
        raise ConfigError(
            "the SMTP URL contains a password; passwords are read from the environment only",
            where=where,
            hint="remove it from the URL and set MAILER_SMTP_PASSWORD (or smtp.password_env)",
        )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"bad SMTP URL {shown!r}: {exc}", where=where, hint=_URL_HINT) from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise ConfigError(
            f"unknown SMTP URL scheme {parts.scheme!r} in {shown!r}", where=where, hint=_URL_HINT
        )
    if not parts.hostname:
        raise ConfigError(f"the SMTP URL {shown!r} names no host", where=where, hint=_URL_HINT)
    implicit, starttls, default_port = SCHEMES[scheme]
    username = unquote(parts.username) if parts.username else None
    relay = Relay(parts.hostname, port or default_port, implicit, starttls, username)
    if username and not (implicit or starttls) and not _is_loopback(relay.host):
        raise ConfigError(
            "refusing to send an SMTP password over an unencrypted connection",
            where=f"{where} ({relay.where})",
            hint=f"use smtp+starttls://{username}@{relay.host}:587 or smtps://{username}@{relay.host}:465",
        )
    return relay


def redact_url(url: str) -> str:
    """The URL with any password in its user part replaced by ``***`` (safe to show)."""
    scheme, sep, rest = url.partition("://")
    netloc, slash, path = rest.partition("/")
    userinfo, at, host = netloc.rpartition("@")
    if not sep or not at or ":" not in userinfo:
        return url
    return f"{scheme}://{userinfo.split(':', 1)[0]}:***@{host}{slash}{path}"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def relay_from_settings(settings: Settings, *, insecure_skip_verify: bool = False) -> Relay:
    """The relay named by the settings (URL already chosen from flag > env > profile)."""
    smtp = settings.smtp
    if not smtp.url:
        raise ConfigError(
            "no SMTP relay is configured",
            hint="set MAILER_SMTP_URL, or add [smtp] url = ... to mailer.toml",
            advice="relay-missing",
        )
    where = f"SMTP profile '{smtp.profile}'" if smtp.profile else "SMTP URL"
    relay = parse_smtp_url(smtp.url, where=where)
    if smtp.tls not in TLS_MODES:
        raise ConfigError(
            f'[smtp] tls must be "auto" or "none", not {smtp.tls!r}',
            where=where,
            hint='"auto" (the default) upgrades smtp:// to STARTTLS when the relay offers it; '
            '"none" sends in clear text',
        )
    if smtp.tls == "none" and (relay.starttls or relay.implicit_tls):
        raise ConfigError(
            '[smtp] tls = "none" contradicts the relay URL, which asks for TLS',
            where=where,
            hint='use smtp://host:25 to send in clear text, or remove tls = "none"',
        )
    return replace(
        relay,
        verify=not (smtp.insecure_skip_verify or insecure_skip_verify),
        pool=max(1, smtp.pool),
        timeout=smtp.timeout,
        password_env=smtp.password_env,
        tls=smtp.tls,
    )


def preset_throttle(settings: Settings, base: Throttle) -> Throttle:
    """``base`` with the relay preset's limits filled in where ``base`` sets none."""
    name = settings.smtp.preset
    if not name:
        return base
    if name not in PRESETS:
        raise ConfigError(
            f"unknown relay preset '{name}'",
            where="[smtp] preset",
            hint="known presets: " + ", ".join(sorted(PRESETS)),
        )
    preset = PRESETS[name].throttle
    # A preset's concurrency applies unless the user chose a number of their own.
    own_concurrency = base.concurrency != Throttle().concurrency
    return replace(
        base,
        per_second=base.per_second or preset.per_second,
        per_hour=base.per_hour or preset.per_hour,
        per_day=base.per_day or preset.per_day,
        concurrency=base.concurrency if own_concurrency else preset.concurrency,
    )


def tls_context(verify: bool) -> ssl.SSLContext:
    """A client TLS context: verifying by default; ``verify=False`` only for local test relays."""
    context = ssl.create_default_context()
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
