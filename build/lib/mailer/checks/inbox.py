"""The checks for every inbox, per sample: client support, accessibility, filler text.

``run_checks`` (``gate``) calls ``inbox_findings`` once with its samples and
merges the per-sample lists; the browser-side accessibility checks run inside
the fold check (``access_browser``), and the spam-filter score in the
``check`` service (it costs a SpamAssassin run per sample).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from itertools import islice
from pathlib import Path

from mailer.campaign.prepared import PreparedCampaign
from mailer.checks import content as cc
from mailer.checks.access import check_access
from mailer.checks.compat import (
    DOMAIN_SAMPLE,
    AudienceMix,
    audience_mix,
    find_gaps,
    gap_findings,
    mix_finding,
)
from mailer.checks.findings import Finding
from mailer.compose.locales import pick_locale
from mailer.compose.outgoing import Outgoing
from mailer.core.campaign import Campaign
from mailer.core.errors import MailerError

_JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)


def inbox_findings(
    prepared: PreparedCampaign, samples: Sequence[Outgoing], labels: Sequence[str]
) -> tuple[list[tuple[str, list[Finding]]], list[Finding]]:
    """Per-sample findings (to merge), and the findings about the whole audience."""
    mix = audience_of(prepared)
    per_sample = [
        (label, sample_findings(prepared, sample, mix))
        for label, sample in zip(labels, samples, strict=True)
    ]
    return per_sample, [mix_finding(mix)]


def audience_of(prepared: PreparedCampaign) -> AudienceMix:
    """The audience's receiving domains (the first ``DOMAIN_SAMPLE`` addresses)."""
    try:
        people: Iterator[str] = (r.email for r in prepared.recipients())
        return audience_mix(islice(people, DOMAIN_SAMPLE + 1))
    except MailerError:
        return audience_mix(())  # the sampling reported the audience's problem already


def sample_findings(
    prepared: PreparedCampaign, sample: Outgoing, mix: AudienceMix
) -> list[Finding]:
    """Client support, accessibility, placeholders and the campaign's content in one email."""
    version = pick_locale(prepared.compiled, sample.recipient).campaign
    html = sample.rendered.html
    facts = cc.read_html(html)
    template = version.template
    source = template.read_text(encoding="utf-8") if template.is_file() else ""
    gaps = find_gaps(html, source, mjml=template.suffix == ".mjml", mix=mix)
    return [
        *gap_findings(gaps, _shown(template, prepared.settings.root), mix),
        *check_access(html, language_of(version)),
        *cc.check_placeholders(facts, sample.rendered.text),
        *cc.check_campaign_content(facts, campaign_texts(version)),
    ]


def _shown(path: Path, root: Path) -> str:
    """The template's path from the workspace (``templates/promotion.mjml``) when inside it."""
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def language_of(campaign: Campaign) -> str | None:
    """The version's language: its locale, its ``data.lang``, or Chinese by its script."""
    lang = campaign.locale or campaign.data.get("lang")
    if isinstance(lang, str) and lang:
        return lang
    return "zh" if cc.is_chinese(campaign.content.headline, campaign.content.offer) else None


def campaign_texts(campaign: Campaign) -> list[str]:
    """The literal words of headline, offer and call to action (Jinja left out)."""
    content = campaign.content
    pieces = []
    for value in (content.headline, content.offer, content.cta_text, content.cta_url):
        parts = [p.strip(" ,.!?:;，。！？") for p in _JINJA.split(value)]
        longest = max(parts, key=len, default="")
        if len(longest) >= 4:
            pieces.append(longest)
    return pieces
