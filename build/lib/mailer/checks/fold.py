"""Above the fold, measured: where the key blocks land in a real headless Chromium.

The source material's first rule puts the main information on the first screen
(主要的信息安排在第一屏). Templates mark their key blocks with the classes
``mailer-headline``, ``mailer-offer`` and ``mailer-cta``; this module loads each
sample email with ``page.set_content`` at a phone and a desktop viewport and
reports each block's top and bottom. A block whose bottom edge falls below the
viewport height is an error.

The browser never leaves the machine unless asked: requests to anything but
loopback and ``data:`` URLs are aborted. An image that did not load would
otherwise shrink to a line of alt text and pull every block below it up by
hundreds of pixels, so before measuring, each one is given the space it will
take for a reader: its width and height attributes scaled to its displayed
width, or, with no height given, ``DEFAULT_IMAGE_RATIO`` of its width. Blocks
below such a guessed image are reported as uncertain, never as a plain pass.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import urlsplit

from mailer.checks.content import KEY_CLASSES
from mailer.core.errors import CheckError

DEFAULT_CHROMIUM = "/usr/bin/chromium"
INSTALL_HINT = "install it with: apt-get install -y chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
BLOCK_NAMES = {
    "mailer-headline": "headline",
    "mailer-offer": "offer",
    "mailer-cta": "call to action",
}
_LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")
# Height / width assumed for an image that did not load and says nothing of its height:
# a 600×300 banner, the most common shape of an email hero image.
DEFAULT_IMAGE_RATIO = 0.5
T = TypeVar("T")


@dataclass(frozen=True)
class Viewport:
    """A screen to measure at; ``height`` is where the fold is."""

    name: str
    width: int
    height: int

    def __str__(self) -> str:
        return f"{self.name} {self.width}×{self.height}"


PHONE = Viewport("phone", 375, 667)
DESKTOP = Viewport("desktop", 1024, 600)


@dataclass(frozen=True)
class FoldOptions:
    """How to run the fold check: which browser, which screens, screenshots, network."""

    executable_path: str = field(
        default_factory=lambda: os.environ.get("MAILER_CHROMIUM", DEFAULT_CHROMIUM)
    )
    viewports: tuple[Viewport, ...] = (PHONE, DESKTOP)
    shots: Path | None = None
    allow_network: bool = False
    timeout_ms: int = 15_000


@dataclass(frozen=True)
class Block:
    """One key block's position in page pixels (from the top of the email)."""

    cls: str
    index: int
    top: float
    bottom: float
    # An image above it did not load and gave no height: its position is an estimate.
    uncertain: bool = False
    # The template marks no such block: this one was found by ``_GUESS_JS``'s heuristics.
    guessed: bool = False

    @property
    def name(self) -> str:
        """Human name: headline, offer, call to action."""
        return BLOCK_NAMES.get(self.cls, self.cls)


@dataclass
class FoldResult:
    """Where the key blocks of one sample landed at one viewport."""

    label: str
    viewport: Viewport
    blocks: list[Block]
    page_width: int
    page_height: int
    unsized_images: list[str] = field(default_factory=list)  # guessed, above a key block
    blocked_requests: int = 0
    shot: Path | None = None

    @property
    def where(self) -> str:
        """Where findings from this measurement point to."""
        return f"{self.label}, {self.viewport}"

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``--json``."""
        return {
            "sample": self.label,
            "viewport": {
                "name": self.viewport.name,
                "width": self.viewport.width,
                "height": self.viewport.height,
            },
            "blocks": [
                {
                    "class": b.cls,
                    "index": b.index,
                    "top": round(b.top),
                    "bottom": round(b.bottom),
                    "uncertain": b.uncertain,
                    "guessed": b.guessed,
                }
                for b in self.blocks
            ],
            "page_width": self.page_width,
            "page_height": self.page_height,
            "screenshot": str(self.shot) if self.shot else None,
        }


# Runs in the page first: give every image that did not load the room it will take.
_RESERVE_JS = """
(ratio) => {
  for (const img of Array.from(document.images)) {
    if (img.complete && img.naturalWidth > 0) continue;
    const box = img.getBoundingClientRect();
    const attrW = parseFloat(img.getAttribute('width'));
    const attrH = parseFloat(img.getAttribute('height'));
    const shownW = box.width > 1 ? box.width : (attrW > 0 ? attrW : 0);
    if (shownW <= 0) continue;
    const height = attrW > 0 && attrH > 0 ? shownW * attrH / attrW : shownW * ratio;
    img.dataset.mailerGuessed = attrH > 0 ? '' : '1';
    img.style.setProperty('display', 'block');
    img.style.setProperty('width', shownW + 'px');
    img.style.setProperty('height', height + 'px');
  }
}
"""

# Runs in the page when no element carries a key class (a template from elsewhere):
# marks the likeliest headline (largest text), offer (first text with a price, a
# discount or a code) and call to action (first link styled as a button), so the
# fold can still be measured; each is flagged as guessed.
_GUESS_JS = """
(classes) => {
  if (classes.some(c => document.getElementsByClassName(c).length)) return [];
  const visible = (el) => { const r = el.getBoundingClientRect();
    const s = getComputedStyle(el);
    return r.width > 1 && r.height > 1 && s.visibility !== 'hidden' && s.opacity !== '0'; };
  const ownText = (el) => Array.from(el.childNodes).filter(n => n.nodeType === 3)
    .map(n => n.textContent).join(' ').replace(/\\s+/g, ' ').trim();
  const texts = Array.from(document.body.querySelectorAll('*'))
    .filter(el => ownText(el).length > 1 && visible(el) && !el.closest('a'));
  const marked = [];
  const mark = (el, cls) => { if (!el) return; el.classList.add(cls);
    el.dataset.mailerBlockGuessed = '1'; marked.push(cls); };
  let headline = null, best = 0;
  for (const el of texts) {
    const heading = /^H[1-3]$/.test(el.tagName) ? 0.5 : 0;
    const size = parseFloat(getComputedStyle(el).fontSize) + heading;
    if (size > best) { best = size; headline = el; }
  }
  mark(headline, classes[0]);
  const offer = new RegExp('\\\\d+\\\\s?%|[$€£¥]\\\\s?\\\\d|\\\\d\\\\s?(元|折)|' +
    '优惠|免费|折扣|立减|' +
    '\\\\b(off|save|sale|discount|free|code|deal)\\\\b', 'i');
  mark(texts.find(el => el !== headline && offer.test(el.textContent) &&
    el.textContent.length < 400), classes[1]);
  const transparent = (c) => !c || c === 'transparent' || /rgba\\(.*,\\s*0\\)$/.test(c);
  const button = Array.from(document.querySelectorAll('a[href]')).find(a => {
    const href = a.getAttribute('href') || '';
    if (!visible(a) || /^(mailto|tel):/i.test(href)) return false;
    if (/unsub|退订/i.test(href + a.textContent)) return false;
    if (/btn|button|cta/i.test(a.className)) return true;
    const cell = a.closest('td');
    const own = a.textContent.replace(/\\s+/g, '').length;
    const alone = cell && cell.textContent.replace(/\\s+/g, '').length === own && own > 0;
    const filled = alone && (!transparent(getComputedStyle(cell).backgroundColor) ||
      cell.getAttribute('bgcolor'));
    return !transparent(getComputedStyle(a).backgroundColor) || filled;
  });
  mark(button, classes[2]);
  return marked;
}
"""

# Runs in the page: outermost visible element per key class, images, page size.
_MEASURE_JS = """
(classes) => {
  const blocks = [];
  for (const cls of classes) {
    const all = Array.from(document.getElementsByClassName(cls));
    const outer = all.filter(e => !(e.parentElement && e.parentElement.closest('.' + cls)));
    outer.forEach((e, i) => {
      const r = e.getBoundingClientRect();
      if (r.width === 0 && r.height === 0) return;  // hidden (e.g. Outlook-only copy)
      blocks.push({cls, index: i, top: r.top + scrollY, bottom: r.bottom + scrollY,
                   guessed: e.dataset.mailerBlockGuessed === '1'});
    });
  }
  const images = Array.from(document.images).map(img => ({
    src: img.getAttribute('src') || '',
    guessed: img.dataset.mailerGuessed === '1',
    top: img.getBoundingClientRect().top + scrollY,
  }));
  const root = document.documentElement;
  return {blocks, images, width: root.scrollWidth, height: root.scrollHeight};
}
"""

# Draws the fold line and outlines the key blocks, for screenshots only.
_DRAW_JS = """
([fold, classes]) => {
  for (const cls of classes)
    for (const e of document.getElementsByClassName(cls))
      e.style.outline = '2px dashed #1565c0';
  const line = document.createElement('div');
  const wide = Math.max(document.documentElement.scrollWidth, innerWidth);
  line.style.cssText = `position:absolute;left:0;width:${wide}px;top:${fold}px;height:0;` +
    'border-top:3px solid #e00000;z-index:2147483647;pointer-events:none';
  const tag = document.createElement('div');
  tag.textContent = `fold ${fold}px`;
  tag.style.cssText = 'position:absolute;right:4px;top:-20px;background:#e00000;color:#fff;' +
    'font:bold 12px sans-serif;padding:2px 6px';
  line.appendChild(tag);
  document.body.appendChild(line);
}
"""


def require_chromium(path: str) -> None:
    """Raise ``CheckError`` (with the install command) when the browser binary is missing."""
    if not Path(path).is_file() or not os.access(path, os.X_OK):
        raise CheckError(
            f"Chromium not found at {path}: the above-the-fold check cannot run "
            "(it was NOT run, so it did not pass)",
            where="fold check",
            hint=INSTALL_HINT + ", or skip the fold check knowingly",
            advice="chromium-missing",
        )


class FoldBrowser:
    """One headless Chromium, reused for every measurement (starting it costs ~0.5 s).

    Playwright's sync API refuses to run in a thread that has a running asyncio
    loop, and allows one instance per thread. So every browser call runs on this
    object's own worker thread: it works from async code (preview) and next to
    another ``FoldBrowser``.
    """

    def __init__(self, options: FoldOptions | None = None) -> None:
        self.options = options or FoldOptions()
        self._worker: ThreadPoolExecutor | None = None
        self._playwright: Any = None
        self._browser: Any = None
        self._context: Any = None
        self._page: Any = None
        self._blocked: list[str] = []

    def __enter__(self) -> FoldBrowser:
        require_chromium(self.options.executable_path)
        if self.options.shots is not None:
            prepare_shots(self.options.shots)
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mailer-fold")
        try:
            self.call(self._start)
        except BaseException:
            self._worker.shutdown()
            self._worker = None
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def call(self, function: Callable[..., T], *args: Any) -> T:
        """Run ``function(*args)`` on the browser's thread and return its result."""
        if self._worker is None:
            raise CheckError("the fold browser is not started", where="fold check")
        return self._worker.submit(function, *args).result()

    def _start(self) -> None:
        try:
            from playwright.sync_api import Error, sync_playwright
        except ImportError:
            raise CheckError(
                "the playwright package is not installed: the above-the-fold check cannot run "
                "(it was NOT run, so it did not pass)",
                where="fold check",
                hint="install it with: pip install playwright (it drives the system chromium)",
            ) from None
        self._playwright = sync_playwright().start()
        try:
            self._browser = self._playwright.chromium.launch(
                executable_path=self.options.executable_path, args=CHROMIUM_ARGS
            )
        except Error as exc:
            self._playwright.stop()
            self._playwright = None
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else "unknown error"
            raise CheckError(
                f"Chromium at {self.options.executable_path} did not start: {first_line} "
                "(the above-the-fold check was NOT run)",
                where="fold check",
                hint=INSTALL_HINT,
                advice="chromium-broken",
            ) from None
        self._context = self._browser.new_context(device_scale_factor=1)
        self._context.route("**/*", self._route)

    def close(self) -> None:
        """Shut the browser down; safe to call twice."""
        if self._worker is None:
            return
        try:
            self.call(self._stop)
        finally:
            self._worker.shutdown()
            self._worker = None

    def _stop(self) -> None:
        self._page = None
        if self._browser is not None:
            self._browser.close()
            self._browser = None
        if self._playwright is not None:
            self._playwright.stop()
            self._playwright = None

    def _route(self, route: Any) -> None:
        url = route.request.url
        host = urlsplit(url).hostname or ""
        if self.options.allow_network or url.startswith("data:") or host in _LOOPBACK:
            route.continue_()
        else:
            # Privacy and test hygiene: opening an email must not call its tracking hosts.
            self._blocked.append(url)
            route.abort()

    def new_page(self) -> Any:
        """A fresh page in the browser's context (call it, and use the page, via ``call``)."""
        return self._context.new_page()

    def measure(
        self, html: str, viewport: Viewport, *, label: str = "", shot: Path | None = None
    ) -> FoldResult:
        """Load ``html`` at ``viewport`` and return where each key block landed.

        A browser failure (a page that never finishes loading, a crashed
        Chromium) is a ``CheckError`` saying the fold check did not complete.
        """
        from playwright.sync_api import Error

        try:
            return self.call(self._measure, html, viewport, label, shot)
        except Error as exc:
            first_line = (str(exc).strip().splitlines() or ["unknown error"])[0]
            raise CheckError(
                f"Chromium failed while measuring {label or 'the email'} at {viewport}: "
                f"{first_line} (the above-the-fold check was NOT completed)",
                where="fold check",
                hint="check again; if it keeps failing, look at the template "
                "for content that never finishes loading",
            ) from None

    def evaluate(self, script: str, arg: Any = None) -> Any:
        """Run ``script`` (a JavaScript function of ``arg``) on the page last measured.

        The accessibility checks read the laid-out email this way, without
        loading it a second time.
        """
        return self.call(lambda: self._page.evaluate(script, arg))

    def color_scheme(self, scheme: str) -> None:
        """Emulate ``prefers-color-scheme: light`` or ``dark`` on the current page."""
        self.call(lambda: self._page.emulate_media(color_scheme=scheme))

    def _measure(self, html: str, viewport: Viewport, label: str, shot: Path | None) -> FoldResult:
        self._blocked = []
        # One page, reused: set_content replaces the whole document, and a new
        # page per measurement costs three times as much (0.4 s against 0.12 s).
        if self._page is None or self._page.is_closed():
            self._page = self._context.new_page()
        page = self._page
        page.set_viewport_size({"width": viewport.width, "height": viewport.height})
        page.set_content(html, wait_until="load", timeout=self.options.timeout_ms)
        page.evaluate(_RESERVE_JS, DEFAULT_IMAGE_RATIO)
        page.evaluate(_GUESS_JS, list(KEY_CLASSES))
        data = page.evaluate(_MEASURE_JS, list(KEY_CLASSES))
        if shot is not None:
            prepare_shots(shot.parent)
            page.evaluate(_DRAW_JS, [viewport.height, list(KEY_CLASSES)])
            page.screenshot(path=str(shot), full_page=True)
        return _result(data, viewport, label, shot, len(self._blocked))


def _result(
    data: dict[str, Any], viewport: Viewport, label: str, shot: Path | None, blocked: int
) -> FoldResult:
    guessed = [img for img in data["images"] if img["guessed"]]
    blocks = [
        Block(
            b["cls"],
            b["index"],
            b["top"],
            b["bottom"],
            uncertain=any(img["top"] < b["top"] for img in guessed),
            guessed=bool(b.get("guessed")),
        )
        for b in data["blocks"]
    ]
    lowest_key = max((b.top for b in blocks), default=0.0)
    unsized = [img["src"] for img in guessed if img["top"] < lowest_key]
    return FoldResult(
        label, viewport, blocks, int(data["width"]), int(data["height"]), unsized, blocked, shot
    )


@contextmanager
def fold_browser(options: FoldOptions | None = None) -> Iterator[FoldBrowser]:
    """``with fold_browser(opts) as browser:`` — a started ``FoldBrowser``, closed afterwards."""
    browser = FoldBrowser(options)
    with browser:
        yield browser


def prepare_shots(folder: Path) -> None:
    """Create the screenshot folder, or raise ``CheckError`` saying why it cannot be used."""
    if folder.exists() and not folder.is_dir():
        raise CheckError(
            f"cannot save screenshots in {folder}: it is a file, not a folder",
            hint="choose a folder (it is created if missing)",
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".mailer-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise CheckError(
            f"cannot save screenshots in {folder}: {exc.strerror or exc}",
            hint="choose a folder you can write to (it is created if missing)",
        ) from None
