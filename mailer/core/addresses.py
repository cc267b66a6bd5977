"""Email address validation, shared by campaign loading, CSV audiences and contact import."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email


class InvalidAddress(ValueError):
    """An address failed validation; the message says why, in email-validator's words."""


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
    try:
        return validate_email(
            address.strip(), check_deliverability=False, test_environment=True, allow_smtputf8=False
        ).normalized
    except EmailNotValidError as exc:
        raise InvalidAddress(str(exc)) from None
