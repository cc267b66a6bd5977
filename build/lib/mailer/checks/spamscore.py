"""What a spam filter thinks: the final message scored by SpamAssassin, locally.

The message is the one ``send`` would hand over (headers, both parts, the
DKIM signature when a key is set). It goes to ``spamc`` when ``[spam] spamd``
names a running ``spamd``, else to ``spamassassin -L`` (local tests only: no
DNS blocklists, no Razor/Pyzor, nothing leaves the machine), with Bayes off so
no state is learned or written. The score and the rules that fired come back
as data; the common rules come with what to change. Without SpamAssassin the
result says the score was NOT checked: never a pass.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mailer.campaign.prepared import PreparedCampaign
from mailer.checks.findings import Finding, error, info, warning
from mailer.compose.dkim import signer_from_settings
from mailer.compose.outgoing import Outgoing

TIMEOUT = 120.0  # seconds for one message (SpamAssassin loads its rules each run: ~1 s)
INSTALL = "apt-get install spamassassin"
_LOCAL_ARGS = ["-L", "-t", "-x", "--cf=use_bayes 0", "--cf=bayes_auto_learn 0"]
_POINTS = re.compile(r"\((-?\d+(?:\.\d+)?) points?, (-?\d+(?:\.\d+)?) required\)")
_RULE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s+([A-Z0-9_]+)\s+(.*)$")
_VERSION = re.compile(r"version=(\d[\w.]*)")

# What to change when a common rule fires (prefix match on the rule name).
FIXES = {
    "SUBJ_ALL_CAPS": "write the subject in sentence case, not capitals",
    "SUBJ_EXCLAIM": "drop the exclamation marks from the subject",
    "HTML_IMAGE_ONLY": "add real text: an email that is mostly images looks like spam",
    "HTML_IMAGE_RATIO": "more text, fewer or smaller images",
    "HTML_FONT_LOW_CONTRAST": "text nearly the colour of its background reads as hidden text",
    "HTML_SHORT_LINK_IMG": "a linked image with little text around it: add words",
    "MIME_HTML_ONLY": "send a plain-text part with the HTML",
    "MPART_ALT_DIFF": "the text part should say what the HTML says",
    "HTML_MIME_NO_HTML_TAG": "the HTML part needs an <html> element",
    "HTML_TAG_BALANCE": "close every HTML tag the template opens",
    "MIME_QP_LONG_LINE": "break very long lines in the template",
    "FREEMAIL_FROM": "send from your own domain, not a free-mail address",
    "FREEMAIL_FORGED": "the From and Reply-To domains disagree: use your own domain for both",
    "MISSING_DATE": "the message has no Date header",
    "MISSING_MID": "the message has no Message-ID",
    "DKIM_INVALID": "the DKIM signature does not verify: check the key and selector",
    "T_DKIM_INVALID": "the DKIM signature does not verify: check the key and selector",
    "LOTS_OF_MONEY": "tone down sums of money and cash promises",
    "MONEY_": "tone down sums of money and cash promises",
    "ADVANCE_FEE": "wording like an advance-fee scam: rephrase the offer",
    "FROM_EXCESS_BASE64": "plain ASCII sender name, or one short encoded word",
    "URI_NOVOWEL": "a link domain with no vowels looks generated: use your own domain",
    "HTML_OBFUSCATE": "no hidden or scrambled text in the HTML",
    "T_REMOTE_IMAGE": "images load from a remote host: fine, but keep some text",
    "EMPTY_MESSAGE": "the message has no body",
    "TVD_": "wording often seen in spam: rephrase",
    "KAM_": "a pattern seen in spam runs: see the rule's description",
}


@dataclass(frozen=True)
class SpamRule:
    """One SpamAssassin rule that fired."""

    name: str
    points: float
    description: str

    @property
    def fix(self) -> str:
        """What to change, for the common rules; empty when unknown."""
        return next((v for k, v in FIXES.items() if self.name.startswith(k)), "")


@dataclass(frozen=True)
class SpamScore:
    """One message's score, the filter's own threshold, and the rules that fired."""

    label: str  # which sample
    tool: str
    score: float
    required: float
    rules: tuple[SpamRule, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``--json``."""
        return {
            "sample": self.label,
            "tool": self.tool,
            "score": self.score,
            "required": self.required,
            "rules": [
                {"name": r.name, "points": r.points, "description": r.description, "fix": r.fix}
                for r in self.rules
            ],
        }


@dataclass(frozen=True)
class Scorer:
    """How to reach SpamAssassin: a ``spamc`` to a running ``spamd``, or local ``spamassassin``."""

    command: tuple[str, ...]
    tool: str


def find_scorer(spamd: str | None = None) -> Scorer | None:
    """The scorer to use: ``spamc`` when ``spamd`` ("host:port") is given, else ``spamassassin``.

    None when the needed program is not installed.
    """
    if spamd:
        spamc = shutil.which("spamc")
        if spamc is None:
            return None
        host, _, port = spamd.rpartition(":")
        command = (spamc, "-x", "-R", "-d", host or "127.0.0.1", "-p", port or "783")
        return Scorer(command, f"spamc, spamd at {spamd}")
    spamassassin = shutil.which("spamassassin")
    if spamassassin is None:
        return None
    return Scorer((spamassassin, *_LOCAL_ARGS), "spamassassin -L, local tests only")


def score_message(scorer: Scorer, data: bytes, label: str) -> SpamScore:
    """Run one message through the scorer; ``RuntimeError`` saying why when it fails."""
    return parse_report(_run(scorer.command, data), label, scorer.tool)


def _run(command: Sequence[str], data: bytes) -> str:
    with tempfile.TemporaryDirectory(prefix="mailer-spam-") as home:
        # A throwaway HOME: SpamAssassin writes user preferences there, not in ~.
        env = {**os.environ, "HOME": home}
        try:
            done = subprocess.run(
                command, input=data, capture_output=True, timeout=TIMEOUT, env=env
            )
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"no answer within {TIMEOUT:.0f} s") from None
        except OSError as exc:
            raise RuntimeError(exc.strerror or str(exc)) from None
    out = done.stdout.decode("utf-8", "replace")
    if done.returncode != 0 or not out.strip():
        detail = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise RuntimeError(detail[-1] if detail else f"exit status {done.returncode}")
    return out


_FROM_LINE = re.compile(r"^From mailer-sample-(\d+) ", re.MULTILINE)


def score_batch(scorer: Scorer, messages: Sequence[tuple[str, bytes]]) -> list[SpamScore]:
    """Several messages through one local ``spamassassin --mbox`` run.

    Loading the rules is most of SpamAssassin's time (about a second, more on a
    busy machine): one run for every variant instead of one each. Its output
    comes in its own order; each report is matched to its message by the
    envelope line written before it.
    """
    mbox = b"".join(
        f"From mailer-sample-{i} Thu Jan  1 00:00:00 2026\n".encode() + _mbox_body(data) + b"\n"
        for i, (_label, data) in enumerate(messages)
    )
    out = _run([*scorer.command, "--mbox"], mbox)
    marks = list(_FROM_LINE.finditer(out))
    reports: dict[int, SpamScore] = {}
    for mark, following in zip(marks, [*marks[1:], None], strict=True):
        index = int(mark.group(1))
        block = out[mark.start() : following.start() if following else len(out)]
        if index < len(messages):
            reports[index] = parse_report(block, messages[index][0], scorer.tool)
    if len(reports) != len(messages):
        raise RuntimeError(f"{len(reports)} report(s) for {len(messages)} message(s)")
    return [reports[i] for i in range(len(messages))]


def _mbox_body(data: bytes) -> bytes:
    """A message as an mbox entry: LF line ends, body lines starting "From " quoted."""
    text = data.replace(b"\r\n", b"\n")
    return re.sub(rb"(?m)^(>*From )", rb">\1", text)


def parse_report(text: str, label: str, tool: str) -> SpamScore:
    """Score and rules from ``spamassassin -t`` or ``spamc -R`` output."""
    lines = text.splitlines()
    head = re.match(r"^\s*(-?[\d.]+)/(-?[\d.]+)\s*$", lines[0]) if lines else None
    points = _POINTS.search(text)
    if head:
        score, required = float(head.group(1)), float(head.group(2))
    elif points:
        score, required = float(points.group(1)), float(points.group(2))
    else:
        raise RuntimeError("its report has no score (an unexpected output format)")
    version = _VERSION.search(text)
    if version:
        tool = f"SpamAssassin {version.group(1)} ({tool})"
    return SpamScore(label, tool, score, required, tuple(_rules(lines)))


def _rules(lines: list[str]) -> list[SpamRule]:
    rules: list[SpamRule] = []
    table = False
    for line in lines:
        if line.startswith("---- "):
            table = True
            continue
        if not table:
            continue
        if not line.strip():
            break
        match = _RULE.match(line)
        if match:
            rules.append(SpamRule(match.group(2), float(match.group(1)), match.group(3).strip()))
        elif rules and line.startswith(" "):  # a description wrapped onto the next line
            last = rules[-1]
            rules[-1] = SpamRule(last.name, last.points, f"{last.description} {line.strip()}")
    return rules


def score_samples(scorer: Scorer, messages: Sequence[tuple[str, bytes]]) -> list[SpamScore | str]:
    """Score each ``(label, message)``; a failure is its reason (a string).

    Local SpamAssassin scores them all in one run (``score_batch``); ``spamc``
    sends them to ``spamd`` one after the other (it has its rules loaded).
    """
    local = "--mbox" not in scorer.command and not scorer.command[0].endswith("spamc")
    if local and len(messages) > 1:
        try:
            return list(score_batch(scorer, messages))
        except RuntimeError as exc:
            return [str(exc)] * len(messages)
    results: list[SpamScore | str] = []
    for label, data in messages:
        try:
            results.append(score_message(scorer, data, label))
        except RuntimeError as exc:
            results.append(str(exc))
    return results


def spam_findings(
    results: Sequence[tuple[str, SpamScore | str]], threshold: float
) -> list[Finding]:
    """Findings per sample: at or over ``threshold`` an error, over half of it a warning."""
    findings: list[Finding] = []
    for label, result in results:
        if isinstance(result, str):
            message = f"SpamAssassin failed, so the spam-filter score was NOT checked: {result}"
            findings.append(warning("spam-score-failed", message, label))
            continue
        fired = [r for r in result.rules if r.points > 0]
        listed = "; ".join(
            f"{r.name} +{r.points:g} ({r.description}" + (f" → {r.fix})" if r.fix else ")")
            for r in sorted(fired, key=lambda r: -r.points)[:6]
        )
        message = f"{result.tool}: {result.score:g} points (threshold {threshold:g})" + (
            f"; rules: {listed}" if listed else "; no rule added points"
        )
        if result.score >= threshold:
            message += "; filters will likely file it as spam"
            findings.append(error("spam-score", message, label))
        elif result.score >= threshold / 2:
            findings.append(warning("spam-score", message, label))
        else:
            findings.append(info("spam-score", message, label))
    return findings


def not_installed(spamd: str | None) -> Finding:
    """The score was not checked because the program is missing: an info note, not a pass."""
    program = "spamc" if spamd else "spamassassin"
    message = (
        f"{program} is not installed, so the spam-filter score was NOT checked "
        f"(install it with: {INSTALL})"
    )
    return info("spam-score-not-run", message, "spam filter")


def check_spam(
    prepared: PreparedCampaign, samples: Sequence[Outgoing], labels: Sequence[str]
) -> tuple[list[Finding], list[SpamScore]]:
    """Score one sample per A/B variant (and language) as ``send`` would send it.

    The message is DKIM-signed first when a key is configured, so the score
    counts the signature as receivers see it.
    """
    settings = prepared.settings.spam
    scorer = find_scorer(settings.spamd)
    if scorer is None:
        return [not_installed(settings.spamd)], []
    signer = signer_from_settings(prepared.settings)
    stamp = int(prepared.now().timestamp())
    chosen: dict[str, tuple[str, bytes]] = {}
    for label, sample in zip(labels, samples, strict=True):
        data = sample.envelope.data
        if signer is not None:
            data = signer.sign(data, timestamp=stamp)
        chosen.setdefault(sample.variant_name, (label, data))
    results = score_samples(scorer, list(chosen.values()))
    pairs = [(label, r) for (label, _d), r in zip(chosen.values(), results, strict=True)]
    return spam_findings(pairs, settings.threshold), [
        r for r in results if isinstance(r, SpamScore)
    ]
