"""What the providers check in the message itself, and the volume that makes a bulk sender."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesHeaderParser
from email.utils import getaddresses

from mailer.campaign.prepared import PreparedCampaign
from mailer.checks.content import FREEMAIL
from mailer.checks.subject import is_fake_reply
from mailer.core.recipient import Recipient
from mailer.doctor.model import Check, Status

BULK_PER_DAY = 5000  # messages a day to one provider's users that make a bulk sender
_MESSAGE_ID = re.compile(r"^<[^<>@\s]+@[^<>@\s]+>$")


def check_message(prepared: PreparedCampaign, people: list[Recipient]) -> list[Check]:
    """From, Message-ID, one-click unsubscribe and subject rules on two built messages."""
    if not people:
        return [
            Check(
                "message.audience",
                "message",
                Status.SKIP,
                "the audience is empty: no message to look at",
            )
        ]
    built = [prepared.build(person) for person in people[:2]]
    parser = BytesHeaderParser(policy=policy.default)
    headers = [parser.parsebytes(out.envelope.data) for out in built]
    first = headers[0]
    checks = []
    froms = first.get_all("From") or []
    addresses = getaddresses([str(f) for f in froms])
    if len(froms) != 1 or len(addresses) != 1:
        checks.append(
            Check("message.from", "From", Status.FAIL, "the message needs exactly one From address")
        )
    else:
        domain = addresses[0][1].rpartition("@")[2].lower()
        if domain in FREEMAIL:
            reason = f"From is at {domain}: its DMARC policy rejects mail sent from elsewhere"
            fix = "send from an address at your own domain"
            checks.append(Check("message.from", "From", Status.FAIL, reason, fix))
        else:
            checks.append(
                Check("message.from", "From", Status.PASS, f"one From address at {domain}")
            )
    ids = [str(h.get("Message-ID") or "") for h in headers]
    if not all(_MESSAGE_ID.match(i) for i in ids) or len(set(ids)) != len(ids):
        checks.append(
            Check(
                "message.message-id",
                "Message-ID",
                Status.FAIL,
                "Message-IDs must be valid and unique",
            )
        )
    else:
        checks.append(
            Check("message.message-id", "Message-ID", Status.PASS, "valid, one per message")
        )
    checks.append(_one_click(str(first.get("List-Unsubscribe") or ""), first))
    if first.get("List-Unsubscribe-Post"):
        checks += _one_click_signed(prepared, built[0].envelope.data)
    if built[0].rendered.unsubscribe_url and built[0].rendered.unsubscribe_url in (
        built[0].rendered.html
    ):
        checks.append(
            Check(
                "message.unsubscribe-link", "unsubscribe link", Status.PASS, "visible in the HTML"
            )
        )
    else:
        reason = "no visible link to this campaign's unsubscribe page in the HTML"
        fix = 'add <a href="{{ unsubscribe_url }}">Unsubscribe</a> to the footer'
        checks.append(
            Check("message.unsubscribe-link", "unsubscribe link", Status.FAIL, reason, fix)
        )
    fake = [
        s for s in (*prepared.campaign.subjects, *(o.subject for o in built)) if is_fake_reply(s)
    ]
    if fake:
        reason = f"the subject {fake[0]!r} pretends to be a reply or forward"
        checks.append(Check("message.subject", "subject", Status.FAIL, reason, "drop the RE:/Fwd:"))
    return checks


def _one_click(value: str, headers: object) -> Check:
    https = "<https://" in value
    post = str(getattr(headers, "get", lambda _k: "")("List-Unsubscribe-Post") or "")
    if not value:
        reason = "no List-Unsubscribe header: Gmail and Yahoo require it for bulk mail"
        return Check(
            "message.one-click",
            "one-click unsubscribe",
            Status.FAIL,
            reason,
            "set [unsubscribe] url",
        )
    if not https or "One-Click" not in post:
        reason = "List-Unsubscribe has no https URL with List-Unsubscribe-Post (a mailto alone "
        reason += "does not meet Gmail's one-click rule)"
        return Check(
            "message.one-click",
            "one-click unsubscribe",
            Status.FAIL,
            reason,
            "set an https [unsubscribe] url",
        )
    return Check(
        "message.one-click",
        "one-click unsubscribe",
        Status.PASS,
        "https List-Unsubscribe + One-Click POST",
    )


@dataclass(frozen=True)
class Family:
    """A mailbox provider whose bulk-sender rules count all its domains together."""

    id: str
    name: str
    domains: tuple[str, ...]


# Gmail (2024), Yahoo/AOL (2024) and Outlook.com (2025): about 5,000 messages a day to
# their users makes a bulk sender; Gmail keeps that status for good.
FAMILIES = (
    Family("gmail", "Gmail", ("gmail.com", "googlemail.com")),
    Family(
        "yahoo",
        "Yahoo/AOL",
        ("yahoo.com", "ymail.com", "rocketmail.com", "aol.com", "yahoo.co.uk", "yahoo.fr"),
    ),
    Family(
        "outlook",
        "Outlook.com",
        ("outlook.com", "hotmail.com", "live.com", "msn.com", "hotmail.co.uk", "hotmail.fr"),
    ),
)
PROVIDER_DOMAINS = tuple(d for f in FAMILIES for d in f.domains)


@dataclass(frozen=True)
class SentHistory:
    """Real mail sent per UTC day to each provider family, across all campaigns (the journal)."""

    per_day: dict[str, dict[str, int]] = field(default_factory=dict)  # family id -> day -> count

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[str, str, int]]) -> SentHistory:
        """From (day, recipient domain, count) rows."""
        family_of = {d: f.id for f in FAMILIES for d in f.domains}
        per_day: dict[str, dict[str, int]] = {}
        for day, domain, count in rows:
            family = family_of.get(domain.lower())
            if family is not None:
                days = per_day.setdefault(family, {})
                days[day] = days.get(day, 0) + int(count)
        return cls(per_day)


def check_volume(
    people: Iterable[Recipient] | None, history: SentHistory | None, today: str
) -> list[Check]:
    """Per provider family: this campaign plus what already went out today, and the peak day."""
    family_of = {d: f.id for f in FAMILIES for d in f.domains}
    campaign: dict[str, int] = dict.fromkeys(family_of.values(), 0)
    for person in people or ():
        family = family_of.get(person.email.rpartition("@")[2].lower())
        if family is not None:
            campaign[family] += 1
    days = history.per_day if history is not None else {}
    return [
        _volume(family, campaign[family.id], days.get(family.id, {}), today) for family in FAMILIES
    ]


def _volume(family: Family, campaign: int, days: dict[str, int], today: str) -> Check:
    sent_today = days.get(today, 0)
    projected = sent_today + campaign
    peak_day, peak = max(days.items(), key=lambda kv: kv[1], default=(today, 0))
    check_id = f"volume.{family.id}"
    rules = "SPF and DKIM and DMARC, one-click unsubscribe and a spam rate under 0.3 % are required"
    if projected > BULK_PER_DAY:
        reason = (
            f"{family.name}: {sent_today:,} sent today + {campaign:,} in this campaign = "
            f"{projected:,} in one day (over {BULK_PER_DAY:,}) makes you a bulk sender: {rules}"
        )
        return Check(check_id, "volume", Status.WARN, reason, "meet every rule above first")
    if peak > BULK_PER_DAY:
        reason = (
            f"{family.name}: {peak:,} messages on {peak_day} (over {BULK_PER_DAY:,} a day, all "
            f"campaigns) made you a bulk sender: {rules}"
        )
        return Check(check_id, "volume", Status.WARN, reason, "meet every rule above")
    reason = (
        f"{family.name}: {campaign:,} in this campaign, {sent_today:,} sent today, "
        f"busiest day {peak:,}: under {BULK_PER_DAY:,} a day"
    )
    return Check(check_id, "volume", Status.PASS, reason)


def _one_click_signed(prepared: PreparedCampaign, data: bytes) -> list[Check]:
    """RFC 8058 §4: receivers trust one-click only when both headers are covered by DKIM."""
    import dkim

    from mailer.compose.dkim import signer_from_settings

    signer = signer_from_settings(prepared.settings)
    if signer is None:
        return []  # dkim.configured already fails: there is no signature to cover them
    signed = signer.sign(data, timestamp=int(prepared.now().timestamp()))
    headers, _body = dkim.rfc822_parse(signed)
    field = next(v for k, v in headers if k.lower() == b"dkim-signature")
    tags = dkim.util.parse_tag_value(b"".join(field.split()))
    covered = {h.strip().lower() for h in tags.get(b"h", b"").split(b":")}
    missing = [
        h for h in ("list-unsubscribe", "list-unsubscribe-post") if h.encode() not in covered
    ]
    if missing:
        reason = f"the DKIM signature does not cover {', '.join(missing)} (RFC 8058 §4)"
        fix = "sign those headers (mailer signs them unless its signed-header list was changed)"
        return [
            Check("message.one-click-signed", "one-click unsubscribe", Status.FAIL, reason, fix)
        ]
    reason = "List-Unsubscribe and List-Unsubscribe-Post are covered by the DKIM signature"
    return [Check("message.one-click-signed", "one-click unsubscribe", Status.PASS, reason)]
