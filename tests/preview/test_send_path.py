"""The preview shows what send sends, and only the preview page can make it send a test."""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import re
from email import message_from_bytes
from pathlib import Path
from typing import Any

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mailer.campaign.prepared import prepare_campaign
from mailer.core.settings import load_settings
from mailer.delivery.transport import OutboxTransport
from mailer.preview.server import PreviewServer
from mailer.preview.session import PreviewSession, deliver_once
from tests.preview.test_preview import (
    SETTINGS,
    TEMPLATE,
    get,
    make_workspace,
    rewrite,
    start_server,
)

# The body names the variant: a preview that fakes the assignment shows the wrong one.
VARIANT_TEMPLATE = TEMPLATE.replace(
    "{{ offer }}</p>", "{{ offer }}</p><p>variant {{ variant }}</p>"
)


def without_date(raw: str) -> str:
    return re.sub(r"(?m)^Date: .*$", "Date: -", raw)


def header_block(data: bytes) -> str:
    return data.split(b"\r\n\r\n", 1)[0].decode("ascii").replace("\r\n", "\n")


def test_preview_shows_the_bytes_the_outbox_transport_writes(tmp_path: Path) -> None:
    campaign = make_workspace(tmp_path)
    (tmp_path / "templates" / "card.mjml").write_text(VARIANT_TEMPLATE, encoding="utf-8")
    settings = load_settings(tmp_path, env={})
    session = PreviewSession(campaign, lambda: load_settings(tmp_path, env={}))
    prepared = prepare_campaign(campaign, settings)
    outbox = OutboxTransport(tmp_path / "sent")
    assigned = set()
    for person in prepared.recipients():
        out = prepared.build(person)
        asyncio.run(deliver_once(outbox, out.envelope))
        written = (tmp_path / "sent" / f"{person.email}.eml").read_bytes()
        view = session.view(person.email, "auto")
        assert view["error"] is None
        assert without_date(view["raw_headers"]) == without_date(header_block(written))
        assert view["size"] == len(written)
        assert view["html"] == out.rendered.html and view["text"] == out.rendered.text
        assert f"variant {out.variant}" in view["html"]
        assigned.add(view["assigned"])
    assert assigned == {0, 1}  # both variants met: the check above covers a B recipient


def test_the_other_variant_is_built_as_that_variant(tmp_path: Path) -> None:
    # "What if this contact got subject B": the whole message is B's, {{ variant }} too.
    campaign = make_workspace(tmp_path)
    (tmp_path / "templates" / "card.mjml").write_text(VARIANT_TEMPLATE, encoding="utf-8")
    session = PreviewSession(campaign, lambda: load_settings(tmp_path, env={}))
    prepared = prepare_campaign(campaign, load_settings(tmp_path, env={}))
    for person in prepared.recipients():
        for number in (0, 1):
            view = session.view(person.email, str(number))
            assert view["error"] is None
            assert f"variant {number}" in view["html"]
            assert view["subject"] == prepared.render(person, variant=number).subject


def test_template_python_error_is_shown_and_the_server_recovers(server: PreviewServer) -> None:
    template = server.session.path.parent.parent / "templates" / "card.mjml"
    rewrite(template, TEMPLATE.replace("{{ offer }}", "{{ 1 / 0 }}"))
    status, view = get(server, "/api/view?email=ann%40preview.test&variant=auto")
    # Readable, as data for the page (render names the contact; the safety net the template).
    assert status == 200 and view["error"]["kind"] == "TemplateError"
    assert "the HTML template failed at this line: a division by zero" in view["error"]["text"]
    assert view["error"]["text"].startswith(f"{template}:")
    rewrite(template, TEMPLATE)
    status, view = get(server, "/api/view?email=ann%40preview.test&variant=auto")
    assert status == 200 and view["error"] is None and "Every green tea" in view["html"]


@pytest.fixture
def server(tmp_path: Path):
    running = start_server(tmp_path)
    yield running
    running.close()


def post(
    server: PreviewServer, body: dict[str, Any], headers: dict[str, str]
) -> tuple[int, dict[str, Any]]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.request("POST", "/api/send-test", body=json.dumps(body), headers=headers)
    response = conn.getresponse()
    answer = json.loads(response.read())
    conn.close()
    return response.status, answer


JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.test"},
        {"Origin": "http://127.0.0.1:1"},  # another local app is another site too
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
    ],
)
def test_send_test_refuses_other_sites(
    server: PreviewServer, tmp_path: Path, headers: dict[str, str]
) -> None:
    status, answer = post(server, {"email": "ann@preview.test"}, {**JSON, **headers})
    assert status == 403 and answer["ok"] is False
    assert answer["error"]["message"] == "refused: this request came from another web site"
    assert not (tmp_path / "outbox").exists()


def test_send_test_accepts_its_own_page(server: PreviewServer, tmp_path: Path) -> None:
    own = {"Origin": f"http://127.0.0.1:{server.port}", "Sec-Fetch-Site": "same-origin"}
    status, answer = post(server, {"email": "ann@preview.test"}, {**JSON, **own})
    assert status == 200 and answer["ok"] is True
    assert (tmp_path / "outbox" / "test" / "tester@preview.test.eml").is_file()


def test_send_test_goes_only_to_the_configured_address(
    server: PreviewServer, tmp_path: Path
) -> None:
    # A page can pick a sample contact, never a destination: unknown addresses fall back.
    body = {"email": "attacker@evil.test", "to": "attacker@evil.test", "variant": 0}
    status, answer = post(server, body, JSON)
    assert status == 200 and answer["to"] == "tester@preview.test"
    assert [p.name for p in (tmp_path / "outbox" / "test").iterdir()] == ["tester@preview.test.eml"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            'test_address = "not an address"',
            "test_address is not a valid address: 'not an address'",
        ),
        ('test_address = "a@x.test, b@x.test"', "test_address is not a valid address"),
        ("test_address = 5", "test_address must be a string, not 5"),
    ],
)
def test_send_test_refuses_a_bad_test_address(tmp_path: Path, line: str, message: str) -> None:
    settings = SETTINGS.replace('test_address = "tester@preview.test"', line)
    running = start_server(tmp_path, settings)
    try:
        status, answer = post(running, {"email": "ann@preview.test"}, JSON)
    finally:
        running.close()
    assert status == 200 and answer["ok"] is False
    assert answer["error"]["text"].startswith(f"{tmp_path / 'mailer.toml'}: {message}")
    assert not (tmp_path / "outbox").exists()


@pytest.fixture(scope="module")
def key_pem() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def test_dkim_signature_is_shown_and_the_test_is_signed(tmp_path: Path, key_pem: bytes) -> None:
    settings = SETTINGS + '\n[dkim]\nkey = "dkim.pem"\nselector = "mail"\n'
    (tmp_path / "dkim.pem").write_bytes(key_pem)
    running = start_server(tmp_path, settings)
    try:
        status, view = get(running, "/api/view?email=ann%40preview.test&variant=auto")
        assert status == 200 and view["dkim"] == "DKIM-signed: d=preview.test s=mail"
        assert view["headers"][0][0] == "DKIM-Signature"
        assert view["raw_headers"].startswith("DKIM-Signature: v=1; a=rsa-sha256;")
        status, answer = post(running, {"email": "ann@preview.test"}, JSON)
    finally:
        running.close()
    assert status == 200 and answer["ok"]
    data = (tmp_path / "outbox" / "test" / "tester@preview.test.eml").read_bytes()
    assert data.startswith(b"DKIM-Signature: ")
    public = serialization.load_pem_private_key(key_pem, None).public_key()
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)
    assert dkim.verify(data, dnsfunc=lambda name, timeout=5: record)
    assert message_from_bytes(data)["To"].endswith("<tester@preview.test>")


def test_without_dkim_the_page_says_so(server: PreviewServer) -> None:
    status, view = get(server, "/api/view?email=ann%40preview.test&variant=auto")
    assert status == 200 and view["dkim"] is None
    assert view["headers"][0][0] == "From"


def test_an_error_outside_jinja_is_still_shown(
    server: PreviewServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mailer.campaign import prepared as pipeline

    def broken(self: Any, recipient: Any, **options: Any) -> Any:
        raise RuntimeError("renderer bug")

    monkeypatch.setattr(pipeline.PreparedCampaign, "build", broken)
    status, view = get(server, "/api/view?email=ann%40preview.test&variant=auto")
    template = server.session.path.parent.parent / "templates" / "card.mjml"
    assert status == 200 and view["error"]["text"] == (
        f"{template}: rendering failed: RuntimeError: renderer bug\n"
        "  hint: fix the expression in the template and save; this page updates by itself"
    )
    status, report = get(server, "/api/checks?email=ann%40preview.test&variant=auto")
    assert status == 500 and report["available"] is False
    assert report["reason"] == "internal error: RuntimeError: renderer bug"


def test_cli_opens_the_browser_on_the_loopback_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import webbrowser

    from typer.testing import CliRunner

    from mailer.cli import app

    make_workspace(tmp_path)
    monkeypatch.chdir(tmp_path)
    opened: list[str] = []
    bound: list[tuple[str, int]] = []

    def wait(self: PreviewServer) -> None:  # instead of serving until Ctrl+C
        bound.append(self.httpd.server_address[:2])

    monkeypatch.setattr(webbrowser, "open", opened.append)
    monkeypatch.setattr(PreviewServer, "wait", wait)
    result = CliRunner().invoke(app, ["preview", "campaigns/demo.toml"])
    assert result.exit_code == 0, result.output
    [(host, port)] = bound
    assert host == "127.0.0.1" and port > 0
    assert opened == [f"http://127.0.0.1:{port}/"]
    assert f"at http://127.0.0.1:{port}/" in result.output


def test_audience_is_read_again_only_when_it_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Live reload stays quick with a big CSV: a template edit does not re-read the contacts."""
    from mailer.campaign import prepared

    reads: list[Path] = []
    real = prepared.open_csv_audience

    def counting(path: Path, encoding: str | None = None) -> Any:
        reads.append(path)
        return real(path, encoding)

    monkeypatch.setattr(prepared, "open_csv_audience", counting)
    campaign = make_workspace(tmp_path)
    session = PreviewSession(campaign, lambda: load_settings(tmp_path, env={}))
    assert len(session.state()["recipients"]) == 3 and len(reads) == 1
    rewrite(tmp_path / "templates" / "card.mjml", TEMPLATE.replace("Hello", "Hi"))
    assert "Hi Ann" in session.view("ann@preview.test", "auto")["html"] and len(reads) == 1
    contacts = tmp_path / "campaigns" / "contacts.csv"
    rewrite(contacts, contacts.read_text() + "dan@preview.test,Dan,Wu,Leeds\n")
    assert len(session.state()["recipients"]) == 4 and len(reads) == 2
