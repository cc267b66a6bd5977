"""mailer doctor against a real DNS server on 127.0.0.1 and a real STARTTLS relay.

The defect zones (one per defect) are in test_defects.py; here: a whole good
sender with a campaign, the key checks, the relay's TLS and reverse DNS, the
message rules and the CLI. Zones are only ever asked of the test's own DNS
server (``tests/dns_server.py``, dnslib) on loopback; the relay is aiosmtpd on
127.0.0.1 with a trustme certificate.
"""

from __future__ import annotations

import json

import pytest
import trustme

from mailer.core.settings import load_settings
from mailer.doctor.model import Status
from mailer.doctor.run import DoctorOptions, diagnose
from tests.dns_server import DnsServer, free_port
from tests.doctor.conftest import run_doctor_on, tls_context, write_workspace
from tests.doctor.zones import SHARED, sender_zone, txt
from tests.smtp_server import SmtpServer
from tests.workspace import CAMPAIGN, NOW, invoke

DOMAIN = "good.mailertest.net"


def served(key, **changes) -> DnsServer:  # type: ignore[no-untyped-def]
    return DnsServer(SHARED + sender_zone(DOMAIN, key, **changes))


def statuses(report, check_id: str) -> list[str]:  # type: ignore[no-untyped-def]
    return [str(c.status) for c in report.checks if c.id == check_id]


def test_a_good_sender_and_campaign_pass_every_check(tmp_path, doctor_keys, ca, relay):
    from mailer.campaign.prepared import prepare_campaign

    root = write_workspace(tmp_path, relay.port, DOMAIN, doctor_keys["2048"])
    prepared = prepare_campaign(root / "campaigns" / "spring.toml", load_settings(root, env={}))
    with served(doctor_keys["2048"]) as server:
        report = run_doctor_on(root, server, ca, prepared)
    assert {str(c.status) for c in report.checks} == {"pass"}, report.to_dict()
    assert [c.id for c in report.checks] == [
        "spf.record", "spf.relay", "dkim.key-size", "dkim.record", "dmarc.policy",
        "dmarc.alignment", "mx.record", "rdns.ptr", "tls.relay", "message.from",
        "message.message-id", "message.one-click", "message.one-click-signed",
        "message.unsubscribe-link",
        "volume.gmail", "volume.yahoo", "volume.outlook",
    ]  # fmt: skip
    assert report.result is Status.PASS


@pytest.mark.parametrize(
    ("key", "published", "check_id", "status", "reason"),
    [
        ("1024", "1024", "dkim.key-size", "warn", "has 1024 bits; 2048 is recommended"),
        ("2048", "other", "dkim.key-match", "fail", "is not the public half of the [dkim] key"),
        ("2048", None, "dkim.record", "fail", "no DKIM record at mail._domainkey.good."),
        (None, None, "dkim.configured", "fail", "messages are not DKIM-signed"),
    ],
)
def test_dkim_checks(tmp_path, doctor_keys, ca, relay, key, published, check_id, status, reason):
    root = write_workspace(tmp_path, relay.port, DOMAIN, doctor_keys[key] if key else None)
    record = f"v=DKIM1; k=rsa; p={doctor_keys[published].p}" if published else None
    with served(doctor_keys["2048"], dkim=record) as server:
        report = run_doctor_on(root, server, ca)
    [check] = [c for c in report.checks if c.id == check_id]
    assert (str(check.status), reason in check.reason) == (status, True), check
    # SPF still passes for the relay: alignment rests on it, DKIM or not.
    assert statuses(report, "dmarc.alignment") == ["pass"]


def test_a_record_dkimpy_refuses_is_not_evidence_even_with_our_key(
    tmp_path, doctor_keys, ca, relay
):
    # p= holds the right key, but the record's version is not DKIM1: dkimpy refuses it.
    root = write_workspace(tmp_path, relay.port, DOMAIN, doctor_keys["2048"])
    record = "v=DKIM2; k=rsa; p={p}"
    with served(doctor_keys["2048"], dkim=record, spf="v=spf1 -all") as server:
        report = run_doctor_on(root, server, ca)
    [check] = [c for c in report.checks if c.id == "dkim.record"]
    assert check.status is Status.FAIL and "bad version" in check.reason, check
    assert statuses(report, "dmarc.alignment") == ["fail"]


def test_mx_and_reverse_dns_failures(tmp_path, doctor_keys, ca, relay):
    root = write_workspace(tmp_path, relay.port, DOMAIN, doctor_keys["2048"])
    zone = sender_zone(DOMAIN, doctor_keys["2048"], mx=None).replace(
        f"{DOMAIN}. 300 IN A 192.0.2.10\n", ""
    )
    with DnsServer(zone) as server:
        report = run_doctor_on(root, server, ca)
    assert statuses(report, "mx.record") == ["fail"]
    assert statuses(report, "rdns.ptr") == ["fail"]
    other = SHARED.replace("PTR relay.mailertest.net.", "PTR elsewhere.mailertest.net.")
    with DnsServer(other + sender_zone(DOMAIN, doctor_keys["2048"])) as server:
        report = run_doctor_on(root, server, ca)
    [check] = [c for c in report.checks if c.id == "rdns.ptr"]
    assert check.status is Status.FAIL and "does not point back" in check.reason


def test_tls_unverified_certificate_and_no_starttls(tmp_path, doctor_keys, relay):
    other_ca = trustme.CA()  # the relay's certificate is not from this CA
    root = write_workspace(tmp_path, relay.port, DOMAIN, doctor_keys["2048"])
    with served(doctor_keys["2048"]) as server:
        report = run_doctor_on(root, server, other_ca)
        [tls] = [c for c in report.checks if c.id == "tls.relay"]
        assert tls.status is Status.FAIL and "does not verify" in tls.reason
        plain = SmtpServer().start()
        try:
            root = write_workspace(tmp_path / "plain", plain.port, DOMAIN, doctor_keys["2048"])
            report = run_doctor_on(root, server, other_ca)
        finally:
            plain.close()
    [tls] = [c for c in report.checks if c.id == "tls.relay"]
    assert tls.status is Status.FAIL and "does not offer STARTTLS" in tls.reason


def test_an_unreachable_resolver_makes_every_dns_area_unknown_quickly(
    tmp_path, doctor_keys, ca, relay
):
    root = write_workspace(tmp_path, relay.port, DOMAIN, doctor_keys["2048"])
    nobody = f"127.0.0.1:{free_port()}"  # nobody answers there
    options = DoctorOptions(resolver=nobody, dns_timeout=0.2, tls_context=tls_context(ca))
    report = diagnose(load_settings(root, env={}), None, options, now=NOW)
    areas = report.areas()
    for area in ("SPF", "DKIM", "DMARC", "MX", "reverse DNS"):
        assert str(areas[area]) == "unknown", report.to_dict()
    unknown = [c for c in report.checks if c.status is Status.UNKNOWN]
    assert unknown and {c.dns for c in unknown} == {"timeout"}
    assert not report.failed and report.unknown and report.result is Status.UNKNOWN
    # After 3 timeouts in a row the server is taken as gone: no more waiting per question.
    assert report.dns_queries <= 3 * 2, report.dns_queries


def test_message_rules_and_the_cli(tmp_path, doctor_keys, ca, relay, monkeypatch):
    from mailer.campaign.prepared import prepare_campaign

    root = write_workspace(
        tmp_path, relay.port, DOMAIN, doctor_keys["2048"], unsubscribe="mailto-only"
    )
    toml = (root / "mailer.toml").read_text().replace('url = "mailto-only"\n', "")
    (root / "mailer.toml").write_text(toml)
    campaign = root / "campaigns" / "spring.toml"
    campaign.write_text(CAMPAIGN.replace("Spring tea is here", "RE: Spring tea is here"))
    prepared = prepare_campaign(campaign, load_settings(root, env={}))
    with served(doctor_keys["2048"]) as server:
        report = run_doctor_on(root, server, ca, prepared)
        assert statuses(report, "message.one-click") == ["fail"]
        assert statuses(report, "message.subject") == ["fail"]
        monkeypatch.setenv("COLUMNS", "120")
        result = invoke(root, "doctor", "campaigns/spring.toml", "--resolver", server.address)
        as_json = invoke(root, "doctor", "--json", "--resolver", server.address)
    assert result.exit_code == 1
    assert "doctor · good.mailertest.net" in result.output
    assert "fix: set an https [unsubscribe] url" in result.output
    data = json.loads(as_json.output)
    assert data["areas"]["SPF"] == "pass" and data["areas"]["DMARC"] == "pass"
    assert data["result"] == "fail"  # the CLI does not trust the test CA: TLS fails
    assert {"id", "area", "status", "reason", "fix"} <= set(data["checks"][0])
    assert data["dns_queries"] > 0


def test_strict_makes_unknown_exit_non_zero(tmp_path, doctor_keys, relay):
    root = write_workspace(tmp_path, relay.port, DOMAIN, doctor_keys["2048"])
    zone = SHARED + sender_zone(DOMAIN, doctor_keys["2048"])
    with DnsServer(zone, faults={f"_dmarc.{DOMAIN}": "servfail"}) as server:
        lenient = invoke(root, "doctor", "--json", "--resolver", server.address)
        strict = invoke(root, "doctor", "--json", "--strict", "--resolver", server.address)
    # The relay's certificate is self-signed for the tests: TLS fails without the test CA,
    # so leave TLS out of the comparison by reading the JSON.
    for result in (lenient, strict):
        data = json.loads(result.output)
        assert data["areas"]["DMARC"] == "unknown"
        [dmarc] = [c for c in data["checks"] if c["id"] == "dmarc.record"]
        assert dmarc["dns"] == "servfail" and "SERVFAIL" in dmarc["reason"]
    tls_failed = json.loads(lenient.output)["areas"]["TLS"] == "fail"
    assert lenient.exit_code == (1 if tls_failed else 0)
    assert strict.exit_code == (1 if tls_failed else 3)


@pytest.mark.parametrize(
    ("reply", "check"),
    [
        ("550-5.7.26 This mail is unauthenticated, which poses a security risk", "(DMARC)"),
        ("421-4.7.23 The sending IP does not have a PTR record", "(reverse DNS)"),
        ("550 5.7.515 Access denied, sending domain does not meet the required level", "(DMARC)"),
        ("550-5.7.30 DKIM signature required", "(DKIM)"),
    ],
)
def test_provider_refusals_are_explained_in_status(tmp_path, reply, check):
    from mailer.audience.store import connect
    from mailer.doctor.codes import explain
    from tests.workspace import make_workspace

    assert explain(reply) is not None and explain(reply).endswith(check)  # type: ignore[union-attr]
    assert explain("550 5.1.1 User unknown") is None
    make_workspace(tmp_path)
    conn = connect(tmp_path / "mailer.db")
    conn.execute(
        "INSERT INTO journal (campaign_id, email, status, last_code, last_reply, queued_at,"
        " updated_at) VALUES ('spring', 'ann@tea.test', 'failed', 550, ?, 't', 't')",
        (reply,),
    )
    result = invoke(tmp_path, "status", "campaigns/spring.toml")
    assert result.exit_code == 0, result.output
    assert f"why: {explain(reply)}" in result.output


def test_mailer_check_adds_the_doctor_s_dns_findings_unless_offline(
    tmp_path, doctor_keys, ca, relay
):
    from mailer.services.checking import doctor_findings

    root = write_workspace(tmp_path, relay.port, DOMAIN, doctor_keys["2048"])
    with served(doctor_keys["2048"], dmarc=None) as server:
        report = run_doctor_on(root, server, ca)
    found = doctor_findings(report)
    assert [f.code for f in found] == ["sender-dmarc"]
    assert found[0].severity == "warning" and "fix: publish TXT at _dmarc" in found[0].message


def test_long_dkim_records_come_over_tcp(tmp_path, ca, relay):
    """A 4096-bit key's record does not fit 512 bytes: the answer is truncated, then TCP."""
    from tests.doctor.zones import make_key

    big = make_key(4096)
    root = write_workspace(tmp_path, relay.port, DOMAIN, big)
    assert len(txt(big.p)) > 512
    with served(big) as server:
        report = run_doctor_on(root, server, ca)
    assert statuses(report, "dkim.record") == ["pass"], report.to_dict()


def test_one_click_headers_outside_the_dkim_signature_fail(tmp_path, doctor_keys, monkeypatch):
    from mailer.campaign.prepared import prepare_campaign
    from mailer.compose import dkim as signing
    from mailer.doctor.message import check_message

    root = write_workspace(tmp_path, 25, DOMAIN, doctor_keys["2048"])
    prepared = prepare_campaign(root / "campaigns" / "spring.toml", load_settings(root, env={}))
    people = list(prepared.recipients())[:2]
    [ok] = [c for c in check_message(prepared, people) if c.id == "message.one-click-signed"]
    assert ok.status is Status.PASS
    fewer = tuple(h for h in signing.SIGNED_HEADERS if h != b"List-Unsubscribe-Post")
    monkeypatch.setattr(signing, "SIGNED_HEADERS", fewer)
    [bad] = [c for c in check_message(prepared, people) if c.id == "message.one-click-signed"]
    assert bad.status is Status.FAIL and "list-unsubscribe-post" in bad.reason
