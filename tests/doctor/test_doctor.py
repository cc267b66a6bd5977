"""mailer doctor against a real DNS server on 127.0.0.1 and a real STARTTLS relay.

Every check has a zone that passes and one that fails. The zones live under
``mailertest.net`` but are only ever asked of the test's own DNS server
(``tests/dns_server.py``, dnslib) on loopback; the relay is aiosmtpd on
127.0.0.1 with a trustme certificate.
"""

from __future__ import annotations

import base64
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from mailer.core.settings import load_settings
from mailer.doctor.model import Status
from mailer.doctor.run import DoctorOptions, diagnose
from tests.dns_server import DnsServer, free_port
from tests.smtp_server import SmtpServer, self_signed_context
from tests.workspace import CAMPAIGN, TEMPLATE, invoke

DOMAIN = "good.mailertest.net"


@dataclass(frozen=True)
class Key:
    pem: bytes
    record: str  # the TXT value, split into strings of at most 255 characters


def txt(value: str) -> str:
    """A TXT value as zone text: strings of at most 200 characters (a string holds 255)."""
    return " ".join(f'"{value[i : i + 200]}"' for i in range(0, len(value), 200))


def make_key(bits: int) -> Key:
    private = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    pem = private.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    public = private.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return Key(pem, txt("v=DKIM1; k=rsa; p=" + base64.b64encode(public).decode()))


@pytest.fixture(scope="module")
def keys() -> dict[str, Key]:
    return {"2048": make_key(2048), "1024": make_key(1024), "other": make_key(2048)}


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def relay(ca: trustme.CA) -> Iterator[SmtpServer]:
    server = SmtpServer(starttls=self_signed_context(ca)).start()
    yield server
    server.close()


def zone(domain: str = DOMAIN, *, spf: str | None = "v=spf1 ip4:127.0.0.1 -all",
         dkim: str | None = None, dmarc: str | None = "v=DMARC1; p=quarantine; rua=mailto:d@x",
         mx: bool = True, ptr: str | None = "relay.mailertest.net", extra: str = "") -> str:  # fmt: skip
    lines = []
    if spf is not None:
        lines.append(f"{domain}. 300 IN TXT {txt(spf)}")
    if dkim is not None:
        lines.append(f"mail._domainkey.{domain}. 300 IN TXT {dkim}")
    if dmarc is not None:
        lines.append(f'_dmarc.{domain}. 300 IN TXT "{dmarc}"')
    if mx:
        lines.append(f"{domain}. 300 IN MX 10 mx.{domain}.")
    if ptr is not None:
        lines.append(f"1.0.0.127.in-addr.arpa. 300 IN PTR {ptr}.")
        lines.append("relay.mailertest.net. 300 IN A 127.0.0.1")
    return "\n".join(lines) + "\n" + extra


def workspace(root: Path, relay_port: int, *, domain: str = DOMAIN, key: Key | None = None,
              unsubscribe: str = "https://{domain}/u/{{{{ token }}}}") -> Path:  # fmt: skip
    (root / "templates").mkdir(parents=True, exist_ok=True)
    (root / "campaigns").mkdir(exist_ok=True)
    settings = (
        f'[sender]\nname = "Tea House"\nemail = "news@{domain}"\n'
        f'[footer]\npostal_address = "Tea House Ltd, 8 Garden Lane, Shanghai"\n'
        f'[unsubscribe]\nurl = "{unsubscribe.format(domain=domain)}"\n'
        f'mailto = "unsubscribe@{domain}"\n'
        f'[smtp]\nurl = "smtp+starttls://127.0.0.1:{relay_port}"\n'
    )
    if key is not None:
        (root / "dkim.pem").write_bytes(key.pem)
        settings += '[dkim]\nkey = "dkim.pem"\nselector = "mail"\n'
    (root / "mailer.toml").write_text(settings, encoding="utf-8")
    (root / "templates" / "promo.mjml").write_text(TEMPLATE, encoding="utf-8")
    (root / "campaigns" / "contacts.csv").write_text(
        "email,first_name\nann@tea.test,Ann\nbob@tea.test,Bob\n", encoding="utf-8"
    )
    (root / "campaigns" / "spring.toml").write_text(CAMPAIGN, encoding="utf-8")
    return root


def diagnose_with(root: Path, zone_text: str, ca: trustme.CA, prepared=None):  # type: ignore[no-untyped-def]
    server = DnsServer(zone_text).start()
    try:
        context = ssl.create_default_context()
        ca.configure_trust(context)
        options = DoctorOptions(resolver=server.address, tls_context=context)
        return diagnose(load_settings(root, env={}), prepared, options)
    finally:
        server.stop()


def statuses(report, area: str) -> list[str]:  # type: ignore[no-untyped-def]
    return [str(c.status) for c in report.checks if c.area == area]


def test_a_good_sender_and_campaign_pass_every_check(tmp_path, keys, ca, relay):
    from mailer.campaign.prepared import prepare_campaign

    root = workspace(tmp_path, relay.port, key=keys["2048"])
    settings = load_settings(root, env={})
    prepared = prepare_campaign(root / "campaigns" / "spring.toml", settings)
    report = diagnose_with(root, zone(dkim=keys["2048"].record), ca, prepared)
    assert {str(c.status) for c in report.checks} == {"pass"}, report.to_dict()
    assert [c.area for c in report.checks] == [
        "SPF", "SPF relay", "DKIM", "DMARC", "DMARC alignment", "MX", "reverse DNS", "TLS",
        "From", "Message-ID", "one-click unsubscribe", "unsubscribe link", "volume",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("spf", "extra", "reason"),
    [
        (None, "", "has no SPF record"),
        ("v=spf1 ip4:10.0.0.1 -all", "", "does not allow the relay's address: 127.0.0.1 (fail)"),
        ("v=spf1 +all", "", "'+all' lets any server"),
        (
            "v=spf1 " + " ".join(f"include:i{n}.mailertest.net" for n in range(11)) + " -all",
            "".join(f'i{n}.mailertest.net. 300 IN TXT "v=spf1 -all"\n' for n in range(11)),
            "needs 11 DNS lookups",
        ),
    ],
)
def test_spf_failures(tmp_path, keys, ca, relay, spf, extra, reason):
    root = workspace(tmp_path, relay.port, key=keys["2048"])
    report = diagnose_with(root, zone(spf=spf, dkim=keys["2048"].record, extra=extra), ca)
    failed = [c for c in report.checks if c.area.startswith("SPF") and c.status is Status.FAIL]
    assert failed and reason in failed[0].reason and failed[0].fix


def test_two_spf_records_fail(tmp_path, keys, ca, relay):
    root = workspace(tmp_path, relay.port, key=keys["2048"])
    extra = f'{DOMAIN}. 300 IN TXT "v=spf1 -all"\n'
    report = diagnose_with(root, zone(dkim=keys["2048"].record, extra=extra), ca)
    assert statuses(report, "SPF") == ["fail"]


@pytest.mark.parametrize(
    ("key", "published", "status", "reason"),
    [
        ("1024", "1024", "warn", "has 1024 bits; 2048 is recommended"),
        ("2048", "other", "fail", "is not the public half of [dkim] key"),
        ("2048", None, "fail", "no DKIM record at mail._domainkey.good.mailertest.net"),
        (None, None, "fail", "messages are not DKIM-signed"),
    ],
)
def test_dkim_checks(tmp_path, keys, ca, relay, key, published, status, reason):
    root = workspace(tmp_path, relay.port, key=keys[key] if key else None)
    record = keys[published].record if published else None
    report = diagnose_with(root, zone(dkim=record), ca)
    [check] = [c for c in report.checks if c.area == "DKIM"]
    assert (str(check.status), reason in check.reason) == (status, True), check


def test_dmarc_missing_without_reports_and_misaligned(tmp_path, keys, ca, relay):
    root = workspace(tmp_path, relay.port, key=keys["2048"])
    missing = diagnose_with(root, zone(dkim=keys["2048"].record, dmarc=None), ca)
    assert statuses(missing, "DMARC") == ["fail"]
    quiet = diagnose_with(root, zone(dkim=keys["2048"].record, dmarc="v=DMARC1; p=none"), ca)
    assert statuses(quiet, "DMARC") == ["pass", "warn"]
    # No DKIM, and SPF does not allow the relay: nothing aligned passes.
    bare = workspace(tmp_path / "bare", relay.port)
    misaligned = diagnose_with(bare, zone(spf="v=spf1 ip4:10.9.9.9 -all"), ca)
    assert statuses(misaligned, "DMARC alignment") == ["fail"]


def test_mx_and_reverse_dns_failures(tmp_path, keys, ca, relay):
    root = workspace(tmp_path, relay.port, key=keys["2048"])
    report = diagnose_with(root, zone(dkim=keys["2048"].record, mx=False, ptr=None), ca)
    assert statuses(report, "MX") == ["fail"]
    assert statuses(report, "reverse DNS") == ["fail"]
    unconfirmed = diagnose_with(
        root, zone(dkim=keys["2048"].record, ptr=None, extra=
                   "1.0.0.127.in-addr.arpa. 300 IN PTR elsewhere.mailertest.net.\n"), ca
    )  # fmt: skip
    [check] = [c for c in unconfirmed.checks if c.area == "reverse DNS"]
    assert check.status is Status.FAIL and "does not point back" in check.reason


def test_tls_unverified_certificate_and_no_starttls(tmp_path, keys, relay):
    other_ca = trustme.CA()  # the relay's certificate is not from this CA
    root = workspace(tmp_path, relay.port, key=keys["2048"])
    report = diagnose_with(root, zone(dkim=keys["2048"].record), other_ca)
    [tls] = [c for c in report.checks if c.area == "TLS"]
    assert tls.status is Status.FAIL and "does not verify" in tls.reason
    plain = SmtpServer().start()
    try:
        root = workspace(tmp_path / "plain", plain.port, key=keys["2048"])
        report = diagnose_with(root, zone(dkim=keys["2048"].record), other_ca)
    finally:
        plain.close()
    [tls] = [c for c in report.checks if c.area == "TLS"]
    assert tls.status is Status.FAIL and "does not offer STARTTLS" in tls.reason


def test_an_unreachable_resolver_is_one_warning_not_a_hang(tmp_path, keys, relay):
    root = workspace(tmp_path, relay.port, key=keys["2048"])
    options = DoctorOptions(resolver=f"127.0.0.1:{free_port()}")  # nobody answers there
    report = diagnose(load_settings(root, env={}), None, options)
    [dns] = [c for c in report.checks if c.area == "DNS"]
    assert dns.status is Status.WARN and "did not answer" in dns.reason
    assert not any(c.area in ("SPF", "DKIM", "DMARC") for c in report.checks)


def test_message_rules_and_the_cli(tmp_path, keys, ca, relay, monkeypatch):
    from mailer.campaign.prepared import prepare_campaign

    root = workspace(tmp_path, relay.port, key=keys["2048"], unsubscribe="mailto-only")
    toml = (root / "mailer.toml").read_text().replace('url = "mailto-only"\n', "")
    (root / "mailer.toml").write_text(toml)
    campaign = root / "campaigns" / "spring.toml"
    campaign.write_text(CAMPAIGN.replace("Spring tea is here", "RE: Spring tea is here"))
    prepared = prepare_campaign(campaign, load_settings(root, env={}))
    report = diagnose_with(root, zone(dkim=keys["2048"].record), ca, prepared)
    assert statuses(report, "one-click unsubscribe") == ["fail"]
    assert statuses(report, "subject") == ["fail"]
    assert statuses(report, "volume") == ["pass"]
    server = DnsServer(zone(dkim=keys["2048"].record)).start()
    try:
        monkeypatch.setenv("COLUMNS", "120")
        result = invoke(root, "doctor", "campaigns/spring.toml", "--resolver", server.address)
    finally:
        server.stop()
    assert result.exit_code == 1
    assert "doctor · good.mailertest.net" in result.output
    assert "fix: set an https [unsubscribe] url" in result.output


def test_over_five_thousand_gmail_addresses_is_a_bulk_sender_warning():
    from mailer.core.recipient import Recipient
    from mailer.doctor.message import check_volume

    people = [Recipient(f"p{n}@gmail.com", "", {}, "") for n in range(5001)]
    check = check_volume(people)
    assert check.status is Status.WARN and "5,001 Gmail addresses" in check.reason


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


def test_mailer_check_adds_the_doctor_s_dns_findings_unless_offline(tmp_path, keys, ca, relay):
    from mailer.services.checking import doctor_findings

    root = workspace(tmp_path, relay.port, key=keys["2048"])
    report = diagnose_with(root, zone(dkim=keys["2048"].record, dmarc=None), ca)
    found = doctor_findings(report)
    assert [f.code for f in found] == ["sender-dmarc"]
    assert found[0].severity == "warning" and "fix: publish TXT at _dmarc" in found[0].message
