"""The package layout is checked, not just described: import-linter contracts in pyproject.toml.

One test runs the contracts on the code as it is; the others copy the package,
add one forbidden import and show that the same check then fails, naming it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint(root: Path) -> subprocess.CompletedProcess[str]:
    """Run lint-imports on the ``mailer`` package found in ``root``."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(root / "pyproject.toml"), "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def copy_with(tmp_path: Path, module: str, line: str) -> Path:
    """A copy of the package with ``line`` added at the end of ``module`` (a file path)."""
    shutil.copytree(REPO / "mailer", tmp_path / "mailer")
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / module
    target.write_text(target.read_text(encoding="utf-8") + "\n" + line + "\n", encoding="utf-8")
    return tmp_path


def test_the_layout_keeps_every_contract() -> None:
    result = lint(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        # core importing the CLI: an upward import across every stage
        ("mailer/core/clock.py", "import mailer.cli.app  # noqa", "Stages import downwards only"),
        # delivery reaching up into the services that call it
        (
            "mailer/delivery/journal.py",
            "from mailer.services import send  # noqa",
            "Stages import downwards only",
        ),
        # the CLI skipping the services layer
        (
            "mailer/cli/status_cmds.py",
            "from mailer.delivery import runs  # noqa",
            "The CLI calls services only",
        ),
        # a cycle inside a stage
        (
            "mailer/delivery/policy.py",
            "from mailer.delivery import engine  # noqa",
            "No import cycles within a stage",
        ),
    ],
)
def test_a_forbidden_import_breaks_the_check(
    tmp_path: Path, module: str, line: str, broken: str
) -> None:
    result = lint(copy_with(tmp_path, module, line))
    assert result.returncode != 0
    assert f"{broken}" in result.stdout and "BROKEN" in result.stdout
