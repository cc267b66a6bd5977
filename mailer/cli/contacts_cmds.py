"""Audience commands: ``contacts ...``, ``suppress``, ``lists`` and ``segment ...``.

Each command opens the workspace database (``--db``, else ``MAILER_DB``, else
``[store] path`` in mailer.toml, else ``mailer.db``), calls one core function
from ``mailer.audience.selection*`` / ``mailer.audience.segments`` and prints the result.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from mailer.cli.app import app, console, run

contacts_app = typer.Typer(
    help="Import, list, show, export and forget contacts.", no_args_is_help=True
)
segment_app = typer.Typer(
    help="Segments: expressions over contact fields; counts, samples, RFM grid.",
    no_args_is_help=True,
)
app.add_typer(contacts_app, name="contacts")
app.add_typer(segment_app, name="segment")

DbOpt = Annotated[
    Path | None,
    typer.Option(
        "--db",
        help="database file [default: $MAILER_DB, [store] path in mailer.toml, mailer.db]",
        show_default=False,
    ),
]
ListOpt = Annotated[str | None, typer.Option("--list", help="only contacts in this list")]
SHOWN_REJECTS = 10


def open_db(db: Path | None) -> sqlite3.Connection:
    """Open the workspace database the settings point at (flag > env > mailer.toml > default)."""
    from mailer.audience.store import connect
    from mailer.core.settings import load_settings

    return connect(load_settings(db=db).db_path)


def _plain(text: str, style: str = "") -> Text:
    # Contact data may contain [brackets]: never let rich read it as markup.
    return Text(text, style=style)


def _say(text: str) -> None:
    """Print one message line as is: no markup, no wrapping (paths stay whole)."""
    console.print(Text(text), soft_wrap=True)


# -- contacts ----------------------------------------------------------------------
@contacts_app.command("import")
def import_(
    file: Annotated[
        Path, typer.Argument(help="CSV (header row) or JSON Lines file", metavar="FILE")
    ],
    list_name: Annotated[
        str | None, typer.Option("--list", help="add the contacts to this list")
    ] = None,
    rejects: Annotated[
        Path | None, typer.Option("--rejects", help="where to write rejected rows")
    ] = None,
    db: DbOpt = None,
) -> None:
    """Import contacts (one transaction); bad rows are reported with line numbers."""
    from mailer.audience.importer import import_contacts

    def action() -> None:
        result = import_contacts(open_db(db), file, list_name=list_name, rejects_path=rejects)
        _say(f"imported {file}: {result.rows} rows read")
        table = Table(show_header=False, box=None, padding=(0, 2))
        table.add_row("new", str(result.inserted))
        table.add_row("updated", str(result.updated))
        table.add_row("merged", f"{result.merged}  (same address again in the file)")
        table.add_row("rejected", str(len(result.rejected)))
        if result.list_name:
            table.add_row("list", _plain(result.list_name))
        console.print(table)
        if result.rejected:
            _say(f"rejected rows (all of them in {result.rejects_file}):")
            for reject in result.rejected[:SHOWN_REJECTS]:
                _say(f"  line {reject.line}: {reject.reason}")
            if len(result.rejected) > SHOWN_REJECTS:
                console.print(f"  ... and {len(result.rejected) - SHOWN_REJECTS} more")

    run(action)


def _short(value: Any, width: int = 30) -> str:
    # Lists from JSON Lines attributes may hold numbers: str() each item.
    if isinstance(value, list):
        text = ", ".join(str(v) for v in value)
    else:
        text = "" if value is None else str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


@contacts_app.command("list")
def list_(
    list_name: ListOpt = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="how many to show")] = 20,
    db: DbOpt = None,
) -> None:
    """Show contacts (first --limit of them) with their tags, orders and RFM scores."""
    from mailer.audience.admin import contact_rows, count_contacts
    from mailer.audience.rfm import load_cuts
    from mailer.audience.segments import contact_fields
    from mailer.audience.selection import utc_now

    def action() -> None:
        conn = open_db(db)
        rows = contact_rows(conn, list_name, limit=limit)
        today, cuts = utc_now().date(), load_cuts(conn)
        table = Table("#", "email", "name", "tags", "orders", "RFM")
        for row in rows:
            f = contact_fields(row, today, (), cuts)
            rfm = "{recency}{frequency}{monetary}".format(**f["rfm"])
            table.add_row(
                str(row["id"]), _plain(f["email"]), _plain(_short(f["name"])),
                _plain(_short(f["tags"])), _short(f["orders"]), rfm,
            )  # fmt: skip
        console.print(table)
        scope = f"list {list_name}" if list_name else "the database"
        _say(f"showing {len(rows)} of {count_contacts(conn)} contacts in {scope}")

    run(action)


@contacts_app.command("show")
def show(
    email: Annotated[str, typer.Argument(help="the contact's address", metavar="ADDRESS")],
    db: DbOpt = None,
) -> None:
    """Everything mailer knows about one address: fields, lists, suppression, sends."""
    from mailer.audience.admin import get_contact

    def action() -> None:
        info = get_contact(open_db(db), email)
        table = Table(show_header=False, box=None, padding=(0, 2))
        table.add_row("contact", f"#{info.contact_id}" if info.contact_id else "(erased)")
        for key, value in info.fields.items():
            shown = json.dumps(value, ensure_ascii=False) if isinstance(value, dict) else value
            table.add_row(key, _plain(_short(shown, 60)))
        table.add_row("lists", _plain(", ".join(info.lists) or "-"))
        s = info.suppression
        table.add_row("suppressed", _plain(f"{s['reason']} since {s['created_at']}" if s else "no"))
        table.add_row("sends", str(len(info.sends)))
        console.print(table)

    run(action)


@contacts_app.command("export")
def export(
    out: Annotated[Path | None, typer.Option("--out", "-o", help="file to write")] = None,
    fmt: Annotated[
        str | None,
        typer.Option("--format", help="jsonl or csv [default: from the --out suffix, else jsonl]"),
    ] = None,
    list_name: ListOpt = None,
    email: Annotated[
        str | None, typer.Option("--email", help="export one person's full record (JSON)")
    ] = None,
    db: DbOpt = None,
) -> None:
    """Export contacts (re-importable), or one person's full record with --email."""
    from mailer.audience.admin import export_contacts, get_contact
    from mailer.core.errors import AudienceError

    def action() -> None:
        conn = open_db(db)
        if email:
            info = get_contact(conn, email)
            record: dict[str, Any] = {"email": info.email, "fields": info.fields}
            record["lists"] = info.lists
            record |= {"suppression": info.suppression, "sends": info.sends}
            text = json.dumps(record, ensure_ascii=False, indent=2)
            if out is None:
                _say(text)
                return
            out.write_text(text + "\n", encoding="utf-8")
            _say(f"wrote {info.email}'s record to {out}")
            return
        if out is None:
            raise AudienceError("say where to write the export", hint="add --out contacts.jsonl")
        chosen = fmt or ("csv" if out.suffix.lower() == ".csv" else "jsonl")
        count = export_contacts(conn, out, list_name=list_name, fmt=chosen)
        _say(f"exported {count} contacts to {out}")

    run(action)


@contacts_app.command("forget")
def forget(
    email: Annotated[str, typer.Argument(help="the person's address", metavar="ADDRESS")],
    yes: Annotated[bool, typer.Option("--yes", help="do not ask for confirmation")] = False,
    db: DbOpt = None,
) -> None:
    """Erase a person's data (right to erasure); a suppressed address stays suppressed."""
    from mailer.audience.admin import erase_outbox_files, forget_contact
    from mailer.core.settings import load_settings

    if not yes and not typer.confirm(f"Erase all data about {email}?"):
        console.print("nothing erased")
        raise typer.Exit(1)

    def action() -> None:
        settings = load_settings(db=db)
        result = forget_contact(open_db(db), email)
        files = erase_outbox_files(settings.outbox, result.email)
        parts = ["contact erased" if result.contact_erased else "no contact record"]
        parts.append(f"{result.journal_rows} send-journal rows anonymised")
        parts.append(f"{len(files)} outbox files deleted")
        _say(f"forgot {result.email}: " + ", ".join(parts))
        if result.suppressed:
            console.print("the address stays on the suppression list")

    run(action)


# -- suppression and lists -------------------------------------------------------------
@app.command("suppress")
def suppress_cmd(
    target: Annotated[
        str, typer.Argument(help="an address, or a file of addresses", metavar="ADDRESS|FILE")
    ],
    reason: Annotated[
        str, typer.Option("--reason", help="unsubscribed, bounced, complained or manual")
    ] = "manual",
    db: DbOpt = None,
) -> None:
    """Never mail an address again (or every address in a file)."""
    from mailer.audience.selection import normalize_email, suppress, suppress_file
    from mailer.core.errors import AudienceError

    def action() -> None:
        conn = open_db(db)
        path = Path(target)
        if "@" not in target and not path.is_file():
            raise AudienceError(
                f"{target!r} is neither an address nor a file", hint="give an address or a file"
            )
        if path.is_file():
            result = suppress_file(conn, path, reason, source=f"cli:{path.name}")
            _say(f"suppressed {result.added} addresses from {path} ({reason})")
            if result.already:
                console.print(f"{result.already} were already suppressed")
            for reject in result.rejected[:SHOWN_REJECTS]:
                _say(f"  line {reject.line}: {reject.reason}")
            if len(result.rejected) > SHOWN_REJECTS:
                console.print(f"  ... and {len(result.rejected) - SHOWN_REJECTS} more")
            return
        address = normalize_email(target)
        if suppress(conn, address, reason, "cli"):
            _say(f"suppressed {address} ({reason})")
        else:
            _say(f"{address} was already suppressed")

    run(action)


@app.command("lists")
def lists_cmd(db: DbOpt = None) -> None:
    """Show the contact lists and how many contacts each has."""
    from mailer.audience.admin import list_lists

    def action() -> None:
        infos = list_lists(open_db(db))
        if not infos:
            console.print("no lists yet (import contacts with --list NAME)")
            return
        table = Table("list", "members", "created")
        for info in infos:
            table.add_row(_plain(info.name), str(info.members), info.created_at)
        console.print(table)

    run(action)


# -- segments ------------------------------------------------------------------------
SegmentArg = Annotated[
    str, typer.Argument(help="a segment expression or a saved segment's name", metavar="SEGMENT")
]


@segment_app.command("save")
def segment_save(
    name: Annotated[str, typer.Argument(help="name to save it under", metavar="NAME")],
    expression: Annotated[
        str, typer.Argument(help="e.g. \"'vip' in tags and orders >= 3\"", metavar="EXPRESSION")
    ],
    db: DbOpt = None,
) -> None:
    """Check a segment expression and save it by name."""
    from mailer.audience.segments import save_segment
    from mailer.audience.selection import count_segment, utc_now
    from mailer.delivery.journal import stamp

    def action() -> None:
        conn = open_db(db)
        save_segment(conn, name, expression, stamp(utc_now()))
        count = count_segment(conn, name)
        _say(f"saved segment {name}: {count} contacts match today")

    run(action)


@segment_app.command("count")
def segment_count(segment: SegmentArg, list_name: ListOpt = None, db: DbOpt = None) -> None:
    """Print how many contacts (not suppressed) match a segment."""
    from mailer.audience.selection import count_segment

    run(lambda: _say(str(count_segment(open_db(db), segment, list_name))))


@segment_app.command("show")
def segment_show(
    segment: SegmentArg,
    list_name: ListOpt = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="how many contacts to show")] = 10,
    db: DbOpt = None,
) -> None:
    """Show a sample of the recipients a segment selects, and who is held back."""
    from mailer.audience.selection import select_recipients
    from mailer.audience.store import connect
    from mailer.core.settings import load_settings

    def action() -> None:
        settings = load_settings(db=db)
        cap = settings.frequency_cap
        selection = select_recipients(
            connect(settings.db_path), list_name=list_name, segment=segment, frequency_cap=cap
        )
        sample = list(itertools.islice(selection.recipients, limit))
        table = Table("#", "email", "name", "tags", "orders", "last order", "RFM")
        for r in sample:
            f = r.fields
            table.add_row(
                str(r.contact_id), _plain(r.email), _plain(_short(r.name)),
                _plain(_short(f["tags"])), _short(f["orders"]), _short(f["last_order_at"]),
                "{recency}{frequency}{monetary}".format(**f["rfm"]),
            )  # fmt: skip
        console.print(table)
        held = (
            [f"{selection.suppressed_skipped} suppressed"] if selection.suppressed_skipped else []
        )
        if cap:
            held.append(
                f"{selection.capped} held back by the frequency cap of "
                f"{cap.max_messages} in {cap.days} days"
            )
        more = f" ({', '.join(held)})" if held else ""
        _say(f"showing {len(sample)} of {selection.selected}{more}")

    run(action)


@segment_app.command("list")
def segment_list(db: DbOpt = None) -> None:
    """Show the saved segments."""
    from mailer.audience.segments import list_segments

    def action() -> None:
        saved = list_segments(open_db(db))
        if not saved:
            console.print("no saved segments (mailer segment save NAME EXPR)")
            return
        table = Table("segment", "expression")
        for name, expression in saved:
            table.add_row(_plain(name), _plain(expression))
        console.print(table)

    run(action)


@segment_app.command("rfm")
def segment_rfm(db: DbOpt = None) -> None:
    """Print the 5x5 recency x frequency grid of contact counts (scores 1-5 by quintile)."""
    from mailer.audience.rfm import rfm_grid

    def action() -> None:
        grid = rfm_grid(open_db(db))
        table = Table(title="contacts by RFM score", caption="5 = most recent / most orders")
        table.add_column("recency \\ frequency")
        for f in range(1, 6):
            table.add_column(f"F{f}", justify="right")
        for r in range(5, 0, -1):
            table.add_row(f"R{r}", *(str(grid.cell(r, f)) for f in range(1, 6)))
        console.print(table)
        console.print(f"{grid.unscored} contacts without orders (RFM 0, not in the grid)")

    run(action)
