"""DKIM signing of outgoing messages: dkimpy's canonicalisation, OpenSSL's signatures.

The signature covers From, To, Subject, Date, Message-ID, List-Unsubscribe,
List-Unsubscribe-Post and Feedback-ID, so none of them can be changed in transit — including
the one-click unsubscribe headers, which mailbox providers only trust when
signed (RFC 8058 section 4). Canonicalisation is relaxed/simple, done by
dkimpy's own functions (the reference implementation, which the tests also
verify with); the RSA (or Ed25519, RFC 8463) step is done by the
``cryptography`` package in C: dkimpy's pure-Python RSA took about 6 ms a
message, OpenSSL takes well under one.

An optional Ed25519 co-signature (``[dkim] ed25519_key``) is added beside the
RSA one: receivers that know Ed25519 may use it, the others use RSA.
The private keys are read once from the paths in the settings; they are never
printed.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from mailer.core.errors import ConfigError
from mailer.core.settings import Settings

SIGNED_HEADERS = (
    b"From",
    b"To",
    b"Subject",
    b"Date",
    b"Message-ID",
    b"List-Unsubscribe",
    b"List-Unsubscribe-Post",
    b"Feedback-ID",  # Gmail's feedback loop counts it only when it is signed
)
_HEADER = b"DKIM-Signature"
_CANON = b"relaxed/simple"


@dataclass(frozen=True)
class DkimKey:
    """One signing key: its selector, algorithm (``rsa-sha256``/``ed25519-sha256``), PEM."""

    selector: str
    algorithm: str
    pem: bytes = field(repr=False)


@dataclass(frozen=True)
class DkimSigner:
    """Signs message bytes for one domain with one or two keys (RSA, plus Ed25519).

    Plain data (it pickles): the worker processes that build messages sign them too.
    """

    domain: str
    keys: tuple[DkimKey, ...]

    @property
    def selector(self) -> str:
        """The first (RSA) key's selector."""
        return self.keys[0].selector

    def sign(self, data: bytes, *, timestamp: int) -> bytes:
        """The message with a ``DKIM-Signature`` header per key prepended (``t=timestamp``)."""
        import dkim
        from dkim.canonicalization import CanonicalizationPolicy

        # dkimpy parses the header block only: splitting a whole message into lines
        # (its rfc822_parse on everything) took a quarter of the signing time.
        end = data.find(b"\r\n\r\n")
        if end < 0:
            headers, body = dkim.rfc822_parse(data)
        else:
            headers, _ = dkim.rfc822_parse(data[: end + 4])
            body = data[end + 4 :]
        policy = CanonicalizationPolicy.from_c_value(_CANON)
        canonical = policy.canonicalize_headers(headers)
        present = {name.lower() for name, _ in headers}
        # Only headers the message has: signing an absent header would also be
        # valid, but some verifiers count that as a mismatch.
        include = tuple(h.lower() for h in SIGNED_HEADERS if h.lower() in present)
        body_hash = base64.b64encode(hashlib.sha256(policy.canonicalize_body(body)).digest())
        signatures = b"".join(
            self._signature(key, canonical, include, body_hash, timestamp, policy)
            for key in self.keys
        )
        return signatures + data

    def _signature(
        self,
        key: DkimKey,
        headers: list[tuple[bytes, bytes]],
        include: tuple[bytes, ...],
        body_hash: bytes,
        timestamp: int,
        policy: Any,
    ) -> bytes:
        """One DKIM-Signature header, built as dkimpy's ``gen_header`` builds it."""
        import dkim

        domain = self.domain.encode()
        fields = [
            (b"v", b"1"),
            (b"a", key.algorithm.encode()),
            (b"c", _CANON),
            (b"d", domain),
            (b"i", b"@" + domain),
            (b"q", b"dns/txt"),
            (b"s", key.selector.encode()),
            (b"t", str(timestamp).encode()),
            (b"h", b" : ".join(include)),
            (b"bh", body_hash),
            (b"b", b"0" * 60),  # folds b= onto a line of its own, as dkimpy does
        ]
        value = dkim.fold(b"; ".join(b"=".join(f) for f in fields), namelen=len(_HEADER))
        value = dkim.RE_BTAG.sub(b"\\1", value)
        digest = hashlib.sha256()
        dkim.hash_headers(digest, policy, headers, include, (_HEADER, b" " + value), dict(fields))
        fields[-1] = (b"b", base64.b64encode(_private_sign(key, digest.digest())))
        value = b"; ".join(b"=".join(f) for f in fields) + b"\r\n"
        return _HEADER + b": " + dkim.fold(value, namelen=len(_HEADER), linesep=b"\r\n")


def _private_sign(key: DkimKey, digest: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa, utils

    private = _load(key.pem)
    if key.algorithm == "ed25519-sha256":
        assert isinstance(private, ed25519.Ed25519PrivateKey)
        return private.sign(digest)
    assert isinstance(private, rsa.RSAPrivateKey)
    return private.sign(digest, padding.PKCS1v15(), utils.Prehashed(hashes.SHA256()))


@lru_cache(maxsize=8)
def _load(pem: bytes) -> Any:
    """The key object for a PEM (parsed once per process)."""
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    return load_pem_private_key(pem, password=None)


def signer_from_settings(settings: Settings) -> DkimSigner | None:
    """A signer when ``[dkim] key`` and ``selector`` are set, else None."""
    if settings.dkim_key is None:
        return None
    if not settings.dkim_selector:
        raise ConfigError(
            "[dkim] key is set but selector is missing",
            where="mailer.toml [dkim]",
            hint='add selector = "mail" (the name of the DNS record <selector>._domainkey)',
        )
    keys = [_read_key(settings, settings.dkim_key, settings.dkim_selector, "rsa-sha256")]
    if settings.dkim_ed25519_key is not None:
        selector = settings.dkim_ed25519_selector or f"{settings.dkim_selector}-ed25519"
        keys.append(_read_key(settings, settings.dkim_ed25519_key, selector, "ed25519-sha256"))
    domain = settings.sender.email.rpartition("@")[2]
    return DkimSigner(domain, tuple(keys))


def _read_key(settings: Settings, given: Path, selector: str, algorithm: str) -> DkimKey:
    """Read a PEM key and sign a tiny message with it now: a bad key stops the run first."""
    path = given if given.is_absolute() else settings.root / given
    try:
        pem = path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"cannot read the DKIM private key: {exc.strerror}",
            where=str(path),
            hint="point [dkim] key at a PEM file readable by this user",
        ) from None
    key = DkimKey(selector, algorithm, pem)
    rsa_key = algorithm == "rsa-sha256"
    setting, kind = ("key", "an RSA") if rsa_key else ("ed25519_key", "an Ed25519")
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    try:
        private = _load(pem)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        reason = "it is not an unencrypted PEM private key"
    else:
        expected = rsa.RSAPrivateKey if rsa_key else ed25519.Ed25519PrivateKey
        reason = "" if isinstance(private, expected) else f"it is not {kind} private key"
    if reason:
        raise ConfigError(
            f"the DKIM private key cannot be used for signing: {reason}",
            where=str(path),
            hint=f"point [dkim] {setting} at an unencrypted PEM private key "
            f"({kind[3:]}, PKCS#1 or PKCS#8)",
        )
    return key
