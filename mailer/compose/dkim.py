"""Optional DKIM signing (dkimpy) of outgoing messages.

The signature covers From, To, Subject, Date, Message-ID, List-Unsubscribe and
List-Unsubscribe-Post, so none of them can be changed in transit — including
the one-click unsubscribe headers, which mailbox providers only trust when
signed (RFC 8058 section 4). The private key is read once from the path in the
settings (``[dkim] key``); it is never printed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

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
)


@dataclass(frozen=True)
class DkimSigner:
    """Signs message bytes for one domain and selector."""

    domain: str
    selector: str
    key: bytes = field(repr=False)

    def sign(self, data: bytes) -> bytes:
        """The message with a ``DKIM-Signature`` header prepended."""
        import dkim

        present = {line.split(b":", 1)[0].lower() for line in _header_lines(data)}
        # Only headers the message has: signing an absent header would also be
        # valid, but some verifiers count that as a mismatch.
        headers = [h for h in SIGNED_HEADERS if h.lower() in present]
        signature = dkim.sign(
            data,
            self.selector.encode(),
            self.domain.encode(),
            self.key,
            include_headers=headers,
            linesep=b"\r\n",
        )
        return signature + data


def _header_lines(data: bytes) -> list[bytes]:
    head = data.split(b"\r\n\r\n", 1)[0]
    return [line for line in head.split(b"\r\n") if line and not line[:1].isspace()]


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
    path = Path(settings.dkim_key)
    if not path.is_absolute():
        path = settings.root / path
    try:
        key = path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"cannot read the DKIM private key: {exc.strerror}",
            where=str(path),
            hint="point [dkim] key at a PEM file readable by this user",
        ) from None
    domain = settings.sender.email.rpartition("@")[2]
    signer = DkimSigner(domain, settings.dkim_selector, key)
    _try_key(signer, path)
    return signer


def _try_key(signer: DkimSigner, path: Path) -> None:
    """Sign a tiny message now, so that a bad key stops the run before anything is queued."""
    import dkim

    probe = b"From: probe@" + signer.domain.encode() + b"\r\nSubject: probe\r\n\r\nprobe\r\n"
    try:
        signer.sign(probe)
    except dkim.DKIMException as exc:
        reason = (str(exc).strip().splitlines() or ["unreadable key"])[0].rstrip(" :")
        raise ConfigError(
            f"the DKIM private key cannot be used for signing: {reason}",
            where=str(path),
            hint="point [dkim] key at an unencrypted PEM private key (RSA, PKCS#1 or PKCS#8)",
        ) from None
