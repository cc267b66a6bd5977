"""What a fold measurement means: findings for key blocks below the fold, and screenshot names.

Pure functions of a ``FoldResult`` (``mailer.checks.fold`` measures it).
"""

from __future__ import annotations

from pathlib import Path

from mailer.checks.content import KEY_CLASSES
from mailer.checks.findings import Finding, error, info, warning
from mailer.checks.fold import BLOCK_NAMES, DEFAULT_IMAGE_RATIO, FoldResult, Viewport


def fold_findings(result: FoldResult) -> list[Finding]:
    """Errors for key blocks below the fold; warnings for what makes the measurement shaky."""
    fold, where = result.viewport.height, result.where
    findings = _block_findings(result)
    above = [b for b in result.blocks if b.cls == "mailer-cta" and b.bottom <= fold]
    if len(above) > 1:
        message = f"{len(above)} calls to action above the fold; keep one primary action"
        findings.append(warning("fold-cta-multiple", message, where))
    if result.page_width > result.viewport.width + 1:
        message = (
            f"the email is {result.page_width}px wide on a {result.viewport.width}px screen: "
            "readers must scroll sideways"
        )
        findings.append(warning("fold-overflow", message, where))
    if result.unsized_images:
        ratio = DEFAULT_IMAGE_RATIO
        message = (
            f"{len(result.unsized_images)} image(s) above the key blocks did not load and give "
            f"no height; each was measured as {ratio:g} of its width tall (600×{600 * ratio:.0f} "
            "for a 600-px image), so the blocks below are estimates, not a pass: give the "
            'image a height (<mj-image height="...">) or check with images fetched. '
            + result.unsized_images[0][:100]
        )
        findings.append(warning("fold-uncertain", message, where))
    guessed = [
        BLOCK_NAMES[c] for c in KEY_CLASSES if any(b.guessed and b.cls == c for b in result.blocks)
    ]
    if guessed:
        message = (
            f"the template marks no key blocks, so the {', '.join(guessed)} "
            f"{'was' if len(guessed) == 1 else 'were'} GUESSED "
            "(headline: the largest text; offer: the first text with a price, a discount or a "
            "code; call to action: the first link styled as a button): the positions above "
            'are of those guesses; mark the real ones with css-class="mailer-headline", '
            '"mailer-offer" and "mailer-cta"'
        )
        findings.append(warning("fold-guessed", message, where))
    if result.blocked_requests:
        message = (
            f"{result.blocked_requests} remote request(s) blocked (the check runs "
            "with the network off unless told to fetch images)"
        )
        findings.append(info("fold-network", message, result.label))
    return findings


def _block_findings(result: FoldResult) -> list[Finding]:
    """A key block that is missing (warning) or ends below the fold (error)."""
    fold, where = result.viewport.height, result.where
    findings: list[Finding] = []
    for cls in KEY_CLASSES:
        mine = sorted((b for b in result.blocks if b.cls == cls), key=lambda b: b.top)
        name = BLOCK_NAMES[cls]
        if not mine:
            message = f"no visible {name} (class {cls}): its position cannot be checked"
            findings.append(warning("fold-block-missing", message, where))
        elif mine[0].bottom > fold:
            # A guessed block below the fold is worth a look, not a refusal to send.
            report = warning if mine[0].guessed else error
            message = (
                f"the {name}{' (guessed)' if mine[0].guessed else ''} ends at "
                f"{mine[0].bottom:.0f}px, below the fold at {fold}px (top {mine[0].top:.0f}px)"
            )
            findings.append(report("fold-below", message, where))
    return findings


def shot_path(folder: Path, sample: int, variant: str, viewport: Viewport) -> Path:
    """Screenshot file name: no addresses in it (contact data stays out of file names)."""
    return (
        folder / f"sample{sample}-{variant}-{viewport.name}-{viewport.width}x{viewport.height}.png"
    )
