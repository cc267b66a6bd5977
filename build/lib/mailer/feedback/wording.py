"""What reporting servers say, phrase by phrase, mapped to a reason.

Servers word the same failure many ways; the tables below hold the phrases of
the common MTAs and mailbox providers (each row names the family it was seen
from; ``*`` is wording many share). The first table whose phrase matches wins,
in this order of trust: sender-side causes (authentication, content,
reputation) before recipient-side ones, because a refusal that names DMARC or a
blocklist is about *our* mail even when it also says "rejected recipient";
specific recipient causes (full, disabled, unknown) before generic policy
wording ("access denied").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mailer.feedback.reasons import Reason


@dataclass(frozen=True)
class Rule:
    """One phrase (a regular expression, case-insensitive) and the reason it names."""

    reason: Reason
    pattern: re.Pattern[str]
    family: str


def _rules(reason: Reason, family: str, *phrases: str) -> list[Rule]:
    return [Rule(reason, re.compile(p, re.IGNORECASE), family) for p in phrases]


TABLE: list[Rule] = [
    # --- sender side: authentication -----------------------------------------------------
    *_rules(
        Reason.AUTH_FAILED,
        "*",
        r"\bdmarc\b",
        r"\bspf\b.{0,60}(fail|check|record|polic|hard)",
        r"(fail\w*|not pass\w*|didn't pass)\s+(the\s+)?(spf|dkim)",
        r"\bdkim\b.{0,40}(fail|invalid|signature|required)",
        r"unauthenticated (email|mail|sender)",
        r"authentication (check|information|required)",
        r"fails? to pass authentication",
        r"sender is unauthenticated",
        r"smtp auth\w*",
        r"please turn on smtp authentication",
        r"not\s+authori[sz]ed\s+to\s+send",
        r"sender (address|domain) .{0,30}(not|un)verified",
        r"email address is not verified",
        r"\bauthentication\s+failure",
    ),
    *_rules(Reason.AUTH_FAILED, "netease", r"\bMI:(SPF|DMA)\b"),
    *_rules(Reason.AUTH_FAILED, "exchange", r"RESOLVER\.RST\.AuthRequired"),
    # --- sender side: our IP's or domain's reputation (before "spam": a block *for* spam
    # is about the sender, not this message)
    *_rules(
        Reason.BLOCKED,
        "*",
        r"low reputation",
        r"(ip|domain|sender) reputation",
        r"reputation of the sending",
        r"adresse ip source bloquee",
        r"banned sending ip",
        r"messages from \S+ weren't sent",
    ),
    # --- sender side: content -------------------------------------------------------------
    *_rules(
        Reason.CONTENT,
        "*",
        r"\bspam\b(?!.{0,20}(trap|hit|house))",
        r"\bUBE\b",
        r"\bjunk mail\b",
        r"(message|mail)\s+content\s+(was\s+)?rejected",
        r"content (rejected|presents)",
        r"\bvirus\b",
        r"\bmalware\b",
        r"\binfected\b",
        r"blacklisted url",
        r"likely unsolicited",
        r"unsolicited (mail|e-?mail|bulk|commercial)",
        r"header error",
        r"headers? too (large|long)",
        r"improper use of 8-bit",
        r"not rfc ?5322 compliant",
        r"multiple addresses in from",
        r"duplicate header",
        r"message filtered",
        r"suspicious (content|url|link)",
        r"(bad|invalid|illegal) attachment",
        r"mail rejete",
        r"potential security issue",
        r"MCSpamSignature",
        r"content (filter|policy)",
    ),
    *_rules(Reason.CONTENT, "netease", r"\bDT:(SPM|RBL)\b"),
    *_rules(Reason.CONTENT, "qq", r"mail content denied"),
    # --- the receiver's own trouble: never the recipient's fault, never sure ------------
    *_rules(
        Reason.OTHER,
        "*",
        r"procmail",
        r"pipe to \|",
        r"malformed or unexpected name server reply",
        r"host not found, try again",
        r"mailer error",
        r"internal (system )?error",
        r"\bon hold\b",
    ),
    # --- sender side: reputation (Yahoo's TSS04 defers for it) --------------------------
    *_rules(
        Reason.BLOCKED,
        "yahoo",
        r"\bTSS0[49]\b",
        r"unexpected volume or user complaints",
    ),
    # --- soft, by the receiver's load (before "blocked": these say "try later") -----------
    *_rules(
        Reason.GREYLISTED,
        "*",
        r"gr[ae]ylist",
        r"\bgrey-?listed\b",
        r"try again (in|after) \d+ (seconds|minutes)",
        r"please retry (later|in)",
        r"temporarily rejected.{0,40}(retry|later)",
    ),
    *_rules(
        Reason.RATE_LIMITED,
        "*",
        r"rate (limit|control)",
        r"too (many|much) (connections|messages|mail|recipients|"
        r"concurrent|emails|requests)",
        r"receiving mail at a rate",
        r"frequency limit",
        r"sending rate",
        r"exceed\w* .{0,30}(rate|quota of messages|sending limit)",
        r"\bthrottl",
        r"sent to too many recipients",
        r"too fast",
        r"connection limit",
        r"slow down",
    ),
    *_rules(Reason.RATE_LIMITED, "netease", r"\bRP:(QRC|CEL|QCF)\b", r"\bHL:(IHU|ICC)\b"),
    # --- sender side: reputation, blocklists, policy --------------------------------------
    *_rules(
        Reason.BLOCKED,
        "*",
        r"blocked using",
        r"block ?list",
        r"black ?list",
        r"\bdnsbl\b",
        r"\brbl\b",
        r"spamhaus",
        r"spamcop",
        r"barracuda\w*\s+reputation",
        r"\breputation\b",
        r"banned sending ip",
        r"ip .{0,40}(blocked|banned|rejected|refused|listed)",
        r"(reverse dns|rdns|ptr record|no ptr|name lookup failed|reverse lookup)",
        r"may not be mail exchanger",
        r"mismatches client ip",
        r"sender (address )?rejected",
        r"sender (was )?(refused|denied|rejected)",
        r"domain of sender address .{0,80}does not exist",
        r"unroutable sender",
        r"sender address .{0,20}(invalid|not allowed)",
        r"relay(ing)? (access )?(denied|not permitted|prohibited)",
        r"not configured to relay",
        r"insecure mail relay",
        r"no relaying",
        r"(denied|rejected|not accepted|refused) (by|due to|for) (local )?polic",
        r"local policy",
        r"policy (violation|reasons)",
        r"protocol violation",
        r"client host rejected",
        r"host network not allowed",
        r"adresse ip source bloquee",
        r"service refuse",
        r"not a member of",
        r"permission to post",
        r"\bS3150\b",
        r"5\.7\.606",
        r"5\.7\.708",
        r"open (relay|proxy)",
        r"not accepting connections",
        r"invalid ip for sending",
        r"your e-?mail is redundant",
        r"no access from mail server",
        r"not accepting mail from",
        r"purported responsible address",
        r"recipient preferences",
        r"groups\.google\.com/support",
        r"provide a valid from",
        r"from:?\s+domain is invalid",  # Google Groups: no such group, or no right to post
    ),
    *_rules(Reason.BLOCKED, "netease", r"\bRP:(RDN|DRC|TRC)\b", r"\bMI:(IMF|NHD|SFP)\b"),
    # --- recipient side -------------------------------------------------------------------
    *_rules(
        Reason.MAILBOX_FULL,
        "*",
        r"mailbox (is )?(full|over)",
        r"(over|exceeded|exceeds?) (the |its |his |her )?"
        r"(storage |disk |mailbox )?quota",
        r"quota (exceeded|full|violation)",
        r"insufficient (disk|system) (space|storage)",
        r"mailbox size limit",
        r"not enough (disk )?space",
        r"user.{0,20}(is )?over (the )?quota",
        r"out of (disk )?space",
        r"mail ?box full",
        r"storage (space )?(limit|full)",
        r"full mailbox",
        r"boite (aux lettres )?pleine",
        r"RESOLVER\.RST\.RecipientFull",
        r"mailbox exceeds",
        r"mailbox exceeded",
        r"reached (its |the )?(disk |storage |mailbox )?quota",
        r"mail ?folder is full",
    ),
    *_rules(
        Reason.TOO_BIG,
        "*",
        r"(message|mail) (size|length) (exceeds|limit|too)",
        r"too (large|big)",
        r"size limit",
        r"exceeds? (the )?(fixed )?max(imum)? (message )?size",
        r"message size exceeds",
        r"RecipSizeLimit",
    ),
    *_rules(
        Reason.DISABLED,
        "*",
        r"account .{0,30}(disabled|inactive|suspended|locked|frozen|blocked|deactivated)",
        r"(disabled|inactive|suspended|locked|frozen) (recipient|account|mailbox|user)",
        r"mailbox is (frozen|disabled|inactive|locked|suspended)",
        r"temporar\w* locked",
        r"discontinued",
        r"compte du destinataire est bloque",
        r"account is locked",
    ),
    *_rules(
        Reason.USER_UNKNOWN,
        "*",
        r"(user|recipient|mailbox|address|addressee|account)\s*(is\s+)?"
        r"(unknown|not (found|exist\w*|known|valid|listed)|does ?n[o']t exist|invalid"
        r"|unavailable|no longer|doesn't exist)",
        r"(unknown|invalid|non-?existent|bad|no such) (local )?(user|recipient|mailbox|address"
        r"|account|person)",
        r"no such (user|mailbox|recipient|address|person|account)",
        r"no mailbox",
        r"not (a )?(valid|registered|known) (user|recipient|mailbox|address"
        r"|gateway user)",
        r"not our (user|customer)",
        r"address (couldn't|could not) be found",
        r"account that you tried to reach does not exist",
        r"does not have an? .{0,40}account",
        r"doesn't have a .{0,40}account",
        r"unrouteable address",
        r"mailbox not found",
        r"user not found",
        r"(unknown|no such) (alias|local part)",
        r"not listed in",
        r"no longer (on|with|valid)",
        r"invalid (mailbox|recipient)",
        r"undeliverable address",
        r"RESOLVER\.ADR\.(RecipNotFound|ExRecipNotFound)",
        r"RecipientNotFound",
        r"addressee unknown",
        r"no valid recipients",
        r"this user doesn't have",
        r"user doesn't exist",
        r"delivery error: dd",
        r"recipient address(es)? rejected\s*:\s*access denied",  # Office 365 directory check
        r"invalid .{0,20}userid",
        r"ディレクトリのリストにありません",
        r"見つかりません",
    ),
    *_rules(
        Reason.HOST_UNKNOWN,
        "*",
        r"host (or domain name )?not found",
        r"domain (name )?not found",
        r"nxdomain",
        r"unrouteable (mail )?domain",
        r"no (mx|mail exchanger|dns)",
        r"(mx|srv) record",
        r"couldn't find (a|any) (mail exchanger|host)",
        r"does not accept mail",
        r"doesn't receive email",
        r"null mx",
        r"host unknown",
        r"unknown (host|domain)",
        r"domain (does not|doesn't) exist",
        r"no route to (host|domain)",
        r"name service error",
        r"host name lookup failure",
        r"no such (host|domain)",
        r"not accepting network messages",
        r"illegal host/domain",
        r"domain .{0,20}not exist",
        r"domain is not reachable",
        r"host \S+ not found",
    ),
    *_rules(
        Reason.EXPIRED,
        "*",
        r"retry time ?out",
        r"(message|mail) (has )?expired",
        r"could not be delivered for",
        r"(too long|been) in (the )?queue",
        r"unable to deliver .{0,40}after",
        r"delivery (time|period) expired",
        r"(connection|connect).{0,40}timed? ?out",
        r"no longer (trying|retry)",
        r"giving up",
        r"been failing for a long",
        r"will be (deleted|removed) from (the )?queue",
        r"will be retried",
        r"has been delayed",
        r"did not accept our requests to connect",
        r"host not reachable",
        r"wasn't able to establish",
        r"not going to try again",
        r"failed \d+ attempts",
        r"not delivered within",
        r"not responding",
        r"aborted after",
        r"envelope expired",
        r"delivery (has been )?delayed",
    ),
]

# Generic words that name a cause only when neither a sharper phrase nor the status code did.
WEAK: list[Rule] = [
    *_rules(
        Reason.BLOCKED,
        "*",
        r"not\s+(be\s+)?permitted",
        r"access denied",
        r"(message|mail) (rejected|refused)\b",
        r"refused to talk",
        r"\bblocked\b",
    ),
    *_rules(
        Reason.USER_UNKNOWN,
        "*",
        r"has moved",
        r"deleted",
        r"mailbox unavailable",
        r"not found in",
        r"\b5\.1\.1\b",
    ),
    *_rules(Reason.EXPIRED, "*", r"timed out", r"connection refused", r"unable to connect"),
    *_rules(Reason.CONTENT, "*", r"message (looks|appears) like"),
]


def reason_in(text: str) -> tuple[Reason, str, bool] | None:
    """The first reason whose phrase ``text`` contains: (reason, the rule's family, weak)."""
    if not text:
        return None
    for rule in TABLE:
        if rule.pattern.search(text):
            return rule.reason, rule.family, False
    for rule in WEAK:
        if rule.pattern.search(text):
            return rule.reason, rule.family, True
    return None
