"""DKIM signing: the signature covers the required headers and verifies at the receiver."""

from __future__ import annotations

import base64
from dataclasses import replace
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mailer.audience.store import connect
from mailer.compose.dkim import signer_from_settings
from mailer.core.errors import ConfigError
from mailer.delivery.relay import parse_smtp_url
from mailer.delivery.smtp import SmtpTransport
from tests.send_workspace import fast_options, prepared_campaign
from tests.smtp_server import SmtpServer


@pytest.fixture(scope="module")
def key_pair() -> tuple[bytes, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


def test_campaign_messages_are_signed_and_verify(
    tmp_path: Path, smtp_server: SmtpServer, key_pair: tuple[bytes, bytes]
) -> None:
    from mailer.delivery.send import send_campaign

    private, record = key_pair
    (tmp_path / "dkim.pem").write_bytes(private)
    prepared = prepared_campaign(tmp_path, 3)
    settings = replace(prepared.settings, dkim_key=Path("dkim.pem"), dkim_selector="mail")
    signer = signer_from_settings(settings)
    assert signer is not None and signer.domain == "teahouse.cn"
    assert "BEGIN" not in repr(signer)  # the key never shows up in a repr
    send_campaign(
        prepared,
        conn=connect(tmp_path / "mailer.db"),
        transport=SmtpTransport(parse_smtp_url(smtp_server.url)),
        options=fast_options(dkim=signer),
    )

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"mail._domainkey.teahouse.cn."
        return record

    assert len(smtp_server.handler.received) == 3
    for received in smtp_server.handler.received:
        data = received.data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        assert dkim.verify(data, dnsfunc=dns)
        signature = received.message["DKIM-Signature"].replace("\r\n", "").replace(" ", "")
        signed = signature.split("h=")[1].split(";")[0].lower().split(":")
        assert signed == [
            "from",
            "to",
            "subject",
            "date",
            "message-id",
            "list-unsubscribe",
            "list-unsubscribe-post",
            "feedback-id",
        ]
        assert received.message["Feedback-ID"] == "spring:teahouse.cn"


def test_dkim_settings_errors(tmp_path: Path) -> None:
    from mailer.core.settings import Settings

    assert signer_from_settings(Settings(root=tmp_path)) is None
    with pytest.raises(ConfigError, match=r"\[dkim\] key is set but selector is missing"):
        signer_from_settings(Settings(root=tmp_path, dkim_key=Path("k.pem")))
    with pytest.raises(ConfigError) as caught:
        signer_from_settings(Settings(root=tmp_path, dkim_key=Path("k.pem"), dkim_selector="s"))
    assert str(caught.value) == (
        f"{tmp_path / 'k.pem'}: cannot read the DKIM private key: No such file or directory\n"
        "  hint: point [dkim] key at a PEM file readable by this user"
    )


@pytest.mark.parametrize("content", [b"not a key\n", b"-----BEGIN PUBLIC KEY-----\nAAAA\n"])
def test_unusable_dkim_key_is_a_config_error_before_sending(tmp_path: Path, content: bytes) -> None:
    from mailer.core.settings import Settings

    (tmp_path / "k.pem").write_bytes(content)
    settings = Settings(root=tmp_path, dkim_key=Path("k.pem"), dkim_selector="mail")
    with pytest.raises(ConfigError) as caught:
        signer_from_settings(settings)
    message = str(caught.value)
    assert message.startswith(
        f"{tmp_path / 'k.pem'}: the DKIM private key cannot be used for signing: "
    )
    assert "\n  hint: point [dkim] key at an unencrypted PEM private key" in message
    assert message.count("\n") == 1  # one line of error, one of hint


@pytest.fixture(scope="module")
def ed25519_pair() -> tuple[bytes, bytes]:
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return private, b"v=DKIM1; k=ed25519; p=" + base64.b64encode(raw)


@pytest.mark.parametrize("workers", [0, 1], ids=["in process", "in a worker process"])
def test_rsa_and_ed25519_signatures_both_verify_with_dkimpy(
    tmp_path: Path,
    smtp_server: SmtpServer,
    key_pair: tuple[bytes, bytes],
    ed25519_pair: tuple[bytes, bytes],
    workers: int,
) -> None:
    # RFC 8463: an Ed25519 signature beside the RSA one; each checked by dkimpy's verify.
    from mailer.delivery.send import send_campaign

    (tmp_path / "rsa.pem").write_bytes(key_pair[0])
    (tmp_path / "ed.pem").write_bytes(ed25519_pair[0])
    prepared = prepared_campaign(tmp_path, 4)
    settings = replace(
        prepared.settings,
        dkim_key=Path("rsa.pem"),
        dkim_selector="mail",
        dkim_ed25519_key=Path("ed.pem"),
        dkim_ed25519_selector="ed",
    )
    signer = signer_from_settings(settings)
    assert signer is not None and [k.algorithm for k in signer.keys] == [
        "rsa-sha256",
        "ed25519-sha256",
    ]
    report = send_campaign(
        prepared,
        conn=connect(tmp_path / "mailer.db"),
        transport=SmtpTransport(parse_smtp_url(smtp_server.url)),
        options=fast_options(dkim=signer, workers=workers),
    )
    assert report.sent == 4
    records = {
        b"mail._domainkey.teahouse.cn.": key_pair[1],
        b"ed._domainkey.teahouse.cn.": ed25519_pair[1],
    }

    def dns(name: bytes, timeout: int = 5) -> bytes:
        return records[name]

    for received in smtp_server.handler.received:
        data = received.data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        assert data.count(b"DKIM-Signature:") == 2
        assert dkim.DKIM(data).verify(idx=0, dnsfunc=dns)  # the RSA signature
        assert dkim.DKIM(data).verify(idx=1, dnsfunc=dns)  # the Ed25519 one
        # A changed subject breaks both.
        tampered = data.replace(b"Subject: ", b"Subject: Re: ", 1)
        assert not dkim.DKIM(tampered).verify(idx=0, dnsfunc=dns)
        assert not dkim.DKIM(tampered).verify(idx=1, dnsfunc=dns)
