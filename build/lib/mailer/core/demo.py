"""The built-in demo values, and how to tell a demo sender from a real one.

Without a ``mailer.toml`` a workspace mails as "Mailer Demo" from
``news@mailer-demo.test`` with a made-up postal address: right for the outbox
(files on disk), wrong for a relay that delivers to people. Reserved domains
(RFC 2606 / RFC 6761: ``.test``, ``.example``, ``.invalid``, ``.localhost`` and
``example.com/net/org``) never receive mail, so replies, bounces and DMARC all
fail for them; the pre-send checks refuse them on a live send through a relay.
"""

from __future__ import annotations

from ipaddress import ip_address
from urllib.parse import urlsplit

DEMO_SENDER_NAME = "Mailer Demo"
DEMO_SENDER_EMAIL = "news@mailer-demo.test"
DEMO_POSTAL_ADDRESS = "Mailer Demo Ltd, 1 Example Road, 00000 Sample Town"
DEMO_UNSUBSCRIBE_URL = "https://mailer-demo.test/unsubscribe?t={{ token }}"
DEMO_UNSUBSCRIBE_MAILTO = "unsubscribe@mailer-demo.test"

# Top-level domains reserved for tests, documentation and local names (RFC 2606, 6761,
# 6762's .local); .example and example.com/net/org are documentation's own.
RESERVED_TLDS = ("test", "example", "invalid", "localhost", "local")
RESERVED_NAMES = ("example",)  # example.com, example.org, mail.example.co.uk ...


def reserved_tld(domain: str) -> str | None:
    """The reserved part of ``domain`` in a few characters (``.test``, ``example.*``), or None."""
    labels = domain.lower().rstrip(".").split(".")
    if labels[-1] in RESERVED_TLDS:
        return f".{labels[-1]}"
    if any(label in RESERVED_NAMES for label in labels[:-1]):
        return "example.*"
    return None


def is_local_relay(url: str) -> bool:
    """True for a relay on this machine (loopback address or ``localhost``).

    Local test servers (aiosmtpd, Mailpit, MailHog) listen there and deliver
    nowhere, so demo values are only warned about for them.
    """
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def is_demo_postal_address(address: str) -> bool:
    """True for the built-in demo address (however it is spaced or cased)."""
    return " ".join(address.split()).lower() == DEMO_POSTAL_ADDRESS.lower()
