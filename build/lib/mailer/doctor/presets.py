"""Where each relay preset's mail comes from: the envelope (return-path) domain and its SPF.

SPF is checked against the envelope sender (MAIL FROM), not the From header.
mailer itself sends with MAIL FROM = the From address, but an ESP rewrites it
to a bounce address of its own, so without further setup SPF passes for the
ESP's domain and is *not aligned* with the From domain: DMARC then rests on
DKIM alone. Each ESP lets you set a "custom MAIL FROM" (return-path) domain
under your own domain; tell the doctor which one with ``[doctor] return_path``.

The ESP's delivering servers are not the relay mailer connects to, so the
relay's address says nothing about SPF: the doctor instead takes an address
from the ESP's own published SPF (``spf_include``) and evaluates the
return-path domain's SPF for it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EspPath:
    """What an ESP does with the envelope sender, and what to set up for SPF alignment."""

    name: str
    # The envelope domain when nothing is set up; None: your own From domain is kept
    # (mailbox providers send with the authenticated mailbox's address).
    default_return_path: str | None
    spf_include: str  # what the return-path domain's SPF must include
    setup: str  # what to set up for an aligned return path

    @property
    def rewrites_envelope(self) -> bool:
        """True when the ESP puts its own domain in MAIL FROM unless told otherwise."""
        return self.default_return_path is not None


_SES = EspPath(
    "Amazon SES",
    "amazonses.com",
    "amazonses.com",
    "a custom MAIL FROM domain in SES (a subdomain such as bounce.{domain}, "
    "with the MX and SPF records SES shows)",
)

# Keyed by the names of mailer.delivery.relay.PRESETS ([smtp] preset); a test keeps them in step.
ESP_PATHS: dict[str, EspPath] = {
    "ses": _SES,
    "ses-sandbox": _SES,
    "sendgrid-free": EspPath(
        "SendGrid",
        "sendgrid.net",
        "sendgrid.net",
        "domain authentication with a custom return path in SendGrid (a CNAME such as em.{domain})",
    ),
    "mailgun": EspPath(
        "Mailgun",
        "mailgun.org",
        "mailgun.org",
        "a Mailgun sending domain under {domain} (such as mg.{domain}); "
        "Mailgun then uses it as the return path",
    ),
    "postmark": EspPath(
        "Postmark",
        "pm.mtasv.net",
        "spf.mtasv.net",
        "a custom Return-Path domain in Postmark (pm-bounces.{domain}, a CNAME to pm.mtasv.net)",
    ),
    "gmail": EspPath(
        "Gmail / Google Workspace",
        None,
        "_spf.google.com",
        "include:_spf.google.com in the SPF record of {domain}",
    ),
    "outlook": EspPath(
        "Microsoft 365",
        None,
        "spf.protection.outlook.com",
        "include:spf.protection.outlook.com in the SPF record of {domain}",
    ),
}
