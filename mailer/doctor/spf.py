"""SPF (RFC 7208): one record, at most ten DNS lookups, and the relay's addresses allowed.

A small evaluator for what the doctor needs: ``ip4``, ``ip6``, ``a``, ``mx``,
``include``, ``exists`` (as "may match"), ``ptr`` (deprecated: a warning),
``redirect`` and ``all``. Lookups are counted over the whole record tree, as
receivers do: past ten, SPF fails for everyone (a ``permerror``).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from mailer.doctor.model import Check, Status
from mailer.doctor.resolver import Resolver

MAX_LOOKUPS = 10
_LOOKUP_TERMS = ("include", "a", "mx", "ptr", "exists", "redirect")


class SpfError(Exception):
    """The record cannot be evaluated (none, several, a loop, a bad term)."""


@dataclass
class _Walk:
    resolver: Resolver
    lookups: int = 0
    seen: set[str] = field(default_factory=set)
    warnings: list[str] = field(default_factory=list)


def spf_record(resolver: Resolver, domain: str) -> str | None:
    """The domain's SPF record; SpfError when there are several."""
    records = [t for t in resolver.txt(domain) if t.lower().split(" ", 1)[0] == "v=spf1"]
    if len(records) > 1:
        raise SpfError(f"{domain} has {len(records)} SPF records; receivers then ignore them all")
    return records[0] if records else None


def count_lookups(resolver: Resolver, domain: str) -> tuple[int, list[str]]:
    """DNS lookups the record tree of ``domain`` needs, and warnings met on the way."""
    walk = _Walk(resolver)
    _count(walk, domain)
    return walk.lookups, walk.warnings


def _terms(record: str) -> list[str]:
    return record.split()[1:]


def _split(term: str) -> tuple[str, str, str]:
    """(qualifier, name, value) of ``~include:x.test`` → ("~", "include", "x.test")."""
    qualifier = term[0] if term[0] in "+-~?" else "+"
    body = term[1:] if term[0] in "+-~?" else term
    name, sep, value = body.partition(":") if ":" in body else body.partition("=")
    return qualifier, name.lower(), value if sep else ""


def _count(walk: _Walk, domain: str) -> None:
    if domain in walk.seen:
        raise SpfError(f"the SPF records loop back to {domain}")
    walk.seen.add(domain)
    record = spf_record(walk.resolver, domain)
    if record is None:
        raise SpfError(f"{domain} (named in an include or redirect) has no SPF record")
    for term in _terms(record):
        _q, name, value = _split(term)
        if name not in _LOOKUP_TERMS:
            continue
        walk.lookups += 1
        if name == "ptr":
            walk.warnings.append("the 'ptr' mechanism is deprecated and slow; list addresses")
        if name in ("include", "redirect"):
            _count(walk, value)
    walk.seen.discard(domain)


def evaluate(resolver: Resolver, domain: str, ip: str, depth: int = 0) -> str:
    """The SPF result for mail from ``ip``: pass, fail, softfail, neutral or none."""
    if depth > MAX_LOOKUPS:
        raise SpfError("includes nest too deep")
    record = spf_record(resolver, domain)
    if record is None:
        return "none"
    address = ipaddress.ip_address(ip)
    redirect = None
    for term in _terms(record):
        qualifier, name, value = _split(term)
        if name == "redirect":
            redirect = value
            continue
        if _matches(resolver, domain, name, value, address, depth):
            return {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}[qualifier]
    if redirect:
        return evaluate(resolver, redirect, ip, depth + 1)
    return "neutral"


def _matches(
    resolver: Resolver,
    domain: str,
    name: str,
    value: str,
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
    depth: int,
) -> bool:
    if name == "all":
        return True
    if name in ("ip4", "ip6"):
        try:
            return address in ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise SpfError(f"'{name}:{value}' is not a network") from None
    if name == "include":
        return evaluate(resolver, value, str(address), depth + 1) == "pass"
    host, _, cidr = (value or domain).partition("/")
    if name == "a":
        return _in_any(resolver.addresses(host), address, cidr)
    if name == "mx":
        return any(_in_any(resolver.addresses(mx), address, cidr) for mx in resolver.mx(host)[:10])
    return False  # ptr, exists and macros: not evaluated (never taken as a pass)


def _in_any(
    addresses: list[str], address: ipaddress.IPv4Address | ipaddress.IPv6Address, cidr: str
) -> bool:
    for text in addresses:
        candidate = ipaddress.ip_address(text)
        if candidate.version != address.version:
            continue
        bits = int(cidr) if cidr.isdigit() else candidate.max_prefixlen
        if address in ipaddress.ip_network(f"{text}/{bits}", strict=False):
            return True
    return False


def check_spf(resolver: Resolver, domain: str, relay_ips: list[str]) -> list[Check]:
    """The SPF checks: one valid record, within ten lookups, allowing every relay address."""
    fix_add = f'publish one TXT record at {domain}: "v=spf1 include:<your relay\'s SPF> ~all"'
    try:
        record = spf_record(resolver, domain)
    except SpfError as exc:
        return [Check("SPF", Status.FAIL, str(exc), "merge them into one record")]
    if record is None:
        reason = f"{domain} has no SPF record: receivers cannot tell which servers may send for it"
        return [Check("SPF", Status.FAIL, reason, fix_add)]
    checks: list[Check] = []
    try:
        lookups, warnings = count_lookups(resolver, domain)
    except SpfError as exc:
        return [Check("SPF", Status.FAIL, f"{record!r}: {exc}", "fix the record it names")]
    if lookups > MAX_LOOKUPS:
        reason = f"the SPF record needs {lookups} DNS lookups; past {MAX_LOOKUPS} it fails for all"
        fix = "replace includes you do not use with ip4:/ip6: ranges (SPF flattening)"
        checks.append(Check("SPF", Status.FAIL, reason, fix))
    else:
        checks.append(Check("SPF", Status.PASS, f"{record!r} ({lookups} of {MAX_LOOKUPS} lookups)"))
    checks += [Check("SPF", Status.WARN, w, "list the addresses instead") for w in warnings]
    if any(_split(t)[:2] == ("+", "all") for t in _terms(record)):
        reason = "'+all' lets any server on the internet send as you"
        checks.append(Check("SPF", Status.FAIL, reason, "end the record with ~all or -all"))
    checks.append(_relay_check(resolver, domain, relay_ips))
    return checks


def _relay_check(resolver: Resolver, domain: str, relay_ips: list[str]) -> Check:
    if not relay_ips:
        return Check("SPF relay", Status.SKIP, "no relay configured (the outbox sends no mail)")
    refused = []
    for ip in relay_ips:
        try:
            result = evaluate(resolver, domain, ip)
        except SpfError as exc:
            return Check("SPF relay", Status.FAIL, str(exc), "fix the SPF record")
        if result != "pass":
            refused.append(f"{ip} ({result})")
    if refused:
        reason = f"the SPF record of {domain} does not allow the relay's address: " + ", ".join(
            refused
        )
        fix = "add the relay (its include: or ip4:/ip6: range) to the SPF record"
        return Check("SPF relay", Status.FAIL, reason, fix)
    return Check(
        "SPF relay", Status.PASS, f"the relay ({', '.join(relay_ips)}) may send for {domain}"
    )
