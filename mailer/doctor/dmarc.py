"""DMARC (RFC 7489): a policy at the organisational domain, and SPF or DKIM aligned with From."""

from __future__ import annotations

from functools import cache
from typing import Any

from mailer.doctor.model import Check, Status
from mailer.doctor.resolver import Resolver


def org_domain(domain: str) -> str:
    """The organisational domain (``news.shop.example.co.uk`` → ``example.co.uk``)."""
    return str(_suffixes().privatesuffix(domain.lower()) or domain.lower())


@cache
def _suffixes() -> Any:
    """The public suffix list (bundled with ``publicsuffixlist``; read once)."""
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList()


def _record(resolver: Resolver, domain: str) -> tuple[str, dict[str, str]] | None:
    for name in dict.fromkeys((f"_dmarc.{domain}", f"_dmarc.{org_domain(domain)}")):
        for text in resolver.txt(name):
            if text.replace(" ", "").lower().startswith("v=dmarc1"):
                tags = {}
                for part in text.split(";"):
                    key, _, value = part.strip().partition("=")
                    tags[key.strip().lower()] = value.strip()
                return name, tags
    return None


def aligned(a: str, b: str, mode: str) -> bool:
    """Identifier alignment: the same domain (strict ``s``) or organisational domain (relaxed)."""
    if mode == "s":
        return a.lower() == b.lower()
    return org_domain(a) == org_domain(b)


def check_dmarc(
    resolver: Resolver,
    from_domain: str,
    *,
    spf_domain: str,
    spf_passes: bool | None,
    dkim_domain: str | None,
) -> list[Check]:
    """The policy, and whether SPF (envelope domain) or DKIM (``d=``) lines up with From."""
    found = _record(resolver, from_domain)
    if found is None:
        reason = f"no DMARC record for {from_domain}: Gmail and Yahoo require one for bulk mail"
        fix = f'publish TXT at _dmarc.{org_domain(from_domain)}: "v=DMARC1; p=none; rua=mailto:..."'
        return [Check("DMARC", Status.FAIL, reason, fix)]
    name, tags = found
    checks = []
    policy = tags.get("p", "").lower()
    if policy not in ("none", "quarantine", "reject"):
        checks.append(Check("DMARC", Status.FAIL, f"{name} has no valid p= policy", "add p=none"))
    else:
        checks.append(Check("DMARC", Status.PASS, f"{name}: p={policy}"))
    if not tags.get("rua"):
        reason = f"{name} has no rua=: nobody receives the aggregate reports"
        checks.append(Check("DMARC", Status.WARN, reason, "add rua=mailto:dmarc@your-domain"))
    spf_ok = bool(spf_passes) and aligned(spf_domain, from_domain, tags.get("aspf", "r"))
    dkim_ok = dkim_domain is not None and aligned(dkim_domain, from_domain, tags.get("adkim", "r"))
    if spf_ok or dkim_ok:
        how = " and ".join(n for n, ok in (("SPF", spf_ok), ("DKIM", dkim_ok)) if ok)
        checks.append(Check("DMARC alignment", Status.PASS, f"{how} aligned with {from_domain}"))
    else:
        reason = f"neither SPF nor DKIM passes for a domain aligned with {from_domain}"
        fix = "sign with DKIM for the From domain (d=), or send from an SPF-authorised return path"
        checks.append(Check("DMARC alignment", Status.FAIL, reason, fix))
    return checks
