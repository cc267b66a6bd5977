"""Benchmark: CSS inliners on the promotion template's MJML output (with Jinja placeholders).

    python tests/benchmarks/bench_inline.py [--runs 7] [--calls 50]

Measures css-inline (what mailer uses) against premailer in the same run, and checks
what each does to the Jinja placeholders that the compiled template still carries.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from mailer.compose.compile import inline_css, mjml_to_html

ROOT = Path(__file__).resolve().parents[2]


def per_call_ms(fn: Callable[[str], str], html: str, calls: int, runs: int) -> float:
    """Median over ``runs`` of the mean time of ``calls`` calls, in milliseconds."""
    results = []
    for _ in range(runs):
        start = time.perf_counter()
        for _ in range(calls):
            fn(html)
        results.append((time.perf_counter() - start) / calls * 1000)
    return statistics.median(results)


def premailer_inline(html: str) -> str:
    """premailer with the options closest to css-inline's (keep @media, no remote CSS)."""
    import premailer

    return str(
        premailer.transform(
            html, keep_style_tags=True, disable_validation=True, allow_network=False
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--calls", type=int, default=50)
    args = parser.parse_args()
    import cssutils

    cssutils.log.setLevel(logging.CRITICAL)  # premailer's CSS parser warns on every MSO property
    source = (ROOT / "mailer" / "templates" / "promotion.mjml").read_text(encoding="utf-8")
    # Raw Jinja placeholders, as a one-stage pipeline would hand them to the inliner.
    html = mjml_to_html(source.replace("{% ", "<!-- ").replace(" %}", " -->"), "promotion")
    css_ms = per_call_ms(inline_css, html, args.calls, args.runs)
    pre_ms = per_call_ms(premailer_inline, html, args.calls, args.runs)
    print(f"input: {len(html) / 1024:.1f} KB of MJML output, median of {args.runs} runs")
    print(f"  css-inline  {css_ms:7.2f} ms/call   1.00x")
    print(f"  premailer   {pre_ms:7.2f} ms/call   {pre_ms / css_ms:5.1f}x slower")
    for name, out in (("css-inline", inline_css(html)), ("premailer", premailer_inline(html))):
        kept = out.count("{{ cta.url }}")
        mangled = out.count("{{%20cta.url%20}}") + out.count("%7B%7B%20cta.url")
        print(f"  {name:<11} href placeholders kept: {kept}, percent-encoded: {mangled}")


if __name__ == "__main__":
    main()
