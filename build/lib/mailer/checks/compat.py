"""Client compatibility: the HTML and CSS an email uses that a major mail client ignores.

The facts are Can I Email's (``data/caniemail.json``, MIT, refreshed by
``scripts/refresh-caniemail``; its date is in every report). A feature counts
as unsupported by a client when the newest test on one of its platforms says
"n". Only features the template itself writes are reported, at the template
line that writes them (``compat_scan`` traces them); what MJML adds on purpose
(Outlook's conditional tables, its responsive column classes) is not.

How much each client matters comes from the audience: its receiving domains
(gmail.com → Gmail, outlook.com/hotmail → Outlook.com, yahoo/aol → Yahoo,
icloud/me/mac → Apple Mail). Outlook for Windows (the Word engine) reads mail of
any domain, so it is named without a share. Chinese providers (qq.com, 163.com
...) are not in Can I Email's data, and the report says so.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from mailer.checks.compat_features import COSMETIC, probes_for
from mailer.checks.compat_scan import Occurrence, Token, scan_html
from mailer.checks.findings import Finding, info, warning

FEATURE_URL = "https://www.caniemail.com/features/{}/"
DOMAIN_SAMPLE = 20_000  # addresses read to weigh clients by the audience's domains


@dataclass(frozen=True)
class Client:
    """A major mail client as Can I Email tests it, and the domains whose readers use it."""

    key: str
    name: str
    family: str
    platforms: tuple[str, ...]
    domains: tuple[str, ...] = ()  # exact domains, or "label." for any TLD (hotmail.co.uk)


CLIENTS = (
    Client("gmail", "Gmail", "gmail", ("desktop-webmail", "ios", "android"),
           ("gmail.com", "googlemail.com")),
    Client("outlook-com", "Outlook.com", "outlook", ("outlook-com", "ios", "android"),
           ("outlook.", "hotmail.", "live.", "msn.com")),
    Client("outlook-windows", "Outlook for Windows", "outlook", ("windows",)),
    Client("yahoo", "Yahoo Mail", "yahoo", ("desktop-webmail", "ios", "android"),
           ("yahoo.", "ymail.com", "rocketmail.com", "aol.")),
    Client("apple-mail", "Apple Mail", "apple-mail", ("macos", "ios"),
           ("icloud.com", "me.com", "mac.com")),
)  # fmt: skip
# Providers many readers use that Can I Email has no data for.
NOT_COVERED = {
    "qq.com": "QQ Mail",
    "foxmail.com": "QQ Mail",
    "vip.qq.com": "QQ Mail",
    "163.com": "NetEase",
    "126.com": "NetEase",
    "yeah.net": "NetEase",
    "vip.163.com": "NetEase",
    "sina.com": "Sina",
    "sina.cn": "Sina",
    "sohu.com": "Sohu",
    "139.com": "139 Mail",
    "aliyun.com": "Aliyun Mail",
    "naver.com": "Naver",
    "daum.net": "Daum",
    "yandex.ru": "Yandex",
}
_PLATFORM_NAMES = {
    "desktop-webmail": "webmail",
    "ios": "iOS app",
    "android": "Android app",
    "outlook-com": "web",
    "windows": "desktop",
    "macos": "macOS",
}


@dataclass(frozen=True)
class CompatData:
    """Can I Email's data as bundled: its date, and per feature title, support and notes."""

    source: str
    date: str
    features: dict[str, dict[str, Any]]
    index: dict[Token, tuple[str, ...]]  # token -> feature slugs it shows


@cache
def compat_data() -> CompatData:
    """The bundled data, read once, with an index from scan tokens to feature slugs."""
    raw = json.loads(
        resources.files("mailer.checks").joinpath("data", "caniemail.json").read_text("utf-8")
    )
    index: dict[Token, list[str]] = {}
    for slug, feature in raw["features"].items():
        for probe in probes_for(slug, feature["title"]):
            index.setdefault((probe.kind, probe.name, probe.value), []).append(slug)
    frozen = {token: tuple(slugs) for token, slugs in index.items()}
    return CompatData(raw["source"], raw["last_update_date"], raw["features"], frozen)


def client_of(domain: str) -> str:
    """The client key a receiving domain's readers mostly use; "" when unknown."""
    domain = domain.lower()
    for client in CLIENTS:
        for pattern in client.domains:
            if domain == pattern or (pattern.endswith(".") and domain.startswith(pattern)):
                return client.key
    if domain in NOT_COVERED:
        return "not-covered"
    return ""


@dataclass(frozen=True)
class AudienceMix:
    """Share of the audience per client (``""``: other domains, ``not-covered``: see above)."""

    counts: dict[str, int]
    total: int
    sampled: bool = False  # only the first DOMAIN_SAMPLE addresses were read
    not_covered: tuple[str, ...] = ()  # provider names seen that the data lacks

    def share(self, key: str) -> float:
        """Fraction of the audience (0..1) whose domain points at client ``key``."""
        return self.counts.get(key, 0) / self.total if self.total else 0.0


def audience_mix(addresses: Iterable[str]) -> AudienceMix:
    """Count the audience's receiving domains by client (reads at most DOMAIN_SAMPLE)."""
    counts: Counter[str] = Counter()
    providers: dict[str, None] = {}
    total = 0
    sampled = False
    for total, address in enumerate(addresses, 1):
        if total > DOMAIN_SAMPLE:
            total, sampled = DOMAIN_SAMPLE, True
            break
        domain = address.rpartition("@")[2].lower()
        key = client_of(domain)
        counts[key] += 1
        if key == "not-covered":
            providers.setdefault(NOT_COVERED[domain], None)
    return AudienceMix(dict(counts), total, sampled, tuple(providers))


@dataclass(frozen=True)
class Gap:
    """One feature the template uses that some major clients ignore."""

    slug: str
    title: str
    clients: tuple[str, ...]  # "Gmail (iOS app, Android app)"
    share: float  # of the audience on those clients (Outlook for Windows not counted)
    line: int
    context: str
    cosmetic: bool
    notes: tuple[str, ...] = ()


def find_gaps(html: str, template: str, *, mjml: bool, mix: AudienceMix) -> list[Gap]:
    """Features in ``html`` that the ``template`` source writes and a major client lacks."""
    data = compat_data()
    used = scan_html(html)
    written = scan_html(template, mjml=mjml)
    gaps: dict[str, Gap] = {}
    for token, seen in used.tokens.items():
        origin = written.tokens.get(token)
        if origin is None and token[0] not in ("image", "data-image"):
            continue  # MJML wrote it, on purpose; not the template's author
        for slug in data.index.get(token, ()):
            if slug in gaps:
                continue
            gap = _gap(slug, data.features[slug], seen, origin, mix)
            if gap is not None:
                gaps[slug] = gap
    return sorted(gaps.values(), key=lambda g: (g.cosmetic, -g.share, g.line))


def _gap(
    slug: str,
    feature: dict[str, Any],
    seen: Occurrence,
    origin: Occurrence | None,
    mix: AudienceMix,
) -> Gap | None:
    names: list[str] = []
    share = 0.0
    cited: dict[str, None] = {}
    for client in CLIENTS:
        if client.key == "outlook-windows" and seen.only_not_mso:
            continue  # inside <!--[if !mso]><!-->: Outlook for Windows never sees it
        support = feature["support"].get(client.family, {})
        missing = [p for p in client.platforms if support.get(p, "u").startswith("n")]
        if not missing:
            continue
        shown = ", ".join(_PLATFORM_NAMES.get(p, p) for p in missing)
        names.append(f"{client.name} ({shown})")
        share += mix.share(client.key)
        for platform in missing:
            value = support[platform]
            if "#" in value:
                for number in value.split("#")[1:]:
                    cited.setdefault(feature.get("notes", {}).get(number.strip(), ""), None)
    if not names:
        return None
    where = origin or seen
    return Gap(
        slug,
        feature["title"],
        tuple(names),
        share,
        where.line if origin else 0,
        where.context,
        slug in COSMETIC,
        tuple(n for n in cited if n),
    )


def gap_findings(gaps: list[Gap], template_name: str, mix: AudienceMix) -> list[Finding]:
    """A warning per feature that breaks somewhere; the cosmetic ones in one info line."""
    findings = []
    for gap in (g for g in gaps if not g.cosmetic):
        where = f"{template_name}:{gap.line}" if gap.line else "campaign data (image URL)"
        reach = f" ({gap.share:.0%} of this audience)" if gap.share >= 0.005 else ""
        note = f" Note: {gap.notes[0]}" if gap.notes else ""
        effect = (
            "the image does not show there"
            if gap.slug.startswith("image-")
            else "readers there get the email without it"
        )
        message = (
            f"{gap.title}{_context(gap)} is not supported by {'; '.join(gap.clients)}"
            f"{reach}: {effect}.{note} "
            f"See {FEATURE_URL.format(gap.slug)}"
        )
        findings.append(warning("client-support", message, where))
    cosmetic = [g for g in gaps if g.cosmetic]
    if cosmetic:
        listed = "; ".join(
            f"{g.title} (line {g.line}: {', '.join(c.split(' (')[0] for c in g.clients)})"
            for g in cosmetic[:8]
        )
        more = f" and {len(cosmetic) - 8} more" if len(cosmetic) > 8 else ""
        message = f"degrades gracefully where unsupported: {listed}{more}"
        findings.append(info("client-support-cosmetic", message, template_name))
    return findings


def _context(gap: Gap) -> str:
    return f" ({gap.context})" if gap.context and gap.context != gap.title else ""


def mix_finding(mix: AudienceMix) -> Finding:
    """What the compatibility check weighed the clients by, and its data's date."""
    data = compat_data()
    parts = [
        f"{client.name} {mix.share(client.key):.0%}"
        for client in CLIENTS
        if mix.share(client.key) > 0
    ]
    other = mix.share("")
    if other:
        parts.append(f"other domains {other:.0%} (their client is unknown)")
    if mix.not_covered:
        names = ", ".join(mix.not_covered)
        parts.append(f"{names} {mix.share('not-covered'):.0%} (not covered by Can I Email's data)")
    counted = f"{mix.total} addresses" + (" (the first ones)" if mix.sampled else "")
    message = (
        f"client compatibility by Can I Email's data of {data.date}; audience by receiving "
        f"domain ({counted}): {', '.join(parts) or 'none'}; Outlook for Windows reads "
        "mail of any domain"
    )
    return info("client-audience", message, "audience")
