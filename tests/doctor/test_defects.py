"""Each defect zone: the doctor finds its defect, with no false pass and no false "absent"."""

from __future__ import annotations

import pytest

from tests.doctor.zones import Zone, _zones

SLUGS = [zone.slug for zone, _ in _zones()]


def test_the_good_zone_passes_every_dns_check(zone_reports):
    report = zone_reports("good")
    bad = [c.to_dict() for c in report.checks if str(c.status) not in ("pass", "skip")]
    assert bad == []
    ids = {c.id for c in report.checks}
    assert {"spf.record", "spf.relay", "dkim.record", "dkim.key-size", "dmarc.policy",
            "dmarc.alignment", "mx.record", "rdns.ptr", "tls.relay"} <= ids  # fmt: skip


@pytest.mark.parametrize("slug", [s for s in SLUGS if s != "good"])
def test_each_defect_is_found_under_its_id(zone_reports, zones: dict[str, Zone], slug):
    zone = zones[slug]
    report = zone_reports(slug)
    found = {}
    for check in report.checks:
        found.setdefault(check.id, set()).add(str(check.status))
    for check_id, statuses in zone.expect.items():
        assert check_id in found, (check_id, [c.to_dict() for c in report.checks])
        assert found[check_id] & statuses, (check_id, found[check_id], statuses)
        # No false pass: a check that names the defect never also passes.
        if check_id in ("dmarc.alignment", "spf.relay"):
            assert "pass" not in found[check_id]


@pytest.mark.parametrize("slug", [s for s in SLUGS if s.startswith("dns-")])
def test_dns_failures_are_unknown_never_absent_and_keep_the_rest(zone_reports, zones, slug):
    zone = zones[slug]
    report = zone_reports(slug)
    unknown = [c for c in report.checks if str(c.status) == "unknown"]
    assert unknown and all(c.dns in ("servfail", "timeout", "garbage", "refused") for c in unknown)
    outcome = next(iter(zone.faults.values()))
    assert any(c.dns == outcome for c in unknown), [c.to_dict() for c in unknown]
    # No false "absent": nothing says a record is missing, nothing asks to publish one.
    absent_ids = {"spf.missing", "dmarc.missing", "mx.record", "dkim.record"}
    for check in report.checks:
        if check.id in absent_ids and str(check.status) == "fail":
            pytest.fail(f"false absent: {check.to_dict()}")
    # Findings of the areas that did answer are kept.
    areas = report.areas()
    assert sum(1 for s in areas.values() if str(s) == "pass") >= 3, areas
