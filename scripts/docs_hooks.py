"""MkDocs hooks: the parts of the docs site that are generated at build time, never copied.

A page asks for a generated part with a marker on a line of its own:

- ``<!-- generated: cli-reference -->``: every command of the Typer app, from the app itself
  (usage, help text, arguments and options exactly as ``--help`` words them, examples);
- ``<!-- generated: contact-columns -->``: the contact fields and the column names the
  importer reads as each (from ``mailer.audience.parse``);
- ``<!-- generated: doctor-check-ids -->``: the doctor's stable check ids and what each checks
  (from ``mailer.doctor.ids.CHECK_IDS``);
- a page with ``docs_test`` front matter (its console examples are run by tests/docs) gets a
  note under its title saying so, and in what environment;
- ``<!-- generated: stage-diagram -->`` and ``<!-- generated: stage-rules -->``: the layers and
  import rules of ``[tool.importlinter]`` in pyproject.toml, as a picture and as a table.

mkdocs.yml names this file under ``hooks:``; ``python scripts/docs_hooks.py`` prints the CLI
reference (to look at it without building the site).
"""

from __future__ import annotations

import html
import re
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
MARKER = re.compile(r"^<!-- generated: (?P<name>[a-z-]+) -->$", re.MULTILINE)


# --- the CLI reference -------------------------------------------------------------------


@dataclass
class HelpText:
    """A command's help split the way the reference shows it."""

    summary: str
    body: list[str]  # paragraphs; verbatim ones start with "\b"
    examples: list[str]


def split_help(text: str) -> HelpText:
    """Summary (first paragraph), the other paragraphs, and the lines under ``Examples:``."""
    paragraphs = [p.strip("\n") for p in re.split(r"\n\s*\n", text.strip())]
    summary = " ".join(paragraphs[0].split()) if paragraphs else ""
    body: list[str] = []
    examples: list[str] = []
    rest = paragraphs[1:]
    i = 0
    while i < len(rest):
        paragraph = rest[i]
        if paragraph.strip() == "Examples:":
            for block in rest[i + 1 :]:
                examples.extend(
                    line.strip() for line in block.replace("\b", "").splitlines() if line.strip()
                )
            break
        body.append(paragraph)
        i += 1
    return HelpText(summary, body, examples)


def _paragraph_md(paragraph: str) -> str:
    if paragraph.startswith("\b"):
        lines = paragraph[1:].strip("\n").splitlines()
        return "```text\n" + "\n".join(line.rstrip() for line in lines) + "\n```"
    return _escape(" ".join(paragraph.split()))


def _escape(text: str) -> str:
    """Help text as Markdown text: literal, never markup or HTML."""
    text = html.escape(text, quote=False)
    return re.sub(r"([\\*_\[\]|])", r"\\\1", text)


def _code(text: str) -> str:
    """Inline code that survives backticks and table pipes inside it."""
    text = text.replace("|", "\\|")
    fence = "``" if "`" in text else "`"
    return f"{fence} {text} {fence}" if fence == "``" else f"`{text}`"


def iter_commands() -> list[tuple[str, Any, Any]]:
    """(command path, click command, context) for every command and group, depth first."""
    import typer

    from mailer.cli import app

    root = typer.main.get_command(app)
    context = root.context_class  # Typer may vendor its own click
    found: list[tuple[str, Any, Any]] = []

    def walk(command: Any, ctx: Any) -> None:
        found.append((ctx.command_path, command, ctx))
        if hasattr(command, "list_commands"):
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                if sub is not None and not sub.hidden:
                    walk(sub, context(sub, info_name=name, parent=ctx))

    walk(root, context(root, info_name="mailer", terminal_width=80))
    return found


def _anchor(path: str) -> str:
    return path.replace(" ", "-")


def cli_reference() -> str:
    """The reference of every command, as Markdown."""
    commands = iter_commands()
    out = ["| command | what it does |", "|---|---|"]
    for path, command, _ in commands[1:]:
        summary = split_help(command.help or "").summary
        out.append(f"| [{_code(path)}](#{_anchor(path)}) | {_escape(summary)} |")
    for path, command, ctx in commands[1:]:
        out.append("")
        out.append(_command_md(path, command, ctx))
    return "\n".join(out)


def _command_md(path: str, command: Any, ctx: Any) -> str:
    text = split_help(command.help or "")
    usage = " ".join([path, *command.collect_usage_pieces(ctx)])
    level = "###" if path.count(" ") > 1 else "##"
    parts = [f"{level} {path} {{#{_anchor(path)}}}", "", _escape(text.summary), ""]
    parts += [f"```text\nUsage: {usage}\n```", ""]
    for paragraph in text.body:
        parts += [_paragraph_md(paragraph), ""]
    if hasattr(command, "list_commands"):
        subs = [(name, command.get_command(ctx, name)) for name in command.list_commands(ctx)]
        parts += ["| command | what it does |", "|---|---|"]
        for name, sub in subs:
            sub_path = f"{path} {name}"
            summary = _escape(split_help(sub.help or "").summary)
            parts.append(f"| [{_code(sub_path)}](#{_anchor(sub_path)}) | {summary} |")
        parts.append("")
    rows = [param.get_help_record(ctx) for param in command.params]
    rows = [row for row in rows if row is not None]
    if rows:
        parts += ["| argument or option | meaning |", "|---|---|"]
        parts += [
            f"| {_code(names)} | {_escape(' '.join(meaning.split()))} |" for names, meaning in rows
        ]
        parts.append("")
    if text.examples:
        parts += ["**Examples**", "", "```sh", *text.examples, "```", ""]
    return "\n".join(parts).rstrip()


# --- the architecture --------------------------------------------------------------------


def contracts() -> list[dict[str, Any]]:
    """The import-linter contracts of pyproject.toml."""
    with (REPO / "pyproject.toml").open("rb") as handle:
        data = tomllib.load(handle)
    return list(data["tool"]["importlinter"]["contracts"])


def layers() -> list[list[str]]:
    """The stages, top layer first; stages in one layer are independent of each other."""
    contract = next(c for c in contracts() if c["type"] == "layers")
    return [[name.strip() for name in layer.split("|")] for layer in contract["layers"]]


def stage_rules() -> str:
    """A table: each stage and the stages it may import (everything in the layers below)."""
    stack = layers()
    forbidden = next(c for c in contracts() if c["type"] == "forbidden")
    rows = ["| stage | may import | may not import |", "|---|---|---|"]
    for depth, layer in enumerate(stack):
        below = [name for lower in stack[depth + 1 :] for name in lower]
        above = [name for upper in stack[:depth] for name in upper]
        siblings = [name for name in layer if len(layer) > 1]
        for name in layer:
            may = below
            if name in forbidden["source_modules"]:
                may = [m for m in below if m not in forbidden["forbidden_modules"]]
            may_not = [*above, *[s for s in siblings if s != name]]
            if name in forbidden["source_modules"]:
                may_not += [m for m in below if m in forbidden["forbidden_modules"]]
            rows.append(
                f"| `{name}` | {', '.join(f'`{m}`' for m in may) or 'the standard library only'}"
                f" | {', '.join(f'`{m}`' for m in may_not) or '—'} |"
            )
    names = [c["name"] for c in contracts()]
    rows += [
        "",
        "The contracts, as `lint-imports` checks them in CI: "
        + "; ".join(f"*{n}*" for n in names)
        + ".",
    ]
    return "\n".join(rows)


def stage_diagram() -> str:
    """An SVG of the layers, top to bottom, with the direction imports may point."""
    stack = layers()
    box_w, box_h, gap_x, gap_y, margin = 170, 34, 14, 22, 20
    widest = max(len(layer) for layer in stack)
    width = margin * 2 + widest * box_w + (widest - 1) * gap_x + 120
    height = margin * 2 + len(stack) * box_h + (len(stack) - 1) * gap_y
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="mailer stages, top layer first; imports point down" '
        f'style="max-width:{width}px;width:100%;font-family:sans-serif;font-size:14px">'
    ]
    for depth, layer in enumerate(stack):
        y = margin + depth * (box_h + gap_y)
        row_w = len(layer) * box_w + (len(layer) - 1) * gap_x
        x0 = margin + (widest * box_w + (widest - 1) * gap_x - row_w) / 2
        for k, name in enumerate(layer):
            x = x0 + k * (box_w + gap_x)
            parts.append(
                f'<rect x="{x}" y="{y}" width="{box_w}" height="{box_h}" rx="6" '
                f'fill="#e8eaf6" stroke="#3f51b5"/>'
                f'<text x="{x + box_w / 2}" y="{y + box_h / 2 + 5}" text-anchor="middle" '
                f'fill="#1a237e">{html.escape(name.removeprefix("mailer."))}</text>'
            )
        if depth < len(stack) - 1:
            tip = y + box_h + gap_y - 2
            stroke = 'stroke="#3f51b5" stroke-width="2"'
            cx = margin + (widest * box_w + (widest - 1) * gap_x) / 2
            parts.append(
                f'<line x1="{cx}" y1="{y + box_h}" x2="{cx}" y2="{tip - 2}" {stroke}/>'
                f'<path d="M{cx - 5},{tip - 7} L{cx},{tip} L{cx + 5},{tip - 7}" fill="none" '
                f"{stroke}/>"
            )
    label_x = width - margin - 100
    parts.append(
        f'<text x="{label_x}" y="{margin + 20}" fill="#555">imports</text>'
        f'<text x="{label_x}" y="{margin + 38}" fill="#555">point down</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


# --- the contacts file ------------------------------------------------------------------


def contact_columns() -> str:
    """A table: each built-in contact field and the column names that fill it."""
    from mailer.audience.columns import recognised_names

    rows = ["| field | column names read as it |", "|---|---|"]
    for name, aliases in recognised_names().items():
        rows.append(f"| `{name}` | {', '.join(f'`{alias}`' for alias in aliases)} |")
    return "\n".join(rows)


def doctor_check_ids() -> str:
    """A table: every stable id of a doctor check, and what it checks."""
    from mailer.doctor.ids import CHECK_IDS

    rows = ["| id | what it checks |", "|---|---|"]
    for check_id, meaning in CHECK_IDS.items():
        rows.append(f"| `{check_id}` | {_escape(meaning)} |")
    return "\n".join(rows)


GENERATORS = {
    "cli-reference": cli_reference,
    "contact-columns": contact_columns,
    "doctor-check-ids": doctor_check_ids,
    "stage-rules": stage_rules,
    "stage-diagram": stage_diagram,
}


def tested_note(setup: dict[str, Any]) -> str:
    """What a tested page's examples ran in, for its readers (from its ``docs_test``)."""
    env = setup.get("env") or {}
    said = [f"`{key}={value}`" for key, value in env.items()]
    if "COLUMNS" in env:
        said = [f"a terminal {env['COLUMNS']} columns wide"] + [
            s for s in said if "COLUMNS" not in s
        ]
    if setup.get("relay"):
        port = setup["relay"]
        said.append(
            f"a local SMTP server standing in for the relay at 127.0.0.1:{port} "
            f"(`python -m aiosmtpd -n -l 127.0.0.1:{port}` in another terminal does the same)"
        )
    extra = [f"`{part}`" for part in setup.get("copy", [])]
    if setup.get("start") == "empty":
        where = "an empty folder"
        where += f" (holding only {', '.join(extra)})" if extra else ""
    else:
        where = "a fresh copy of the example workspace (`mailer.toml`, `campaigns/`, `templates/`"
        where += f", and {', '.join(extra)})" if extra else ")"
    return (
        '!!! info "Every output on this page is real"\n'
        f"    The test suite runs each command of this page, in order, in {where}, "
        f"with {', '.join(said) or 'nothing else set'}, and fails when one prints something "
        "else. Times, rates, ports and dates differ from run to run; the rest should match "
        "what you see.\n"
    )


def on_page_markdown(markdown: str, page: Any = None, **_: Any) -> str:
    """MkDocs hook: generated parts for their markers; a tested page's environment, said."""

    def generate(match: re.Match[str]) -> str:
        name = match["name"]
        if name not in GENERATORS:
            raise ValueError(f"unknown generated part {name!r} (known: {', '.join(GENERATORS)})")
        return GENERATORS[name]()

    markdown = MARKER.sub(generate, markdown)
    setup = (getattr(page, "meta", None) or {}).get("docs_test")
    if setup is not None:
        # Under the page's title: the first line is its "# heading".
        title, _, rest = markdown.partition("\n")
        markdown = f"{title}\n\n{tested_note(setup)}{rest}"
    return markdown


if __name__ == "__main__":
    sys.stdout.write(cli_reference() + "\n")
