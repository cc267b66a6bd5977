"""Fixtures of the doctor tests: keys, a STARTTLS relay, and all defect zones on one DNS server."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trustme

from mailer.core.settings import load_settings
from mailer.doctor.model import DoctorReport
from mailer.doctor.run import DoctorOptions, diagnose
from tests.dns_server import DnsServer
from tests.doctor.zones import Key, Zone, catalogue, faults, make_key, zone_text
from tests.smtp_server import SmtpServer, self_signed_context
from tests.workspace import CAMPAIGN, NOW, TEMPLATE

DNS_TIMEOUT = (
    1.5  # the timeout zones cost 2 tries of this; loopback answers take far less, even loaded
)


@pytest.fixture(scope="session")
def doctor_keys() -> dict[str, Key]:
    return {"2048": make_key(2048), "1024": make_key(1024), "other": make_key(2048)}


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def relay(ca: trustme.CA) -> Iterator[SmtpServer]:
    server = SmtpServer(starttls=self_signed_context(ca)).start()
    yield server
    server.close()


@pytest.fixture(scope="session")
def zones(doctor_keys: dict[str, Key]) -> dict[str, Zone]:
    return {z.slug: z for z in catalogue(doctor_keys["2048"], doctor_keys["other"])}


@pytest.fixture(scope="session")
def zone_server(zones: dict[str, Zone]) -> Iterator[DnsServer]:
    listed = list(zones.values())
    with DnsServer(zone_text(listed), faults=faults(listed)) as server:
        yield server


def write_workspace(
    root: Path,
    relay_port: int,
    sender_domain: str,
    key: Key | None,
    *,
    extra: str = "",
    preset: str | None = None,
    unsubscribe: str = "https://{domain}/u/{{{{ token }}}}",
) -> Path:
    """A workspace sending as news@<domain> through the relay, signing with ``key``."""
    (root / "templates").mkdir(parents=True, exist_ok=True)
    (root / "campaigns").mkdir(exist_ok=True)
    settings = (
        f'[sender]\nname = "Tea House"\nemail = "news@{sender_domain}"\n'
        f'[footer]\npostal_address = "Tea House Ltd, 8 Garden Lane, Shanghai"\n'
        f'[unsubscribe]\nurl = "{unsubscribe.format(domain=sender_domain)}"\n'
        f'mailto = "unsubscribe@{sender_domain}"\n'
        f'[smtp]\nurl = "smtp+starttls://127.0.0.1:{relay_port}"\n'
    )
    if preset is not None:
        settings += f'preset = "{preset}"\n'
    if key is not None:
        (root / "dkim.pem").write_bytes(key.pem)
        settings += '[dkim]\nkey = "dkim.pem"\nselector = "mail"\n'
    (root / "mailer.toml").write_text(settings + extra, encoding="utf-8")
    (root / "templates" / "promo.mjml").write_text(TEMPLATE, encoding="utf-8")
    (root / "campaigns" / "contacts.csv").write_text(
        "email,first_name\nann@tea.test,Ann\nbob@tea.test,Bob\n", encoding="utf-8"
    )
    (root / "campaigns" / "spring.toml").write_text(CAMPAIGN, encoding="utf-8")
    return root


def tls_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


def run_doctor_on(
    root: Path,
    server: DnsServer,
    ca: trustme.CA,
    prepared=None,
    **options,  # type: ignore[no-untyped-def]
) -> DoctorReport:
    opts = DoctorOptions(
        resolver=server.address, tls_context=tls_context(ca), dns_timeout=DNS_TIMEOUT, **options
    )
    return diagnose(load_settings(root, env={}), prepared, opts, now=NOW)


@pytest.fixture(scope="session")
def zone_reports(
    tmp_path_factory: pytest.TempPathFactory,
    zones: dict[str, Zone],
    zone_server: DnsServer,
    relay: SmtpServer,
    doctor_keys: dict[str, Key],
    ca: trustme.CA,
) -> Callable[[str], DoctorReport]:
    """The doctor's report on one zone (run once per zone per session)."""
    reports: dict[str, DoctorReport] = {}

    def report(slug: str) -> DoctorReport:
        if slug not in reports:
            zone = zones[slug]
            root = write_workspace(
                tmp_path_factory.mktemp(slug), relay.port, zone.from_domain, doctor_keys["2048"]
            )
            reports[slug] = run_doctor_on(root, zone_server, ca)
        return reports[slug]

    return report
