"""All the doctor's checks for a sender (and a campaign), in the order a reader fixes them.

Each area (SPF, DKIM, DMARC, MX, reverse DNS, TLS) is checked on its own: a DNS
failure in one makes that area ``unknown`` and leaves the findings already made,
and the other areas, as they are.
"""

from __future__ import annotations

import ipaddress
import itertools
import ssl
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TypeVar

from mailer.campaign.prepared import PreparedCampaign
from mailer.compose.dkim import signer_from_settings
from mailer.core.settings import Settings
from mailer.delivery.relay import Relay, relay_from_settings
from mailer.doctor import dmarc, keys, spf
from mailer.doctor.infra import check_mx, check_reverse_dns, check_tls
from mailer.doctor.message import SentHistory, check_message, check_volume
from mailer.doctor.model import Check, DoctorReport, Status, unknown_check
from mailer.doctor.presets import ESP_PATHS, EspPath
from mailer.doctor.resolver import DEFAULT_TIMEOUT, DnsFailure, Resolver, parse_nameserver

# Reserved names (RFC 2606, 6761): never in public DNS, so DNS checks do not apply.
RESERVED_TLDS = ("test", "example", "invalid", "localhost")
T = TypeVar("T")


@dataclass(frozen=True)
class DoctorOptions:
    """Where to look things up, and what to leave out."""

    resolver: str | None = None  # a DNS server: IPv4, IPv6, [IPv6]:port, host[:port]
    offline: bool = False  # message rules only, no DNS, no connection to the relay
    tls_context: ssl.SSLContext | None = None  # tests: trust a local CA
    dns_timeout: float = DEFAULT_TIMEOUT  # seconds per DNS attempt


@dataclass(frozen=True)
class _Sender:
    """Who sends, through what, and which domain SPF is judged for."""

    domain: str  # the From domain
    envelope: str  # the envelope (return-path) domain
    relay: Relay | None
    esp: EspPath | None


def diagnose(
    settings: Settings,
    prepared: PreparedCampaign | None,
    options: DoctorOptions,
    *,
    now: datetime,
    history: SentHistory | None = None,
) -> DoctorReport:
    """Run every check that applies; a DNS failure makes its area unknown, never a hang."""
    address = prepared.campaign.sender if prepared is not None else settings.sender
    domain = address.email.rpartition("@")[2].lower()
    server = parse_nameserver(options.resolver) if options.resolver else None
    report = DoctorReport(domain)
    sender = _sender(settings, domain)
    if options.offline:
        reason = "offline: DNS and the relay were not checked"
        report.checks.append(Check("dns.offline", "DNS", Status.SKIP, reason))
    elif domain.rpartition(".")[2] in RESERVED_TLDS:
        reason = f"{domain} is a reserved test domain: it has no public DNS to check"
        report.checks.append(Check("dns.reserved", "DNS", Status.SKIP, reason))
    else:
        resolver = Resolver(server, options.dns_timeout)
        report.checks += _dns_checks(resolver, settings, sender, now)
        report.dns_queries = sum(resolver.asked.values())
        if sender.relay is not None:
            report.checks.append(check_tls(sender.relay, options.tls_context))
    today = now.date().isoformat()
    if prepared is not None:
        people = list(itertools.islice(prepared.recipients(), 2))
        report.checks += check_message(prepared, people)
        report.checks += check_volume(prepared.recipients(), history, today)
    elif history is not None:
        report.checks += check_volume(None, history, today)
    return report


def _sender(settings: Settings, domain: str) -> _Sender:
    relay = relay_from_settings(settings) if settings.smtp_configured else None
    esp = ESP_PATHS.get(settings.smtp.preset or "")
    # mailer sends with MAIL FROM = the From address; an ESP puts its own bounce domain
    # there unless a custom MAIL FROM (return-path) domain is set up and named.
    envelope = settings.doctor_return_path or (
        esp.default_return_path if esp is not None and esp.default_return_path else domain
    )
    return _Sender(domain, envelope, relay, esp)


def _dns_checks(
    resolver: Resolver, settings: Settings, sender: _Sender, now: datetime
) -> list[Check]:
    out: list[Check] = []
    evidence = _spf_area(resolver, sender, out)
    signer = signer_from_settings(settings)
    dkim_evidence = keys.check_dkim(resolver, signer, now, out)
    if signer is None and sender.esp is not None:
        dkim_evidence.unknown = True  # the ESP may sign for the domain: not visible from here
        dkim_evidence.detail = f"mailer does not sign; whether {sender.esp.name} signs is unknown"
    policy = _guarded(
        out,
        lambda: dmarc.check_dmarc(resolver, sender.domain, out),
        ("dmarc.record", dmarc.AREA, f"the DMARC record of {sender.domain}"),
    )
    unread = policy is None and any(
        c.id.startswith("dmarc.") and c.status is Status.UNKNOWN for c in out
    )
    alignment = dmarc.check_alignment(
        sender.domain, policy, evidence, dkim_evidence, policy_unknown=unread
    )
    failures = resolver.failures()
    if alignment.status is Status.UNKNOWN and failures:
        alignment = replace(alignment, dns=str(failures[0].outcome))
    out.append(alignment)
    _guarded(
        out,
        lambda: out.append(check_mx(resolver, sender.domain)),
        ("mx.record", "MX", f"the MX of {sender.domain}"),
    )
    if sender.esp is not None:
        reason = f"{sender.esp.name} delivers the mail from its own servers and their names"
        out.append(Check("rdns.ptr", "reverse DNS", Status.SKIP, reason))
    else:
        relay_ips = _guarded(
            out,
            lambda: _relay_addresses(resolver, sender.relay),
            ("rdns.ptr", "reverse DNS", "the relay's address"),
        )
        out += check_reverse_dns(resolver, relay_ips or [])
    return out


def _spf_area(resolver: Resolver, sender: _Sender, out: list[Check]) -> spf.SpfEvidence:
    """The From domain's SPF record, and SPF evidence for the envelope domain."""
    parsed = _guarded(
        out,
        lambda: spf.check_record(resolver, sender.domain, out),
        ("spf.record", spf.AREA, f"the SPF record of {sender.domain}"),
    )
    esp = sender.esp
    if esp is not None and not dmarc.aligned(sender.envelope, sender.domain, "r"):
        reason = (
            f"{esp.name} sends with a return path at {sender.envelope}: SPF passes for "
            f"{esp.name}, not for {sender.domain}, so it is not aligned and DMARC rests on "
            "DKIM alone"
        )
        fix = (
            f"set up {esp.setup.format(domain=sender.domain)}, then name it in [doctor] return_path"
        )
        out.append(Check("spf.return-path", spf.AREA, Status.WARN, reason, fix))
        return spf.SpfEvidence(sender.envelope, "not-evaluated", reason)
    if sender.envelope != sender.domain:
        parsed = _guarded(
            out,
            lambda: spf.check_record(resolver, sender.envelope, out),
            ("spf.record", spf.AREA, f"the SPF record of {sender.envelope}"),
        )
    if esp is not None:
        evaluated = _guarded(
            out,
            lambda: spf.evaluate_esp(resolver, sender.envelope, esp, parsed, out),
            ("spf.relay", spf.RELAY_AREA, f"SPF of {sender.envelope}"),
        )
        return evaluated or spf.SpfEvidence(sender.envelope, "temperror")
    relay_ips = _guarded(
        out,
        lambda: _relay_addresses(resolver, sender.relay),
        ("spf.relay", spf.RELAY_AREA, "the relay's address"),
    )
    if relay_ips is None:
        return spf.SpfEvidence(sender.envelope, "temperror")
    helo = sender.relay.host if sender.relay is not None else sender.domain
    return spf.evaluate_relay(resolver, sender.envelope, relay_ips, helo, out)


def _guarded(out: list[Check], action: Callable[[], T], about: tuple[str, str, str]) -> T | None:
    """``action()``; a DNS failure it did not handle becomes one ``unknown`` check in ``out``."""
    try:
        return action()
    except DnsFailure as failure:
        check_id, area, what = about
        out.append(unknown_check(check_id, area, what, failure))
        return None


def _relay_addresses(resolver: Resolver, relay: Relay | None) -> list[str]:
    if relay is None:
        return []
    try:
        return [str(ipaddress.ip_address(relay.host))]
    except ValueError:
        return resolver.addresses(relay.host)
