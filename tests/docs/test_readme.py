"""The README's quick start and minimal campaign work as written, from an empty folder.

Each block after a ``<!-- tested: ... -->`` marker is taken in order: a ``toml`` block with a
``title`` is written into the folder the commands are in, each line of an ``sh`` block is run
and must exit 0 without a traceback (``mailer preview``, which runs until stopped, must print
its address). The reader answers ``mailer init``'s questions and the live send's confirmation
at a terminal; here, without one, those two commands get ``--yes`` (init then takes its
defaults: a reserved sender domain and the outbox).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.docs.runner import REPO, Shell, _environment, _workspace

MARKER = "<!-- tested:"
_FENCE = re.compile(r"^```(\w+)(.*)$")


def marked_blocks(text: str) -> list[tuple[str, str, list[str]]]:
    """(language, title, lines) of every fenced block right after a tested marker."""
    lines = text.split("\n")
    blocks = []
    for i, line in enumerate(lines):
        if not line.startswith(MARKER):
            continue
        opening = _FENCE.match(lines[i + 1])
        assert opening, f"README.md:{i + 1}: a tested marker must be followed by a code block"
        end = lines.index("```", i + 2)
        title = re.search(r'title="([^"]+)"', opening[2])
        blocks.append((opening[1], title[1] if title else "", lines[i + 2 : end]))
    return blocks


def test_the_readme_is_short() -> None:
    assert len((REPO / "README.md").read_text(encoding="utf-8").splitlines()) <= 200


@pytest.mark.browser
def test_the_readme_commands_run(tmp_path: Path) -> None:
    blocks = marked_blocks((REPO / "README.md").read_text(encoding="utf-8"))
    assert [language for language, _, _ in blocks] == ["sh", "toml", "sh"]
    start = _workspace(tmp_path, {"start": "empty"})
    assert not any(start.iterdir())
    (tmp_path / "logs").mkdir()
    shell = Shell(start, _environment(tmp_path, {"env": {"COLUMNS": "100"}}), tmp_path / "logs")
    ran = []
    try:
        for language, title, lines in blocks:
            if language == "toml":
                here = Path(shell.run("pwd")[-1])
                (here / title).write_text("\n".join(lines) + "\n", encoding="utf-8")
                continue
            for line in lines:
                command = line.split("  #")[0].strip()
                if command.startswith("mailer init") or command.endswith("--live"):
                    command += " --yes"  # the questions a reader answers at a terminal
                if command.startswith("mailer preview"):
                    output = shell.start(command + " --no-open &", 1)
                    assert "previewing" in output[0], output
                    shell.run("kill %1")
                else:
                    output = shell.run(f'{command}; echo "exit=$?"')
                    assert output[-1] == "exit=0", f"$ {command}\n" + "\n".join(output)
                    assert not any("Traceback" in out for out in output), "\n".join(output)
                ran.append(command)
    finally:
        shell.close()
    assert len(ran) == 7
    workspace = start / "my-shop"
    assert (workspace / "mailer.toml").is_file()
    assert (workspace / "outbox" / "welcome").is_dir()
    assert (workspace / "campaigns" / "first-order.toml").is_file()
