"""A contact's address as the contact store keeps it: validated, lower-cased, display name apart.

``mailer.core.addresses.normalize_address`` validates an address as written;
this module is the import's version (a million rows a minute): it also accepts
``Name <addr>``, lower-cases the whole address so one person is one contact
whatever the case, and skips email-validator for plain addresses on a domain
it has already accepted.
"""

from __future__ import annotations

import re

from email_validator import EmailNotValidError, validate_email

from mailer.core.addresses import plain_address, remember_domain
from mailer.core.errors import AudienceError

_DISPLAY_FORM = re.compile(r"(.*?)\s*<([^<>]*)>")


def contact_address(raw: str) -> tuple[str, str]:
    """Validate an address (``Name <addr>`` accepted) and return (address, display name).

    The address is normalised by email-validator (Unicode domain, NFC) and then
    lower-cased as a whole, so one person is one contact whatever the case.
    The display name is taken as written, quoted or not: address books export
    ``陈佳慧 <chen@example.com>`` unquoted, which RFC 5322 would refuse.
    Raises ``EmailNotValidError``.
    """
    form = _DISPLAY_FORM.fullmatch(raw.strip())
    if form:
        address, _ = contact_address(form[2])
        return address, form[1].strip().strip('"').strip()
    text = raw.strip()
    quick = plain_address(text.lower())
    if quick is not None:
        return quick, ""
    # test_environment accepts the reserved .test domain (demo data, tests) and
    # never queries DNS, as in mailer.core.addresses.
    info = validate_email(
        text, check_deliverability=False, allow_display_name=True, test_environment=True
    )
    remember_domain(text, info.domain)
    return info.normalized.lower(), info.display_name or ""


def normalize_email(raw: str) -> str:
    """Validate and normalise one address (``Name <addr>`` accepted); AudienceError if invalid."""
    try:
        return contact_address(raw)[0]
    except EmailNotValidError as exc:
        raise AudienceError(f"invalid email address: {exc}") from None


def address_key(email: str) -> str:
    """The form an address is stored in (contacts, suppressions), or the text when invalid.

    A contact's address is normalised (so ``xn--bcher-kva.de`` finds ``bücher.de``);
    an invalid address can still be suppressed (a bounce is a bounce), as given.
    """
    try:
        return contact_address(email)[0]
    except EmailNotValidError:
        return email.strip().lower()
