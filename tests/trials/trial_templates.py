"""Try other people's MJML templates, unchanged, through ``mailer render``.

    python tests/trials/trial_templates.py FOLDER_OF_MJML_FILES [--tree PATH] [--check]

Each ``*.mjml`` file becomes ``templates/promo.mjml`` of a fresh workspace
(``tests/workspace.py``: three contacts, a small campaign) and ``mailer
render`` runs on it, as a user would. One line per template:

* ``ok``    — rendered;
* ``error`` — a one-line mailer error (the template needs a change, and the
  message says which line and what to write);
* ``CRASH`` — a traceback: a bug.

``--tree`` runs the ``mailer`` package found in another checkout (an older
commit, for a before/after comparison). ``--check`` runs ``mailer check --json
--offline`` on those that render and prints the codes found, each with where it
points (``promo.mjml:14`` for a client-support finding). ``*.html`` files are
tried too (as ``templates/promo.html``). The templates themselves are not part
of this repository (they belong to their authors): fetch them into a folder
of your own.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.workspace import make_workspace  # noqa: E402


def trial(template: Path, tree: Path, check: bool = False) -> tuple[str, str]:
    """(outcome, detail) for one template file."""
    root = Path(tempfile.mkdtemp(prefix="trial-"))
    try:
        make_workspace(root)
        (root / "templates" / "promo.mjml").unlink()
        shutil.copy(template, root / "templates" / f"promo{template.suffix}")
        env = {**os.environ, "PYTHONPATH": str(tree), "COLUMNS": "200"}
        done = subprocess.run(
            [sys.executable, "-m", "mailer", "render", "campaigns/spring.toml"],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode == 0:
            return "ok", checked(root, env) if check else ""
        if "Traceback" in done.stderr:
            return "CRASH", done.stderr.strip().splitlines()[-1][:200]
        return "error", " ".join(done.stderr.split())[:200]
    finally:
        shutil.rmtree(root, ignore_errors=True)


def checked(root: Path, env: dict[str, str]) -> str:
    """``mailer check --json``'s findings in one line: severity, code and where, by code."""
    done = subprocess.run(
        [sys.executable, "-m", "mailer", "check", "campaigns/spring.toml", "--json", "--offline"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        return "check: " + " ".join(done.stderr.split())[:200]
    parts = []
    for finding in report["findings"]:
        where = finding["where"].split(" · ")[0].replace(str(root) + "/", "")
        parts.append(f"{finding['severity'][0]}:{finding['code']}@{where}")
    return " ".join(parts)


def main() -> None:
    """Try every template in the folder given on the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--tree", type=Path, default=ROOT)
    parser.add_argument("--check", action="store_true", help="also run mailer check --json")
    args = parser.parse_args()
    totals: dict[str, int] = {}
    files = sorted([*args.folder.glob("*.mjml"), *args.folder.glob("*.html")])
    for template in files:
        outcome, detail = trial(template, args.tree, args.check)
        totals[outcome] = totals.get(outcome, 0) + 1
        print(f"{outcome:<6} {template.name}  {detail}", flush=True)
    print("totals: " + ", ".join(f"{k} {v}" for k, v in sorted(totals.items())))


if __name__ == "__main__":
    main()
