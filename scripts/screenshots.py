"""Make the docs' pictures for real: ``python scripts/screenshots.py`` (from the repository top).

In a fresh copy of the example workspace (mailer.toml, campaigns/, templates/), with the
sample contacts imported, it runs mailer itself and photographs what it shows, in headless
Chromium (/usr/bin/chromium, or $MAILER_CHROMIUM) driven by playwright:

- docs/images/preview.png       the live preview of the promotion (``mailer preview``)
- docs/images/preview-welcome.png  the tutorial's preview: a workspace made by ``mailer init``,
                                ``examples/客户.csv`` imported, the welcome letter sent to it
- docs/images/fold-phone.png    ``mailer check --shots``: the promotion on a phone, fold in red
- docs/images/fold-desktop.png  the same on a desktop
- docs/images/report-phone.png  ``mailer report --html`` on a phone, after a send through the
                                outbox and a few events posted to ``mailer serve``'s webhook
- docs/images/calendar.png      ``mailer calendar --year 2027`` as a 100-column terminal shows it

PNGs are reduced to a 256-colour palette to stay small. Everything runs on loopback.
``python scripts/screenshots.py welcome`` (or ``fold``, ``preview``, ``report``, ``calendar``)
makes only the pictures named.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unicodedata
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from PIL import Image

REPO = Path(__file__).resolve().parents[1]
IMAGES = REPO / "docs" / "images"
CHROMIUM = os.environ.get("MAILER_CHROMIUM", "/usr/bin/chromium")
MAILER = [sys.executable, "-m", "mailer"]
WEBHOOK_SECRET = "screenshots-webhook-secret"


def workspace(root: Path) -> Path:
    """A copy of the example workspace, contacts imported."""
    ws = root / "lotus-tea"
    ws.mkdir()
    for part in ("mailer.toml", "campaigns", "templates"):
        source = REPO / part
        if source.is_dir():
            shutil.copytree(source, ws / part)
        else:
            shutil.copy2(source, ws / part)
    mailer(ws, "contacts", "import", "campaigns/contacts.csv", "--list", "customers")
    return ws


def first_day(root: Path) -> Path:
    """The tutorial's workspace: ``mailer init``, the Chinese-header list, the letter to it."""
    mailer(
        root,
        "init",
        "tea-shop",
        "--yes",
        "--lang",
        "en",
        "--brand",
        "Lotus Tea House",
        "--sender",
        "hello@lotus-tea.cn",
        "--postal-address",
        "Lotus Tea House, 18 Willow Lane, Hangzhou 310000, China",
        "--timezone",
        "Asia/Shanghai",
    )
    ws = root / "tea-shop"
    shutil.copy2(REPO / "examples" / "客户.csv", ws / "客户.csv")
    mailer(ws, "contacts", "import", "客户.csv", "--list", "customers", "--map", "会员等级=tier")
    campaign = ws / "campaigns" / "welcome.toml"
    text = campaign.read_text(encoding="utf-8")
    campaign.write_text(
        re.sub(r'(?m)^csv = "\.\./contacts\.csv"$', 'list = "customers"', text), encoding="utf-8"
    )
    return ws


def environment() -> dict[str, str]:
    """The environment mailer runs with here: a key, a webhook secret, 100 columns."""
    env = dict(os.environ)
    env.update(
        MAILER_UNSUBSCRIBE_KEY="screenshots-unsubscribe-key-0123456789",
        MAILER_WEBHOOK_SECRET=WEBHOOK_SECRET,
        COLUMNS="100",
        PYTHONUNBUFFERED="1",
    )
    return env


def mailer(ws: Path, *args: str) -> str:
    """Run a mailer command in the workspace; its output (fails loudly when it fails)."""
    done = subprocess.run(
        [*MAILER, *args], cwd=ws, env=environment(), capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"mailer {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


@contextmanager
def background(ws: Path, *args: str, wait_for: str) -> Iterator[re.Match[str]]:
    """A long-running mailer command; yields the match of ``wait_for`` in its first lines."""
    proc = subprocess.Popen(
        [*MAILER, *args],
        cwd=ws,
        env=environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            match = re.search(wait_for, line)
            if match:
                yield match
                break
        else:
            raise SystemExit(f"mailer {' '.join(args)} ended before printing {wait_for!r}")
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def free_port() -> int:
    """A free port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def save_small(source: Path, target: Path, *, crop_height: int | None = None) -> None:
    """Crop (optionally) and store as a 256-colour PNG."""
    with Image.open(source) as image:
        picture = image.convert("RGB")
        if crop_height is not None and picture.height > crop_height:
            picture = picture.crop((0, 0, picture.width, crop_height))
        small = picture.quantize(
            colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
        )
        small.save(target, optimize=True)
    print(f"wrote {target.relative_to(REPO)} ({target.stat().st_size // 1024} KB)")


def fold_shots(ws: Path) -> None:
    """``mailer check --shots``: the promotion's first sample on a phone and a desktop."""
    mailer(ws, "check", "campaigns/promotion.toml", "--shots", "shots")
    shots = sorted((ws / "shots").rglob("*.png"))
    phone = next(p for p in shots if "phone" in p.name)
    desktop = next(p for p in shots if "desktop" in p.name)
    save_small(phone, IMAGES / "fold-phone.png", crop_height=900)
    save_small(desktop, IMAGES / "fold-desktop.png", crop_height=760)


def preview(
    ws: Path,
    browser: Any,
    out: Path,
    campaign: str = "campaigns/promotion.toml",
    picture: str = "preview.png",
) -> None:
    """The preview page of a campaign, once the first email and the checks are shown."""
    from playwright.sync_api import expect

    with background(
        ws,
        "preview",
        campaign,
        "--no-open",
        wait_for=r"(http://127\.0\.0\.1:\d+/)",
    ) as found:
        page = browser.new_page(viewport={"width": 1600, "height": 900})
        page.goto(found[1])
        expect(page.locator("#inbox li.selected .subject")).not_to_be_empty(timeout=30_000)
        # The checks (with the fold, in Chromium) come last; the picture shows them done.
        expect(page.locator("#checks")).not_to_have_text("…", timeout=60_000)
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(out))
        page.close()
    save_small(out, IMAGES / picture)


def post_event(port: int, event: dict[str, str]) -> None:
    """One signed event to ``mailer serve``'s generic webhook."""
    body = json.dumps(event).encode()
    stamp = str(int(time.time()))
    signature = hmac.new(WEBHOOK_SECRET.encode(), f"{stamp}.".encode() + body, hashlib.sha256)
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/hooks/generic",
        data=body,
        headers={
            "X-Mailer-Timestamp": stamp,
            "X-Mailer-Signature": f"sha256={signature.hexdigest()}",
            "Content-Type": "application/json",
        },
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        answer.read()


def report(ws: Path, browser: Any, out: Path) -> None:
    """The report page of a promotion sent through the outbox, with a few events back."""
    mailer(ws, "send", "campaigns/promotion.toml", "--live", "--yes", "--no-browser")
    port = free_port()
    with background(ws, "serve", "--port", str(port), wait_for="serving"):
        for n, (kind, email) in enumerate(
            [
                ("hard_bounce", "wong.kaming@post.test"),
                ("complaint", "tea.lover@inbox.test"),
                ("unsubscribe", "noah.becker@post.test"),
            ]
        ):
            post_event(port, {"type": kind, "email": email, "id": f"screenshot-{n}"})
    mailer(ws, "report", "winter-oolong-2026@outbox", "--html", "report.html")
    page = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=1)
    page.goto((ws / "report.html").as_uri())
    page.screenshot(path=str(out), full_page=True)
    page.close()
    save_small(out, IMAGES / "report-phone.png", crop_height=1500)


def calendar(ws: Path, browser: Any, out: Path) -> None:
    """``mailer calendar --year 2027`` drawn as a terminal would: its first rows, as HTML."""
    from rich.console import Console
    from rich.text import Text

    text = mailer(ws, "calendar", "--year", "2027")
    console = Console(record=True, width=100, file=open(os.devnull, "w"))  # noqa: SIM115
    console.print(Text("$ mailer calendar --year 2027", style="bold"))
    console.print(Text("\n".join(text.splitlines()[:24])))
    # A monospace font whose CJK glyphs are exactly two cells wide, as in a terminal.
    terminal = (
        '<!DOCTYPE html><meta charset="utf-8"><body style="margin:0;background:#1e1e2e">'
        '<pre style="margin:0;padding:16px 20px;display:inline-block;color:#e0e0e0;'
        "font:16px/1.3 'WenQuanYi Zen Hei Mono','Noto Sans Mono CJK SC',monospace\">"
        "<code>{code}</code></pre></body>"
    )
    html = out.with_suffix(".html")
    exported = console.export_html(inline_styles=True, code_format=terminal)
    html.write_text(two_cells_wide(exported), encoding="utf-8")
    page = browser.new_page(viewport={"width": 1300, "height": 700})
    page.goto(html.as_uri())
    page.locator("pre").screenshot(path=str(out))
    page.close()
    save_small(out, IMAGES / "calendar.png")


def two_cells_wide(html: str) -> str:
    """Each wide (CJK) character in a box two cells wide, as a terminal draws it.

    A font's CJK glyphs are seldom exactly two Latin widths, and a table drawn with box
    characters then goes crooked.
    """

    def box(text: re.Match[str]) -> str:
        return "".join(
            f'<span style="display:inline-block;width:2ch;text-align:center">{ch}</span>'
            if unicodedata.east_asian_width(ch) in ("W", "F")
            else ch
            for ch in text[0]
        )

    # Text between tags only: never inside a tag or its attributes.
    return re.sub(r"(?<=>)[^<]+", box, html)


PICTURES = ("fold", "preview", "welcome", "report", "calendar")


def main() -> None:
    """Make every picture, or those named on the command line."""
    from playwright.sync_api import sync_playwright

    wanted = sys.argv[1:] or list(PICTURES)
    unknown = sorted(set(wanted) - set(PICTURES))
    if unknown:
        raise SystemExit(f"unknown picture(s) {', '.join(unknown)}; known: {', '.join(PICTURES)}")
    IMAGES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mailer-shots-") as tmp:
        root = Path(tmp)
        ws = workspace(root)
        if "fold" in wanted:
            fold_shots(ws)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            try:
                if "preview" in wanted:
                    preview(ws, browser, root / "preview.png")
                if "welcome" in wanted:
                    new = root / "first-day"
                    new.mkdir()
                    welcome = first_day(new)
                    preview(
                        welcome,
                        browser,
                        root / "preview-welcome.png",
                        "campaigns/welcome.toml",
                        "preview-welcome.png",
                    )
                if "report" in wanted:
                    report(ws, browser, root / "report.png")
                if "calendar" in wanted:
                    calendar(ws, browser, root / "calendar.png")
            finally:
                browser.close()


if __name__ == "__main__":
    main()
