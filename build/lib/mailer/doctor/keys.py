"""DKIM in DNS: the selector's record is valid, holds our key, is not in testing, and verifies.

dkimpy reads the published record (``evaluate_pk``: syntax, version, key
type, key size) and verifies a message signed with the configured key
against it (``DKIM.verify``, asking DNS through the doctor's resolver): that
verification is the evidence DMARC alignment counts. The doctor's own checks
say *why* when it fails — no record, a revoked key (empty ``p=``), a record
holding another key — and flag ``t=y``: a domain in testing mode may be
treated as unsigned (RFC 6376 §3.6.1), so it is not counted as evidence.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass, field
from datetime import datetime

from mailer.compose.dkim import DkimKey, DkimSigner
from mailer.doctor.model import Check, Status, unknown_check
from mailer.doctor.resolver import DnsFailure, Resolver

AREA = "DKIM"
MIN_BITS = 1024  # receivers ignore weaker RSA keys
GOOD_BITS = 2048  # what Gmail recommends


@dataclass
class DkimEvidence:
    """The ``d=`` domains whose signature verifies against the published key (not in testing)."""

    verified: list[str] = field(default_factory=list)
    unknown: bool = False  # a DNS failure hid a key
    detail: str = "not signed"


def check_dkim(
    resolver: Resolver, signer: DkimSigner | None, now: datetime, out: list[Check]
) -> DkimEvidence:
    """One set of checks per signing key; the evidence for DMARC alignment."""
    evidence = DkimEvidence()
    if signer is None:
        reason = "messages are not DKIM-signed ([dkim] in mailer.toml is not set)"
        fix = (
            "generate a key (openssl genrsa 2048), publish its public half, set [dkim] key/selector"
        )
        out.append(Check("dkim.configured", AREA, Status.FAIL, reason, fix))
        evidence.detail = "mailer does not sign (no [dkim] key)"
        return evidence
    problems = []
    for key in signer.keys:
        name = f"{key.selector}._domainkey.{signer.domain}"
        try:
            verdict = _key_checks(resolver, signer, key, name, now, out)
        except DnsFailure as failure:
            out.append(unknown_check("dkim.record", AREA, f"the DKIM record {name}", failure))
            evidence.unknown = True
            problems.append(f"{name} could not be looked up ({failure.lookup.outcome})")
            continue
        if verdict is None:
            evidence.verified.append(signer.domain)
        else:
            problems.append(verdict)
    evidence.detail = (
        f"verifies for d={signer.domain}" if evidence.verified else "; ".join(problems)
    )
    return evidence


def _key_checks(
    resolver: Resolver,
    signer: DkimSigner,
    key: DkimKey,
    name: str,
    now: datetime,
    out: list[Check],
) -> str | None:
    """Checks for one key; None when it counts as evidence, else why it does not."""
    import dkim

    records = [r for r in resolver.txt(name) if "p=" in r.replace(" ", "")]
    if not records:
        reason = f"no DKIM record at {name}: receivers cannot check the signature"
        out.append(Check("dkim.record", AREA, Status.FAIL, reason, f"publish the key at {name}"))
        return f"no key published at {name}"
    if len(records) > 1:
        reason = f"{name} has {len(records)} DKIM records: receivers may pick either"
        out.append(Check("dkim.record", AREA, Status.FAIL, reason, "keep one record"))
        return f"several keys at {name}"
    record = records[0]
    try:
        tags = dkim.util.parse_tag_value(record.encode())
    except dkim.util.InvalidTagValueList as exc:
        out.append(Check("dkim.record", AREA, Status.FAIL, f"{name}: {exc}", "fix the record"))
        return f"the record at {name} does not parse"
    published = b"".join(tags.get(b"p", b"").split()).decode()
    if not published:
        reason = f"the key at {name} is revoked (empty p=)"
        out.append(Check("dkim.revoked", AREA, Status.FAIL, reason, "publish the current key"))
        return f"the key at {name} is revoked"
    if published != _public_half(key):
        reason = f"the key published at {name} is not the public half of the [dkim] key"
        fix = "publish the public key of the key you sign with"
        out.append(Check("dkim.key-match", AREA, Status.FAIL, reason, fix))
        return f"{name} holds another key"
    verified = "a signed message verifies (dkimpy)"
    try:
        _pk, bits, _ktag, _tlsrpt = dkim.evaluate_pk(name.encode(), record.encode())
        failed = _verify(resolver, signer, key, now)
    except dkim.NaClNotFoundError:
        # dkimpy needs pynacl for Ed25519; without it the key match above is the evidence.
        bits, failed, verified = 256, "", "not verified (pynacl is not installed)"
    except dkim.DKIMException as exc:
        out.append(Check("dkim.record", AREA, Status.FAIL, f"{name}: {exc}", "fix the record"))
        return f"dkimpy cannot use the record at {name} ({exc})"
    out.append(_size_check(name, key, bits))
    if failed:
        reason = f"a message signed with the [dkim] key does not verify against {name}: {failed}"
        out.append(Check("dkim.verify", AREA, Status.FAIL, reason, "publish the matching key"))
        return f"the signature does not verify ({failed})"
    testing = b"y" in tags.get(b"t", b"").split(b":")
    if testing:
        reason = f"{name} has t=y (testing): receivers may treat the mail as unsigned"
        out.append(Check("dkim.testing", AREA, Status.WARN, reason, "remove t=y from the record"))
        return f"{name} is in testing mode (t=y), not counted"
    kind = "Ed25519" if key.algorithm.startswith("ed25519") else f"{bits}-bit RSA"
    reason = f"{name}: {kind} key matches the signing key; {verified}"
    out.append(Check("dkim.record", AREA, Status.PASS, reason))
    return None


def _size_check(name: str, key: DkimKey, bits: int | None) -> Check:
    if key.algorithm.startswith("ed25519") or bits is None or bits >= GOOD_BITS:
        return Check("dkim.key-size", AREA, Status.PASS, f"{name}: {bits or 256}-bit key")
    if bits < MIN_BITS:
        reason = f"the key at {name} has {bits} bits; receivers ignore keys under {MIN_BITS}"
        return Check("dkim.key-size", AREA, Status.FAIL, reason, "use a 2048-bit key")
    reason = f"the key at {name} has {bits} bits; {GOOD_BITS} is recommended"
    return Check("dkim.key-size", AREA, Status.WARN, reason, "rotate to a 2048-bit key")


def _public_half(key: DkimKey) -> str:
    """The ``p=`` value the record must hold for this private key."""
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        PublicFormat,
        load_pem_private_key,
    )

    private = load_pem_private_key(key.pem, password=None)
    public = private.public_key()
    if isinstance(private, rsa.RSAPrivateKey):
        der = public.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        return base64.b64encode(der).decode()
    # Ed25519: the record holds the raw 32-byte key (RFC 8463)
    return base64.b64encode(public.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


_PROBE = (
    b"From: doctor@{domain}\r\nTo: probe@example.invalid\r\nSubject: doctor probe\r\n"
    b"Date: Thu, 01 Jan 2026 00:00:00 +0000\r\nMessage-ID: <probe@{domain}>\r\n\r\nprobe\r\n"
)


def _verify(resolver: Resolver, signer: DkimSigner, key: DkimKey, now: datetime) -> str:
    """dkimpy's verdict on a message signed with ``key``: "" when it verifies, else why not."""
    import dkim

    one = DkimSigner(signer.domain, (key,))
    message = one.sign(
        _PROBE.replace(b"{domain}", signer.domain.encode()), timestamp=int(now.timestamp())
    )

    def txt(name: bytes, timeout: float = 5) -> bytes | None:
        # dkimpy asks for the record itself; failures raise DnsFailure past it.
        found = resolver.txt(name.decode().rstrip("."))
        return found[0].encode() if found else None

    messages: list[str] = []
    log = logging.getLogger("mailer.doctor.dkimpy")
    log.propagate = False
    handler = _Collect(messages)
    log.addHandler(handler)
    try:
        verifier = dkim.DKIM(message, logger=log, minkey=MIN_BITS)
        ok = verifier.verify(idx=0, dnsfunc=txt)
    except dkim.DKIMException as exc:
        return str(exc)
    finally:
        log.removeHandler(handler)
    return "" if ok else ("; ".join(messages) or "signature verification failed")


class _Collect(logging.Handler):
    """Keeps dkimpy's log lines: they say why a verification failed."""

    def __init__(self, into: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.INFO:
            self.into.append(record.getMessage())
