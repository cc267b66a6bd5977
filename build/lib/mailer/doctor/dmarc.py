"""DMARC (RFC 7489): the record that applies, every tag valid, and alignment from evidence.

checkdmarc finds the record (``_dmarc.<From domain>``, else the organisational
domain's), refuses two of them, checks its syntax, tag values, report URIs
and the external-destination authorisation (``<domain>._report._dmarc.<dest>``,
§7.1). checkdmarc follows RFC 9989 (DMARCbis), which dropped ``pct``, ``rf``
and ``ri`` and quietly replaces a bad ``adkim``/``aspf`` by its default; the
doctor holds those to RFC 7489 §6.3, which today's receivers still read.

The policy a receiver applies is ``p`` for the organisational domain, ``sp``
for its subdomains, ``np`` (RFC 9091) for subdomains that do not exist; the
organisational domain comes from the Public Suffix List (publicsuffixlist).

Alignment passes only on evidence: an SPF ``pass`` (evaluated by pyspf) for an
envelope domain aligned with From per ``aspf``, or a DKIM signature made with
the configured key that verifies (dkimpy) against the record published at an
aligned ``d=`` per ``adkim``. Anything less is a fail, or ``unknown`` when a
DNS failure hid the evidence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

from mailer.doctor import libs
from mailer.doctor.keys import DkimEvidence
from mailer.doctor.model import Check, Status, unknown_check
from mailer.doctor.resolver import DnsFailure, Resolver
from mailer.doctor.spf import SpfEvidence

AREA = "DMARC"
ALIGNMENT_AREA = "DMARC alignment"
_RF_FORMATS = ("afrf", "iodef")


def org_domain(domain: str) -> str:
    """The organisational domain (``news.shop.example.co.uk`` → ``example.co.uk``), by the PSL."""
    return str(_suffixes().privatesuffix(domain.lower()) or domain.lower())


@cache
def _suffixes() -> Any:
    """The public suffix list (bundled with ``publicsuffixlist``; read once)."""
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList()


def aligned(a: str, b: str, mode: str) -> bool:
    """Identifier alignment: the same domain (strict ``s``) or organisational domain (relaxed)."""
    if mode == "s":
        return a.lower().rstrip(".") == b.lower().rstrip(".")
    return org_domain(a) == org_domain(b)


@dataclass(frozen=True)
class DmarcPolicy:
    """The record that applies to the From domain, as a receiver reads it."""

    location: str  # where the record was found (the From domain or its organisational domain)
    record: str
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def aspf(self) -> str:
        """SPF alignment mode (``r`` unless a valid ``s``)."""
        return "s" if self.tags.get("aspf") == "s" else "r"

    @property
    def adkim(self) -> str:
        """DKIM alignment mode (``r`` unless a valid ``s``)."""
        return "s" if self.tags.get("adkim") == "s" else "r"


def tags_of(record: str) -> dict[str, str]:
    """``v=DMARC1; p=none`` → ``{"v": "DMARC1", "p": "none"}`` (names lower-cased)."""
    tags: dict[str, str] = {}
    for part in record.split(";"):
        key, _, value = part.strip().partition("=")
        if key.strip():
            tags.setdefault(key.strip().lower(), value.strip())
    return tags


def check_dmarc(resolver: Resolver, from_domain: str, out: list[Check]) -> DmarcPolicy | None:
    """The DMARC record for ``from_domain`` judged (checks go to ``out``); None if unusable."""
    found = _find(resolver, from_domain, out)
    if found is None:
        return None
    record, location, warnings = found
    policy = DmarcPolicy(location, record, tags_of(record))
    out += _library_warnings(location, warnings)
    try:
        parsed = libs.parse_dmarc(resolver, record, location)
    except DnsFailure as failure:
        what = f"the report destinations of _dmarc.{location}"
        out.append(unknown_check("dmarc.reports", AREA, what, failure))
        parsed = None
    except libs.dmarc_module().DMARCError as exc:
        out.append(_syntax(exc, location, record))
        parsed = None
    out += _rfc7489_tags(location, policy.tags)
    if parsed is not None:
        out += _library_warnings(location, parsed.get("warnings", []))
    out += _policy(resolver, from_domain, policy)
    return policy


def _find(
    resolver: Resolver, from_domain: str, out: list[Check]
) -> tuple[str, str, list[str]] | None:
    errors = libs.dmarc_module()
    organisation = org_domain(from_domain)
    for domain in dict.fromkeys((from_domain, organisation)):
        try:
            found = libs.query_dmarc(resolver, domain)
        except DnsFailure as failure:
            out.append(
                unknown_check("dmarc.record", AREA, f"the DMARC record of {domain}", failure)
            )
            return None
        except errors.MultipleDMARCRecords:
            reason = (
                f"_dmarc.{domain} has more than one DMARC record: receivers then apply "
                "no DMARC at all (RFC 7489 §6.6.3)"
            )
            out.append(Check("dmarc.multiple-records", AREA, Status.FAIL, reason, "keep one"))
            return None
        except errors.DMARCRecordNotFound:
            continue  # a subdomain that does not exist: its organisation's record applies
        except errors.DMARCError as exc:
            reason = f"_dmarc.{domain}: {libs_message(exc)}"
            out.append(Check("dmarc.record", AREA, Status.FAIL, reason, "publish one DMARC record"))
            return None
        return str(found["record"]), str(found["location"]), list(found.get("warnings", []))
    reason = f"no DMARC record for {from_domain}: Gmail and Yahoo require one for bulk mail"
    fix = f'publish TXT at _dmarc.{organisation}: "v=DMARC1; p=none; rua=mailto:..."'
    out.append(Check("dmarc.missing", AREA, Status.FAIL, reason, fix))
    return None


def libs_message(exc: Exception) -> str:
    """A library exception's message (its first argument)."""
    return str(exc.args[0]) if exc.args else str(exc)


def _syntax(exc: Exception, location: str, record: str) -> Check:
    errors = libs.dmarc_module()
    where = f"_dmarc.{location} {record!r}"
    if isinstance(exc, errors.InvalidDMARCReportURI):
        reason = f"{where}: {libs_message(exc)}; receivers send no reports to it"
        fix = "write report addresses as rua=mailto:dmarc@your-domain"
        return Check("dmarc.report-uri", AREA, Status.FAIL, reason, fix)
    tag_error = isinstance(exc, errors.InvalidDMARCTag | errors.InvalidDMARCTagValue)
    check_id = "dmarc.tag-invalid" if tag_error else "dmarc.syntax"
    reason = f"{where}: {libs_message(exc)}"
    return Check(check_id, AREA, Status.FAIL, reason, "correct the record (RFC 7489 §6.3)")


# checkdmarc's warnings that have a check of their own here, by a phrase they contain.
_KNOWN_WARNINGS = (
    ("does not indicate that it accepts", "dmarc.report-auth"),
    ("rua tag (destination for aggregate reports) not found", "dmarc.no-reports"),
    ("Unknown DMARC tag", "dmarc.tag-unknown"),
    ("makes DMARC unenforced", ""),  # said by dmarc.policy
    ("is not a valid adkim tag value", ""),  # said by dmarc.tag-invalid (RFC 7489)
    ("is not a valid aspf tag value", ""),
    ("tag was removed in RFC 9989", ""),
    ("A missing p tag", ""),
)


def _library_warnings(location: str, texts: list[str]) -> list[Check]:
    """checkdmarc's warnings as checks, less those another check already says."""
    checks = []
    for text in texts:
        check_id = next((known for phrase, known in _KNOWN_WARNINGS if phrase in text), None)
        if check_id != "":
            checks.append(_library_warning(location, text, check_id or "dmarc.warning"))
    return checks


def _library_warning(location: str, text: str, check_id: str) -> Check:
    if check_id == "dmarc.report-auth":
        fix = "have the report domain publish that TXT record, or report to your own domain"
        return Check(check_id, AREA, Status.WARN, f"_dmarc.{location}: {text}", fix)
    if check_id == "dmarc.no-reports":
        reason = f"_dmarc.{location} has no rua=: nobody receives the aggregate reports"
        return Check(check_id, AREA, Status.WARN, reason, "add rua=mailto:dmarc@your-domain")
    return Check(check_id, AREA, Status.WARN, f"_dmarc.{location}: {text}", "see RFC 7489")


def _rfc7489_tags(location: str, tags: dict[str, str]) -> list[Check]:
    """RFC 7489 §6.3 values that checkdmarc (following RFC 9989) lets through."""
    bad = []
    if "p" not in tags:
        bad.append("p= is missing (required by RFC 7489 §6.3)")
    for tag in ("adkim", "aspf"):
        if tag in tags and tags[tag].lower() not in ("r", "s"):
            bad.append(f"{tag}={tags[tag]} is neither r nor s (receivers use r)")
    if "pct" in tags and not (tags["pct"].isdigit() and 0 <= int(tags["pct"]) <= 100):
        bad.append(f"pct={tags['pct']} is not a whole number from 0 to 100")
    if "rf" in tags and not all(f.strip().lower() in _RF_FORMATS for f in tags["rf"].split(":")):
        bad.append(f"rf={tags['rf']} names a format other than afrf or iodef")
    if "ri" in tags and not (tags["ri"].isdigit() and int(tags["ri"]) < 2**32):
        bad.append(f"ri={tags['ri']} is not a number of seconds")
    return [
        Check(
            "dmarc.tag-invalid",
            AREA,
            Status.FAIL,
            f"_dmarc.{location}: {why}; receivers ignore the tag and use its default",
            "correct the tag (RFC 7489 §6.3)",
        )
        for why in bad
    ]


def _policy(resolver: Resolver, from_domain: str, policy: DmarcPolicy) -> list[Check]:
    """Which of p / sp / np applies to the From domain, and what it asks receivers to do."""
    tags = {k: v.lower() for k, v in policy.tags.items()}
    if from_domain.lower() == policy.location.lower():
        tag = "p"
    else:
        try:
            exists = resolver.exists(from_domain)
        except DnsFailure as failure:
            return [unknown_check("dmarc.policy", AREA, f"whether {from_domain} exists", failure)]
        tag = "sp" if exists else "np"
    chain = {"p": ("p",), "sp": ("sp", "p"), "np": ("np", "sp", "p")}[tag]
    used = next((t for t in chain if t in tags), "p")
    value = tags.get(used, "none")
    whose = (
        f"{from_domain} is the policy domain"
        if tag == "p"
        else f"{from_domain} is a {'non-existent ' if tag == 'np' else ''}subdomain of "
        f"{policy.location}, so {tag}= applies"
        + (f" (not set: {used}= is used)" if used != tag else "")
    )
    if value not in ("none", "quarantine", "reject"):
        reason = f"{whose}; {used}={value} is not none, quarantine or reject"
        return [Check("dmarc.policy", AREA, Status.FAIL, reason, "use quarantine or reject")]
    if value == "none":
        reason = f"{whose}: {used}=none, receivers take no action on mail that fails DMARC"
        fix = "move to quarantine, then reject, once the reports show all your mail passes"
        return [Check("dmarc.policy", AREA, Status.WARN, reason, fix)]
    return [Check("dmarc.policy", AREA, Status.PASS, f"{whose}: {used}={value}")]


def check_alignment(
    from_domain: str,
    policy: DmarcPolicy | None,
    spf: SpfEvidence,
    dkim: DkimEvidence,
    *,
    policy_unknown: bool = False,
) -> Check:
    """DMARC passes when SPF or DKIM passes, on evidence, for a domain aligned with From.

    Without a record the modes are the defaults (relaxed); when the record could
    not be read (``policy_unknown``) only strict alignment is taken as a pass.
    """
    modes = (policy.aspf, policy.adkim) if policy else ("s", "s") if policy_unknown else ("r", "r")
    aspf, adkim = modes
    spf_aligned = aligned(spf.domain, from_domain, aspf)
    dkim_domains = [d for d in dkim.verified if aligned(d, from_domain, adkim)]
    spf_mode, dkim_mode = _mode("aspf", aspf, policy_unknown), _mode("adkim", adkim, policy_unknown)
    found = []
    if spf.passed and spf_aligned:
        found.append(f"SPF passes for {spf.domain} ({spf_mode})")
    if dkim_domains:
        found.append(f"DKIM verifies for d={dkim_domains[0]} ({dkim_mode})")
    if found:
        reason = " and ".join(found) + f": aligned with {from_domain}"
        return Check("dmarc.alignment", ALIGNMENT_AREA, Status.PASS, reason)
    not_aligned = "" if spf_aligned else f", which is not aligned with {from_domain} ({spf_mode})"
    why = [
        f"SPF: {spf.result} for {spf.domain}{not_aligned}",
        f"DKIM: {dkim.detail}",
    ]
    relaxed = policy_unknown and (
        (spf.passed and aligned(spf.domain, from_domain, "r"))
        or any(aligned(d, from_domain, "r") for d in dkim.verified)
    )
    if relaxed:
        why.append("the DMARC record, whose aspf/adkim decide, could not be read")
    unknown = (spf.unknown and spf_aligned) or dkim.unknown or relaxed
    status = Status.UNKNOWN if unknown else Status.FAIL
    reason = (
        f"no evidence that SPF or DKIM passes for a domain aligned with {from_domain} "
        f"({'; '.join(why)})"
    )
    fix = "publish the DKIM key of [dkim] at its selector, or let the envelope domain's SPF pass"
    return Check("dmarc.alignment", ALIGNMENT_AREA, status, reason, fix)


def _mode(tag: str, mode: str, assumed: bool) -> str:
    return f"{tag} unknown, strict assumed" if assumed else f"{tag}={mode}"
