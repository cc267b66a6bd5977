"""Pre-send checks: one call (``run_checks``) that `check`, `send` and `preview` share.

It renders a few sample recipients through the same pipeline `send` uses (so
personalised subjects are checked as sent), scores every subject variant, runs
the content and compliance rules on each sample's HTML, text and MIME bytes,
compares with campaigns sent to the same audience in the last 30 days, and
measures the fold in headless Chromium. Results are data (``CheckReport``);
only "the check could not run at all" is an exception (``CheckError``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from mailer.audience.database import Connection
from mailer.campaign.prepared import PreparedCampaign
from mailer.checks import content as cc
from mailer.checks.findings import SEVERITIES, Finding, display_width, error, info, warning
from mailer.checks.inbox import inbox_findings
from mailer.checks.repetition import check_repetition
from mailer.checks.subject import SubjectScore, check_preheader, score_subject
from mailer.compose.compile import CompiledCampaign
from mailer.compose.locales import locale_key, pick_locale
from mailer.compose.outgoing import Outgoing
from mailer.compose.render import assign_variant, impersonal_text, stand_in, variant_label
from mailer.core.campaign import Campaign
from mailer.core.demo import (
    DEMO_SENDER_EMAIL,
    is_demo_postal_address,
    is_local_relay,
    reserved_tld,
)
from mailer.core.errors import CheckError, TemplateError
from mailer.core.marketing_days import find_day, fold_name
from mailer.core.recipient import Recipient

if TYPE_CHECKING:
    from mailer.checks.fold import FoldBrowser, FoldOptions, FoldResult

DEFAULT_SAMPLES = 3
_SCAN_LIMIT = 5000  # recipients looked at to find one sample per A/B variant
_MAX_FAILURES = 20  # rows that fail to render before the sampling gives up


class RenderedLike(Protocol):
    """What the rules read from a rendered email (``mailer.render.Rendered`` fits)."""

    @property
    def subject(self) -> str: ...
    @property
    def preheader(self) -> str: ...
    @property
    def html(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def unsubscribe_url(self) -> str | None: ...


@dataclass
class CheckReport:
    """Everything the checks found, plus whether the fold check actually ran."""

    campaign_id: str
    findings: list[Finding] = field(default_factory=list)
    subjects: list[SubjectScore] = field(default_factory=list)
    fold: list[FoldResult] = field(default_factory=list)
    fold_ran: bool = False
    fold_note: str = "NOT RUN"
    samples: int = 0
    spam: list[dict[str, Any]] = field(default_factory=list)  # SpamAssassin's reports

    @property
    def errors(self) -> list[Finding]:
        """Findings that block a send (unless forced)."""
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        """Findings worth fixing that do not block a send."""
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def ok(self) -> bool:
        """True when there are no errors."""
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``--json``."""
        return {
            "campaign": self.campaign_id,
            "ok": self.ok,
            "counts": {s: sum(f.severity == s for f in self.findings) for s in SEVERITIES},
            "samples": self.samples,
            "subjects": [s.to_dict() for s in self.subjects],
            "fold": {
                "ran": self.fold_ran,
                "note": self.fold_note,
                "measurements": [r.to_dict() for r in self.fold],
            },
            "findings": [f.to_dict() for f in self.findings],
            "spam": self.spam,
        }


def check_email(
    rendered: RenderedLike,
    envelope: bytes | None = None,
    *,
    postal_address: str,
    unsubscribe_mailto: str | None = None,
    chinese: bool = False,
) -> list[Finding]:
    """All content and compliance rules for one rendered email (and its MIME bytes).

    ``chinese``: the campaign is written in Chinese (absolute claims are then errors).
    """
    facts = cc.read_html(rendered.html)
    findings = [
        *cc.check_size(rendered.html),
        *cc.check_images(facts),
        *cc.check_links(facts),
        *cc.check_cta(facts),
        *cc.check_title(facts, rendered.subject),
        *cc.check_words(facts),
        *cc.check_parity(facts, rendered.text),
        *cc.check_unsubscribe_link(facts, rendered.unsubscribe_url, unsubscribe_mailto),
        *cc.check_unsubscribe_key(rendered.unsubscribe_url),
        *cc.check_postal_address(facts, postal_address),
        *cc.check_remote_resources(rendered.html),
        *check_preheader(rendered.preheader, rendered.subject),
        *cc.check_preheader_in_html(facts, rendered.preheader),
        *cc.check_claims(
            [
                ("subject", rendered.subject),
                ("preheader", rendered.preheader),
                ("html", facts.text),
            ],
            chinese=chinese,
        ),
    ]
    if envelope is not None:
        findings += cc.check_headers(envelope)
    return findings


def score_variants(
    subjects: Iterable[tuple[str, str]], key_text: str, brand: str = ""
) -> tuple[list[SubjectScore], list[Finding]]:
    """Score each ``(variant, rendered subject)``; the widest rendering of a variant counts.

    ``brand`` is the sender's name (see ``score_subject``).
    """
    widest: dict[str, str] = {}
    for variant, subject in subjects:
        if variant not in widest or display_width(subject) > display_width(widest[variant]):
            widest[variant] = subject
    scores = [
        score_subject(s, variant=v, key_text=key_text, brand=brand)
        for v, s in sorted(widest.items())
    ]
    return scores, [f for s in scores for f in s.findings]


def merge_findings(per_sample: Sequence[tuple[str, list[Finding]]]) -> list[Finding]:
    """One finding per distinct (severity, code, message, where), naming its samples.

    Info findings merge on (code, where) alone, keeping the first message: a
    word count that differs by one between samples is not worth two rows.
    """
    seen: dict[tuple[str, ...], tuple[Finding, dict[str, None]]] = {}
    for label, findings in per_sample:
        for finding in findings:
            message = "" if finding.severity == "info" else finding.message
            key = (finding.severity, finding.code, message, finding.where)
            seen.setdefault(key, (finding, {}))[1][label] = None
    total = len({label for label, _f in per_sample})
    merged = []
    for finding, labels in seen.values():
        scope = f"all {total} samples" if total > 1 and len(labels) == total else ", ".join(labels)
        where = f"{finding.where} · {scope}" if finding.where else scope
        merged.append(Finding(finding.severity, finding.code, finding.message, where))
    return merged


def pick_samples(prepared: PreparedCampaign, count: int) -> tuple[list[Outgoing], list[Finding]]:
    """Build up to ``count`` sample messages, covering every A/B variant of every language.

    A recipient whose data cannot be rendered becomes a finding, not a crash, so
    one bad row does not hide every other problem; the same failure on many rows
    is one finding naming the first few.
    """
    campaign, compiled = prepared.campaign, prepared.compiled
    versions: dict[str | None, CompiledCampaign] = {None: compiled}
    versions.update(compiled.locales)
    wanted = {(key, v) for key, c in versions.items() for v in range(len(c.subjects))}
    chosen: list[Outgoing] = []
    covered: set[tuple[str | None, int]] = set()
    failures: dict[str, list[str]] = {}
    for scanned, person in enumerate(prepared.recipients()):
        done = len(chosen) >= count and covered >= wanted
        if done or scanned >= _SCAN_LIMIT or sum(map(len, failures.values())) >= _MAX_FAILURES:
            break
        key = locale_key(
            compiled.locales,
            person.fields,
            compiled.campaign.fallback_locale,
            compiled.campaign.locale,
        )
        pair = (key, assign_variant(campaign.id, person.email, len(versions[key].subjects)))
        if len(chosen) >= count and pair in covered:
            continue
        try:
            chosen.append(prepared.build(person))
        except TemplateError as exc:
            failures.setdefault(exc.message, []).append(exc.where or person.source)
            continue
        covered.add(pair)
    if chosen:
        # Too few recipients to meet every variant (of every language): score the rest on
        # a stand-in who has the first sample's data, the version's locale and an address
        # that hashes to the variant.
        for key, variant in sorted(wanted - covered, key=lambda p: (p[0] or "", p[1])):
            base = chosen[0].recipient
            if key is not None:
                base = replace(base, fields={**base.fields, "locale": key})
            count_for = len(versions[key].subjects)
            chosen.append(prepared.build(_probe(base, campaign.id, variant, count_for)))
    return chosen, [_render_failure(message, wheres) for message, wheres in failures.items()]


def _probe(base: Recipient, campaign_id: str, variant: int, count: int) -> Recipient:
    person = stand_in(base, campaign_id, variant, count, "variant-probe-{}@mailer-check.invalid")
    return replace(person, source="stand-in recipient")


def _render_failure(message: str, wheres: list[str]) -> Finding:
    # A template line fails for every recipient alike: name it once, with a count.
    counted = Counter(wheres)
    named = [w if n == 1 else f"{w} ({n} recipients)" for w, n in counted.items()]
    shown = ", ".join(named[:3]) + (f" and {len(named) - 3} more" if len(named) > 3 else "")
    return error("render", message, shown)


def run_checks(
    prepared: PreparedCampaign,
    samples: Sequence[Outgoing] | None = None,
    *,
    browser: bool = True,
    fold_options: FoldOptions | None = None,
    sample_size: int = DEFAULT_SAMPLES,
    conn: Connection | None = None,
    now: datetime | None = None,
    session: FoldBrowser | None = None,
) -> CheckReport:
    """Run every pre-send check on a prepared campaign and return the report.

    ``samples`` defaults to ``sample_size`` recipients chosen to cover every
    subject variant. With ``browser=False`` the fold check is reported as NOT
    run (a warning), never as passed. Raises ``CheckError`` when the browser is
    wanted but missing. ``session`` reuses an already started ``FoldBrowser``
    (preview keeps one alive); otherwise one is started and closed here.
    """
    campaign = prepared.campaign
    report = CheckReport(campaign.id)
    if samples is None:
        samples, report.findings = pick_samples(prepared, sample_size)
    report.samples = len(samples)
    if not samples:
        failed = any(f.code == "render" for f in report.findings)
        report.findings.append(_nothing_rendered(campaign, failed))
        report.fold_note = "NOT RUN: no sample could be rendered"
        return report
    labels = [f"sample {i} ({s.variant_name})" for i, s in enumerate(samples, 1)]
    # Each language version's subjects are scored against its own headline and offer.
    for version, group in _by_version(prepared, samples):
        content = version.campaign.content
        scores, subject_findings = score_variants(
            ((s.variant_name, s.subject) for s in group),
            f"{content.headline}\n{content.offer}",
            campaign.sender.name,
        )
        report.subjects += scores
        report.findings += subject_findings
    report.findings += _audience_findings(prepared)
    report.findings += _day_named(campaign, [s.subject for s in samples])
    per_sample = [
        (label, _check_sample(prepared, s)) for label, s in zip(labels, samples, strict=True)
    ]
    report.findings += merge_findings(per_sample)
    inbox, audience = inbox_findings(prepared, samples, labels)
    report.findings += merge_findings(inbox) + audience
    # Rendered subjects and their templates: runs may have stored either.
    subjects = [score.subject for score in report.subjects] + list(campaign.subjects)
    report.findings += _repetition(prepared, subjects, samples[0], conn, now or prepared.now())
    _run_fold(report, samples, labels, browser, fold_options, session)
    report.findings = relay_findings(prepared, report.findings)
    report.findings = [_with_line(f, campaign) for f in report.findings]
    report.findings.sort(key=lambda f: SEVERITIES.index(f.severity))
    return report


def _check_sample(prepared: PreparedCampaign, sample: Outgoing) -> list[Finding]:
    """One sample's content findings, against its own language version's footer."""
    version = pick_locale(prepared.compiled, sample.recipient).campaign
    return check_email(
        sample.rendered,
        sample.envelope.data,
        postal_address=version.settings.postal_address,
        unsubscribe_mailto=prepared.settings.unsubscribe_mailto,
        chinese=_in_chinese(version),
    )


def _by_version(
    prepared: PreparedCampaign, samples: Sequence[Outgoing]
) -> list[tuple[CompiledCampaign, list[Outgoing]]]:
    """Samples grouped by the language version they were rendered from."""
    compiled = prepared.compiled
    versions: dict[str | None, CompiledCampaign] = {None: compiled}
    versions.update(compiled.locales)
    groups: dict[str | None, list[Outgoing]] = {}
    for sample in samples:
        key = locale_key(
            compiled.locales,
            sample.recipient.fields,
            compiled.campaign.fallback_locale,
            compiled.campaign.locale,
        )
        groups.setdefault(key, []).append(sample)
    return [(versions[key], group) for key, group in groups.items()]


def _in_chinese(campaign: Campaign) -> bool:
    """The version is written in Chinese (absolute claims are then errors)."""
    return cc.is_chinese(*campaign.subjects, campaign.content.headline, campaign.content.offer)


def _nothing_rendered(campaign: Campaign, failed: bool) -> Finding:
    if failed:
        message = "no recipient could be rendered (see the render errors), so nothing was checked"
    else:
        message = (
            "the audience has no recipients, so nothing was checked; "
            "import contacts or widen the segment"
        )
    return error("audience-empty", message, campaign.audience.describe())


def _with_line(finding: Finding, campaign: Campaign) -> Finding:
    """Point subject and preheader findings at their line in the campaign file."""
    head, sep, rest = finding.where.partition(" · ")
    words = head.split()
    if len(words) == 3 and words[1].lower() in campaign.translations:
        campaign = campaign.translations[words[1].lower()]  # "subject en A": that version's line
    if head.startswith("subject"):
        key = "subjects" if len(campaign.subjects) > 1 else "subject"
    elif head == "preheader":
        key = "preheader"
    else:
        return finding
    where = f"{head} ({campaign.where(key)}){sep}{rest}"
    return Finding(finding.severity, finding.code, finding.message, where)


def _repetition(
    prepared: PreparedCampaign,
    subjects: list[str],
    sample: Outgoing,
    conn: Connection | None,
    now: datetime,
) -> list[Finding]:
    campaign = prepared.campaign
    if conn is None and prepared.conn is None and not prepared.settings.db_path.exists():
        return []  # no database yet means nothing was ever sent from this workspace
    database = conn or prepared.database()
    return check_repetition(
        database,
        campaign_id=campaign.id,
        audience=campaign.audience.describe(),
        subjects=subjects,
        body_text=impersonal_text(
            sample.rendered.text, sample.recipient, sample.rendered.unsubscribe_url
        ),
        now=now,
    )


def _day_named(campaign: Campaign, subjects: Sequence[str]) -> list[Finding]:
    """A campaign sent for a named day should say so where people look first.

    The subject carries the core of the message: a 双十一 promotion whose
    subject and headline never mention 双十一 (or 11.11, Singles' Day) wastes
    the one reason the day was chosen.
    """
    table = campaign.schedule_table or {}
    name = table.get("day") or table.get("holiday")
    if not isinstance(name, str):
        return []
    found = find_day(name)
    names = found.names if found else (name,)
    text = fold_name(" ".join([*subjects, campaign.content.headline]))
    if any(fold_name(n) in text for n in names):
        return []
    shown = " / ".join(dict.fromkeys(names[:3]))
    message = (
        f"scheduled for {name}, but no subject and not the headline mention it ({shown}): "
        "the subject carries the core of the message; name the day"
    )
    return [info("day-not-named", message, "subject")]


def _audience_findings(prepared: PreparedCampaign) -> list[Finding]:
    """A CSV audience read in a guessed encoding: say which, and how to be sure."""
    decoding = prepared.csv_decoding()
    if decoding is None or not decoding.guessed:
        return []
    name = decoding.encoding
    message = (
        f"the audience file is not UTF-8; it is read as {name} (a guess): check the names "
        f'in a sample, and set encoding = "{name}" under [audience] to be sure'
    )
    return [warning("audience-encoding", message, str(prepared.campaign.audience.csv))]


def _run_fold(
    report: CheckReport,
    samples: Sequence[Outgoing],
    labels: list[str],
    browser: bool,
    options: FoldOptions | None,
    session: FoldBrowser | None,
) -> None:
    if not browser:
        report.fold_note = "NOT RUN (skipped on request): key blocks' positions are unverified"
        report.findings.append(warning("fold-not-run", report.fold_note, "fold check"))
        return
    from mailer.checks.access_browser import access_in_browser
    from mailer.checks.fold import FoldOptions, fold_browser
    from mailer.checks.fold_findings import fold_findings, shot_path

    options = options or (session.options if session else FoldOptions())
    per_sample: list[tuple[str, list[Finding]]] = []
    with nullcontext(session) if session else fold_browser(options) as chromium:
        for number, (label, sample) in enumerate(zip(labels, samples, strict=True), 1):
            found: list[Finding] = []
            for viewport in options.viewports:
                shot = None
                if options.shots is not None:
                    shot = shot_path(options.shots, number, variant_label(sample.variant), viewport)
                result = chromium.measure(sample.rendered.html, viewport, label=label, shot=shot)
                report.fold.append(result)
                found += [_strip_label(f, label) for f in fold_findings(result)]
                if viewport is options.viewports[0]:  # contrast and tap targets, on the phone
                    found += access_in_browser(chromium, str(viewport))
            per_sample.append((label, found))
    report.findings += merge_findings(per_sample)
    report.fold_ran = True
    screens = ", ".join(str(v) for v in options.viewports)
    report.fold_note = f"ran in Chromium on {len(samples)} sample(s) at {screens}"
    if any(b.guessed for result in report.fold for b in result.blocks):
        report.fold_note += "; key blocks GUESSED (the template marks none)"
    if any(b.uncertain for result in report.fold for b in result.blocks):
        report.fold_note += (
            "; UNCERTAIN: images that did not load and give no height were estimated"
        )


def _strip_label(finding: Finding, label: str) -> Finding:
    # The merge adds the sample names back, once, for all samples that share the finding.
    where = "" if finding.where == label else finding.where.removeprefix(label + ", ")
    return Finding(finding.severity, finding.code, finding.message, where)


def relay_findings(prepared: PreparedCampaign, findings: list[Finding]) -> list[Finding]:
    """Through a relay, demo values are errors: a reserved-domain or demo sender, the demo
    postal address, unsubscribe links signed with the public placeholder key.

    The outbox writes files, so there they are only noted (the demo workspace runs on them);
    for a relay on this machine (a test server such as aiosmtpd or Mailpit) the demo
    sender and address are warnings.
    """
    settings, sender = prepared.settings, prepared.campaign.sender
    live = settings.smtp_configured
    local = live and is_local_relay(settings.smtp.url or "")
    if not live:
        make, verdict = info, "fine for the outbox, refused through a relay"
    elif local:
        make, verdict = warning, "fine for a test server on this machine, refused by other relays"
    else:
        make, verdict = error, "refused through a relay that delivers to people"
    notes = []
    tld = reserved_tld(sender.email.rpartition("@")[2])
    if tld and not any(f.code == "sender-placeholder" for f in findings):
        what = "the demo sender" if sender.email == DEMO_SENDER_EMAIL else "the sender"
        notes.append(make(
            "sender-reserved",
            f"{what} {sender.email} is on a reserved domain ({tld}, where no mail is "
            f"delivered): {verdict}; set [sender] email to an address of your own domain",
            "From",
        ))  # fmt: skip
    addresses = {settings.postal_address, *settings.postal_addresses.values()}
    if any(is_demo_postal_address(a) for a in addresses):
        notes.append(make(
            "postal-address-demo",
            f"the postal address is the built-in demo one: {verdict}; set [footer] "
            "postal_address to your organisation's real address",
            "mailer.toml [footer]",
        ))  # fmt: skip
    # The placeholder key is an error through any relay, local ones included: a test
    # server may pass mail on, and setting the key costs one line (mailer init writes it).
    if live:
        findings = [replace(f, severity="error") if f.code == "unsubscribe-key" else f
                    for f in findings]  # fmt: skip
    return findings + notes


def refuse_on_errors(report: CheckReport) -> None:
    """Raise ``CheckError`` listing the errors, for ``send`` (which skips this with --force)."""
    if report.ok:
        return
    lines = [f"[{f.code}] {f.where}: {f.message}" for f in report.errors[:10]]
    more = len(report.errors) - len(lines)
    if more > 0:
        lines.append(f"... and {more} more")
    raise CheckError(
        f"{len(report.errors)} pre-send check error(s):\n  " + "\n  ".join(lines),
        where=report.campaign_id,
        hint="fix them, or send anyway on purpose (the override is recorded in the journal)",
        advice="check-errors",
    )
