"""Live preview without a browser: the session, the HTTP API, the event stream, the CLI."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from email import message_from_bytes
from email.header import decode_header, make_header
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mailer.cli import app
from mailer.core.recipient import Recipient
from mailer.core.settings import load_settings
from mailer.preview.server import PreviewServer, start_preview
from mailer.preview.session import PreviewSession
from mailer.preview.view import parse_headers, pick_samples, truncate_columns

TEMPLATE = """<mjml>
<mj-head><mj-title>{{ subject }}</mj-title><mj-preview>{{ preheader }}</mj-preview></mj-head>
<mj-body>
<mj-section><mj-column>
<mj-text css-class="mailer-headline"><h1>{{ headline }}</h1></mj-text>
<mj-text css-class="mailer-offer"><p>Hello {{ contact.first_name | default('friend', true) }}
from {{ contact.city | default('somewhere', true) }}.</p><p>{{ offer }}</p></mj-text>
<mj-button css-class="mailer-cta" href="{{ cta.url }}">{{ cta.text }}</mj-button>
<mj-text>{{ sender.name }}, {{ postal_address }} <a href="{{ unsubscribe_url }}">Unsubscribe</a>
</mj-text>
</mj-column></mj-section>
</mj-body></mjml>
"""

CAMPAIGN = """id = "preview-demo"
template = "card"
subjects = ["{{ contact.first_name | default('Friend', true) }}, spring tea is here",
            "春茶上新：明前龙井限时八折，本周下单包邮到家，还送一只白瓷茶杯"]
preheader = "First-flush leaves, picked last week and packed the same day."

[content]
headline = "Spring harvest, {{ contact.first_name | default('friend', true) }}"
offer = "Every green tea is 20% off until Sunday."
cta_text = "Shop the harvest"
cta_url = "https://preview.test/shop"

[audience]
csv = "contacts.csv"
"""

CONTACTS = """email,first_name,last_name,city
ann@preview.test,Ann,Lee,London
bob@preview.test,,Brown,
chen@preview.test,晨,陈,上海
"""

SETTINGS = """test_address = "tester@preview.test"

[sender]
name = "Preview Tea"
email = "news@preview.test"

[footer]
postal_address = "Preview Tea, 1 Loop Road, 00000 Localhost"

[unsubscribe]
url = "https://preview.test/unsubscribe?t={{ token }}"
mailto = "unsubscribe@preview.test"
"""


def make_workspace(root: Path, settings: str = SETTINGS) -> Path:
    """Write mailer.toml, templates/card.mjml, campaigns/demo.toml and contacts.csv."""
    (root / "templates").mkdir(parents=True, exist_ok=True)
    (root / "campaigns").mkdir(exist_ok=True)
    (root / "mailer.toml").write_text(settings, encoding="utf-8")
    (root / "templates" / "card.mjml").write_text(TEMPLATE, encoding="utf-8")
    (root / "campaigns" / "contacts.csv").write_text(CONTACTS, encoding="utf-8")
    path = root / "campaigns" / "demo.toml"
    path.write_text(CAMPAIGN, encoding="utf-8")
    return path


def start_server(
    root: Path, settings: str = SETTINGS, poll: float = 0.1, fold: bool = False
) -> PreviewServer:
    """A preview server over a fresh workspace in ``root`` (environment ignored)."""
    campaign = make_workspace(root, settings)
    return start_preview(
        campaign,
        lambda: load_settings(root, env={}),
        settings_file=root / "mailer.toml",
        poll=poll,
        fold=fold,
    )


def rewrite(path: Path, text: str) -> None:
    """Write ``text`` and move the mtime forward (coarse file-system clocks)."""
    path.write_text(text, encoding="utf-8")
    stamp = time.time() + 1
    os.utime(path, (stamp, stamp))


def get(server: PreviewServer, path: str, host: str | None = None) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    headers = {"Host": host} if host else {}
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response.status, json.loads(body)


def post(server: PreviewServer, path: str, data: dict[str, Any], kind: str = "application/json"):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.request("POST", path, body=json.dumps(data), headers={"Content-Type": kind})
    response = conn.getresponse()
    body = json.loads(response.read())
    conn.close()
    return response.status, body


@pytest.fixture
def server(tmp_path: Path):
    running = start_server(tmp_path)
    yield running
    running.close()


# --- pure helpers ----------------------------------------------------------------


def test_truncate_counts_cjk_double() -> None:
    assert truncate_columns("Short subject", 38) == "Short subject"
    cut = truncate_columns("春茶上新：明前龙井限时八折，本周下单包邮到家", 20)
    assert cut == "春茶上新：明前龙井…"  # 9 wide characters = 18 columns, then the ellipsis
    assert truncate_columns("A" * 50, 38) == "A" * 37 + "…"


def test_samples_include_a_contact_with_blank_fields() -> None:
    full = [Recipient(f"p{i}@x.test", f"P {i}", {"city": "Oslo"}) for i in range(30)]
    blank = Recipient("blank@x.test", "", {"city": ""})
    samples = pick_samples([*full, blank], limit=20)
    assert len(samples) == 21 and samples[-1] is blank
    assert pick_samples([blank, *full], limit=20)[0] is blank  # already there: nothing added


def test_parse_headers_decodes_and_keeps_raw() -> None:
    data = b"Subject: =?utf-8?b?5pil6Iy2?=\r\nTo: a@b.test\r\n\r\nbody"
    decoded, raw = parse_headers(data)
    assert decoded == [["Subject", "春茶"], ["To", "a@b.test"]]
    assert raw == "Subject: =?utf-8?b?5pil6Iy2?=\nTo: a@b.test"


# --- the session -----------------------------------------------------------------


def test_view_uses_the_send_pipeline_and_variants(tmp_path: Path) -> None:
    from mailer.campaign.prepared import prepare_campaign

    campaign = make_workspace(tmp_path)
    session = PreviewSession(campaign, lambda: load_settings(tmp_path, env={}))
    state = session.state()
    assert [r["label"] for r in state["recipients"]] == [
        "Ann Lee <ann@preview.test>",
        "Brown <bob@preview.test> · missing city, first_name",
        "陈晨 <chen@preview.test>",
    ]
    prepared = prepare_campaign(campaign, load_settings(tmp_path, env={}))
    for person in prepared.recipients():
        sent = prepared.build(person)
        view = session.view(person.email, "auto")
        assert view["subject"] == sent.subject
        assert view["html"] == sent.rendered.html and view["text"] == sent.rendered.text
        assert view["variant"] == view["assigned"] == sent.variant
    bob = session.view("bob@preview.test", "0")
    assert bob["subject"] == "Friend, spring tea is here"
    assert "Hello friend" in bob["html"] and "from somewhere" in bob["text"]
    chen_b = session.view("chen@preview.test", "1")
    assert chen_b["label"] == "B" and chen_b["subject"].startswith("春茶上新")
    row_b = chen_b["inbox"][1]
    assert row_b["subject_columns"] == 62 and row_b["subject_cut"].endswith("…")
    assert dict(chen_b["headers"])["Subject"] == chen_b["subject"]


def test_broken_template_is_reported_and_recovers(tmp_path: Path) -> None:
    campaign = make_workspace(tmp_path)
    session = PreviewSession(
        campaign, lambda: load_settings(tmp_path, env={}), tmp_path / "mailer.toml"
    )
    assert session.state()["error"] is None
    template = tmp_path / "templates" / "card.mjml"
    rewrite(template, TEMPLATE.replace("{{ offer }}", "{{ contact. }}"))
    state = session.state()
    assert state["error"]["kind"] == "TemplateError"
    assert state["error"]["text"].startswith(f"{template}:")
    assert ": Jinja syntax error: expected name or number, in: " in state["error"]["text"]
    assert session.view("ann@preview.test", "auto")["error"]["kind"] == "TemplateError"
    rewrite(template, TEMPLATE.replace("{{ offer }}", "Fixed offer"))
    fixed = session.view("ann@preview.test", "auto")
    assert fixed["error"] is None and "Fixed offer" in fixed["html"]
    assert fixed["version"] == state["version"] + 1


def test_template_broken_from_the_start_is_still_watched(tmp_path: Path) -> None:
    campaign = make_workspace(tmp_path)
    template = tmp_path / "templates" / "card.mjml"
    template.write_text(TEMPLATE.replace("{{ offer }}", "{{ contact. }}"), encoding="utf-8")
    session = PreviewSession(campaign, lambda: load_settings(tmp_path, env={}))
    assert session.state()["error"]["kind"] == "TemplateError"
    rewrite(template, TEMPLATE)
    assert session.state()["error"] is None


def test_broken_campaign_file_is_reported(tmp_path: Path) -> None:
    campaign = make_workspace(tmp_path)
    session = PreviewSession(campaign, lambda: load_settings(tmp_path, env={}))
    rewrite(campaign, CAMPAIGN.replace('template = "card"', 'template = "crad"'))
    error = session.state()["error"]
    assert error["text"] == (f"{campaign}:2: unknown template 'crad'\n  hint: did you mean 'card'?")
    rewrite(campaign, CAMPAIGN)
    assert session.state()["error"] is None


# --- the HTTP API ------------------------------------------------------------------


def test_event_stream_announces_a_change(server: PreviewServer) -> None:
    # How fast is measured by tests/benchmarks/bench_preview.py, not here.
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.request("GET", "/events")
    stream = conn.getresponse()
    assert stream.getheader("Content-Type") == "text/event-stream"
    assert stream.readline() == b"event: version\n"
    first = int(stream.readline().decode().removeprefix("data: "))
    stream.readline()
    campaign = server.session.path
    rewrite(campaign, CAMPAIGN.replace("Every green tea", "Every white tea"))
    assert stream.readline() == b"event: version\n"
    assert int(stream.readline().decode().removeprefix("data: ")) == first + 1
    conn.close()
    status, view = get(server, "/api/view?email=ann%40preview.test&variant=auto")
    assert status == 200 and "Every white tea" in view["html"]


def test_only_loopback_hosts_are_answered(server: PreviewServer) -> None:
    status, body = get(server, "/api/state", host="evil.test:80")
    assert (status, body) == (403, {"error": "this preview only answers on 127.0.0.1"})
    status, body = get(server, "/api/state", host=f"localhost:{server.port}")
    assert status == 200 and body["campaign"]["id"] == "preview-demo"


def test_send_test_writes_to_the_test_outbox(server: PreviewServer, tmp_path: Path) -> None:
    status, answer = post(server, "/api/send-test", {"email": "chen@preview.test", "variant": 1})
    assert status == 200 and answer["ok"] and answer["transport"] == "outbox"
    eml = tmp_path / "outbox" / "test" / "tester@preview.test.eml"
    message = message_from_bytes(eml.read_bytes())
    assert str(make_header(decode_header(message["Subject"]))).startswith("[TEST] 春茶上新")
    assert "tester@preview.test" in message["To"]
    html = next(p for p in message.walk() if p.get_content_type() == "text/html")
    assert "Hello 晨" in html.get_payload(decode=True).decode()
    assert not (tmp_path / "mailer.db").exists()  # a test is not a send: no journal


def test_send_test_refuses_a_form_post(server: PreviewServer) -> None:
    status, body = post(server, "/api/send-test", {}, kind="application/x-www-form-urlencoded")
    assert (status, body) == (415, {"error": "send a JSON body"})


def test_send_test_without_test_address_says_how_to_set_it(tmp_path: Path) -> None:
    running = start_server(tmp_path, SETTINGS.replace('test_address = "tester@preview.test"', ""))
    try:
        status, answer = post(running, "/api/send-test", {"email": "ann@preview.test"})
    finally:
        running.close()
    assert status == 200 and answer["ok"] is False
    assert answer["error"]["text"] == (
        f"{tmp_path / 'mailer.toml'}: no test address is set\n"
        '  hint: add test_address = "you@example.org" to mailer.toml or set MAILER_TEST_ADDRESS'
    )


def test_send_test_through_the_smtp_relay(tmp_path: Path, smtp_server: Any) -> None:
    settings = SETTINGS + f'\n[smtp]\nurl = "smtp://127.0.0.1:{smtp_server.port}"\n'
    running = start_server(tmp_path, settings)
    try:
        status, answer = post(running, "/api/send-test", {"email": "ann@preview.test"})
    finally:
        running.close()
    assert status == 200 and answer["ok"]
    assert (answer["transport"], answer["code"]) == ("smtp", 250)
    [received] = smtp_server.handler.received
    assert received.rcpt_tos == ["tester@preview.test"]
    assert received.message["Subject"] == "[TEST] Ann, spring tea is here"
    assert not (tmp_path / "outbox").exists()


# --- the command ---------------------------------------------------------------------


def test_cli_refuses_a_missing_campaign(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["preview", str(tmp_path / "nope.toml"), "--no-open"])
    assert result.exit_code == 1
    assert result.output == (
        f"error: {tmp_path / 'nope.toml'}: campaign file not found\n"
        "  hint: check the path and try again\n"
    )


def test_cli_serves_until_interrupted(tmp_path: Path) -> None:
    make_workspace(tmp_path)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("MAILER_") or k == "MAILER_UNSUBSCRIBE_KEY"
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "mailer", "preview", "campaigns/demo.toml", "--no-open"],
        cwd=tmp_path,
        env={**env, "COLUMNS": "200"},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("previewing campaigns/demo.toml at http://127.0.0.1:")
        port = int(line.split("127.0.0.1:")[1].split("/")[0])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/")
        page = conn.getresponse().read().decode()
        assert "<title>mailer preview</title>" in page
        conn.close()
    finally:
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=10)
    assert out == "preview stopped\n" and process.returncode == 0


# --- checks alongside ------------------------------------------------------------------


def test_checks_report_fold_not_run_without_chromium(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAILER_CHROMIUM", str(tmp_path / "no-chromium"))
    campaign = make_workspace(tmp_path)
    session = PreviewSession(campaign, lambda: load_settings(tmp_path, env={}), fold=True)
    report = session.checks("ann@preview.test", "auto")
    assert report["available"] is True and report["fold"]["ran"] is False
    assert report["fold"]["note"].startswith(
        f"NOT RUN: Chromium not found at {tmp_path / 'no-chromium'}"
    )
    assert report["fold"]["measurements"] == []
    assert [s["variant"] for s in report["subjects"]] == ["A", "B"]


def test_cli_reports_a_busy_port(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    make_workspace(tmp_path)
    monkeypatch.chdir(tmp_path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(
            app, ["preview", "campaigns/demo.toml", "--no-open", "--port", str(port)]
        )
    assert result.exit_code == 1
    assert result.output == (
        f"error: cannot listen on 127.0.0.1:{port}: Address already in use\n"
        "  hint: choose another port, or --port 0 for a free one\n"
    )
