"""checkdmarc itself, with its own resolver, on the defect zones: what the peer finds.

The peer asks the loopback DNS server directly (``nameservers=``), not through
the doctor's resolver, so the comparison is between two independent readings
of the same zones.
"""

from __future__ import annotations

import warnings
from typing import Any

from tests.doctor.zones import Zone


def _checkdmarc() -> tuple[Any, Any, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import checkdmarc.dmarc as dmarc
        import checkdmarc.spf as spf
        import checkdmarc.utils as utils
    return spf, dmarc, utils


def peer_results(zone: Zone, host: str, port: int) -> dict[str, dict[str, Any]]:
    """checkdmarc's SPF and DMARC results for the zone's From domain."""
    import dns.nameserver

    spf, dmarc, utils = _checkdmarc()
    utils.DNS_CACHE.clear()
    servers = [dns.nameserver.Do53Nameserver(host, port)]
    options = {"nameservers": servers, "timeout": 0.5, "retries": 0}
    return {
        "spf": dict(spf.check_spf(zone.from_domain, **options)),
        "dmarc": dict(dmarc.check_dmarc(zone.from_domain, **options)),
    }


def _said(result: dict[str, Any], domain: str) -> set[str]:
    """The result's error and warnings, with the zone's own domain taken out."""
    said = {str(w) for w in result.get("warnings", [])}
    if result.get("error"):
        said.add("error: " + str(result["error"]))
    return {s.replace(domain, "<domain>") for s in said}


def peer_findings(
    zone: Zone, results: dict[str, dict[str, Any]], baseline: dict[str, dict[str, Any]], good: Zone
) -> dict[str, list[str]]:
    """Per area, what checkdmarc says about this zone that it does not say about the good one."""
    found = {}
    for area in ("spf", "dmarc"):
        usual = _said(baseline[area], good.from_domain)
        found[area] = sorted(_said(results[area], zone.from_domain) - usual)
    return found


def doctor_findings(report: Any) -> dict[str, list[str]]:
    """Per area, the doctor's checks that did not pass (id: status)."""
    found: dict[str, list[str]] = {"spf": [], "dmarc": []}
    for check in report.checks:
        area = check.id.partition(".")[0]
        if area in found and str(check.status) in ("fail", "warn", "unknown"):
            found[area].append(f"{check.id}: {check.status}")
    return found
