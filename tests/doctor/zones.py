"""One DNS zone per sender defect, served together by the loopback DNS server (tests/dns_server.py).

Every zone is a complete, otherwise good sender domain (SPF allowing the relay
at 127.0.0.1, a DKIM key, DMARC with reports, an MX) with exactly one defect.
Each domain is its own registrable domain (``mt-<slug>.net``) so the Public
Suffix List gives each its own organisational domain; they are only ever asked
of the test's own DNS server on loopback.

``expect`` names the doctor check ids the defect must produce, with the
statuses that count as "found" (never ``pass``). ``peer`` says which of
checkdmarc's areas (spf / dmarc) the defect belongs to, for the peer test.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

BAD = frozenset({"fail", "warn", "unknown"})
FAIL = frozenset({"fail"})
WARN = frozenset({"warn"})
UNKNOWN = frozenset({"unknown"})


@dataclass(frozen=True)
class Key:
    pem: bytes
    p: str  # the base64 public key, as the record's p= holds it


def make_key(bits: int = 2048) -> Key:
    private = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    pem = private.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    public = private.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return Key(pem, base64.b64encode(public).decode())


def txt(value: str) -> str:
    """A TXT value as zone text: strings of at most 200 characters (a string holds 255)."""
    return " ".join(f'"{value[i : i + 200]}"' for i in range(0, len(value), 200))


@dataclass(frozen=True)
class Zone:
    slug: str
    defect: str  # what is wrong, in the words of the issue
    expect: dict[str, frozenset[str]]  # check id -> statuses that count as found
    peer: str | None = None  # "spf" / "dmarc": the checkdmarc area this defect belongs to
    sender: str = ""  # the From domain when it is not the zone's own (a subdomain)
    faults: dict[str, str] = field(default_factory=dict)  # name [TYPE] -> servfail/timeout/...
    records: str = ""  # the zone text (filled by catalogue())

    @property
    def domain(self) -> str:
        return f"mt-{self.slug}.net"

    @property
    def from_domain(self) -> str:
        return self.sender or self.domain


RELAY = "127.0.0.1"
SHARED = (
    "1.0.0.127.in-addr.arpa. 300 IN PTR relay.mailertest.net.\n"
    "relay.mailertest.net. 300 IN A 127.0.0.1\n"
    # An outside report destination (for rua authorisation), and what it authorises.
    "mt-reports.net. 300 IN MX 10 mx.mt-reports.net.\n"
    'mt-dmarc-rua-authorised.net._report._dmarc.mt-reports.net. 300 IN TXT "v=DMARC1"\n'
    # An ESP's SPF (the loopback copy a preset test evaluates against).
    'amazonses.com. 300 IN TXT "v=spf1 ip4:199.255.192.0/22 ip4:54.240.0.0/18 -all"\n'
)


def sender_zone(
    domain: str,
    key: Key,
    *,
    spf: str | None = "v=spf1 ip4:127.0.0.1 -all",
    dkim: str | None = "",  # "" -> the key's own record
    dmarc: str | None = "v=DMARC1; p=quarantine; rua=mailto:dmarc@{domain}",
    mx: str | None = "10 mx.{domain}.",
    extra: str = "",
) -> str:
    """The zone of a good sender at ``domain``, with any part replaced or left out."""
    lines = [f"{domain}. 300 IN A 192.0.2.10"]
    if spf is not None:
        lines.append(f"{domain}. 300 IN TXT {txt(spf.format(domain=domain))}")
    if dkim is not None:
        record = dkim.format(domain=domain, p=key.p) if dkim else f"v=DKIM1; k=rsa; p={key.p}"
        lines.append(f"mail._domainkey.{domain}. 300 IN TXT {txt(record)}")
    if dmarc is not None:
        lines.append(f"_dmarc.{domain}. 300 IN TXT {txt(dmarc.format(domain=domain))}")
    if mx is not None:
        lines.append(f"{domain}. 300 IN MX {mx.format(domain=domain)}")
        lines.append(f"mx.{domain}. 300 IN A 192.0.2.25")
    return "\n".join(lines) + "\n" + extra.format(domain=domain)


def tree_zone(domain: str, key: Key) -> str:
    """A good sender whose SPF is a tree (3 includes with a/mx terms) the relay passes at the end.

    pyspf, checkdmarc and the doctor all walk it: with the per-run cache each name is
    asked once.
    """
    spf = "v=spf1 include:a._spf.{domain} include:b._spf.{domain} include:c._spf.{domain} "
    spf += "ip4:127.0.0.1 -all"
    extra = ""
    for n, part in enumerate("abc"):
        extra += f'{part}._spf.{{domain}}. 300 IN TXT "v=spf1 a:h{part}.{{domain}} mx:{{domain}} ip4:10.{n}.0.0/16 -all"\n'
        extra += f"h{part}.{{domain}}. 300 IN A 192.0.2.{40 + n}\n"
    return sender_zone(domain, key, spf=spf, extra=extra)


def _zones() -> list[tuple[Zone, dict[str, object]]]:
    """(zone, how its records differ from a good sender's)."""
    eleven = " ".join(f"include:i{n}.{{domain}}" for n in range(11))
    includes = "".join(f'i{n}.{{domain}}. 300 IN TXT "v=spf1 -all"\n' for n in range(11))
    other_key = "v=DKIM1; k=rsa; p={other}"
    spf_fails = "v=spf1 ip4:10.9.9.9 -all"
    return [
        (Zone("good", "nothing: a good sender", {}), {}),
        # ---- SPF
        (Zone("spf-missing", "no SPF record", {"spf.missing": FAIL}, "spf"), {"spf": None}),
        (
            Zone("spf-multiple", "two SPF records", {"spf.multiple-records": FAIL}, "spf"),
            {"extra": '{domain}. 300 IN TXT "v=spf1 -all"\n'},
        ),
        (
            Zone("spf-unknown-mech", "an unknown mechanism", {"spf.syntax": FAIL}, "spf"),
            {"spf": "v=spf1 ip4:127.0.0.1 foo:bar -all"},
        ),
        (
            Zone("spf-lookups", "11 DNS lookups", {"spf.too-many-lookups": FAIL}, "spf"),
            {"spf": f"v=spf1 ip4:127.0.0.1 {eleven} -all", "extra": includes},
        ),
        (
            Zone("spf-void", "3 void lookups", {"spf.void-lookups": FAIL}, "spf"),
            {"spf": "v=spf1 a:n1.{domain} a:n2.{domain} a:n3.{domain} ip4:127.0.0.1 -all"},
        ),
        (
            Zone("spf-plus-all", "+all", {"spf.plus-all": FAIL}, "spf"),
            {"spf": "v=spf1 +all"},
        ),
        (
            Zone("spf-neutral-all", "?all", {"spf.neutral-all": WARN}, "spf"),
            {"spf": "v=spf1 ip4:127.0.0.1 ?all"},
        ),
        (
            Zone("spf-relay", "SPF does not allow the relay", {"spf.relay": FAIL}, "spf"),
            {"spf": spf_fails},
        ),
        (
            Zone(
                "spf-include-missing",
                "include of a name without SPF",
                {"spf.include-missing": FAIL},
                "spf",
            ),
            {"spf": "v=spf1 ip4:127.0.0.1 include:gone.{domain} -all"},
        ),
        (
            Zone("spf-loop", "an include loop", {"spf.loop": FAIL}, "spf"),
            {
                "spf": "v=spf1 include:l1.{domain} -all",
                "extra": 'l1.{domain}. 300 IN TXT "v=spf1 include:{domain} -all"\n',
            },
        ),
        # ---- DMARC
        (
            Zone("dmarc-missing", "no DMARC record", {"dmarc.missing": FAIL}, "dmarc"),
            {"dmarc": None},
        ),
        (
            Zone("dmarc-multiple", "two DMARC records", {"dmarc.multiple-records": FAIL}, "dmarc"),
            {"extra": '_dmarc.{domain}. 300 IN TXT "v=DMARC1; p=none"\n'},
        ),
        (
            Zone("dmarc-pct", "pct=150", {"dmarc.tag-invalid": FAIL}, "dmarc"),
            {"dmarc": "v=DMARC1; p=reject; pct=150; rua=mailto:dmarc@{domain}"},
        ),
        (
            Zone("dmarc-adkim", "adkim=x", {"dmarc.tag-invalid": FAIL}, "dmarc"),
            {"dmarc": "v=DMARC1; p=reject; adkim=x; rua=mailto:dmarc@{domain}"},
        ),
        (
            Zone("dmarc-policy-value", "p=rejectt", {"dmarc.tag-invalid": FAIL}, "dmarc"),
            {"dmarc": "v=DMARC1; p=rejectt; rua=mailto:dmarc@{domain}"},
        ),
        (
            Zone("dmarc-rua-scheme", "rua without mailto:", {"dmarc.report-uri": FAIL}, "dmarc"),
            {"dmarc": "v=DMARC1; p=reject; rua=dmarc@{domain}"},
        ),
        (
            Zone(
                "dmarc-rua-external",
                "rua at another domain, not authorised",
                {"dmarc.report-auth": WARN},
                "dmarc",
            ),
            {"dmarc": "v=DMARC1; p=reject; rua=mailto:d@mt-reports.net"},
        ),
        (
            Zone(
                "dmarc-no-rua", "no rua (nobody gets reports)", {"dmarc.no-reports": WARN}, "dmarc"
            ),
            {"dmarc": "v=DMARC1; p=reject"},
        ),
        (
            Zone("dmarc-p-none", "p=none", {"dmarc.policy": WARN}, "dmarc"),
            {"dmarc": "v=DMARC1; p=none; rua=mailto:dmarc@{domain}"},
        ),
        (
            Zone(
                "dmarc-sp",
                "a subdomain sender under sp=none (p=reject)",
                {"dmarc.policy": WARN},
                "dmarc",
                sender="news.mt-dmarc-sp.net",
            ),
            {"dmarc": "v=DMARC1; p=reject; sp=none; rua=mailto:dmarc@{domain}"},
        ),
        (
            Zone(
                "dmarc-np",
                "a non-existent subdomain sender under np=none",
                {"dmarc.policy": WARN},
                "dmarc",
                sender="ghost.mt-dmarc-np.net",
            ),
            {"dmarc": "v=DMARC1; p=reject; sp=reject; np=none; rua=mailto:dmarc@{domain}"},
        ),
        # ---- DKIM and alignment from evidence
        (
            Zone(
                "dkim-missing",
                "DKIM record missing, SPF failing: DMARC fails",
                {"dkim.record": FAIL, "dmarc.alignment": FAIL},
            ),
            {"dkim": None, "spf": spf_fails},
        ),
        (
            Zone(
                "dkim-other-key",
                "another key published, SPF failing: DMARC fails",
                {"dkim.key-match": FAIL, "dmarc.alignment": FAIL},
            ),
            {"dkim": other_key, "spf": spf_fails},
        ),
        (
            Zone(
                "dkim-testing",
                "DKIM t=y, SPF failing: DKIM not counted",
                {"dkim.testing": WARN, "dmarc.alignment": FAIL},
            ),
            {"dkim": "v=DKIM1; k=rsa; t=y; p={p}", "spf": spf_fails},
        ),
        (
            Zone("dkim-revoked", "DKIM key revoked (empty p=)", {"dkim.revoked": FAIL}),
            {"dkim": "v=DKIM1; k=rsa; p="},
        ),
        # ---- MX
        (Zone("mx-null", "null MX (MX 0 .)", {"mx.null": FAIL}), {"mx": "0 ."}),
        (
            Zone("mx-missing", "no MX and no address", {"mx.record": FAIL}),
            {"mx": None, "drop_a": True},
        ),
        # ---- DNS failures: unknown, never "absent"
        (
            Zone(
                "dns-servfail",
                "SERVFAIL for the SPF record",
                {"spf.record": UNKNOWN},
                faults={"mt-dns-servfail.net TXT": "servfail"},
            ),
            {},
        ),
        (
            Zone(
                "dns-timeout",
                "no answer for the DMARC record",
                {"dmarc.record": UNKNOWN},
                faults={"_dmarc.mt-dns-timeout.net": "timeout"},
            ),
            {},
        ),
        (
            Zone(
                "dns-garbage",
                "a garbage answer for the DKIM record",
                {"dkim.record": UNKNOWN},
                faults={"mail._domainkey.mt-dns-garbage.net": "garbage"},
            ),
            {},
        ),
        (
            Zone(
                "dns-include-servfail",
                "SERVFAIL for an SPF include",
                {"spf.record": UNKNOWN, "spf.relay": UNKNOWN},
                faults={"inc.mt-dns-include-servfail.net": "servfail"},
            ),
            {
                "spf": "v=spf1 include:inc.{domain} ip4:127.0.0.1 -all",
                "extra": 'inc.{domain}. 300 IN TXT "v=spf1 -all"\n',
            },
        ),
        (
            Zone(
                "dns-refused",
                "REFUSED for the MX",
                {"mx.record": UNKNOWN},
                faults={"mt-dns-refused.net MX": "refused"},
            ),
            {},
        ),
    ]


def catalogue(key: Key, other: Key) -> list[Zone]:
    """Every zone with its records filled in."""
    zones = []
    for zone, change in _zones():
        parts = dict(change)
        drop_a = bool(parts.pop("drop_a", False))
        if isinstance(parts.get("dkim"), str):
            parts["dkim"] = str(parts["dkim"]).replace("{other}", other.p)
        text = sender_zone(zone.domain, key, **parts)  # type: ignore[arg-type]
        if drop_a:
            text = text.replace(f"{zone.domain}. 300 IN A 192.0.2.10\n", "")
        if zone.sender and not zone.sender.startswith("ghost."):
            # A subdomain sender that exists, with its own SPF and DKIM key; DMARC is the org's.
            text += f"{zone.sender}. 300 IN A 192.0.2.11\n"
            text += f'{zone.sender}. 300 IN TXT "v=spf1 ip4:127.0.0.1 -all"\n'
            text += f"{zone.sender}. 300 IN MX 10 mx.{zone.domain}.\n"
            text += (
                f"mail._domainkey.{zone.sender}. 300 IN TXT {txt('v=DKIM1; k=rsa; p=' + key.p)}\n"
            )
        zones.append(_with(zone, text))
    return zones


def _with(zone: Zone, records: str) -> Zone:
    from dataclasses import replace

    return replace(zone, records=records)


def zone_text(zones: list[Zone]) -> str:
    """All zones as one zone file (plus the shared records)."""
    return SHARED + "".join(z.records for z in zones)


def faults(zones: list[Zone]) -> dict[str, str]:
    """Every zone's faults, for one DnsServer."""
    found: dict[str, str] = {}
    for zone in zones:
        found.update(zone.faults)
    return found
