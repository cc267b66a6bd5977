"""`mailer --help` and every command's help: whole summaries, examples that work, one wording.

- In an 80-column terminal, every command's summary shows whole in its group's command list
  (click cuts a summary that does not fit with "...").
- Every command and group has an ``Examples:`` section, and each example names a real command
  with options that command has.
- An option spelled the same means the same: one help text for it everywhere (except the few
  whose meaning differs by command), defaults shown one way (Typer's ``[default: ...]``), and
  every ``--yes`` also answers to ``-y``.
"""

from __future__ import annotations

import re
import shlex
from collections import defaultdict
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from mailer.cli import app

runner = CliRunner()
ROOT = typer.main.get_command(app)
# Typer may vendor its own click: take its Context class from the command itself.
Context = ROOT.context_class

# Options whose meaning really differs by command (what is listed, limited, written, served).
MEANS_DIFFERENT_THINGS = {"--limit", "--list", "--out", "--port", "--host"}
# `mailer worker --json` prints one line per pass, not one document; `mailer init --yes`
# skips init's questions, not a confirmation, and its --force overwrites files.
OWN_MEANING = {
    ("mailer worker", "--json"),
    ("mailer init", "--yes"),
    ("mailer init", "--force"),
}


def is_group(command: Any) -> bool:
    return hasattr(command, "list_commands")


def commands() -> list[tuple[str, Any, Any]]:
    """(path, command, context) of every command and group under `mailer`."""
    found: list[tuple[str, Any, Any]] = []

    def walk(command: Any, ctx: Any) -> None:
        found.append((ctx.command_path, command, ctx))
        if is_group(command):
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                walk(sub, Context(sub, info_name=name, parent=ctx))

    walk(ROOT, Context(ROOT, info_name="mailer"))
    return found


ALL = commands()
GROUPS = [(path, cmd) for path, cmd, _ in ALL if is_group(cmd)]


def first_paragraph(text: str) -> str:
    return " ".join(re.split(r"\n\s*\n", text.strip())[0].split())


def test_there_are_commands_to_check() -> None:
    assert len(ALL) >= 37  # mailer itself and its 36 commands and groups (today)


@pytest.mark.parametrize("path,group", GROUPS, ids=[path for path, _ in GROUPS])
def test_every_summary_fits_whole_in_an_80_column_help(path: str, group: Any) -> None:
    args = path.split()[1:]
    result = runner.invoke(app, [*args, "--help"], terminal_width=80)
    assert result.exit_code == 0, result.output
    listing = result.output.split("\nCommands:\n", 1)[1]
    rows = dict(re.findall(r"^  (\S+)\s+(.+)$", listing, re.MULTILINE))
    ctx = Context(group, info_name=path)
    assert set(rows) == set(group.list_commands(ctx))
    for name, shown in rows.items():
        whole = first_paragraph(group.get_command(ctx, name).help or "")
        assert shown == whole, f"`{path} --help` cuts the summary of {name!r}: {shown!r}"
        assert not shown.endswith(("...", "…"))


def examples(help_text: str) -> list[str]:
    """The lines under ``Examples:`` in a help text."""
    if "\nExamples:\n" not in help_text:
        return []
    block = help_text.split("\nExamples:\n", 1)[1]
    return [line.strip() for line in block.replace("\b", "").splitlines() if line.strip()]


def resolve(words: list[str]) -> tuple[Any, Any, list[str]]:
    """The command an example runs, its context, and the words after the command's name."""
    command, ctx = ROOT, Context(ROOT, info_name="mailer")
    words = words[1:]
    while is_group(command):
        assert words, "an example must name a command of the group"
        sub = command.get_command(ctx, words[0])
        assert sub is not None, f"no command {words[0]!r} in {ctx.command_path}"
        command, ctx = sub, Context(sub, info_name=words[0], parent=ctx)
        words = words[1:]
    return command, ctx, words


@pytest.mark.parametrize("path,command", [(p, c) for p, c, _ in ALL], ids=[p for p, _, _ in ALL])
def test_every_command_has_examples_that_name_real_options(path: str, command: Any) -> None:
    found = examples(command.help or "")
    assert found, f"`{path} --help` has no Examples: section"
    for example in found:
        words = shlex.split(example.split("  #")[0])
        assert words[0] == "mailer", example
        target, _, rest = resolve(words)
        if path != "mailer" and not is_group(command):
            assert target is command, f"an example of `{path}` runs another command: {example}"
        known = {opt for param in target.params for opt in (*param.opts, *param.secondary_opts)}
        for word in rest:
            if word.startswith("-"):
                assert word.split("=")[0] in known, f"{example}: {word} is not an option of it"


def test_the_examples_show_in_the_help_as_written() -> None:
    result = runner.invoke(app, ["send", "--help"], terminal_width=80)
    assert "Examples:\n\n    mailer send campaigns/promotion.toml\n" in result.output


def test_one_option_name_one_wording_one_default_style() -> None:
    wordings: dict[str, set[str]] = defaultdict(set)
    for path, command, _ in ALL:
        for param in command.params:
            if param.param_type_name != "option":
                continue
            name = next(o for o in (*param.opts, *param.secondary_opts) if o.startswith("--"))
            text = param.help or ""
            # Defaults go through Typer (show_default), which words them one way: [default: ...].
            assert "default" not in text.lower(), f"{path} {name}: a default written by hand"
            if name == "--yes":
                assert "-y" in param.opts + param.secondary_opts, f"{path} --yes without -y"
            if name not in MEANS_DIFFERENT_THINGS and (path, name) not in OWN_MEANING:
                wordings[name].add(text)
    differing = {name: texts for name, texts in wordings.items() if len(texts) > 1}
    assert not differing, differing


def test_a_bracketed_word_in_a_message_is_printed_not_swallowed(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "campaigns").mkdir()
    result = runner.invoke(app, ["schedule", "list"])
    assert "has a [schedule] table" in result.output
