"""The HTML report: one self-contained page with SVG charts drawn by matplotlib.

No script, no font, no image from elsewhere: the charts are inline SVG whose
text stays text (``svg.fonttype = "none"``), so Chinese labels render in the
reader's own fonts, and every chart scales to the width of a phone.
"""

from __future__ import annotations

import html
import io
import logging
import re
import warnings
from collections.abc import Callable
from typing import Any

from mailer.report.data import CampaignReport

_COLOURS = {
    "sent": "#2e7d32",
    "failed": "#c62828",
    "deferred": "#ef6c00",
    "suppressed": "#757575",
    "held": "#8d6e63",
    "missed": "#ad1457",
    "queued": "#90a4ae",
    "sending": "#1565c0",
    "hard_bounce": "#c62828",
    "soft_bounce": "#ef6c00",
    "complaint": "#6a1b9a",
    "unsubscribe": "#546e7a",
    "resubscribe": "#2e7d32",
}
_FONTS = ["Noto Sans CJK SC", "PingFang SC", "Microsoft YaHei", "WenQuanYi Zen Hei", "DejaVu Sans"]


def report_html(report: CampaignReport, generated: str) -> str:
    """The whole page for ``report``, made at ``generated`` (a timestamp shown in the footer)."""
    title = f"Campaign report · {report.campaign}"
    sections = [_summary(report)]
    if report.empty:
        sections.append("<p class=empty>Nothing has been sent for this campaign yet.</p>")
    else:
        for heading, chart in (
            ("Sends per minute", _per_minute),
            ("Outcome by receiving domain", _domains),
            ("Bounces, complaints and unsubscribes over time", _feedback),
            ("Clicks per link", _links),
            ("A/B variants: who clicked", _variants),
        ):
            svg = chart(report)
            body = svg if svg else "<p class=empty>No data for this chart.</p>"
            sections.append(f"<section><h2>{heading}</h2>{body}</section>")
        sections.append(_ab_note(report))
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>{''.join(sections)}"
        f"<footer>made {html.escape(generated)} by mailer report</footer></body></html>"
    )


_CSS = (
    "body{font:16px/1.45 system-ui,'PingFang SC','Noto Sans CJK SC',sans-serif;margin:0 auto;"
    "max-width:60rem;padding:1rem;color:#222}h1{font-size:1.4rem}h2{font-size:1.1rem;"
    "margin-top:2rem}table{border-collapse:collapse;width:100%}td,th{padding:.3rem .5rem;"
    "border-bottom:1px solid #ddd;text-align:left}td.n{text-align:right}"
    "svg{width:100%;height:auto}.empty{color:#666}footer{margin-top:2rem;color:#888;"
    "font-size:.85rem}"
)


def _summary(report: CampaignReport) -> str:
    rates = report.rates
    rows = [(status, str(count)) for status, count in sorted(report.statuses.items()) if count]
    rows += [
        ("hard bounces", f"{rates.bounced} ({rates.bounce_rate:.1%})"),
        ("complaints", f"{rates.complained} ({rates.complaint_rate:.2%}; keep under 0.30%)"),
        ("unsubscribes", str(rates.unsubscribed)),
        ("clicks", str(sum(c for _, c, _ in report.links))),
    ]
    cells = "".join(
        f"<tr><th>{html.escape(k)}</th><td class=n>{html.escape(v)}</td></tr>" for k, v in rows
    )
    return f"<section><h2>Summary</h2><table>{cells}</table></section>"


def _ab_note(report: CampaignReport) -> str:
    if len(report.variants) < 2:
        return ""
    best = max(report.variants, key=lambda v: v.click_rate)
    text = (
        f"Variant {best.variant} has the highest click rate ({best.click_rate:.1%}). "
        "This page compares the variants as they were sent; it does not pick a winner."
    )
    return f"<section><h2>A/B</h2><p>{html.escape(text)}</p></section>"


def _figure(draw: Callable[[Any], None], height: float = 3.5) -> str:
    """One chart as inline SVG (text kept as text, size set by the page)."""
    import matplotlib

    # Font fallback chatter ("findfont: ...") is not for the user: the text stays text.
    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)
    matplotlib.use("Agg")
    from matplotlib import pyplot

    with matplotlib.rc_context(
        {"svg.fonttype": "none", "font.family": "sans-serif", "font.sans-serif": _FONTS,
         "font.size": 13, "axes.spines.top": False, "axes.spines.right": False}
    ), warnings.catch_warnings():  # fmt: skip
        warnings.simplefilter("ignore")  # glyphs the layout font lacks: the browser has them
        # Narrow, with large type: read on a phone, the page scales the chart down.
        figure, axes = pyplot.subplots(figsize=(6, height))
        try:
            draw(axes)
            figure.tight_layout()
            buffer = io.StringIO()
            figure.savefig(buffer, format="svg", metadata={"Date": None})
        finally:
            pyplot.close(figure)
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r"<metadata>.*?</metadata>", "", svg, flags=re.DOTALL)
    # Scale with the page: the viewBox stays, the fixed size goes.
    return re.sub(r'<svg([^>]*?) width="[^"]*" height="[^"]*"', r'<svg\1 role="img"', svg, count=1)


def _whole(axis: Any) -> None:
    """Ticks at whole numbers only: the axis counts messages or people."""
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def _per_minute(report: CampaignReport) -> str | None:
    if not report.per_minute:
        return None
    minutes = [m[11:16] if len(m) >= 16 else m for m, _, _ in report.per_minute]
    sent = [s for _, s, _ in report.per_minute]
    retried = [r for _, _, r in report.per_minute]

    def draw(axes: Any) -> None:
        axes.bar(range(len(sent)), sent, color=_COLOURS["sent"], label="sent")
        axes.plot(range(len(retried)), retried, color=_COLOURS["deferred"], marker=".",
                  label="of them deferred first")  # fmt: skip
        step = max(1, len(minutes) // 8)
        axes.set_xticks(range(0, len(minutes), step), minutes[::step])
        axes.set_ylabel("messages")
        _whole(axes.yaxis)
        axes.legend(frameon=False)

    return _figure(draw)


def _domains(report: CampaignReport) -> str | None:
    if not report.domains:
        return None
    names = [d for d, _ in report.domains][::-1]
    statuses = [s for s in _COLOURS if any(s in c for _, c in report.domains)]

    def draw(axes: Any) -> None:
        left = [0] * len(names)
        for status in statuses:
            values = [counts.get(status, 0) for _, counts in report.domains][::-1]
            axes.barh(names, values, left=left, color=_COLOURS[status], label=status)
            left = [a + b for a, b in zip(left, values, strict=True)]
        axes.set_xlabel("recipients")
        _whole(axes.xaxis)
        axes.legend(frameon=False, ncols=min(3, len(statuses)))

    return _figure(draw, height=1.2 + 0.35 * len(names))


def _feedback(report: CampaignReport) -> str | None:
    if not report.feedback:
        return None
    days = sorted({d for d, _, _ in report.feedback})
    kinds = sorted({k for _, k, _ in report.feedback})
    counts = {(d, k): c for d, k, c in report.feedback}

    def draw(axes: Any) -> None:
        width = 0.8 / len(kinds)
        for i, kind in enumerate(kinds):
            xs = [x + i * width for x in range(len(days))]
            axes.bar(xs, [counts.get((d, kind), 0) for d in days], width,
                     color=_COLOURS.get(kind, "#455a64"), label=kind.replace("_", " "))  # fmt: skip
        axes.set_xticks([x + 0.4 - width / 2 for x in range(len(days))], days)
        axes.set_ylabel("addresses")
        _whole(axes.yaxis)
        axes.legend(frameon=False)

    return _figure(draw)


def _links(report: CampaignReport) -> str | None:
    if not report.links:
        return None
    shown = report.links[:12][::-1]
    labels = [_short(url) for url, _, _ in shown]

    def draw(axes: Any) -> None:
        axes.barh(labels, [c for _, c, _ in shown], color="#1565c0", label="clicks")
        axes.barh(labels, [p for _, _, p in shown], color="#90caf9", label="people")
        axes.set_xlabel("clicks")
        _whole(axes.xaxis)
        axes.legend(frameon=False)

    return _figure(draw, height=1.2 + 0.35 * len(shown))


def _variants(report: CampaignReport) -> str | None:
    if not report.variants or not report.links:
        return None

    def draw(axes: Any) -> None:
        names = [v.variant or "—" for v in report.variants]
        rates = [100 * v.click_rate for v in report.variants]
        bars = axes.bar(names, rates, color="#1565c0")
        for bar, v in zip(bars, report.variants, strict=True):
            axes.annotate(f"{v.clickers}/{v.sent}", (bar.get_x() + bar.get_width() / 2,
                          bar.get_height()), ha="center", va="bottom")  # fmt: skip
        axes.set_ylabel("% of recipients who clicked")

    return _figure(draw)


def _short(url: str, size: int = 48) -> str:
    bare = re.sub(r"^https?://", "", url).split("?utm_", 1)[0].split("&utm_", 1)[0]
    return bare if len(bare) <= size else bare[: size - 1] + "…"
