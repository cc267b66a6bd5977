"""Email address validation, shared by campaign loading, CSV audiences and contact import.

Validation is email-validator's. A million-row audience would spend most of
its time there, so the common address shape takes a shortcut: for a plain
dot-atom local part (ASCII letters, digits and the usual symbols) on a plain
ASCII domain, email-validator's verdict depends only on the domain and the
lengths. Once it has accepted a domain, other plain addresses on that domain
are accepted with the same normalisation (local part as written, domain
lower-cased) without calling it again; anything else — quoted local parts,
Unicode, unusual domains — goes through email-validator every time.
"""

from __future__ import annotations

import re

from email_validator import EmailNotValidError, validate_email

_PLAIN_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_PLAIN_DOMAIN = re.compile(r"[a-z0-9-]+(?:\.[a-z0-9-]+)+")
_GOOD_DOMAINS: set[str] = set()
_MAX_REMEMBERED = 100_000  # domains; a bound so a hostile file cannot grow the set forever


class InvalidAddress(ValueError):
    """An address failed validation; the message says why, in email-validator's words."""


def plain_address(text: str) -> str | None:
    """``text`` normalised if it is a plain address on an already accepted domain, else None."""
    local, at, domain = text.rpartition("@")
    lowered = domain.lower()
    if (
        at
        and lowered in _GOOD_DOMAINS
        and len(local) <= 64
        and len(text) <= 254
        and _PLAIN_LOCAL.fullmatch(local)
    ):
        return f"{local}@{lowered}"
    return None


def remember_domain(written: str, normalized: str) -> None:
    """Note that email-validator accepted ``written``'s domain, normalised to ``normalized``."""
    domain = written.rpartition("@")[2].lower()
    if (
        len(_GOOD_DOMAINS) < _MAX_REMEMBERED
        and domain == normalized
        and _PLAIN_DOMAIN.fullmatch(domain)
    ):
        _GOOD_DOMAINS.add(domain)


def normalize_address(address: str) -> str:
    """Validate syntax (no DNS) and return the normalised address.

    ``test_environment=True`` accepts the reserved ``.test`` top-level domain
    used by the demo data and tests; it also turns off deliverability (DNS)
    checks, which mailer never does anyway: a bulk send must not make a DNS
    query per contact.

    ``allow_smtputf8=False`` refuses non-ASCII before the ``@`` (``用户@example.cn``):
    such an address needs the SMTPUTF8 extension, which mailer's message builder and
    SMTP transport do not use. Non-ASCII domains are fine (sent as IDNA/punycode).
    """
    text = address.strip()
    quick = plain_address(text)
    if quick is not None:
        return quick
    try:
        info = validate_email(
            text, check_deliverability=False, test_environment=True, allow_smtputf8=False
        )
    except EmailNotValidError as exc:
        raise InvalidAddress(str(exc)) from None
    remember_domain(text, info.domain)
    return info.normalized
