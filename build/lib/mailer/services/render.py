"""``mailer render``: write each recipient's .eml and .html into an outbox folder."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mailer.campaign.prepared import PreparedCampaign, prepare_campaign
from mailer.checks import content as cc
from mailer.checks.findings import Finding, warning
from mailer.checks.inbox import campaign_texts
from mailer.compose.locales import pick_locale
from mailer.compose.outgoing import Outgoing, Preflight
from mailer.core.errors import TransportError
from mailer.delivery.plan import batches
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
    # What the first email of each variant shows about the template (see ``template_findings``).
    findings: list[Finding] = field(default_factory=list)


def render_campaign(
    campaign: Path, out: Path | None = None, progress: Callable[[int, int], None] | None = None
) -> tuple[str, RenderSummary]:
    """Render a campaign file into ``out`` (default ``<outbox>/<campaign id>``): id and summary.

    ``progress(done, total)`` is called as recipients are rendered.
    """
    prepared = prepare_campaign(campaign, workspace_settings())
    folder = out or prepared.settings.outbox / prepared.campaign.id
    return prepared.campaign.id, render_to_outbox(prepared, folder, progress)


def render_to_outbox(
    prepared: PreparedCampaign,
    folder: Path,
    progress: Callable[[int, int], None] | None = None,
) -> RenderSummary:
    """Write ``<addr>.eml`` and ``<addr>.html`` for every recipient, in one streaming pass.

    Files are written to a hidden staging folder next to ``folder`` and moved
    in only when every recipient rendered: a failure part-way (a template
    error on one contact's data) adds no file to the outbox. Recipients are
    checked batch by batch as they are written; after the first problem the
    rest are only checked, so the error names every recipient that fails.
    """
    total = prepared.audience_size() if progress is not None else 0
    staging = folder.absolute().parent / f".{folder.absolute().name}.partial"
    created = [p for p in (folder.absolute(), *folder.absolute().parents) if not p.exists()]
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
    done = False
    try:
        written = _write_all(prepared, staging, lambda count: _tell(progress, count, total))
        _move_in(staging, folder)
        done = True
    except OSError as exc:
        raise TransportError(
            f"cannot write to the outbox: {exc.strerror}", where=str(folder)
        ) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if not done:  # leave no trace: remove the (empty) folders this call created
            for path in created:
                with contextlib.suppress(OSError):
                    path.rmdir()
    findings = written.findings
    if written.totals[0] == 0:
        where = prepared.campaign.audience.describe()
        findings.append(warning("audience-empty", "the audience has no recipients", where))
    return RenderSummary(folder, *written.totals, written.variants, written.examples, findings)


@dataclass
class _Written:
    variants: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)
    totals: tuple[int, int, int] = (0, 0, 0)  # count, total bytes, largest HTML
    findings: list[Finding] = field(default_factory=list)


def _write_all(
    prepared: PreparedCampaign, staging: Path, progress: Callable[[int], None]
) -> _Written:
    written = _Written()
    check = Preflight(prepared.compiled)
    total = largest = 0
    for batch in batches(prepared.recipients()):
        check.check(batch)
        if not check.failed:  # it ends in an error: write nothing more
            for person in batch:
                out = prepared.build(person)
                stem = outbox_filename(person.email)
                (staging / f"{stem}.eml").write_bytes(out.envelope.data)
                (staging / f"{stem}.html").write_text(out.rendered.html, encoding="utf-8")
                label = out.variant_name
                if label not in written.variants:
                    written.findings += template_findings(prepared, out)
                written.variants[label] += 1
                written.examples.setdefault(label, out.subject)
                total += len(out.envelope.data)
                largest = max(largest, len(out.rendered.html.encode("utf-8")))
        progress(check.checked)
    check.raise_problems()
    written.totals = (check.checked, total, largest)
    return written


def template_findings(prepared: PreparedCampaign, out: Outgoing) -> list[Finding]:
    """What one rendered email says about its template, for ``render`` to show.

    A template from elsewhere renders "successfully" with its own demo words: this
    says when it shows none of the campaign's content or has no unsubscribe link
    (warnings), and when it holds placeholder text or relative image paths (errors:
    ``check`` refuses to send them).
    """
    version = pick_locale(prepared.compiled, out.recipient).campaign
    facts = cc.read_html(out.rendered.html)
    unsubscribe = cc.check_unsubscribe_link(
        facts, out.rendered.unsubscribe_url, prepared.settings.unsubscribe_mailto
    )
    found = [
        *cc.check_campaign_content(facts, campaign_texts(version)),
        *[warning(f.code, f.message, f.where) for f in unsubscribe],
        *cc.check_placeholders(facts, out.rendered.text),
        *cc.check_relative_images(facts),
    ]
    label = out.variant_name
    return [Finding(f.severity, f.code, f.message, f"{f.where} · {label}") for f in found]


def _tell(progress: Callable[[int, int], None] | None, done: int, total: int) -> None:
    if progress is not None:
        progress(done, total)


def _move_in(staging: Path, folder: Path) -> None:
    """Move the staged files into ``folder``: one rename when it is empty, else file by file."""
    with os.scandir(folder) as entries:
        empty = next(entries, None) is None
    if empty:
        folder.rmdir()
        staging.replace(folder)
        return
    with os.scandir(staging) as entries:  # streamed: no list of a million names
        for entry in entries:
            os.replace(entry.path, folder / entry.name)
