"""Run the console examples of a docs page, in order, in a fresh workspace, and compare.

A page takes part by stating, in its YAML front matter, the environment its outputs were
captured in::

    ---
    docs_test:
      env: {COLUMNS: "100"}      # variables the commands run with (nothing else of ours leaks in)
      relay: 2525                # an aiosmtpd on loopback stands in for the relay at this port
      ports: [8025]              # other ports the page uses: replaced by free ones
      copy: [examples]           # repo files or folders copied into the workspace as well
      start: empty               # optional: begin in an empty folder, not in the workspace
    ---

Then every fenced ``console`` block of the page is run: ``$ command`` lines (a trailing
backslash continues one), each followed by the output it prints. A command ending in ``&``
runs in the background: the test waits until it has printed as many lines as the page shows.
A fenced block with a relative ``title="path"`` (``toml title="campaigns/first.toml"``) is
written into the current folder at that point, so the page shows every file its commands
use; a block whose only line is a snippet (``--8<-- "examples/客户.csv"``, which MkDocs
replaces with the file) is written with that repository file's content.

All commands run in one ``bash`` (so ``export`` and ``cd`` carry over, as in a reader's
terminal) inside a copy of the repository's workspace (``mailer.toml``, ``campaigns/``,
``templates/``), whose absolute path reads as ``~/lotus-tea``. With ``start: empty`` they
begin instead in an empty folder that reads as ``~`` (a new user's first day: ``mailer init``
makes the workspace). Outputs are compared after ``normalise``: timestamps, durations, rates
and ports are made generic.

``python -m tests.docs.runner --update docs/tutorial.md`` runs a page and writes the real
outputs into it (how examples are captured; review the diff before committing).
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
# What a reader's workspace holds when the docs begin: the repository's example workspace.
WORKSPACE_PARTS = ("mailer.toml", "campaigns", "templates")
# How the pages name the workspace folder when an absolute path shows.
SHOWN_WORKSPACE = "~/lotus-tea"
# ... and the empty folder a ``start: empty`` page begins in.
SHOWN_EMPTY = "~"
STARTS = ("workspace", "empty")
COMMAND_TIMEOUT = 120.0

# Applied to the page's output and to the real output alike, in this order.
NORMALISE: list[tuple[str, str]] = [
    (r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?Z?", "<stamp>"),  # run times, created-at
    (r"\b\d+(\.\d+)? (messages|msg)/s\b", "<rate>"),
    (r"\b\d+(\.\d+)? (ms|s)\b", "<time>"),
    (r"(127\.0\.0\.1|localhost):\d+", r"\1:<port>"),
    (r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC", "<date> <hh:mm> UTC"),  # e.g. an A/B test's end
    # A send that straddles a minute splits its count: which minute, and how many in it.
    (r"busiest minute \d\d:\d\d \(\d+\)", "busiest minute <hh:mm> (<n>)"),
]

_FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})\s*(?P<info>.*)$")
_TITLE = re.compile(r'title="(?P<title>[^"]+)"')
# A code block that is only a pymdownx.snippets include: MkDocs shows the file's content.
_SNIPPET = re.compile(r'^-{1,}8<-{1,}\s+"(?P<path>[^"]+)"\s*$')


@dataclass
class Command:
    """One ``$ command`` of a console block and the output the page shows for it."""

    line: int  # 1-based line of the ``$`` in the page
    text: str
    expected: list[str]
    # Where the expected output sits in the page (indexes into its lines), for --update.
    out_start: int = 0
    out_end: int = 0
    indent: str = ""

    @property
    def background(self) -> bool:
        """Whether the command runs in the background (ends with ``&``)."""
        return self.text.rstrip().endswith("&") and not self.text.rstrip().endswith("&&")


@dataclass
class FileBlock:
    """A code block with a relative ``title="path"``: written into the workspace."""

    line: int
    path: str
    content: str


@dataclass
class Page:
    """A tested page: its setup (front matter) and its steps in order."""

    path: Path
    setup: dict[str, Any]
    steps: list[Command | FileBlock]
    lines: list[str]

    @property
    def commands(self) -> list[Command]:
        """The console commands of the page."""
        return [step for step in self.steps if isinstance(step, Command)]


@dataclass
class Drift:
    """A command whose output is not what the page shows."""

    page: Path
    command: Command
    diff: str


@dataclass
class Outcome:
    """What running a page found: every command's real output, and the drifts."""

    page: Page
    actual: dict[int, list[str]] = field(default_factory=dict)  # by the command's line
    drifts: list[Drift] = field(default_factory=list)

    def report(self) -> str:
        """The drifts, each with the page line, the command and a diff (page → real)."""
        parts = [
            f"{len(self.drifts)} of {len(self.page.commands)} example(s) of "
            f"{self.page.path.relative_to(REPO) if self.page.path.is_relative_to(REPO) else self.page.path}"
            " print something else now (rerun with `python -m tests.docs.runner --update PAGE` "
            "when the change is intended):"
        ]
        for drift in self.drifts:
            parts.append(f"\nline {drift.command.line}: $ {drift.command.text}\n{drift.diff}")
        return "\n".join(parts)


def front_matter(text: str) -> dict[str, Any]:
    """The YAML front matter of a Markdown page ({} without one)."""
    if not text.startswith("---\n"):
        return {}
    end = text.find("\n---\n", 4)
    if end == -1:
        return {}
    loaded = yaml.safe_load(text[4:end])
    return loaded if isinstance(loaded, dict) else {}


def marked_pages(docs: Path = DOCS) -> list[Path]:
    """Every page under ``docs`` whose front matter has ``docs_test`` (incoming/ excluded)."""
    pages = []
    for path in sorted(docs.rglob("*.md")):
        if "incoming" in path.relative_to(docs).parts:
            continue
        if "docs_test" in front_matter(path.read_text(encoding="utf-8")):
            pages.append(path)
    return pages


def parse_page(path: Path) -> Page:
    """A page's console commands and workspace files, in order."""
    text = path.read_text(encoding="utf-8")
    setup = front_matter(text).get("docs_test") or {}
    lines = text.split("\n")
    steps: list[Command | FileBlock] = []
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, fence, info = opening["indent"], opening["fence"], opening["info"].strip()
        end = i + 1
        while end < len(lines) and lines[end].strip() != fence:
            end += 1
        body = [
            line[len(indent) :] if line.startswith(indent) else line for line in lines[i + 1 : end]
        ]
        language = info.split()[0] if info else ""
        title = _TITLE.search(info)
        if language == "console":
            steps.extend(_commands(body, first=i + 1, indent=indent, path=path))
        elif title and not title["title"].startswith(("/", "~")):
            steps.append(FileBlock(i + 1, title["title"], _file_content(body)))
        i = end + 1
    return Page(path, setup, steps, lines)


def _file_content(body: list[str]) -> str:
    """A titled block's content: its lines, or the repository file a lone snippet names."""
    snippet = _SNIPPET.match(body[0]) if len(body) == 1 else None
    if snippet:
        return (REPO / snippet["path"]).read_text(encoding="utf-8")
    return "\n".join(body) + "\n"


def _commands(body: list[str], *, first: int, indent: str, path: Path) -> list[Command]:
    """The ``$`` commands of one console block; ``first`` is the index of its first line."""
    commands: list[Command] = []
    j = 0
    while j < len(body):
        line = body[j]
        if not line.startswith("$ "):
            if commands:
                commands[-1].expected.append(line)
                commands[-1].out_end = first + j + 1
            elif line.strip():
                raise ValueError(f"{path}:{first + j + 1}: console output before any `$ ` command")
            j += 1
            continue
        start = j
        text = line[2:]
        while text.endswith("\\") and j + 1 < len(body):
            j += 1
            text += "\n" + body[j]
        command = Command(start + first + 1, text, [], first + j + 1, first + j + 1, indent)
        commands.append(command)
        j += 1
    for command in commands:
        # Blank lines between one command's output and the next `$` are layout, not output.
        while command.expected and not command.expected[-1].strip():
            command.expected.pop()
            command.out_end -= 1
    return commands


def normalise(lines: list[str]) -> list[str]:
    """Output made comparable: generic times, rates, ports and stamps; no trailing spaces."""
    out = []
    for line in lines:
        for pattern, replacement in NORMALISE:
            line = re.sub(pattern, replacement, line)
        out.append(line.rstrip())
    while out and not out[-1]:
        out.pop()
    return out


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Shell:
    """One ``bash`` that runs the page's commands in turn, like a reader's terminal."""

    def __init__(self, cwd: Path, env: dict[str, str], logs: Path):
        self.logs = logs
        self._lines: queue.Queue[str | None] = queue.Queue()
        # Its own session, so that every process the page started is ended with it.
        self.proc = subprocess.Popen(
            ["bash", "--noprofile", "--norc"],
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            errors="replace",
            start_new_session=True,
        )
        threading.Thread(target=self._read, daemon=True).start()
        self._background = 0

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def _send(self, script: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(script)
        self.proc.stdin.flush()

    def run(self, command: str, timeout: float = COMMAND_TIMEOUT) -> list[str]:
        """Run a command to its end; its stdout and stderr, as a terminal would show them."""
        sentinel = f"__docs_test_done_{uuid.uuid4().hex}__"
        # stdin from /dev/null: a prompt must not read the next commands.
        self._send(f"{{\n{command}\n}} </dev/null 2>&1\nprintf '\\n%s\\n' '{sentinel}'\n")
        output: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                return [*output, f"<docs test: no end after {timeout:.0f} s>"]
            if line is None:
                return [*output, "<docs test: the shell ended>"]
            if line == sentinel:
                break
            output.append(line)
        if output and output[-1] == "":
            output.pop()  # the newline printed before the sentinel
        return output

    def start(self, command: str, lines: int, timeout: float = COMMAND_TIMEOUT) -> list[str]:
        """Start a background command; return once it printed ``lines`` lines (at least one)."""
        self._background += 1
        log = self.logs / f"background-{self._background}.log"
        body = command.rstrip()[:-1]
        self._send(f"{{\n{body}\n}} </dev/null >'{log}' 2>&1 &\n")
        wanted = max(lines, 1)
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
            if text.count("\n") >= wanted:
                break
            time.sleep(0.05)  # waiting for the server's first lines, with a deadline
        else:
            return [
                *text.splitlines(),
                f"<docs test: fewer than {wanted} line(s) in {timeout:.0f} s>",
            ]
        return text.splitlines()[:wanted]

    def close(self) -> None:
        """End the shell and everything it started (its own process group)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


def start_folder(setup: dict[str, Any]) -> tuple[str, str]:
    """Where a page begins (``workspace`` or ``empty``) and how its path is shown."""
    start = setup.get("start", "workspace")
    if start not in STARTS:
        raise ValueError(f"docs_test start: {start!r} is not one of {', '.join(STARTS)}")
    return start, SHOWN_EMPTY if start == "empty" else SHOWN_WORKSPACE


def _workspace(root: Path, setup: dict[str, Any]) -> Path:
    """The folder a page's commands begin in, filled as its front matter says."""
    start, _ = start_folder(setup)
    workspace = root / ("start" if start == "empty" else "lotus-tea")
    workspace.mkdir()
    parts = WORKSPACE_PARTS if start == "workspace" else ()
    for part in (*parts, *setup.get("copy", [])):
        source = REPO / part
        (workspace / part).parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, workspace / part)
        else:
            shutil.copy2(source, workspace / part)
    return workspace


def _environment(root: Path, setup: dict[str, Any]) -> dict[str, str]:
    home = root / "home"
    home.mkdir()
    env = {
        # The interpreter's folder first: `mailer` is the one installed from this tree.
        "PATH": os.pathsep.join(
            [str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"]
        ),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "TZ": "UTC",
        # A background server's first lines must reach its log before it ends.
        "PYTHONUNBUFFERED": "1",
    }
    env.update({key: str(value) for key, value in (setup.get("env") or {}).items()})
    return env


def _ports(command: str, ports: dict[int, int]) -> str:
    for shown, real in ports.items():
        command = re.sub(rf"(?<=[:= ]){shown}\b", str(real), command)
    return command


def _shown(
    lines: list[str], workspace: Path, ports: dict[int, int], name: str = SHOWN_WORKSPACE
) -> list[str]:
    """Real output as the page would show it: its start folder's path and its port numbers."""
    shown = []
    for line in lines:
        line = line.replace(str(workspace), name)
        for page_port, real in ports.items():
            line = re.sub(rf"(?<=[: ]){real}\b", str(page_port), line)
        shown.append(line.rstrip())
    return shown


def run_page(page: Page, root: Path) -> Outcome:
    """Run every step of ``page`` in a fresh workspace under ``root``; the drifts found."""
    from tests.smtp_server import SmtpServer

    setup = page.setup
    workspace = _workspace(root, setup)
    logs = root / "logs"
    logs.mkdir()
    relay = SmtpServer().start() if setup.get("relay") else None
    ports = {int(port): _free_port() for port in setup.get("ports", [])}
    if relay is not None:
        ports[int(setup["relay"])] = relay.port
    shell = Shell(workspace, _environment(root, setup), logs)
    outcome = Outcome(page)
    try:
        for step in page.steps:
            if isinstance(step, FileBlock):
                # Relative to where the reader is now (a page may `cd` into a new workspace).
                here = Path(shell.run("pwd")[-1])
                target = here / step.path
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(step.content, encoding="utf-8")
                continue
            command = _ports(step.text, ports)
            if step.background:
                real = shell.start(command, len(step.expected))
            else:
                real = shell.run(command)
            actual = _shown(real, workspace, ports, start_folder(setup)[1])
            outcome.actual[step.line] = actual
            want, got = normalise(step.expected), normalise(actual)
            if want != got:
                diff = "\n".join(difflib.unified_diff(want, got, "page", "real", lineterm="", n=2))
                outcome.drifts.append(Drift(page.path, step, diff))
    finally:
        shell.close()
        if relay is not None:
            relay.close()
    return outcome


def update_page(outcome: Outcome) -> str:
    """The page's text with each drifted command's output replaced by the real one.

    Outputs that only differ in times, rates, ports or stamps are left as they are, so an
    update's diff shows what really changed.
    """
    lines = list(outcome.page.lines)
    drifted = {drift.command.line for drift in outcome.drifts}
    # From the bottom up, so earlier indexes stay valid.
    for command in sorted(outcome.page.commands, key=lambda c: c.out_start, reverse=True):
        real = outcome.actual.get(command.line)
        if real is None or command.line not in drifted:
            continue
        lines[command.out_start : command.out_end] = [
            (command.indent + line) if line else line for line in real
        ]
    return "\n".join(lines)


def main() -> None:
    """``python -m tests.docs.runner [--update] PAGE...``: run pages, report or write outputs."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("pages", nargs="+", type=Path)
    parser.add_argument(
        "--update", action="store_true", help="write the real outputs into the page"
    )
    args = parser.parse_args()
    failed = False
    for path in args.pages:
        page = parse_page(path.resolve())
        with tempfile.TemporaryDirectory(prefix="docs-test-") as root:
            outcome = run_page(page, Path(root))
        if args.update:
            path.write_text(update_page(outcome), encoding="utf-8")
            print(
                f"{path}: {len(page.commands)} command(s) run, {len(outcome.drifts)} output(s) rewritten"
            )
        elif outcome.drifts:
            failed = True
            print(outcome.report())
        else:
            print(f"{path}: {len(page.commands)} command(s), all as the page shows")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
