"""Which workspace a command works in, found the way git finds a repository.

A *workspace* is the folder that holds ``mailer.toml``: its settings, its
database (``mailer.db``), its outbox, its ``templates/`` and its ``.env``.
Commands search for ``mailer.toml`` from the current folder upwards, so they
work from any subfolder (``campaigns/``); ``MAILER_WORKSPACE`` (and the CLI's
``--workspace``) name the folder outright. Without any ``mailer.toml`` the
current folder is the workspace and the built-in demo settings apply.

``.env`` in the workspace holds secrets that must not be committed
(``MAILER_UNSUBSCRIBE_KEY``); ``read_dotenv`` parses it, and the caller puts
each variable into the environment unless the environment already has it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mailer.core.errors import ConfigError

SETTINGS_FILE = "mailer.toml"
WORKSPACE_ENV = "MAILER_WORKSPACE"
DOTENV = ".env"

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Workspace:
    """The folder a command works in, and how it was chosen."""

    root: Path
    how: str  # "given" (MAILER_WORKSPACE / --workspace), "found" or "none" (no mailer.toml)

    @property
    def has_settings(self) -> bool:
        """True when the folder holds a ``mailer.toml``."""
        return (self.root / SETTINGS_FILE).is_file()

    def describe(self, cwd: Path | None = None) -> str:
        """``~/shop (mailer.toml)``, or a warning that the demo settings apply."""
        shown = _shown(self.root, cwd or Path.cwd())
        if self.has_settings:
            return f"{shown} ({SETTINGS_FILE})"
        return f"{shown} (no {SETTINGS_FILE} here or above: built-in demo settings)"


def find_workspace(start: Path | None = None, env: Mapping[str, str] | None = None) -> Workspace:
    """The workspace for a command run in ``start`` (default: the current folder).

    ``MAILER_WORKSPACE`` wins (it must be a folder); otherwise the nearest
    folder at or above ``start`` holding ``mailer.toml``; otherwise ``start``.
    """
    env = os.environ if env is None else env
    start = (start or Path.cwd()).absolute()
    given = env.get(WORKSPACE_ENV)
    if given:
        root = Path(given).expanduser()
        root = root if root.is_absolute() else start / root
        if not root.is_dir():
            raise ConfigError(
                f"the workspace {given!r} is not a folder",
                where=WORKSPACE_ENV,
                hint="name the folder that holds mailer.toml",
            )
        return Workspace(root, "given")
    for folder in (start, *start.parents):
        if (folder / SETTINGS_FILE).is_file():
            return Workspace(folder, "found")
    return Workspace(start, "none")


def read_dotenv(path: Path) -> dict[str, str]:
    """The ``NAME=value`` lines of a ``.env`` file (``export``, quotes and comments allowed).

    A line that is none of these raises ``ConfigError`` with its line number:
    a mistyped secret must not be dropped silently.
    """
    values: dict[str, str] = {}
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        return values
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path.name}: {exc}", where=str(path)) from None
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.removeprefix("export ").partition("=")
        name = name.strip()
        if not sep or not _NAME.fullmatch(name):
            raise ConfigError(
                "not a NAME=value line",
                where=f"{path}:{number}",
                hint="write one variable per line, e.g. MAILER_UNSUBSCRIBE_KEY=...",
            )
        values[name] = _unquoted(value.strip())
    return values


def load_dotenv(root: Path, environ: dict[str, str] | os._Environ[str]) -> list[str]:
    """Put ``root/.env``'s variables into ``environ`` where it has none; return their names.

    Real environment variables always win, so ``MAILER_UNSUBSCRIBE_KEY=... mailer ...``
    or a deployment's own secrets are never overridden by a file.
    """
    loaded = []
    for name, value in read_dotenv(root / DOTENV).items():
        if name not in environ:
            environ[name] = value
            loaded.append(name)
    return loaded


def _unquoted(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    # An unquoted value ends at a comment: KEY=abc  # note
    return re.split(r"\s+#", value, maxsplit=1)[0]


def _shown(root: Path, cwd: Path) -> str:
    """The path as short as it is clear: ``.``, ``..``, relative below cwd, ~, else absolute."""
    cwd = cwd.absolute()
    if root == cwd:
        return "."
    if cwd.is_relative_to(root):
        return "/".join([".."] * len(cwd.relative_to(root).parts))
    if root.is_relative_to(cwd):
        return str(root.relative_to(cwd))
    home = Path.home()
    return "~/" + str(root.relative_to(home)) if root.is_relative_to(home) else str(root)
