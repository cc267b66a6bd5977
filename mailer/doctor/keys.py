"""DKIM in DNS: the selector's record exists, holds the public half of our key, and is strong."""

from __future__ import annotations

import base64

from mailer.compose.dkim import DkimSigner
from mailer.doctor.model import Check, Status
from mailer.doctor.resolver import Resolver

MIN_BITS = 1024  # receivers ignore weaker RSA keys
GOOD_BITS = 2048  # what Gmail recommends


def _tags(record: str) -> dict[str, str]:
    tags = {}
    for part in record.split(";"):
        key, _, value = part.strip().partition("=")
        if key:
            tags[key.strip().lower()] = "".join(value.split())
    return tags


def check_dkim(resolver: Resolver, signer: DkimSigner | None, from_domain: str) -> list[Check]:
    """One check per signing key: record present, matching our key, long enough, aligned."""
    if signer is None:
        reason = "messages are not DKIM-signed ([dkim] in mailer.toml is not set)"
        fix = (
            "generate a key (openssl genrsa 2048), publish its public half, set [dkim] key/selector"
        )
        return [Check("DKIM", Status.FAIL, reason, fix)]
    checks = []
    if signer.domain.lower() != from_domain.lower():
        reason = f"DKIM signs for {signer.domain}, the From is at {from_domain}: not aligned"
        checks.append(Check("DKIM", Status.FAIL, reason, "sign with the From domain"))
    for key in signer.keys:
        checks.append(_key_check(resolver, signer.domain, key.selector, key.pem))
    return checks


def _key_check(resolver: Resolver, domain: str, selector: str, pem: bytes) -> Check:
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        PublicFormat,
        load_pem_private_key,
    )

    name = f"{selector}._domainkey.{domain}"
    records = [r for r in resolver.txt(name) if "p=" in r]
    if not records:
        reason = f"no DKIM record at {name}: receivers cannot check the signature"
        return Check("DKIM", Status.FAIL, reason, f"publish the public key as TXT at {name}")
    tags = _tags(records[0])
    published = tags.get("p", "")
    if not published:
        return Check("DKIM", Status.FAIL, f"the key at {name} is revoked (empty p=)", "publish it")
    private = load_pem_private_key(pem, password=None)
    public = private.public_key()
    ours = public.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    if isinstance(private, rsa.RSAPrivateKey):
        mine = base64.b64encode(ours).decode()
    else:  # Ed25519: the record holds the raw 32-byte key (RFC 8463)
        raw = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
        mine = base64.b64encode(raw).decode()
    if published != mine:
        reason = f"the key published at {name} is not the public half of [dkim] key"
        return Check("DKIM", Status.FAIL, reason, "publish the public key of the key you sign with")
    if isinstance(private, rsa.RSAPrivateKey):
        bits = private.key_size
        if bits < MIN_BITS:
            reason = f"the key at {name} has {bits} bits; receivers ignore keys under {MIN_BITS}"
            return Check("DKIM", Status.FAIL, reason, "use a 2048-bit key")
        if bits < GOOD_BITS:
            reason = f"the key at {name} has {bits} bits; {GOOD_BITS} is recommended"
            return Check("DKIM", Status.WARN, reason, "rotate to a 2048-bit key")
        return Check("DKIM", Status.PASS, f"{name}: {bits}-bit RSA key matches the signing key")
    return Check("DKIM", Status.PASS, f"{name}: Ed25519 key matches the signing key")
