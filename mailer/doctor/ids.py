"""The doctor's check ids: stable names scripts can rely on (``--json`` carries them).

An id names the rule, not its outcome: ``spf.record`` is the same id whether
the record passed, failed or could not be read. A test keeps this table and
the checks in step.
"""

from __future__ import annotations

CHECK_IDS: dict[str, str] = {
    "dns.offline": "--offline: no DNS lookups were made (skip)",
    "dns.reserved": "the From domain is a reserved test name (skip)",
    "spf.record": "the From (and return-path) domain's SPF record: found, its tree parsed "
    "(checkdmarc); unknown when a lookup of it or its includes failed",
    "spf.missing": "no SPF record",
    "spf.multiple-records": "more than one SPF record (permerror)",
    "spf.syntax": "a syntax error, such as an unknown mechanism (permerror)",
    "spf.too-many-lookups": "more than 10 DNS-querying terms (permerror)",
    "spf.void-lookups": "more than 2 lookups that find nothing (permerror)",
    "spf.loop": "an include or redirect loop",
    "spf.include-missing": "an include target without an SPF record (permerror)",
    "spf.error": "another error checkdmarc reports",
    "spf.warning": "a warning checkdmarc reports (ptr, size, duplicate include …)",
    "spf.plus-all": "the record ends in +all: anyone may send",
    "spf.neutral-all": "the record ends in ?all, or has no all: others are neutral",
    "spf.relay": "pyspf's result for the relay's address (or, with an ESP preset, for an "
    "address of the ESP's own SPF) and the envelope domain",
    "spf.return-path": "with an ESP preset: the return path is the ESP's, not aligned",
    "dkim.configured": "mailer signs with a [dkim] key",
    "dkim.record": "the selector's record: present, one, parses (dkimpy), counts as evidence",
    "dkim.revoked": "the published key is revoked (empty p=)",
    "dkim.key-match": "the published key is the public half of the [dkim] key",
    "dkim.key-size": "RSA key size (under 1024 fails, under 2048 warns)",
    "dkim.verify": "a message signed with the key verifies against the record (dkimpy)",
    "dkim.testing": "the record has t=y (testing): not counted as evidence",
    "dmarc.record": "the DMARC record could be read (unknown on a DNS failure)",
    "dmarc.missing": "no DMARC record for the From domain or its organisational domain",
    "dmarc.multiple-records": "more than one DMARC record: receivers apply none",
    "dmarc.syntax": "the record does not parse (checkdmarc)",
    "dmarc.tag-invalid": "a tag value RFC 7489 §6.3 does not allow (pct, adkim, aspf, rf, ri, "
    "p, sp, np, fo …), or p= missing",
    "dmarc.tag-unknown": "a tag DMARC does not define (ignored by receivers)",
    "dmarc.report-uri": "an rua/ruf URI that is not a valid URI (no mailto:)",
    "dmarc.report-auth": "an rua/ruf at another domain without its _report._dmarc "
    "authorisation (RFC 7489 §7.1)",
    "dmarc.reports": "the report destinations could be checked (unknown on a DNS failure)",
    "dmarc.no-reports": "no rua: nobody receives aggregate reports",
    "dmarc.warning": "another warning checkdmarc reports",
    "dmarc.policy": "the policy that applies to the From domain: p, sp (subdomain) or np "
    "(non-existent subdomain); none warns",
    "dmarc.alignment": "SPF pass (pyspf) or DKIM verification (dkimpy) for a domain aligned "
    "with From per aspf/adkim",
    "mx.record": "the From domain receives mail (MX, or an address: implicit MX)",
    "mx.null": "a null MX (MX 0 ., RFC 7505): the domain accepts no mail",
    "rdns.ptr": "the relay's address has forward-confirmed reverse DNS",
    "tls.relay": "the relay offers STARTTLS (or implicit TLS) with a certificate that verifies",
    "message.audience": "the audience is empty (skip)",
    "message.from": "one From address, not at a free-mail domain",
    "message.message-id": "valid, unique Message-IDs",
    "message.one-click": "https List-Unsubscribe with List-Unsubscribe-Post (RFC 8058)",
    "message.one-click-signed": "the DKIM signature covers both one-click headers (RFC 8058 §4)",
    "message.unsubscribe-link": "a visible unsubscribe link in the HTML",
    "message.subject": "the subject does not pretend to be a reply or forward",
    "bounces.sender-side": "receivers refused our mail because of our sending in the last 30 "
    "days (authentication, reputation, content; from the feedback events)",
    "volume.gmail": "messages a day to Gmail/Googlemail across campaigns (5,000 makes a "
    "bulk sender)",
    "volume.yahoo": "the same for Yahoo/AOL/Ymail",
    "volume.outlook": "the same for Outlook.com/Hotmail/Live/MSN",
}
