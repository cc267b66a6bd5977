"""The sending infrastructure: MX of the From domain, reverse DNS of the relay, its TLS.

These are mailer's own checks (no library covers them): a null MX (RFC 7505),
forward-confirmed reverse DNS of the relay's address, and a STARTTLS (or
implicit TLS) handshake with certificate verification against the relay.
"""

from __future__ import annotations

import asyncio
import ssl

from mailer.delivery.relay import Relay
from mailer.doctor.model import Check, Status, unknown_check
from mailer.doctor.resolver import DnsFailure, Resolver


def check_mx(resolver: Resolver, domain: str) -> Check:
    """The From domain receives mail (replies, and receivers that check it)."""
    exchangers = resolver.mx(domain)
    if any(host in ("", ".") for _pref, host in exchangers):
        reason = f"{domain} publishes a null MX (MX 0 .): it declares it accepts no mail (RFC 7505)"
        fix = f"replace the null MX of {domain} with a real MX, or send from another domain"
        return Check("mx.null", "MX", Status.FAIL, reason, fix)
    if exchangers:
        shown = ", ".join(host for _pref, host in exchangers[:3])
        return Check("mx.record", "MX", Status.PASS, f"{domain} receives mail at {shown}")
    addresses = resolver.addresses(domain)
    if addresses:
        reason = (
            f"{domain} has no MX; mail to it goes to {addresses[0]} (implicit MX, RFC 5321 §5.1)"
        )
        return Check("mx.record", "MX", Status.PASS, reason)
    reason = f"{domain} has no MX (and no address): replies bounce, some receivers refuse it"
    return Check("mx.record", "MX", Status.FAIL, reason, f"publish an MX record for {domain}")


def check_reverse_dns(resolver: Resolver, relay_ips: list[str]) -> list[Check]:
    """Each relay address points back to a name that points to it (forward-confirmed rDNS)."""
    if not relay_ips:
        return [Check("rdns.ptr", "reverse DNS", Status.SKIP, "no relay configured")]
    checks = []
    for ip in relay_ips:
        try:
            checks.append(_reverse_dns(resolver, ip))
        except DnsFailure as failure:
            checks.append(unknown_check("rdns.ptr", "reverse DNS", f"the PTR of {ip}", failure))
    return checks


def _reverse_dns(resolver: Resolver, ip: str) -> Check:
    names = resolver.ptr(ip)
    if not names:
        reason = f"the relay's address {ip} has no reverse DNS (PTR): Gmail and Outlook refuse it"
        fix = "ask the relay's host (or your provider) to set a PTR record"
        return Check("rdns.ptr", "reverse DNS", Status.FAIL, reason, fix)
    confirmed = [n for n in names if ip in resolver.addresses(n)]
    if confirmed:
        return Check("rdns.ptr", "reverse DNS", Status.PASS, f"{ip} ↔ {confirmed[0]}")
    reason = f"{ip} points to {names[0]}, which does not point back to {ip}"
    fix = f"add an A/AAAA record {names[0]} → {ip}"
    return Check("rdns.ptr", "reverse DNS", Status.FAIL, reason, fix)


def check_tls(relay: Relay | None, context: ssl.SSLContext | None = None) -> Check:
    """The relay offers STARTTLS (or implicit TLS) with a certificate that verifies."""
    if relay is None:
        return Check("tls.relay", "TLS", Status.SKIP, "no relay configured")
    try:
        return asyncio.run(_probe(relay, context))
    except ssl.SSLCertVerificationError as exc:
        reason = f"{relay.where}: the certificate does not verify ({exc.verify_message})"
        return Check(
            "tls.relay",
            "TLS",
            Status.FAIL,
            reason,
            "install a certificate valid for the relay's name",
        )
    except (OSError, TimeoutError, ssl.SSLError) as exc:
        return Check(
            "tls.relay",
            "TLS",
            Status.WARN,
            f"{relay.where}: cannot connect ({exc})",
            "check the relay",
        )


async def _probe(relay: Relay, context: ssl.SSLContext | None) -> Check:
    import aiosmtplib

    client = aiosmtplib.SMTP(
        hostname=relay.host,
        port=relay.port,
        use_tls=relay.implicit_tls,
        start_tls=False,
        tls_context=context,
        timeout=5,
    )
    await client.connect()
    try:
        if relay.implicit_tls:
            return Check(
                "tls.relay", "TLS", Status.PASS, f"{relay.where}: TLS from the first byte, verified"
            )
        await client.ehlo()
        if not client.supports_extension("starttls"):
            reason = f"{relay.where} does not offer STARTTLS: mail would cross the network in clear"
            return Check(
                "tls.relay", "TLS", Status.FAIL, reason, "use a relay that offers STARTTLS"
            )
        await client.starttls(tls_context=context)
        return Check(
            "tls.relay", "TLS", Status.PASS, f"{relay.where}: STARTTLS with a verified certificate"
        )
    finally:
        client.close()
