"""The peer: checkdmarc on the same zones. The doctor finds at least every SPF/DMARC defect it finds.

Where a DNS failure makes checkdmarc report the record invalid (it does not tell
a failed lookup from a bad record), the doctor says ``unknown`` and names the
DNS outcome instead — that is asserted too.
"""

from __future__ import annotations

import pytest

from tests.doctor.peer import doctor_findings, peer_findings, peer_results
from tests.doctor.zones import _zones

SLUGS = [zone.slug for zone, _ in _zones() if zone.slug != "good"]


@pytest.fixture(scope="module")
def baseline(zones, zone_server):
    return peer_results(zones["good"], "127.0.0.1", zone_server.port)


@pytest.mark.parametrize("slug", SLUGS)
def test_doctor_finds_every_spf_and_dmarc_defect_checkdmarc_finds(
    slug, zones, zone_server, zone_reports, baseline
):
    zone = zones[slug]
    peer = peer_findings(
        zone, peer_results(zone, "127.0.0.1", zone_server.port), baseline, zones["good"]
    )
    doctor = doctor_findings(zone_reports(slug))
    for area in ("spf", "dmarc"):
        if peer[area]:
            assert doctor[area], f"checkdmarc finds {peer[area]} in {area}; the doctor nothing"
    if zone.peer is not None:
        # The zone's own defect: the doctor finds it (whether or not checkdmarc does).
        assert doctor[zone.peer], (slug, doctor)


@pytest.mark.parametrize(
    ("slug", "area"),
    [
        ("dns-servfail", "spf"),
        ("dns-include-servfail", "spf"),
        ("dns-timeout", "dmarc"),
    ],
)
def test_where_checkdmarc_reports_an_error_on_a_dns_failure_the_doctor_says_unknown(
    slug, area, zones, zone_server, zone_reports
):
    zone = zones[slug]
    results = peer_results(zone, "127.0.0.1", zone_server.port)
    assert results[area]["valid"] is False and results[area]["error"], results[area]
    report = zone_reports(slug)
    statuses = {str(c.status) for c in report.checks if c.id.startswith(area + ".")}
    assert "unknown" in statuses and "fail" not in statuses, statuses
    [named] = {c.dns for c in report.checks if c.id.startswith(area + ".") and c.dns}
    assert named == next(iter(zone.faults.values()))
