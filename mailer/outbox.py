"""``mailer render``: write each recipient's .eml and .html into an outbox folder."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from mailer.pipeline import PreparedCampaign
from mailer.render import variant_label
from mailer.transport import outbox_filename


@dataclass(frozen=True)
class RenderSummary:
    """What ``render_to_outbox`` wrote."""

    folder: Path
    count: int
    total_bytes: int
    largest_html: int
    variants: dict[str, int] = field(default_factory=dict)
    examples: dict[str, str] = field(default_factory=dict)  # variant -> first rendered subject
    files: list[Path] = field(default_factory=list)


def render_to_outbox(prepared: PreparedCampaign, folder: Path) -> RenderSummary:
    """Check every recipient first, then write ``<addr>.eml`` and ``<addr>.html`` for each."""
    people = list(prepared.recipients())
    prepared.preflight(people)
    folder.mkdir(parents=True, exist_ok=True)
    variants: Counter[str] = Counter()
    examples: dict[str, str] = {}
    files: list[Path] = []
    total = largest = 0
    for person in people:
        out = prepared.build(person)
        stem = outbox_filename(person.email)
        eml, html = folder / f"{stem}.eml", folder / f"{stem}.html"
        eml.write_bytes(out.envelope.data)
        html.write_text(out.rendered.html, encoding="utf-8")
        files += [eml, html]
        variants[variant_label(out.variant)] += 1
        examples.setdefault(variant_label(out.variant), out.subject)
        total += len(out.envelope.data)
        largest = max(largest, len(out.rendered.html.encode("utf-8")))
    return RenderSummary(folder, len(people), total, largest, dict(variants), examples, files)
