"""The report page's pictures, for real: ``python scripts/report_screenshots.py`` (repo top).

Plays the A/B scenario of the tests (``tests/report/ab_scenario.py``: 1,000 recipients
through an aiosmtpd relay on loopback, clicks and unsubscribes through ``mailer serve``'s
app, the winner picked by the rule and sent to the rest), writes ``mailer report --html``,
and photographs the page in headless Chromium (/usr/bin/chromium, or $MAILER_CHROMIUM):

- docs/images/report-390.png    the page on a 390 px phone (first 2,400 px)
- docs/images/report-1280.png   the page on a 1280 px desktop (first 1,600 px)

PNGs are reduced to a 256-colour palette to stay small. Everything runs on loopback.
"""

from __future__ import annotations

import os
import secrets
import sys
import tempfile
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[1]
IMAGES = REPO / "docs" / "images"
CHROMIUM = os.environ.get("MAILER_CHROMIUM", "/usr/bin/chromium")
SHOTS = ((390, 2400, "report-390.png"), (1280, 1600, "report-1280.png"))


def save_small(source: Path, target: Path, crop_height: int) -> None:
    """Crop and store as a 256-colour PNG."""
    with Image.open(source) as image:
        picture = image.convert("RGB")
        if picture.height > crop_height:
            picture = picture.crop((0, 0, picture.width, crop_height))
        small = picture.quantize(colors=256, method=Image.Quantize.MEDIANCUT,
                                 dither=Image.Dither.NONE)  # fmt: skip
        small.save(target, optimize=True)
    print(f"wrote {target.relative_to(REPO)} ({target.stat().st_size // 1024} KB)")


def main() -> None:
    """Play the scenario, write the page, take the pictures."""
    sys.path.insert(0, str(REPO))
    os.environ.setdefault("MAILER_UNSUBSCRIBE_KEY", secrets.token_hex(32))
    from playwright.sync_api import sync_playwright

    from mailer.checks.fold import CHROMIUM_ARGS
    from tests.report.ab_scenario import run
    from tests.smtp_server import SmtpServer
    from tests.workspace import invoke

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        server = SmtpServer().start()
        try:
            scenario = run(root / "ws", server)
        finally:
            server.close()
        page_file = root / "report.html"
        made = invoke(scenario.root, "report", "campaigns/spring.toml", "--html", str(page_file))
        if made.exit_code != 0:
            raise SystemExit(made.output)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for width, crop, name in SHOTS:
                context = browser.new_context(viewport={"width": width, "height": 900})
                page = context.new_page()
                page.goto(page_file.as_uri())
                shot = root / name
                page.screenshot(path=str(shot), full_page=True)
                context.close()
                save_small(shot, IMAGES / name, crop)
            browser.close()


if __name__ == "__main__":
    main()
