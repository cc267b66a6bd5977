"""What Gmail's and Outlook's sender-rule refusals mean, and which doctor check covers each.

The codes met during a send (a reply in the journal) are explained by
``mailer status``, pointing at the ``mailer doctor`` check that would have
caught it before the send.
"""

from __future__ import annotations

import re

# (pattern on the reply, what the provider means, the doctor check to run)
_REFUSALS = (
    (r"\b[45]\.7\.(23|25)\b", "Gmail: the sending IP has no reverse DNS (PTR)", "reverse DNS"),
    (r"\b[45]\.7\.27\b", "Gmail: SPF does not allow the sending IP", "SPF"),
    (r"\b[45]\.7\.26\b", "Gmail: the message is not authenticated (SPF, DKIM, DMARC)", "DMARC"),
    (r"\b[45]\.7\.29\b", "Gmail: the connection must use TLS", "TLS"),
    (r"\b[45]\.7\.30\b", "Gmail: bulk mail must be DKIM-signed", "DKIM"),
    (r"\b[45]\.7\.32\b", "Gmail: the From domain is not aligned with SPF or DKIM", "DMARC"),
    (r"\b[45]\.7\.(24|28|31)\b", "Gmail: sender rules not met (authentication or rate)", "DMARC"),
    (
        r"\b550 5\.7\.515\b|\b5\.7\.515\b",
        "Outlook.com: high-volume senders need SPF, DKIM and DMARC to pass",
        "DMARC",
    ),
)
_COMPILED = tuple((re.compile(p), meaning, check) for p, meaning, check in _REFUSALS)


def explain(reply: str) -> str | None:
    """A line saying what a refusal means and what to check, or None for other replies."""
    for pattern, meaning, check in _COMPILED:
        if pattern.search(reply):
            return f"{meaning}; run `mailer doctor` ({check})"
    return None
