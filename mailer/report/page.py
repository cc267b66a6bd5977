"""The HTML report: one self-contained page, an overview first, charts drawn in HTML and CSS.

No script, no font, no image from elsewhere. The charts are made of HTML
boxes, not pictures: their labels are page text in the page's one type scale
(never scaled down with a picture to 8 px on a phone), every chart takes the
width of the page, and legends sit above the plot, never on the data. The
colours are the Okabe–Ito palette, told apart with the common colour-vision
deficiencies; every figure is also written as text (titles, tables), so
colour is never the only carrier.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from mailer.core.clock import parse_stamp
from mailer.report.abreport import AbSection, VariantShare
from mailer.report.charts import COLOURS, bar_chart, meter
from mailer.report.data import CampaignReport, IndexRow
from mailer.report.engagement import Bin
from mailer.report.overview import Metric, percent
from mailer.report.queries import Slice

_FEEDBACK = ("hard_bounce", "soft_bounce", "unsubscribe", "complaint")


def _e(text: object) -> str:
    return html.escape(str(text))


def _n(value: int) -> str:
    return f"{value:,}"


def report_html(report: CampaignReport, generated: str) -> str:
    """The whole page for ``report``, made at ``generated`` (a timestamp shown in the footer)."""
    title = f"Campaign report · {report.campaign}"
    parts = [_header(report)]
    if report.empty:
        parts.append("<p class=empty>Nothing has been sent for this campaign yet.</p>")
    else:
        parts.append(_overview(report))
        if report.ab is not None:
            parts.append(_ab(report.ab))
        parts += [
            _timeline(report),
            _slices("By language version", report.languages, "language", "one language version")
            if len(report.languages) > 1
            else "",
            _slices("By receiving domain", report.domains, "domain", ""),
            _links(report),
            _sending(report),
            _reasons(report),
        ]
    return _document(title, "".join(parts), generated)


def index_html(title: str, rows: list[IndexRow], generated: str, note: str = "") -> str:
    """A page with one row per campaign (``report --all``, a scheduled campaign's instances)."""
    head = f"<header><h1>{_e(title)}</h1>" + (f"<p class=meta>{_e(note)}</p>" if note else "")
    head += "</header>"
    cells = [
        "<tr><th scope=col>campaign</th><th scope=col>first sent</th><th class=n>sent</th>"
        "<th class=n>delivered</th><th class=n>unique clicks</th><th class=n>unsubscribed</th>"
        "<th class=n>complaints</th><th class=n>hard bounces</th></tr>"
    ]
    for row in rows:
        o = row.overview
        rates = "".join(
            f"<td class=n{' data-over' if m.over_limit else ''}>{_e(m.rate_text())}</td>"
            for m in (o.metric(k) for k in ("delivered", "unique_clicks", "unsubscribes",
                                            "complaints", "hard_bounces"))
        )  # fmt: skip
        cells.append(
            f"<tr><th scope=row>{_e(row.key)}</th><td>{_e(_when(o.first_sent))}</td>"
            f"<td class=n>{_n(o.sent)}</td>{rates}</tr>"
        )
    table = f"<div class=scroll><table class=index>{''.join(cells)}</table></div>"
    return _document(title, head + f"<section>{table}</section>", generated)


def _document(title: str, body: str, generated: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body><main>{body}"
        f"<footer>made {_e(generated)} by mailer report · times in UTC</footer>"
        "</main></body></html>"
    )


# One type scale (a major third, 1.25) from a 16 px base; charts use the two smallest steps.
CSS = """
:root{--s-1:.8125rem;--s0:1rem;--s1:1.25rem;--s2:1.5625rem;--s3:1.953rem;--ink:#1d1d1f;
--muted:#5b5b66;--line:#d9d9e0;--card:#f6f6f8;--warn:#D55E00}
*{box-sizing:border-box}
body{margin:0;font:var(--s0)/1.5 system-ui,-apple-system,'PingFang SC','Noto Sans CJK SC',
'Microsoft YaHei',sans-serif;color:var(--ink);background:#fff}
main{max-width:72rem;margin:0 auto;padding:1rem}
h1{font-size:var(--s2);line-height:1.25;margin:.5rem 0;overflow-wrap:anywhere}
h2{font-size:var(--s1);line-height:1.3;margin:2.25rem 0 .75rem}
h3{font-size:var(--s0);margin:1.25rem 0 .5rem}
p{margin:.5rem 0}.meta{color:var(--muted);overflow-wrap:anywhere}
.note{border-left:4px solid var(--warn);padding:.25rem .75rem}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(9.5rem,1fr));gap:.5rem;
padding:0;margin:0;list-style:none}
.card{background:var(--card);border-radius:.5rem;padding:.75rem 1rem;min-width:0}
.card .label{font-size:var(--s-1);font-weight:600;color:var(--muted);margin:0}
.card .value{font-size:var(--s3);font-weight:650;line-height:1.2;margin:.125rem 0}
.card .count{font-size:var(--s-1);margin:0}
.card .meaning{font-size:var(--s-1);color:var(--muted);margin:.25rem 0 0}
.card[data-over]{outline:2px solid var(--warn)}.card[data-over] .value{color:var(--warn)}
.decision{background:var(--card);border-radius:.5rem;padding:.75rem 1rem}
.decision .value{font-size:var(--s1);font-weight:650;margin:0}
table{border-collapse:collapse;width:100%;font-size:var(--s-1)}
th,td{padding:.375rem .5rem;border-bottom:1px solid var(--line);text-align:left;
vertical-align:top}
th{font-weight:600}.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
th.n{white-space:normal}th[scope=row]{overflow-wrap:anywhere}
td[data-over]{color:var(--warn);font-weight:650}
.scroll{overflow-x:auto}
td.bar{width:35%;min-width:5rem}
.meter{display:block;height:.75rem;background:var(--line);border-radius:.125rem}
.meter>span{display:block;height:100%;border-radius:.125rem}
.chart{margin:.5rem 0 1.5rem}
.legend{display:flex;flex-wrap:wrap;gap:.25rem 1rem;padding:0;margin:0 0 .5rem;list-style:none;
font-size:var(--s-1)}
.legend li{display:flex;align-items:center;gap:.375rem}
.swatch{width:.875rem;height:.875rem;border-radius:.125rem;flex:none}
.plot{display:grid;grid-template-columns:auto 1fr;gap:0 .5rem;font-size:var(--s-1)}
.yaxis{display:flex;flex-direction:column;justify-content:space-between;text-align:right;
color:var(--muted);height:12rem;line-height:1}
.bars{display:flex;align-items:flex-end;gap:1px;height:12rem;border-bottom:1px solid var(--ink);
border-left:1px solid var(--line);min-width:0}
.bars>div{flex:1 1 0;min-width:0;display:flex;flex-direction:column-reverse;height:100%}
.bars>div>span{display:block;min-height:0}
.xaxis{grid-column:2;position:relative;height:1.5rem;color:var(--muted)}
.xaxis span{position:absolute;top:.25rem;transform:translateX(-50%);white-space:nowrap}
.xaxis span.start{transform:none}.xaxis span.end{transform:translateX(-100%)}
.bars>div.split{border-left:2px dashed var(--muted)}
.empty{color:var(--muted)}
footer{margin-top:3rem;color:var(--muted);font-size:var(--s-1)}
@media (max-width:30rem){td.bar,th.bar{display:none}th,td{padding:.375rem .25rem}
.card{padding:.625rem .75rem}
.card .value{font-size:var(--s2)}}
@media (min-width:48rem){main{padding:1.5rem 2rem}.yaxis,.bars{height:14rem}
.cards{grid-template-columns:repeat(auto-fill,minmax(15rem,1fr));gap:.75rem}}
"""


def _when(value: str) -> str:
    return f"{parse_stamp(value):%Y-%m-%d %H:%M}" if value else "—"


def _header(report: CampaignReport) -> str:
    lines = [f"<h1>{_e(report.campaign)}</h1>"]
    o = report.overview
    if o.first_sent:
        span = _when(o.first_sent)
        if o.last_sent[:16] != o.first_sent[:16]:
            end = _when(o.last_sent)
            span += " – " + (end[11:] if end[:10] == span[:10] else end)
        lines.append(f"<p class=meta>sent {span} UTC</p>")
    letters = "ABCDEFGHIJ"
    for i, subject in enumerate(report.subjects):
        tag = f"subject {letters[i]}" if len(report.subjects) > 1 else "subject"
        lines.append(f"<p class=meta>{tag}: “{_e(subject)}”</p>")
    if report.note:
        lines.append(f"<p class='meta note'>{_e(report.note)}</p>")
    return "<header>" + "".join(lines) + "</header>"


def _overview(report: CampaignReport) -> str:
    o = report.overview
    cards = "".join(_card(m, o.sent if m.of == "sent" else o.delivered) for m in o.metrics)
    return (
        f"<section><h2>Overview</h2><p class=meta>{_n(o.sent)} sent, {_n(o.delivered)} "
        f"delivered</p><ul class=cards>{cards}</ul></section>"
    )


def _card(metric: Metric, whole: int) -> str:
    if metric.key == "clicks_per_recipient":
        count = f"{_n(metric.count)} clicks"
    else:
        count = f"{_n(metric.count)} of {_n(whole)} {metric.of}"
    over = " data-over" if metric.over_limit else ""
    warn = f" — above {percent(metric.limit or 0)}" if metric.over_limit else ""
    return (
        f"<li class=card{over}><p class=label>{_e(metric.label)}</p>"
        f"<p class=value>{_e(metric.rate_text())}</p><p class=count>{_e(count + warn)}</p>"
        f"<p class=meaning>{_e(metric.meaning)}</p></li>"
    )


def _ab(ab: AbSection) -> str:
    parts = ["<section><h2>A/B test</h2>"]
    d = ab.decision
    if d is None:
        parts.append(
            f"<div class=decision><p class=value>Test running: the winner is decided after "
            f"{_e(_when(ab.decide_after))} UTC</p><p>{_e(ab.rule_text())}</p></div>"
        )
    else:
        sizes = ", ".join(f"{f.variant} {f.hits}/{_n(f.sent)}" for f in d.figures)
        facts = [f"<p class=value>{_e(d.headline(ab.rule.default))}</p>"]
        if d.comparison is not None:
            facts.append(
                f"<p>difference {_e(d.interval_text())}; {_e(d.p_text)}; "
                f"at decision: {_e(sizes)}</p>"
            )
        facts.append(f"<p class=meta>rule: {_e(ab.rule_text())}</p>")
        facts.append(f"<p class=meta>decided {_e(_when(d.decided_at))} UTC: {_e(d.reason)}</p>")
        parts.append(f"<div class=decision>{''.join(facts)}</div>")
    share = f" ({ab.rule.test_share:.0%} of the audience)" if ab.rule.test_share else ""
    parts.append(f"<h3>Test share{_e(share)}: rates over the test share only</h3>")
    parts.append(_variant_table(ab.test_share))
    if ab.winner_send is not None:
        parts.append("<h3>Winner send: the rest of the audience</h3>")
        parts.append(_variant_table((ab.winner_send,)))
    parts.append("</section>")
    return "".join(parts)


def _variant_table(rows: Sequence[VariantShare]) -> str:
    top = max((r.click_rate for r in rows), default=0) or 1
    cells = [
        "<tr><th scope=col>variant</th><th class=n>sent</th><th class=n>clicked</th>"
        "<th class=n>click rate</th><th class=bar></th><th class=n>unsub&shy;scribed</th></tr>"
    ]
    for r in rows:
        cells.append(
            f"<tr><th scope=row>{_e(r.variant)}</th><td class=n>{_n(r.sent)}</td>"
            f"<td class=n>{_n(r.clickers)}</td><td class=n>{percent(r.click_rate)}</td>"
            f"<td class=bar>{meter(r.click_rate / top, COLOURS['winner'])}</td>"
            f"<td class=n>{_n(r.unsubscribed)}</td></tr>"
        )
    return f"<div class=scroll><table>{''.join(cells)}</table></div>"


def _slices(title: str, rows: list[Slice], name: str, single: str) -> str:
    if not rows:
        return ""
    top = max((r.click_rate for r in rows), default=0) or 1
    cells = [
        f"<tr><th scope=col>{_e(name)}</th><th class=n>delivered</th><th class=n>click rate</th>"
        "<th class=bar></th><th class=n>unsub.</th><th class=n>bounced</th></tr>"
    ]
    for r in rows:
        cells.append(
            f"<tr><th scope=row>{_e(r.name)}</th><td class=n>{_n(r.sent)}</td>"
            f"<td class=n>{percent(r.click_rate)}</td>"
            f"<td class=bar>{meter(r.click_rate / top, COLOURS['first_clicks'])}</td>"
            f"<td class=n>{_n(r.unsubscribed)}</td>"
            f"<td class=n>{_n(r.hard_bounced + r.soft_bounced)}</td></tr>"
        )
    lead = f"<p class=meta>{_e(single)}</p>" if single and len(rows) == 1 else ""
    return (
        f"<section><h2>{_e(title)}</h2>{lead}<div class=scroll><table>{''.join(cells)}"
        "</table></div></section>"
    )


def _timeline(report: CampaignReport) -> str:
    bins = report.timeline
    if not bins:
        empty = "<p class=empty>No clicks or feedback yet.</p>"
        return f"<section><h2>After sending</h2>{empty}</section>"
    origin = parse_stamp(bins[0].start)
    hourly = sum(1 for b in bins if b.seconds < 86400)
    split = hourly if hourly < len(bins) else None
    # The first daily bin, then every 12th hour, then the last bin: the first kept first.
    ticks = [(0, bins[0].label(origin))]
    ticks += [(hourly, bins[hourly].label(origin))] if split else []
    ticks += [(i, bins[i].label(origin)) for i in range(12, hourly, 12)]
    ticks += [(len(bins) - 1, bins[-1].label(origin))]
    span = "hour by hour" + (", then day by day (after the dashed rule)" if split else "")
    times = ", ".join(f"{share:.0%} {when}" for share, when in report.click_times())
    clicks = bar_chart(bins, ("first_clicks",), ticks, "clicks", "people", split)
    if times:
        clicks = f"<p class=meta>Of the people who clicked: {_e(times)}.</p>{clicks}"
    feedback = bar_chart(bins, _FEEDBACK, ticks, "feedback", "addresses", split)
    return (
        f"<section><h2>After sending</h2><p class=meta>From the first message's hour: {span}."
        f"</p><h3>People clicking</h3>{clicks}"
        f"<h3>Bounces, unsubscribes and complaints</h3>{feedback}</section>"
    )


def _sending(report: CampaignReport) -> str:
    if not report.sending:
        return ""
    seconds = report.sending[0].seconds
    unit = f"{seconds} s" if seconds < 60 else f"{seconds // 60} min" if seconds < 3600 else (
        f"{seconds // 3600} h")  # fmt: skip
    fmt = "%H:%M:%S" if seconds < 60 else "%H:%M" if seconds < 86400 else "%m-%d"
    # Deferred-first messages are a part of the accepted ones: stacked, they are told apart.
    bins = [
        Bin(b.start, b.seconds, {"first_try": b.counts["sent"] - b.counts["deferred_first"],
                                 "deferred_first": b.counts["deferred_first"]})
        for b in report.sending
    ]  # fmt: skip
    last = len(bins) - 1
    ticks = [(i, f"{parse_stamp(bins[i].start):{fmt}}") for i in (0, last, last // 2)]
    chart = bar_chart(bins, ("first_try", "deferred_first"), ticks, "sending", "messages")
    return (
        f"<section><h2>Sending</h2><p class=meta>Messages accepted per {unit} "
        f"(UTC).</p>{chart}</section>"
    )


def _links(report: CampaignReport) -> str:
    if not report.links:
        return ""
    top = max(c for _, c, _ in report.links) or 1
    cells = [
        "<tr><th scope=col>link</th><th class=n>clicks</th><th class=n>people</th>"
        "<th class=bar></th></tr>"
    ]
    for url, clicks, people in report.links[:12]:
        cells.append(
            f"<tr><td style='overflow-wrap:anywhere'>{_e(_short(url))}</td>"
            f"<td class=n>{_n(clicks)}</td><td class=n>{_n(people)}</td>"
            f"<td class=bar>{meter(clicks / top, COLOURS['clicks'])}</td></tr>"
        )
    return f"<section><h2>Clicks per link</h2><table>{''.join(cells)}</table></section>"


def _reasons(report: CampaignReport) -> str:
    if not report.reasons:
        return ""
    cells = ["<tr><th scope=col>what came back</th><th class=n>addresses</th></tr>"]
    for r in report.reasons:
        cells.append(
            f"<tr><td>{_e(r.kind.replace('_', ' '))}: {_e(r.description)}</td>"
            f"<td class=n>{_n(r.addresses)}</td></tr>"
        )
    return f"<section><h2>What came back</h2><table>{''.join(cells)}</table></section>"


def _short(url: str, size: int = 60) -> str:
    bare = url.split("://", 1)[-1].split("?utm_", 1)[0].split("&utm_", 1)[0]
    return bare if len(bare) <= size else bare[: size - 1] + "…"
