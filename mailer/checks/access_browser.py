"""Accessibility measured on the laid-out email, in the fold check's Chromium page.

* 1.4.3 contrast: each visible text's computed colour against the background
  actually behind it (the nearest ancestor with an opaque background colour;
  text over a background image is skipped, as the image's colours are
  unknown), in light mode and again with ``prefers-color-scheme: dark`` (the
  email's own dark-mode CSS). 4.5:1, or 3:1 for large text (24 px, or 18.66 px
  bold);
* tap targets: a link that stands alone (a button, a "view online" line) is at
  least 44 × 44 px on the phone screen; links inside a sentence are exempt, as
  WCAG exempts inline targets.

It runs on the page the fold check has just measured (no second load), so it
costs two script evaluations and one colour-scheme switch per sample.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mailer.checks.findings import Finding, info, warning

if TYPE_CHECKING:
    from mailer.checks.fold import FoldBrowser

MIN_CONTRAST = 4.5
MIN_CONTRAST_LARGE = 3.0
MIN_TARGET = 44
_SHOWN = 3  # worst cases named per finding

# Returns the text runs whose contrast is too low, worst first.
_CONTRAST_JS = """
([minNormal, minLarge]) => {
  const parse = (c) => {
    const m = c.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return null;
    const p = m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number);
    return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1};
  };
  const lum = (c) => {
    const f = (v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
  };
  const over = (top, under) => ({
    r: top.r * top.a + under.r * (1 - top.a), g: top.g * top.a + under.g * (1 - top.a),
    b: top.b * top.a + under.b * (1 - top.a), a: 1,
  });
  const background = (el) => {
    const layers = [];
    for (let node = el; node && node.nodeType === 1; node = node.parentElement) {
      const style = getComputedStyle(node);
      if (style.backgroundImage && style.backgroundImage !== 'none') return null;
      const c = parse(style.backgroundColor);
      if (c && c.a > 0) { layers.push(c); if (c.a >= 1) break; }
    }
    let colour = {r: 255, g: 255, b: 255, a: 1};  // the canvas
    for (const layer of layers.reverse()) colour = over(layer, colour);
    return colour;
  };
  const hex = (c) => '#' + [c.r, c.g, c.b]
    .map(v => Math.round(v).toString(16).padStart(2, '0')).join('');
  // Named by element and class, not by its text: the text holds the reader's data.
  // MJML's own classes (mj-column-per-100, mj-outlook-group-fix) say nothing to the author.
  // A guessed key block carries the class the fold check gave it, not one the author wrote.
  const describe = (el) => {
    for (let node = el; node && node !== document.body; node = node.parentElement) {
      const guessed = node.dataset.mailerBlockGuessed === '1';
      const cls = Array.from(node.classList)
        .find(c => !c.startsWith('mj-') && !(guessed && c.startsWith('mailer-')));
      if (cls) return el.tagName.toLowerCase() + ` in .${cls}`;
    }
    return el.tagName.toLowerCase();
  };
  const found = new Map();
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = node.textContent.replace(/\\s+/g, ' ').trim();
    if (!text || !/[\\p{L}\\p{N}]/u.test(text)) continue;
    const el = node.parentElement;
    const style = getComputedStyle(el);
    const box = el.getBoundingClientRect();
    if (box.width < 1 || box.height < 1 || style.visibility === 'hidden') continue;
    if (parseFloat(style.opacity) === 0 || parseFloat(style.fontSize) < 2) continue;
    const bg = background(el);
    const fg = parse(style.color);
    if (!bg || !fg) continue;
    const ink = over(fg, bg);
    const [hi, lo] = [lum(ink), lum(bg)].sort((x, y) => y - x);
    const ratio = (hi + 0.05) / (lo + 0.05);
    const size = parseFloat(style.fontSize);
    const bold = parseInt(style.fontWeight, 10) >= 700;
    const large = size >= 24 || (bold && size >= 18.66);
    const need = large ? minLarge : minNormal;
    if (ratio >= need) continue;
    const key = hex(ink) + hex(bg);
    if (!found.has(key)) found.set(key, {text: describe(el), fg: hex(ink), bg: hex(bg),
      ratio: Math.round(ratio * 100) / 100, need, size, count: 0});
    found.get(key).count += 1;
  }
  return Array.from(found.values()).sort((a, b) => a.ratio - b.ratio);
}
"""

# Returns links that stand alone (not inside a sentence) and are smaller than the minimum.
_TARGETS_JS = """
(minimum) => {
  const small = [];
  const blockOf = (el) => {
    for (let node = el.parentElement; node; node = node.parentElement) {
      const d = getComputedStyle(node).display;
      if (d !== 'inline' && d !== 'contents') return node;
    }
    return document.body;
  };
  for (const a of document.querySelectorAll('a[href]')) {
    const box = a.getBoundingClientRect();
    if (box.width < 1 || box.height < 1) continue;
    const own = a.textContent.replace(/\\s+/g, '').length;
    const around = blockOf(a).textContent.replace(/\\s+/g, '').length;
    if (around > own + 2) continue;  // inline in a sentence: exempt
    // A button is the link plus the padded cell it sits in (MJML's mj-button).
    const cell = a.closest('td');
    const alone = cell && cell.textContent.replace(/\\s+/g, '').length === own;
    const outer = alone ? cell.getBoundingClientRect() : box;
    const filled = (el) => el && !/^(transparent|rgba\\(.*,\\s*0\\))$/.test(
      getComputedStyle(el).backgroundColor);
    const button = !!a.closest('.mailer-cta') || filled(a) || (alone && filled(cell));
    const width = Math.max(box.width, outer.width), height = Math.max(box.height, outer.height);
    if (width >= minimum && height >= minimum) continue;
    small.push({text: a.textContent.replace(/\\s+/g, ' ').trim().slice(0, 40) ||
      (a.querySelector('img') ? '(image)' : '(empty)'),
      width: Math.round(width), height: Math.round(height),
      button});
  }
  return small;
}
"""


def access_in_browser(browser: FoldBrowser, where: str) -> list[Finding]:
    """Contrast (light and dark mode) and tap targets on the page the browser last measured.

    Call it right after ``FoldBrowser.measure`` at the phone viewport.
    """
    findings = []
    light: list[dict[str, Any]] = browser.evaluate(_CONTRAST_JS, [MIN_CONTRAST, MIN_CONTRAST_LARGE])
    findings += _contrast_findings(light, "light mode", where)
    browser.color_scheme("dark")
    try:
        dark = browser.evaluate(_CONTRAST_JS, [MIN_CONTRAST, MIN_CONTRAST_LARGE])
    finally:
        browser.color_scheme("light")
    seen = {(c["fg"], c["bg"]) for c in light}
    findings += _contrast_findings(
        [c for c in dark if (c["fg"], c["bg"]) not in seen], "dark mode", where
    )
    targets: list[dict[str, Any]] = browser.evaluate(_TARGETS_JS, MIN_TARGET)
    findings += _target_findings(targets, where)
    return findings


def _contrast_findings(cases: list[dict[str, Any]], mode: str, where: str) -> list[Finding]:
    if not cases:
        return []
    shown = "; ".join(
        f"{c['text']} {c['fg']} on {c['bg']} = {c['ratio']:.2f}:1 (needs {c['need']:g}:1)"
        for c in cases[:_SHOWN]
    )
    more = f" and {len(cases) - _SHOWN} more colour pairs" if len(cases) > _SHOWN else ""
    message = (
        f"text too faint to read in {mode} (WCAG 2.1 AA 1.4.3): {shown}{more}; "
        "darken the text or lighten the background"
    )
    return [warning("a11y-contrast", message, f"{where}, {mode}")]


def _target_findings(small: list[dict[str, Any]], where: str) -> list[Finding]:
    """Buttons under the minimum are warnings; text links alone on a line, an info note."""
    findings = []
    buttons = [t for t in small if t["button"]]
    links = [t for t in small if not t["button"]]
    if buttons:
        message = (
            f"buttons smaller than {MIN_TARGET}×{MIN_TARGET} px on the phone screen: "
            f"{_listed(buttons)}; give them more padding (inner-padding on <mj-button>)"
        )
        findings.append(warning("a11y-tap-target", message, where))
    if links:
        message = (
            f"text links alone on their line are under {MIN_TARGET} px tall on the phone "
            f"screen: {_listed(links)}; padding or a larger line height makes them easier "
            "to tap"
        )
        findings.append(info("a11y-tap-target", message, where))
    return findings


def _listed(targets: list[dict[str, Any]]) -> str:
    targets = sorted(targets, key=lambda t: t["height"])
    shown = "; ".join(f"{t['text']!r} {t['width']}×{t['height']} px" for t in targets[:_SHOWN])
    return shown + (f" and {len(targets) - _SHOWN} more" if len(targets) > _SHOWN else "")
