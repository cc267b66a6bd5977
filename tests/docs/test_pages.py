"""Every console example of a tested docs page runs, and prints what the page shows.

Which pages, and in what environment, is stated in each page's front matter
(``docs_test``); see ``tests/docs/runner.py``. A drifted example fails with a diff.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.docs.runner import DOCS, REPO, marked_pages, parse_page, run_page

PAGES = marked_pages()


def test_the_tutorial_is_tested_and_starts_from_an_empty_folder() -> None:
    assert DOCS / "tutorial.md" in PAGES
    assert DOCS / "tour.md" in PAGES
    page = parse_page(DOCS / "tutorial.md")
    assert page.setup.get("start") == "empty"
    assert page.commands[0].text.startswith("mailer init ")


@pytest.mark.browser
@pytest.mark.parametrize("path", PAGES, ids=lambda path: str(path.relative_to(DOCS)))
def test_console_examples(path: Path, tmp_path: Path) -> None:
    page = parse_page(path)
    assert page.commands, f"{path.relative_to(REPO)} is marked docs_test but has no console example"
    outcome = run_page(page, tmp_path)
    assert not outcome.drifts, outcome.report()
