"""The report page's charts: stacked bars and meters made of HTML boxes, no pictures.

Labels are page text (the page's type scale at every width); the legend is a list above
the plot; x-axis labels sit under their bars and are thinned so no two overlap on a
phone. The colours are Okabe and Ito's palette, told apart with the common colour-vision
deficiencies.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from mailer.report.engagement import Bin

# Okabe & Ito (2008), "Color Universal Design": distinct for protan, deutan and tritan readers.
COLOURS = {
    "first_try": "#009E73",  # bluish green
    "deferred_first": "#E69F00",  # orange
    "first_clicks": "#0072B2",  # blue
    "clicks": "#56B4E9",  # sky blue
    "unsubscribe": "#E69F00",
    "complaint": "#CC79A7",  # reddish purple
    "hard_bounce": "#D55E00",  # vermillion
    "soft_bounce": "#56B4E9",
    "winner": "#0072B2",
    "other": "#999999",
}
_NAMES = {
    "first_try": "accepted at the first try",
    "deferred_first": "accepted after a retry",
    "first_clicks": "people clicking for the first time",
    "clicks": "all clicks",
    "unsubscribe": "unsubscribes",
    "complaint": "spam complaints",
    "hard_bounce": "hard bounces",
    "soft_bounce": "soft bounces",
}


def _e(text: object) -> str:
    return html.escape(str(text))


def _n(value: int) -> str:
    return f"{value:,}"


def meter(share: float, colour: str) -> str:
    """A horizontal bar filled to ``share`` (0-1) of its width, for a table cell."""
    width = max(0.0, min(1.0, share)) * 100
    return f"<span class=meter><span style='width:{width:.1f}%;background:{colour}'></span></span>"


def bar_chart(
    bins: list[Bin],
    series: Sequence[str],
    ticks: list[tuple[int, str]],
    caption: str,
    unit: str,
    split: int | None = None,
) -> str:
    """Stacked vertical bars, one per bin; the legend above, axis labels outside the plot.

    ``ticks``: (bin, label) candidates for the x axis, the first ones first kept;
    ``split``: the first daily bin, marked with a rule (bars left of it are hours).
    """
    totals = [sum(b.counts.get(s, 0) for s in series) for b in bins]
    top = max(totals, default=0)
    if not top:
        return f"<p class=empty>No {_e(unit)} yet.</p>"
    scale = nice(top)
    columns = []
    for i, (b, total) in enumerate(zip(bins, totals, strict=True)):
        segments = "".join(
            f"<span style='height:{100 * b.counts.get(s, 0) / scale:.2f}%;"
            f"background:{COLOURS[s]}'></span>"
            for s in series
            if b.counts.get(s, 0)
        )
        mark = " class=split" if i == split else ""
        columns.append(f"<div{mark} title='{_e(total)}'>{segments}</div>")
    legend = "".join(
        f"<li><span class=swatch style='background:{COLOURS[s]}'></span>{_e(_NAMES[s])}</li>"
        for s in series
        if any(b.counts.get(s, 0) for b in bins)
    )
    summary = f"{caption}: {sum(totals):,} {unit}, at most {top:,} in one slot"
    return (
        f"<figure class=chart role=img aria-label='{_e(summary)}'>"
        f"<ul class=legend>{legend}</ul><div class=plot>"
        f"<div class=yaxis><span>{_n(scale)}</span><span>{_n(scale // 2) if scale > 1 else ''}"
        f"</span><span>0</span></div><div class=bars>{''.join(columns)}</div>"
        f"<div class=xaxis>{axis_labels(ticks, len(bins))}</div></div></figure>"
    )


def nice(value: int) -> int:
    """The axis top: 1, 2, 5 times a power of ten, at or above ``value``."""
    step = 1
    while True:
        for factor in (1, 2, 5):
            if step * factor >= value:
                return step * factor
        step *= 10


def axis_labels(candidates: list[tuple[int, str]], count: int) -> str:
    """X-axis labels under their bars, at least a fifth of the axis apart (no two labels
    overlap on a phone); a label near an edge is aligned with it instead of centred."""
    kept: list[tuple[int, str]] = []
    for index, label in candidates:
        if all(abs(index - other) * 5 >= count for other, _ in kept):
            kept.append((index, label))
    spans = []
    for index, label in sorted(kept):
        left = 100 * (index + 0.5) / count
        cls = " class=start" if left < 10 else " class=end" if left > 90 else ""
        left = 0 if left < 10 else 100 if left > 90 else left
        spans.append(f"<span{cls} style='left:{left:.2f}%'>{_e(label)}</span>")
    return "".join(spans)
