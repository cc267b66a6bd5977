"""Write ``labels.csv`` from Sisimai's verdicts on the corpus, in our reasons and classes.

Not run by the tests: the labels are committed. It documents how they were made:

1. Sisimai 5 (p5-sisimai, commit 21cfb93, the copy of set-of-emails it tests
   against) was run over ``sisimai/*.eml`` with ``Sisimai::Fact->rise`` (options
   ``delivered`` and ``vacation``), one JSON object per file: a list of
   ``{recipient, reason, status, replycode, action, feedback, diag}``. These
   verdicts agree with the expectations in p5-sisimai's own ``t/*-lhost-*.t``
   for 587 of the 589 files (the two others have no expectation there).
2. This script maps Sisimai's reason names onto ours (``SISIMAI``), then applies
   the changes in ``CHANGED``: each one made by reading the message, each with
   its why, copied into the ``note`` column.
3. The class follows from the reason (``mailer.feedback.reasons``), except that
   a hard reason reported with a temporary status (4.x.x, a 4xx reply, or a
   "delayed" action) is ``soft``: it is never suppressed on first sight.

Usage: ``python tests/feedback/corpus/make_labels.py sisimai-facts.json``.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

from mailer.feedback.reasons import Reason, class_of

HERE = Path(__file__).parent

SISIMAI = {
    "userunknown": Reason.USER_UNKNOWN,
    "hasmoved": Reason.USER_UNKNOWN,
    "hostunknown": Reason.HOST_UNKNOWN,
    "notaccept": Reason.HOST_UNKNOWN,  # null MX, no MX: the domain takes no mail
    "mailboxfull": Reason.MAILBOX_FULL,
    "systemfull": Reason.MAILBOX_FULL,
    "suspend": Reason.DISABLED,
    "mesgtoobig": Reason.TOO_BIG,
    "exceedlimit": Reason.TOO_BIG,
    "toomanyconn": Reason.RATE_LIMITED,
    "speeding": Reason.RATE_LIMITED,
    "expired": Reason.EXPIRED,
    "blocked": Reason.BLOCKED,
    "requireptr": Reason.BLOCKED,
    "badreputation": Reason.BLOCKED,
    "rejected": Reason.BLOCKED,  # Sisimai: the envelope sender was refused
    "norelaying": Reason.BLOCKED,
    "policyviolation": Reason.BLOCKED,
    "filtered": Reason.BLOCKED,
    "authfailure": Reason.AUTH_FAILED,
    "securityerror": Reason.AUTH_FAILED,
    "spamdetected": Reason.CONTENT,
    "virusdetected": Reason.CONTENT,
    "contenterror": Reason.CONTENT,
    "notcompliantrfc": Reason.CONTENT,
    "vacation": Reason.VACATION,
    "delivered": Reason.DELIVERED,
    "feedback": Reason.COMPLAINT,
    "networkerror": Reason.OTHER,
    "systemerror": Reason.OTHER,
    "mailererror": Reason.OTHER,
    "syntaxerror": Reason.OTHER,
    "onhold": Reason.OTHER,
    "undefined": Reason.OTHER,
}

_AFTER_DATA = "Sisimai calls a refusal after DATA 'filtered'; the reply says the user is unknown"
_UNKNOWN_TEXT = "the reply says the user is unknown"
_NXDOMAIN = "the recipient's domain does not exist (NXDOMAIN); Sisimai says networkerror"

# file -> (reason, why); file:recipient when only one recipient of the file changes.
CHANGED: dict[str, tuple[Reason, str]] = {
    **{
        f"{name}.eml": (Reason.USER_UNKNOWN, _AFTER_DATA)
        for name in [
            "lhost-activehunter-02",
            "lhost-amazonses-02",
            "lhost-amazonworkmail-02",
            "lhost-apachejames-01",
            "lhost-courier-02",
            "lhost-exchange2003-04",
            "lhost-gsuite-08",
            "lhost-mailfoundry-01",
            "lhost-mailru-07",
            "lhost-messagingserver-03",
            "lhost-messagingserver-06",
            "lhost-messagingserver-08",
            "lhost-mfilter-01",
            "lhost-mfilter-03",
            "lhost-mxlogic-03",
            "lhost-office365-04",
            "lhost-postfix-03",
            "lhost-postfix-07",
            "lhost-postfix-35",
            "lhost-receivingses-01",
            "lhost-receivingses-02",
            "lhost-sendmail-02",
            "lhost-sendmail-19",
            "lhost-sendmail-27",
            "lhost-sendmail-40",
            "lhost-sendmail-48",
            "lhost-sendmail-50",
            "lhost-sendmail-51",
            "lhost-surfcontrol-01",
            "lhost-x1-01",
            "lhost-x1-02",
            "lhost-x2-01",
            "lhost-yahoo-06",
            "lhost-zoho-02",
            "lhost-zoho-03",
            "rfc3464-42",
            "rhost-kddi-01",
            "rhost-nttdocomo-01",
        ]
    },
    "lhost-x2-02.eml:kijitora@example.com": (Reason.USER_UNKNOWN, _AFTER_DATA),
    "lhost-x2-02.eml:sabineko@example.com": (Reason.USER_UNKNOWN, _AFTER_DATA),
    "rhost-nttdocomo-02.eml": (Reason.USER_UNKNOWN, _UNKNOWN_TEXT + " (550 Unknown user)"),
    "rhost-nttdocomo-03.eml": (Reason.USER_UNKNOWN, _UNKNOWN_TEXT + " (550 Unknown user)"),
    "lhost-receivingses-07.eml": (Reason.CONTENT, "550 5.2.0 Message Filtered: the content"),
    "lhost-gmail-03.eml": (Reason.CONTENT, "554 5.7.0 Header error: our message's headers"),
    "lhost-exim-03.eml": (Reason.CONTENT, "554 5.7.0 Header error: our message's headers"),
    "lhost-sendmail-09.eml": (Reason.CONTENT, "554 5.7.9 Header error: our message's headers"),
    "lhost-sendmail-31.eml": (Reason.CONTENT, "blocked because its content is a security risk"),
    "lhost-sendmail-34.eml": (Reason.CONTENT, "blocked because its content is a security risk"),
    "lhost-gsuite-04.eml": (Reason.HOST_UNKNOWN, _NXDOMAIN),
    "lhost-gsuite-05.eml": (Reason.HOST_UNKNOWN, _NXDOMAIN),
    "lhost-gsuite-15.eml": (Reason.HOST_UNKNOWN, _NXDOMAIN),
    "lhost-sendmail-21.eml": (
        Reason.EXPIRED,
        "the MX refused connections for 8 hours and the message was given up (4.4.7): a "
        "delivery that timed out, not a block of our mail",
    ),
    "rhost-spectrum-01.eml": (
        Reason.BLOCKED,
        "550 5.1.0 sender rejected: our envelope sender was refused, not a rate limit",
    ),
    "lhost-mfilter-04.eml": (
        Reason.USER_UNKNOWN,
        "550 5.4.1 recipient addresses rejected: Access denied, from Office 365: its directory"
        " check, which Sisimai calls userunknown in lhost-postfix-30 and lhost-exim-30",
    ),
    "lhost-aol-06.eml": (
        Reason.OTHER,
        "'Malformed or unexpected name server reply': a broken DNS answer, not a domain without"
        " mail; the same text is networkerror in Sisimai's lhost-postfix-17",
    ),
    "lhost-ezweb-02.eml": (
        Reason.USER_UNKNOWN,
        "the reply is '550 user unknown (in reply to RCPT TO command)' for a made-up address;"
        " the 'account is disabled' line above it is the carrier's boilerplate",
    ),
    "rfc3464-01.eml": (
        Reason.USER_UNKNOWN,
        "the DSN says 550 5.1.1 User Unknown for userunknown@...; Sisimai read the text above it",
    ),
    **{
        f"rhost-franceptt-{n}.eml": (
            Reason.BLOCKED,
            "Orange's 'Service refuse' refusal of our server, which Sisimai calls blocked in"
            " rhost-franceptt-07",
        )
        for n in ("08", "10", "11")
    },
    "lhost-postfix-48.eml": (Reason.RATE_LIMITED, "552 Too many recipients: a per-message limit"),
    "rfc3464-35.eml:kijitora@nyaan.example.com": (
        Reason.USER_UNKNOWN,
        "550 'kijitora@...' is not a registered gateway user: no such user there",
    ),
    "rfc3464-35.eml:mikeneko@neko.example.or.jp": (Reason.USER_UNKNOWN, _AFTER_DATA),
}

_MAILED = (
    "the address we mailed: Original-Recipient, confirmed by the original's To"
    " (Final-Recipient is where a forward or alias sent it)"
)
_ANONYMISED = (
    "anonymised sample: sender and recipient were both rewritten to xxxx@xxxx.fr in the"
    " report; the original's To is the recipient"
)
# file -> (the recipient Sisimai names, the one we label, why)
RECIPIENT_CHANGED: dict[str, tuple[str, str, str]] = {
    "arf-11.eml": (_HIDDEN := "undisclosed-recipient-in-headers@libsisimai.org.invalid", "",
                   "the report hides the recipient; Sisimai writes a placeholder address"),
    "arf-15.eml": (_HIDDEN, "", "the report hides the recipient; Sisimai writes a placeholder"),
    "arf-12.eml": (_HIDDEN, "user@example.com", "the report's Removal-Recipient names it"),
    "lhost-v5sendmail-01.eml": ("kijitora@exampl", "kijitora@example.com",
                                "Sisimai's address is cut short; the original's To"),
    "lhost-postfix-77.eml": ("postmaster@libsisimai.org", "neko@example.co.jp", _MAILED),
    "lhost-postfix-78.eml": ("postmaster@libsisimai.org", "neko@example.co.jp", _MAILED),
    "rfc3464-09.eml": ("kijitora-cat@mx4.gr3.example.jp", "kijitora-nyaaaaaan@example.co.jp",
                       _MAILED),
    "rhost-google-03.eml": ("kijitora@google.example.com", "neko@example.co.jp", _MAILED),
    "rhost-google-04.eml": ("kijitora@google.example.com", "contact@example.co.jp", _MAILED),
    "rhost-google-06.eml": ("michitsuna@google.example.com", "michitsuna@example.org", _MAILED),
    "lhost-exchange2007-04.eml": ("neko-nyaan@example.jp", "neko-nyaan@cat.example.jp", _MAILED),
    "lhost-apachejames-01.eml": ("00000000000@vtext.example.com",
                                 "000000000000@vtext.example.com",
                                 "the report says RCPT TO: 000000000000@... (12 zeros)"),
    "lhost-domino-03.eml": ("kijitora@neko.example.com", "kijitora@neko.example.org",
                            "the DSN's Final-Recipient and the original's To agree on .org;"
                            " the text names another domain"),
    "lhost-office365-04.eml": ("otsu-sakaba-hunter-nyaaaaaaan@ezweb.ne.jp",
                               "otsu-sakaba-hunter-neko-nyaaaaaaan@ezweb.ne.jp",
                               "Final-Recipient and the original's To; Sisimai read a mangled"
                               " mailto: link"),
    "lhost-einsundeins-03.eml": ("xxxx@xxxx.fr", "xxxx@xxxx.com", _ANONYMISED),
    "rhost-franceptt-04.eml": ("xxxx@xxxx.fr", "xxxx@xxxx.com", _ANONYMISED),
}  # fmt: skip

_FEEDBACK_SENDER = {"auth-failure": "an SPF/DKIM/DMARC failure report, not a person's complaint"}


# The DSN says "Action: delayed" / "Status: 4.0.0" where Sisimai reports a 5.x.x of its own.
DELAYED = {"lhost-opensmtpd-12.eml": "the DSN says Action: delayed, Status: 4.0.0"}


def temporary(fact: dict[str, object]) -> bool:
    """A failure the reporting server called temporary (4.x.x, 4xx, or delayed)."""
    status, code = str(fact.get("status") or ""), str(fact.get("replycode") or "")
    return status.startswith("4") or code.startswith("4") or fact.get("action") == "delayed"


def label(name: str, fact: dict[str, object]) -> dict[str, str]:
    """One CSV row for one of Sisimai's verdicts."""
    sisimai = str(fact["reason"])
    reason, note = SISIMAI[sisimai], ""
    recipient = str(fact["recipient"]).lower()
    moved = RECIPIENT_CHANGED.get(name)
    recipient_note = ""
    if moved and moved[0] == recipient:
        recipient, recipient_note = moved[1], moved[2]
    changed = CHANGED.get(f"{name}:{recipient}") or CHANGED.get(name)
    if changed and (sisimai == "filtered" or changed[1] != _AFTER_DATA):
        reason, note = changed
    feedback = str(fact.get("feedback") or "")
    if sisimai == "feedback" and feedback in _FEEDBACK_SENDER:
        reason, note = Reason.AUTH_FAILED, _FEEDBACK_SENDER[feedback]
    kind = class_of(reason, temporary=temporary(fact) or name in DELAYED)
    if kind != class_of(reason) and not note:
        note = DELAYED.get(name, "temporary status: soft until it repeats")
    note = "; ".join(n for n in (recipient_note, note) if n)
    return {
        "file": name,
        "family": name.rsplit("-", 1)[0],
        "recipient": recipient,
        "sisimai_reason": sisimai,
        "status": str(fact.get("status") or ""),
        "reason": str(reason),
        "class": str(kind),
        "note": note,
    }


def main(path: str) -> None:
    """Read Sisimai's JSON, write labels.csv next to this script."""
    facts: dict[str, list[dict[str, object]]] = json.loads(Path(path).read_text())
    rows = [label(name, fact) for name in sorted(facts) for fact in facts[name]]
    with (HERE / "labels.csv").open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"{len(rows)} labels for {len(facts)} messages")


if __name__ == "__main__":
    main(sys.argv[1])
