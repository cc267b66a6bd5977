"""All the doctor's checks for a sender (and a campaign), in the order a reader fixes them."""

from __future__ import annotations

import ipaddress
import itertools
import ssl
from dataclasses import dataclass

from mailer.campaign.prepared import PreparedCampaign
from mailer.compose.dkim import signer_from_settings
from mailer.core.settings import Settings
from mailer.delivery.relay import Relay, relay_from_settings
from mailer.doctor.dmarc import check_dmarc
from mailer.doctor.infra import check_mx, check_reverse_dns, check_tls
from mailer.doctor.keys import check_dkim
from mailer.doctor.message import check_message, check_volume
from mailer.doctor.model import Check, DoctorReport, Status
from mailer.doctor.resolver import Resolver, Unreachable
from mailer.doctor.spf import SpfError, check_spf, evaluate

# Reserved names (RFC 2606, 6761): never in public DNS, so DNS checks do not apply.
RESERVED_TLDS = ("test", "example", "invalid", "localhost")


@dataclass(frozen=True)
class DoctorOptions:
    """Where to look things up, and what to leave out."""

    resolver: str | None = None  # host:port of a DNS server; None: the system's
    offline: bool = False  # message rules only, no DNS, no connection to the relay
    tls_context: ssl.SSLContext | None = None  # tests: trust a local CA


def diagnose(
    settings: Settings, prepared: PreparedCampaign | None, options: DoctorOptions
) -> DoctorReport:
    """Run every check that applies; DNS trouble becomes one warning, never a hang."""
    sender = prepared.campaign.sender if prepared is not None else settings.sender
    domain = sender.email.rpartition("@")[2].lower()
    report = DoctorReport(domain)
    relay = relay_from_settings(settings) if settings.smtp_configured else None
    if options.offline:
        reason = "offline: DNS and the relay were not checked"
        report.checks.append(Check("DNS", Status.SKIP, reason))
    elif domain.rpartition(".")[2] in RESERVED_TLDS:
        reason = f"{domain} is a reserved test domain: it has no public DNS to check"
        report.checks.append(Check("DNS", Status.SKIP, reason))
    else:
        resolver = Resolver(options.resolver)
        try:
            report.checks += _dns_checks(resolver, settings, domain, relay)
        except Unreachable as exc:
            reason = f"the DNS server did not answer ({exc}); SPF, DKIM, DMARC were not checked"
            fix = "check the network, or name a resolver: --resolver 1.1.1.1"
            report.checks.append(Check("DNS", Status.WARN, reason, fix))
        if relay is not None:
            report.checks.append(check_tls(relay, options.tls_context))
    if prepared is not None:
        people = list(itertools.islice(prepared.recipients(), 2))
        report.checks += check_message(prepared, people)
        report.checks.append(check_volume(prepared.recipients()))
    return report


def _dns_checks(
    resolver: Resolver, settings: Settings, domain: str, relay: Relay | None
) -> list[Check]:
    relay_ips = _relay_addresses(resolver, relay)
    checks = check_spf(resolver, domain, relay_ips)
    signer = signer_from_settings(settings)
    checks += check_dkim(resolver, signer, domain)
    checks += check_dmarc(
        resolver,
        domain,
        spf_domain=domain,  # the envelope sender is the From address
        spf_passes=_spf_passes(resolver, domain, relay_ips),
        dkim_domain=signer.domain if signer is not None else None,
    )
    checks.append(check_mx(resolver, domain))
    checks += check_reverse_dns(resolver, relay_ips)
    return checks


def _relay_addresses(resolver: Resolver, relay: Relay | None) -> list[str]:
    if relay is None:
        return []
    try:
        return [str(ipaddress.ip_address(relay.host))]
    except ValueError:
        return resolver.addresses(relay.host)


def _spf_passes(resolver: Resolver, domain: str, relay_ips: list[str]) -> bool | None:
    if not relay_ips:
        return None
    try:
        return all(evaluate(resolver, domain, ip) == "pass" for ip in relay_ips)
    except SpfError:
        return False
