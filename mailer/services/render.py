"""``mailer render``: write each recipient's .eml and .html into an outbox folder."""

from __future__ import annotations

import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from mailer.campaign.prepared import PreparedCampaign, prepare_campaign
from mailer.compose.render import variant_label
from mailer.core.errors import TransportError
from mailer.core.recipient import Recipient
from mailer.delivery.transport import outbox_filename
from mailer.services.workspace import workspace_settings


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


def render_campaign(campaign: Path, out: Path | None = None) -> tuple[str, RenderSummary]:
    """Render a campaign file into ``out`` (default ``<outbox>/<campaign id>``): id and summary."""
    prepared = prepare_campaign(campaign, workspace_settings())
    folder = out or prepared.settings.outbox / prepared.campaign.id
    return prepared.campaign.id, render_to_outbox(prepared, folder)


def render_to_outbox(prepared: PreparedCampaign, folder: Path) -> RenderSummary:
    """Check every recipient first, then write ``<addr>.eml`` and ``<addr>.html`` for each.

    Files are written to a hidden staging folder next to ``folder`` and moved
    in only when every recipient rendered: a failure part-way (a template
    error on one contact's data) adds no file to the outbox.
    """
    people = list(prepared.recipients())
    prepared.preflight(people)
    staging = folder.absolute().parent / f".{folder.absolute().name}.partial"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
    except OSError as exc:
        raise TransportError(
            f"cannot create the outbox folder: {exc.strerror}",
            where=str(folder),
            hint="choose another outbox folder",
            advice="render-folder",
        ) from None
    try:
        summary = _write_all(prepared, people, staging)
        for path in staging.iterdir():
            path.replace(folder / path.name)
    except OSError as exc:
        raise TransportError(
            f"cannot write to the outbox: {exc.strerror}", where=str(folder)
        ) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    files = [folder / path.name for path in summary.files]
    return RenderSummary(folder, *summary.totals, summary.variants, summary.examples, files)


@dataclass
class _Written:
    files: list[Path] = field(default_factory=list)
    variants: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)
    totals: tuple[int, int, int] = (0, 0, 0)  # count, total bytes, largest HTML


def _write_all(prepared: PreparedCampaign, people: list[Recipient], staging: Path) -> _Written:
    written = _Written()
    total = largest = 0
    for person in people:
        out = prepared.build(person)
        stem = outbox_filename(person.email)
        eml, html = staging / f"{stem}.eml", staging / f"{stem}.html"
        eml.write_bytes(out.envelope.data)
        html.write_text(out.rendered.html, encoding="utf-8")
        written.files += [eml, html]
        label = variant_label(out.variant)
        written.variants[label] += 1
        written.examples.setdefault(label, out.subject)
        total += len(out.envelope.data)
        largest = max(largest, len(out.rendered.html.encode("utf-8")))
    written.totals = (len(people), total, largest)
    return written
