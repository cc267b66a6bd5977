"""The sending infrastructure: MX of the From domain, reverse DNS of the relay, its TLS."""

from __future__ import annotations

import asyncio
import ssl

from mailer.delivery.relay import Relay
from mailer.doctor.model import Check, Status
from mailer.doctor.resolver import Resolver


def check_mx(resolver: Resolver, domain: str) -> Check:
    """The From domain receives mail (replies, and receivers that check it)."""
    exchangers = resolver.mx(domain)
    if not exchangers and not resolver.addresses(domain):
        reason = f"{domain} has no MX (and no address): replies bounce, some receivers refuse it"
        return Check("MX", Status.FAIL, reason, f"publish an MX record for {domain}")
    shown = ", ".join(exchangers[:3]) or f"{domain} (A record)"
    return Check("MX", Status.PASS, f"{domain} receives mail at {shown}")


def check_reverse_dns(resolver: Resolver, relay_ips: list[str]) -> list[Check]:
    """Each relay address points back to a name that points to it (forward-confirmed rDNS)."""
    if not relay_ips:
        return [Check("reverse DNS", Status.SKIP, "no relay configured")]
    checks = []
    for ip in relay_ips:
        names = resolver.ptr(ip)
        if not names:
            reason = (
                f"the relay's address {ip} has no reverse DNS (PTR): Gmail and Outlook refuse it"
            )
            fix = "ask the relay's host (or your provider) to set a PTR record"
            checks.append(Check("reverse DNS", Status.FAIL, reason, fix))
            continue
        confirmed = [n for n in names if ip in resolver.addresses(n)]
        if confirmed:
            checks.append(Check("reverse DNS", Status.PASS, f"{ip} ↔ {confirmed[0]}"))
        else:
            reason = f"{ip} points to {names[0]}, which does not point back to {ip}"
            fix = f"add an A/AAAA record {names[0]} → {ip}"
            checks.append(Check("reverse DNS", Status.FAIL, reason, fix))
    return checks


def check_tls(relay: Relay | None, context: ssl.SSLContext | None = None) -> Check:
    """The relay offers STARTTLS (or implicit TLS) with a certificate that verifies."""
    if relay is None:
        return Check("TLS", Status.SKIP, "no relay configured")
    try:
        return asyncio.run(_probe(relay, context))
    except ssl.SSLCertVerificationError as exc:
        reason = f"{relay.where}: the certificate does not verify ({exc.verify_message})"
        return Check("TLS", Status.FAIL, reason, "install a certificate valid for the relay's name")
    except (OSError, TimeoutError, ssl.SSLError) as exc:
        return Check(
            "TLS", Status.WARN, f"{relay.where}: cannot connect ({exc})", "check the relay"
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
            return Check("TLS", Status.PASS, f"{relay.where}: TLS from the first byte, verified")
        await client.ehlo()
        if not client.supports_extension("starttls"):
            reason = f"{relay.where} does not offer STARTTLS: mail would cross the network in clear"
            return Check("TLS", Status.FAIL, reason, "use a relay that offers STARTTLS")
        await client.starttls(tls_context=context)
        return Check("TLS", Status.PASS, f"{relay.where}: STARTTLS with a verified certificate")
    finally:
        client.close()
