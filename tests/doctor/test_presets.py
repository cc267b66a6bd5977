"""ESP presets: SPF is judged for the ESP's return path, and alignment says what to set up."""

from __future__ import annotations

from mailer.delivery.relay import PRESETS
from mailer.doctor.presets import ESP_PATHS
from tests.dns_server import DnsServer
from tests.doctor.conftest import run_doctor_on, write_workspace
from tests.doctor.zones import SHARED, sender_zone

DOMAIN = "mt-esp.net"
BOUNCE = f"bounce.{DOMAIN}"


def by_id(report):  # type: ignore[no-untyped-def]
    found: dict[str, list] = {}
    for check in report.checks:
        found.setdefault(check.id, []).append(check)
    return found


def test_every_relay_preset_has_a_documented_return_path():
    assert set(ESP_PATHS) == set(PRESETS)
    for esp in ESP_PATHS.values():
        assert esp.spf_include and "{domain}" in esp.setup


def test_ses_without_a_custom_mail_from_is_not_spf_aligned_and_says_what_to_set_up(
    tmp_path, doctor_keys, ca, relay
):
    root = write_workspace(tmp_path, relay.port, DOMAIN, doctor_keys["2048"], preset="ses")
    with DnsServer(SHARED + sender_zone(DOMAIN, doctor_keys["2048"])) as server:
        report = run_doctor_on(root, server, ca)
    checks = by_id(report)
    [path] = checks["spf.return-path"]
    assert str(path.status) == "warn" and "amazonses.com" in path.reason
    assert "custom MAIL FROM domain in SES" in path.fix and "[doctor] return_path" in path.fix
    # DKIM (our key, published) carries alignment; SPF is not counted for it.
    [alignment] = checks["dmarc.alignment"]
    assert str(alignment.status) == "pass" and "SPF" not in alignment.reason
    assert [str(c.status) for c in checks["rdns.ptr"]] == ["skip"]


def test_ses_without_dkim_signing_is_never_a_pass(tmp_path, ca, relay):
    root = write_workspace(tmp_path, relay.port, DOMAIN, None, preset="ses")
    with DnsServer(SHARED + sender_zone(DOMAIN, None, dkim=None)) as server:  # type: ignore[arg-type]
        report = run_doctor_on(root, server, ca)
    [alignment] = by_id(report)["dmarc.alignment"]
    assert str(alignment.status) == "unknown", alignment  # SES may sign: not visible from here
    assert "not aligned" in alignment.reason


def test_ses_with_a_custom_mail_from_domain_is_evaluated_for_an_ses_address(
    tmp_path, doctor_keys, ca, relay
):
    extra = f'[doctor]\nreturn_path = "{BOUNCE}"\n'
    root = write_workspace(tmp_path, relay.port, DOMAIN, None, extra=extra, preset="ses")
    bounce = (
        f'{BOUNCE}. 300 IN TXT "v=spf1 include:amazonses.com -all"\n'
        f"{BOUNCE}. 300 IN MX 10 feedback-smtp.us-east-1.amazonses.com.\n"
    )
    zone = SHARED + sender_zone(DOMAIN, doctor_keys["2048"], dkim=None) + bounce
    with DnsServer(zone) as server:
        report = run_doctor_on(root, server, ca)
    checks = by_id(report)
    assert "spf.return-path" not in checks
    [relay_spf] = checks["spf.relay"]
    assert str(relay_spf.status) == "pass" and "199.255.192.1" in relay_spf.reason
    [alignment] = checks["dmarc.alignment"]
    assert str(alignment.status) == "pass" and f"SPF passes for {BOUNCE}" in alignment.reason


def test_a_custom_mail_from_whose_spf_lacks_the_esp_fails(tmp_path, doctor_keys, ca, relay):
    extra = f'[doctor]\nreturn_path = "{BOUNCE}"\n'
    root = write_workspace(
        tmp_path, relay.port, DOMAIN, doctor_keys["2048"], extra=extra, preset="ses"
    )
    bounce = f'{BOUNCE}. 300 IN TXT "v=spf1 ip4:192.0.2.1 -all"\n'
    zone = SHARED + sender_zone(DOMAIN, doctor_keys["2048"]) + bounce
    with DnsServer(zone) as server:
        report = run_doctor_on(root, server, ca)
    [relay_spf] = by_id(report)["spf.relay"]
    assert str(relay_spf.status) == "fail" and "does not include amazonses.com" in relay_spf.reason
    assert "include:amazonses.com" in relay_spf.fix
