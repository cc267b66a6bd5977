"""What the providers check in the message itself, and the volume that makes a bulk sender."""

from __future__ import annotations

import re
from collections.abc import Iterable
from email import policy
from email.parser import BytesHeaderParser
from email.utils import getaddresses

from mailer.campaign.prepared import PreparedCampaign
from mailer.checks.content import FREEMAIL
from mailer.checks.subject import is_fake_reply
from mailer.core.recipient import Recipient
from mailer.doctor.model import Check, Status

# Gmail: 5,000 messages a day to its users makes a bulk sender, for good.
BULK_GMAIL_PER_DAY = 5000
_GMAIL = ("gmail.com", "googlemail.com")
_MESSAGE_ID = re.compile(r"^<[^<>@\s]+@[^<>@\s]+>$")


def check_message(prepared: PreparedCampaign, people: list[Recipient]) -> list[Check]:
    """From, Message-ID, one-click unsubscribe and subject rules on two built messages."""
    if not people:
        return [Check("message", Status.SKIP, "the audience is empty: no message to look at")]
    built = [prepared.build(person) for person in people[:2]]
    parser = BytesHeaderParser(policy=policy.default)
    headers = [parser.parsebytes(out.envelope.data) for out in built]
    first = headers[0]
    checks = []
    froms = first.get_all("From") or []
    addresses = getaddresses([str(f) for f in froms])
    if len(froms) != 1 or len(addresses) != 1:
        checks.append(Check("From", Status.FAIL, "the message needs exactly one From address"))
    else:
        domain = addresses[0][1].rpartition("@")[2].lower()
        if domain in FREEMAIL:
            reason = f"From is at {domain}: its DMARC policy rejects mail sent from elsewhere"
            fix = "send from an address at your own domain"
            checks.append(Check("From", Status.FAIL, reason, fix))
        else:
            checks.append(Check("From", Status.PASS, f"one From address at {domain}"))
    ids = [str(h.get("Message-ID") or "") for h in headers]
    if not all(_MESSAGE_ID.match(i) for i in ids) or len(set(ids)) != len(ids):
        checks.append(Check("Message-ID", Status.FAIL, "Message-IDs must be valid and unique"))
    else:
        checks.append(Check("Message-ID", Status.PASS, "valid, one per message"))
    checks.append(_one_click(str(first.get("List-Unsubscribe") or ""), first))
    if built[0].rendered.unsubscribe_url and built[0].rendered.unsubscribe_url in (
        built[0].rendered.html
    ):
        checks.append(Check("unsubscribe link", Status.PASS, "visible in the HTML"))
    else:
        reason = "no visible link to this campaign's unsubscribe page in the HTML"
        fix = 'add <a href="{{ unsubscribe_url }}">Unsubscribe</a> to the footer'
        checks.append(Check("unsubscribe link", Status.FAIL, reason, fix))
    fake = [
        s for s in (*prepared.campaign.subjects, *(o.subject for o in built)) if is_fake_reply(s)
    ]
    if fake:
        reason = f"the subject {fake[0]!r} pretends to be a reply or forward"
        checks.append(Check("subject", Status.FAIL, reason, "drop the RE:/Fwd:"))
    return checks


def _one_click(value: str, headers: object) -> Check:
    https = "<https://" in value
    post = str(getattr(headers, "get", lambda _k: "")("List-Unsubscribe-Post") or "")
    if not value:
        reason = "no List-Unsubscribe header: Gmail and Yahoo require it for bulk mail"
        return Check("one-click unsubscribe", Status.FAIL, reason, "set [unsubscribe] url")
    if not https or "One-Click" not in post:
        reason = "List-Unsubscribe has no https URL with List-Unsubscribe-Post (a mailto alone "
        reason += "does not meet Gmail's one-click rule)"
        return Check("one-click unsubscribe", Status.FAIL, reason, "set an https [unsubscribe] url")
    return Check("one-click unsubscribe", Status.PASS, "https List-Unsubscribe + One-Click POST")


def check_volume(people: Iterable[Recipient]) -> Check:
    """Warn when one send reaches more than 5,000 Gmail addresses (bulk-sender rules apply)."""
    gmail = sum(p.email.rpartition("@")[2].lower() in _GMAIL for p in people)
    if gmail > BULK_GMAIL_PER_DAY:
        reason = (
            f"{gmail:,} Gmail addresses in one day makes you a bulk sender, for good: SPF and "
            "DKIM and DMARC, one-click unsubscribe and a spam rate under 0.3 % are then required"
        )
        return Check("volume", Status.WARN, reason, "meet every rule above before sending")
    return Check("volume", Status.PASS, f"{gmail:,} Gmail address(es): under the bulk threshold")
