"""SPF (RFC 7208): the record is judged by checkdmarc, the relay's address by pyspf.

checkdmarc finds the one record, walks its include/redirect tree and reports
syntax errors (an unknown mechanism), more than ten DNS-querying terms, more
than two void lookups, loops and missing include targets — every one a
``permerror`` at receivers. The doctor adds what checkdmarc passes silently:
``+all`` (anyone may send) and ``?all`` or no ``all`` (neutral: SPF then
vouches for nobody). pyspf, the reference RFC 7208 evaluator, then says what a
receiver would conclude for mail from the relay's address: that result, not
a guess from the record text, is the evidence DMARC alignment uses.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from mailer.doctor import libs
from mailer.doctor.model import Check, Status, unknown_check
from mailer.doctor.presets import EspPath
from mailer.doctor.resolver import DnsFailure, Resolver

AREA = "SPF"
RELAY_AREA = "SPF relay"


@dataclass(frozen=True)
class SpfEvidence:
    """What SPF proves for the envelope domain: a receiver's result, or why there is none."""

    domain: str  # the envelope (return-path) domain SPF is checked for
    result: str  # pass, fail, softfail, neutral, none, permerror, temperror, not-evaluated
    detail: str = ""

    @property
    def passed(self) -> bool:
        """A receiver would find SPF ``pass``."""
        return self.result == "pass"

    @property
    def unknown(self) -> bool:
        """Nothing is known: a DNS failure, or nothing to evaluate."""
        return self.result in ("temperror", "not-evaluated")


def check_record(resolver: Resolver, domain: str, out: list[Check]) -> dict[str, Any] | None:
    """The SPF record of ``domain`` judged; checks appended to ``out``; the parse when valid."""
    errors = libs.spf_module()
    fix_add = f'publish one TXT record at {domain}: "v=spf1 include:<your relay\'s SPF> -all"'
    try:
        found = libs.query_spf(resolver, domain)
    except DnsFailure as failure:
        out.append(unknown_check("spf.record", AREA, f"the SPF record of {domain}", failure))
        return None
    except errors.MultipleSPFRTXTRecords:
        reason = f"{domain} has more than one SPF record: receivers return permerror (§4.5)"
        out.append(Check("spf.multiple-records", AREA, Status.FAIL, reason, "merge them into one"))
        return None
    except errors.SPFError as exc:
        reason = f"{domain} has no SPF record ({_message(exc)}): no server is authorised to send"
        out.append(Check("spf.missing", AREA, Status.FAIL, reason, fix_add))
        return None
    record = str(found["record"])
    out += [_warning(domain, w) for w in found.get("warnings", [])]
    try:
        parsed = libs.parse_spf(resolver, record, domain)
    except DnsFailure as failure:
        what = f"the include/redirect tree of {domain}'s SPF record {record!r}"
        out.append(unknown_check("spf.record", AREA, what, failure))
        return None
    except errors.SPFError as exc:
        out.append(_permerror(errors, exc, domain, record))
        return None
    lookups, void = parsed["dns_lookups"], parsed["void_dns_lookups"]
    reason = f"{record!r} ({lookups} of 10 DNS lookups, {void} of 2 void lookups)"
    out.append(Check("spf.record", AREA, Status.PASS, reason))
    out += [_warning(domain, w) for w in parsed.get("warnings", [])]
    out += _all_checks(domain, parsed["parsed"])
    return parsed


def _message(exc: Exception) -> str:
    return str(exc.args[0]) if exc.args else str(exc)


def _permerror(errors: Any, exc: Exception, domain: str, record: str) -> Check:
    """The library's verdict on a broken record, under a stable id."""
    kinds = (
        (errors.SPFTooManyVoidDNSLookups, "spf.void-lookups", "drop the names that do not exist"),
        (
            errors.SPFTooManyDNSLookups,
            "spf.too-many-lookups",
            "replace includes you do not use with ip4:/ip6: ranges (SPF flattening)",
        ),
        (errors.SPFSyntaxError, "spf.syntax", "correct the term it names (RFC 7208 §5, §6)"),
        (errors.SPFIncludeLoop, "spf.loop", "remove the include that loops back"),
        (errors.SPFRedirectLoop, "spf.loop", "remove the redirect that loops back"),
        (errors.SPFRecordNotFound, "spf.include-missing", "fix or remove that include"),
    )
    check_id, fix = next(
        ((i, f) for kind, i, f in kinds if isinstance(exc, kind)), ("spf.error", "fix the record")
    )
    reason = (
        f"{domain}: {record!r}: {_message(exc)}; a receiver that evaluates it returns "
        "permerror, and SPF fails"
    )
    return Check(check_id, AREA, Status.FAIL, reason, fix)


def _warning(domain: str, text: str) -> Check:
    return Check("spf.warning", AREA, Status.WARN, f"{domain}: {text}", "see RFC 7208")


def _all_checks(domain: str, parsed: dict[str, Any]) -> list[Check]:
    """What the record says about everyone else: ``+all``, ``?all``, or nothing."""
    ending = parsed.get("all")
    if ending == "pass":
        reason = f"the SPF record of {domain} ends in +all: any server on the internet may send"
        return [Check("spf.plus-all", AREA, Status.FAIL, reason, "end it with ~all or -all")]
    if ending == "neutral":
        reason = f"the SPF record of {domain} ends in ?all: mail from anyone is 'neutral'"
        return [Check("spf.neutral-all", AREA, Status.WARN, reason, "end it with ~all or -all")]
    if ending is None and not parsed.get("redirect"):
        reason = f"the SPF record of {domain} has no 'all': others get 'neutral' (RFC 7208 §4.7)"
        return [Check("spf.neutral-all", AREA, Status.WARN, reason, "end it with ~all or -all")]
    return []


def evaluate_relay(
    resolver: Resolver, domain: str, relay_ips: list[str], helo: str, out: list[Check]
) -> SpfEvidence:
    """pyspf's result for mail from ``domain`` sent by each relay address (all must pass)."""
    if not relay_ips:
        out.append(Check("spf.relay", RELAY_AREA, Status.SKIP, "no relay configured"))
        return SpfEvidence(domain, "not-evaluated", "no relay configured")
    results = {
        ip: libs.evaluate_spf(resolver, ip, f"postmaster@{domain}", helo) for ip in relay_ips
    }
    unknown = [ip for ip, (result, _) in results.items() if result == "temperror"]
    refused = [ip for ip, (result, _) in results.items() if result not in ("pass", "temperror")]
    if refused:
        shown = ", ".join(
            f"{ip} ({results[ip][0]}" + (f": {results[ip][1]})" if results[ip][1] else ")")
            for ip in refused
        )
        reason = f"SPF of {domain} does not pass for the relay's address: {shown}"
        fix = "add the relay (its include: or ip4:/ip6: range) to the SPF record"
        out.append(Check("spf.relay", RELAY_AREA, Status.FAIL, reason, fix))
        return SpfEvidence(domain, results[refused[0]][0], shown)
    if unknown:
        failures = resolver.failures()
        outcome = str(failures[-1].outcome) if failures else "temperror"
        detail = results[unknown[0]][1]
        reason = f"SPF of {domain} for {unknown[0]} could not be evaluated: {detail} (temperror)"
        fix = "check the DNS server (or try another resolver), then run the doctor again"
        out.append(Check("spf.relay", RELAY_AREA, Status.UNKNOWN, reason, fix, dns=outcome))
        return SpfEvidence(domain, "temperror", detail)
    reason = f"SPF of {domain} passes for the relay ({', '.join(relay_ips)}), evaluated by pyspf"
    out.append(Check("spf.relay", RELAY_AREA, Status.PASS, reason))
    return SpfEvidence(domain, "pass", reason)


def evaluate_esp(
    resolver: Resolver,
    domain: str,
    esp: EspPath,
    parsed: dict[str, Any] | None,
    out: list[Check],
) -> SpfEvidence:
    """The return-path domain's SPF, evaluated for an address from the ESP's own SPF record."""
    if parsed is None:  # the record itself failed: its finding says why
        return SpfEvidence(domain, "permerror", "the return path's SPF record is not usable")
    sample = _esp_address(parsed["parsed"], esp.spf_include)
    if sample is None:
        reason = (
            f"the SPF record of {domain} does not include {esp.spf_include}, so mail that "
            f"{esp.name} delivers for {domain} fails SPF"
        )
        fix = f"add include:{esp.spf_include} to the SPF record of {domain}"
        out.append(Check("spf.relay", RELAY_AREA, Status.FAIL, reason, fix))
        return SpfEvidence(domain, "fail", reason)
    return evaluate_relay(resolver, domain, [sample], esp.spf_include, out)


def _esp_address(parsed: dict[str, Any], include: str) -> str | None:
    """The first address in the ``include:`` subtree of the ESP's SPF (found by checkdmarc)."""
    for mechanism in _mechanisms(parsed):
        if mechanism.get("mechanism") == "include" and _same(mechanism.get("value"), include):
            for inner in _mechanisms(mechanism.get("parsed") or {}):
                if inner.get("mechanism") in ("ip4", "ip6") and inner.get("action") == "pass":
                    network = ipaddress.ip_network(str(inner["value"]), strict=False)
                    return str(network[1] if network.num_addresses > 2 else network[0])
    return None


def _mechanisms(parsed: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every mechanism of a parsed record, includes and redirects followed, depth first."""
    for mechanism in parsed.get("mechanisms") or []:
        yield mechanism
        if mechanism.get("parsed"):
            yield from _mechanisms(mechanism["parsed"])
    redirect = parsed.get("redirect")
    if isinstance(redirect, dict) and redirect.get("parsed"):
        yield from _mechanisms(redirect["parsed"])


def _same(a: object, b: str) -> bool:
    return isinstance(a, str) and a.lower().rstrip(".") == b.lower().rstrip(".")
