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
    """
    try:
        return validate_email(
            address.strip(), check_deliverability=False, test_environment=True
        ).normalized
    except EmailNotValidError as exc:
        raise InvalidAddress(str(exc)) from None
