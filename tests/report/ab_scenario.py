"""A marketer's A/B campaign, for real: 1,000 recipients, a relay on loopback, clicks through
``mailer serve``, and the log of everything the readers did.

Used by ``tests/report/test_ab_report.py`` (every figure of the report checked against the
sink and this log) and by ``scripts/report_screenshots.py`` (the docs' pictures).

1. The test share (30 %) goes out through aiosmtpd, split A/B; the relay refuses a few
   addresses for good (hard bounces) and greylists some (retried: soft, then delivered).
2. Readers click the tracked links in the messages the sink received, through a real
   uvicorn serving ``mailer serve``'s app, over the next 30 hours (B's subject works better);
   a few unsubscribe with the one-click link of the List-Unsubscribe header.
3. After the wait, ``mailer ab pick`` decides by the rule; the rest gets the winner; its
   readers click too, for four days.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email import message_from_bytes
from email.header import decode_header, make_header
from pathlib import Path

import httpx

from mailer.audience.store import connect
from mailer.core.clock import parse_stamp, stamp
from mailer.core.settings import load_settings
from mailer.feedback.guard import Limiter
from mailer.feedback.server import Endpoint
from tests.feedback.served import serving
from tests.smtp_server import Received, SmtpServer
from tests.workspace import SETTINGS, TEMPLATE, invoke, make_workspace

RECIPIENTS = 1000
DOMAINS = ("qq.test", "163.test", "gmail.test", "outlook.test", "icloud.test", "sina.test")
SUBJECT_A = "春茶上新，{{ contact.first_name }}"
SUBJECT_B = "今年第一批明前龙井到了"
CAMPAIGN = f"""id = "spring-ab"
template = "promo"
subjects = ["{SUBJECT_A}", "{SUBJECT_B}"]
preheader = "Fresh leaves from the first harvest, 20% off this week"

[content]
headline = "Spring tea, {{{{ contact.first_name }}}}"
offer = "20% off all green teas this week"
cta_text = "Shop the harvest"
cta_url = "https://tea.test/spring?ref=mail"

[audience]
csv = "contacts.csv"

[data]
products = [{{ name = "Longjing", url = "https://tea.test/longjing" }}]

[ab]
test_share = 0.3
wait = "4h"
min_per_variant = 100
"""
TRACKING = '\n[tracking]\nclicks = true\nurl = "https://mail.tea.test"\n'
# Greylisted readers are retried at once (a real relay's 30 s would only slow the test).
RETRY = "\n[retry]\nbase_seconds = 0.05\nmax_seconds = 0.2\n"
_TRACKED = re.compile(r"https://mail\.tea\.test/c/([A-Za-z0-9_.-]+)")
_SUBJECTS = {"春茶上新": "A", "今年第一批": "B"}


def address(i: int) -> str:
    """The i-th contact's address, over six receiving domains."""
    return f"reader{i}@{DOMAINS[i % len(DOMAINS)]}"


def chance(email: str, salt: str) -> float:
    """A stable number in [0, 1) per address: who clicks, who unsubscribes."""
    digest = hashlib.sha256(f"{salt}:{email}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass
class Click:
    """One click made by the scenario."""

    email: str
    url: str
    at: datetime


@dataclass
class Scenario:
    """What happened, as the sink and the readers saw it."""

    root: Path
    test_share: dict[str, str] = field(default_factory=dict)  # email -> variant, phase 1
    rest: dict[str, str] = field(default_factory=dict)  # email -> variant, phase 2
    refused: set[str] = field(default_factory=set)  # refused for good by the relay
    greylisted: set[str] = field(default_factory=set)
    clicks: list[Click] = field(default_factory=list)
    unsubscribed: set[str] = field(default_factory=set)
    started: datetime | None = None
    picked_output: str = ""


def variant_of(received: Received) -> str:
    """A or B from the subject the sink received."""
    subject = str(make_header(decode_header(message_from_bytes(received.data)["Subject"])))
    return next(v for prefix, v in _SUBJECTS.items() if subject.startswith(prefix))


def _links(received: Received) -> list[str]:
    body = received.data.decode("utf-8", "replace").replace("=\r\n", "")
    return list(dict.fromkeys(_TRACKED.findall(body)))


def _one_click(received: Received) -> str:
    header = message_from_bytes(received.data)["List-Unsubscribe"]
    return re.search(r"<(https://[^>]+)>", str(header)).group(1)  # type: ignore[union-attr]


def build(root: Path) -> None:
    """The workspace: settings with click tracking, the template, the A/B campaign, contacts."""
    first_names = ("晓梅", "Ann", "伟", "Li", "佳慧", "Tom")
    contacts = "email,first_name\n" + "".join(
        f"{address(i)},{first_names[i % len(first_names)]}\n" for i in range(RECIPIENTS)
    )
    make_workspace(root, campaign=CAMPAIGN, contacts=contacts)
    (root / "mailer.toml").write_text(SETTINGS + TRACKING + RETRY, encoding="utf-8")
    (root / "templates" / "promo.mjml").write_text(TEMPLATE, encoding="utf-8")


def _send(root: Path, smtp: SmtpServer) -> str:
    result = invoke(
        root, "send", "campaigns/spring.toml", "--live", "--yes", "--no-browser",
        "--smtp", smtp.url,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return result.output


def _react(
    scenario: Scenario, base: str, messages: list[Received], when: dict[str, datetime],
    rates: dict[str, float], moment: list[float], hours: int,
) -> None:  # fmt: skip
    """Readers of ``messages`` click (by variant ``rates``) within ``hours`` of ``when``."""
    for received in messages:
        email = received.rcpt_tos[0].lower()
        variant = variant_of(received)
        if chance(email, "click") >= rates[variant]:
            continue
        links = _links(received)
        delay = timedelta(minutes=int(chance(email, "delay") ** 2 * hours * 60))
        at = when[email] + delay
        picks = links[:2] if chance(email, "twice") < 0.3 else links[:1]
        for n, token in enumerate(picks):
            moment[0] = (at + timedelta(minutes=n)).timestamp()
            response = httpx.get(f"{base}/c/{token}")
            assert response.status_code == 302, response.text
            scenario.clicks.append(Click(email, token, at + timedelta(minutes=n)))
        if chance(email, "unsub") < 0.04:
            moment[0] = (at + timedelta(minutes=5)).timestamp()
            url = _one_click(received).replace("https://tea.test", base)
            response = httpx.post(url, data={"List-Unsubscribe": "One-Click"})
            assert response.status_code == 200, response.text
            scenario.unsubscribed.add(email)


def run(root: Path, smtp: SmtpServer) -> Scenario:
    """Play the whole campaign; return what the sink and the readers saw."""
    build(root)
    scenario = Scenario(root)
    refused = {address(i) for i in range(RECIPIENTS) if chance(address(i), "dead") < 0.012}
    smtp.handler.faults.reject = refused
    smtp.handler.faults.greylist_fraction = 0.04
    _send(root, smtp)
    phase1 = list(smtp.handler.received)
    scenario.test_share = {r.rcpt_tos[0].lower(): variant_of(r) for r in phase1}
    conn = connect(root / "mailer.db")
    started = parse_stamp(conn.execute("SELECT started_at FROM ab_tests").fetchone()[0])
    sent_at = {
        str(e).lower(): parse_stamp(s)
        for e, s in conn.execute("SELECT email, sent_at FROM journal WHERE status = 'sent'")
    }
    conn.close()
    scenario.started = started
    moment = [started.timestamp()]
    settings = load_settings(root, env={})
    endpoint = Endpoint(
        settings, now=lambda: moment[0], log=lambda _: None, limiter=Limiter(1e6, 1e6)
    )
    with serving(endpoint) as base:
        _react(scenario, base, phase1, sent_at, {"A": 0.08, "B": 0.32}, moment, 30)
        later = stamp(started + timedelta(hours=5))
        picked = invoke(root, "ab", "pick", "campaigns/spring.toml", "--now", later,
                        "--smtp", smtp.url)  # fmt: skip
        assert picked.exit_code == 0, picked.output
        scenario.picked_output = picked.output
        _send(root, smtp)
        phase2 = smtp.handler.received[len(phase1) :]
        scenario.rest = {r.rcpt_tos[0].lower(): variant_of(r) for r in phase2}
        # The winner's readers open it on the day it arrives and over the next few days.
        arrival = {email: started + timedelta(hours=6) for email in scenario.rest}
        _react(scenario, base, phase2, arrival, {"A": 0.08, "B": 0.32}, moment, 96)
    scenario.refused = {a.lower() for a in refused}
    scenario.greylisted = {a.lower() for a in smtp.handler.greylisted}
    return scenario
