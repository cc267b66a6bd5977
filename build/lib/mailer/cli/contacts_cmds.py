"""Audience commands: ``contacts ...``, ``suppress``, ``lists`` and ``segment ...``.

Each command opens the workspace database (``--db``, else ``MAILER_DB``, else
``[store] path`` in mailer.toml, else ``mailer.db``), calls one core function
from ``mailer.audience.selection*`` / ``mailer.audience.segments`` and prints the result.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.cells import cell_len
from rich.table import Table
from rich.text import Text

from mailer.cli.app import app, console, run
from mailer.cli.options import DbOpt

contacts_app = typer.Typer(
    help="""Import, list, show, export and forget contacts.

Examples:

\b
  mailer contacts import contacts.csv --list customers
  mailer contacts show someone@example.com
""",
    no_args_is_help=True,
)
segment_app = typer.Typer(
    help="""Segments: conditions on contact fields.

Examples:

\b
  mailer segment count "'vip' in tags"
  mailer segment save best "rfm.monetary >= 4"
""",
    no_args_is_help=True,
)
app.add_typer(contacts_app, name="contacts")
app.add_typer(segment_app, name="segment")

ListOpt = Annotated[str | None, typer.Option("--list", help="only contacts in this list")]
SHOWN_REJECTS = 10

# What `contacts import --help` lists (tests/audience/test_columns.py keeps it equal to
# mailer.audience.columns; the CLI does not import the audience stage to say it).
IMPORT_EPILOG = """\b
Columns are read by name (any case; spaces, - and _ alike); the others become extra
fields, named after their column. Recognised names:
  email          email, e-mail, email address, e-mail address, mail, mail address,
                 邮箱, 电子邮件, 邮件地址, 电子邮箱, 邮箱地址, 电子邮件地址, 电邮,
                 郵箱, 電子郵件, 電子郵箱, 電郵
  first_name     first name, firstname, given name, first, fname, 名
  last_name      last name, lastname, surname, family name, last, lname, 姓, 姓氏
  name           name, full name, display name, 姓名, 名字, 全名, 客户姓名, 客戶姓名
  locale         locale, language, lang, 语言, 語言
  timezone       timezone, time zone, tz, 时区, 時區
  birthday       birthday, birth date, birthdate, date of birth, dob, 生日, 出生日期
  tags           tags, tag, 标签, 標籤
  orders         orders, order count, 订单数, 订单数量, 购买次数, 訂單數, 購買次數
  total_spent    total spent, spent, 消费金额, 消费总额, 累计消费, 总消费, 消費金額
  last_order_at  last order at, last order, last order date, last purchase, 最近购买,
                 最近购买日期, 最近下单, 最后购买, 最近購買
  phone          phone, mobile, tel, telephone, phone number, mobile phone, cell,
                 手机, 手机号, 手机号码, 电话, 电话号码, 联系电话, 手機, 電話
  city           city, town, 城市, 所在城市
Map any other column with --map COLUMN=FIELD (repeatable; FIELD - leaves it out).
A separator of , ; | or tab is read off the header line (Excel's semicolon CSV and
"Unicode text"); numbers in a ; or tab separated file may use a decimal comma."""


def _plain(text: str, style: str = "") -> Text:
    # Contact data may contain [brackets]: never let rich read it as markup.
    return Text(text, style=style)


def _say(text: str) -> None:
    """Print one message line as is: no markup, no wrapping (paths stay whole)."""
    console.print(Text(text), soft_wrap=True)


# -- contacts ----------------------------------------------------------------------
@contacts_app.command("import", epilog=IMPORT_EPILOG)
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
    encoding: Annotated[
        str | None,
        typer.Option(
            "--encoding",
            help="the file's encoding, e.g. gb18030, utf-16",
            show_default="detected",
        ),
    ] = None,
    mapping: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            metavar="COLUMN=FIELD",
            help="read COLUMN as FIELD (repeatable), e.g. --map 手机号=phone; FIELD - skips it",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="read and check every row; write nothing")
    ] = False,
    db: DbOpt = None,
) -> None:
    """Import contacts from a CSV or JSON Lines file.

    One transaction: interrupted, it changes nothing. Bad rows are reported with their line
    numbers and written to a rejects file; the good rows go in. The same address again
    updates the contact. Before writing, a table shows how each column is read.

    Examples:

    \b
      mailer contacts import contacts.csv --list customers
      mailer contacts import export.csv --encoding gb18030
      mailer contacts import 客户.csv --map 手机号=phone --dry-run
    """
    from mailer.services.contacts import import_file, inspect_file

    columns = run(lambda: _mapping(mapping or []))
    layout = run(lambda: inspect_file(file, encoding=encoding, mapping=columns))
    _show_layout(layout)
    result = run(
        lambda: import_file(
            file,
            list_name=list_name,
            rejects=rejects,
            db=db,
            encoding=encoding,
            mapping=columns,
            dry_run=dry_run,
        )
    )
    table = Table(show_header=False, box=None, padding=(0, 2))
    if result.dry_run:
        _say(f"dry run of {file}: {result.rows} rows read, nothing was written")
        table.add_row("contacts", f"{result.valid}  (distinct addresses that would be imported)")
    else:
        _say(f"imported {file}: {result.rows} rows read")
        table.add_row("new", str(result.inserted))
        table.add_row("updated", str(result.updated))
    table.add_row("merged", f"{result.merged}  (same address again in the file)")
    table.add_row("rejected", str(len(result.rejected)))
    if result.list_name and not result.dry_run:
        table.add_row("list", _plain(result.list_name))
    if result.encoding is not None and not result.encoding.encoding.startswith("utf-8"):
        table.add_row("encoding", result.encoding.describe())
    console.print(table)
    if result.encoding is not None and result.encoding.guessed:
        _say(
            f"note: the file is not UTF-8; it was read as {result.encoding.encoding} "
            "(a guess): if names look wrong, import it again with --encoding"
        )
    if result.rejected:
        where = f" (all of them in {result.rejects_file})" if result.rejects_file else ""
        _say(f"rejected rows{where}:")
        for reject in result.rejected[:SHOWN_REJECTS]:
            _say(f"  line {reject.line}: {reject.reason}")
        if len(result.rejected) > SHOWN_REJECTS:
            console.print(f"  ... and {len(result.rejected) - SHOWN_REJECTS} more")


def _mapping(pairs: list[str]) -> dict[str, str]:
    """``--map 手机号=phone`` pairs as a dict; a pair without ``=`` is refused."""
    from mailer.core.errors import AudienceError

    found: dict[str, str] = {}
    for pair in pairs:
        column, sep, name = pair.partition("=")
        if not sep or not column.strip():
            raise AudienceError(
                f"--map {pair!r} is not COLUMN=FIELD",
                hint="for example --map 手机号=phone, or --map 备注=- to leave a column out",
            )
        found[column.strip()] = name.strip()
    return found


def _show_layout(layout: Any) -> None:
    """The table "column -> field" with a few values, before anything is written."""
    separator = {",": "commas", ";": "semicolons", "\t": "tabs", "|": "bars"}
    how = "JSON Lines" if layout.jsonl else f"separated by {separator[layout.delimiter]}"
    if layout.decimal_comma:
        how += ", decimal commas"
    _say(f"reading {layout.path}: {layout.encoding.describe()}, {how}")
    rows = [("column", "field", "samples")]
    for column in layout.columns:
        if column.kind == "skip":
            target = "(left out)"
        elif column.kind == "attr":
            target = f"extra field {column.name}"
        else:
            target = column.name + (" (mapped)" if column.how == "mapped" else "")
        rows.append((column.header, target, ", ".join(_short(v, 24) for v in column.samples)))
    # Padded by display width (Chinese headers are two cells a character), never wrapped.
    widths = [max(cell_len(row[i]) for row in rows) for i in (0, 1)]
    for number, (header, target, samples) in enumerate(rows):
        arrow = " " if number == 0 else "→"
        line = f"  {_pad(header, widths[0])} {arrow} {_pad(target, widths[1])}  {samples}"
        _say(line.rstrip())


def _pad(text: str, width: int) -> str:
    return text + " " * (width - cell_len(text))


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
    """Show contacts with their tags, orders and RFM.

    Examples:

    \b
      mailer contacts list
      mailer contacts list --list customers --limit 50
    """
    from mailer.services.contacts import list_contacts

    lines, total = run(lambda: list_contacts(list_name=list_name, limit=limit, db=db))
    table = Table("#", "email", "name", "tags", "orders", "RFM")
    for line in lines:
        table.add_row(
            str(line.id), _plain(line.email), _plain(_short(line.name)),
            _plain(_short(line.tags)), _short(line.orders), line.rfm,
        )  # fmt: skip
    console.print(table)
    scope = f"list {list_name}" if list_name else "the database"
    _say(f"showing {len(lines)} of {total} contacts in {scope}")


@contacts_app.command("show")
def show(
    email: Annotated[str, typer.Argument(help="the contact's address", metavar="ADDRESS")],
    db: DbOpt = None,
) -> None:
    """Everything known about one address.

    Fields, RFM scores, lists, suppression and the sends it got.

    Examples:

    \b
      mailer contacts show someone@example.com
    """
    from mailer.services.contacts import contact_record

    info = run(lambda: contact_record(email, db=db))
    table = Table(show_header=False, box=None, padding=(0, 2))
    table.add_row("contact", f"#{info.contact_id}" if info.contact_id else "(erased)")
    for key, value in info.fields.items():
        shown = json.dumps(value, ensure_ascii=False) if isinstance(value, dict) else value
        table.add_row(key, _plain(_short(shown, 60)))
    table.add_row("lists", _plain(", ".join(info.lists) or "-"))
    s = info.suppression
    suppressed = f"{s['reason']} since {s['created_at']} ({s['source']})" if s else "no"
    table.add_row("suppressed", _plain(suppressed.replace(" ()", "")))
    table.add_row("sends", str(len(info.sends)))
    for i, event in enumerate(info.feedback):
        why = " ".join(x for x in (event["reason"], event["status"]) if x)
        where = ", ".join(x for x in (event["source"], event["campaign"]) if x)
        line = f"{event['received_at']}  {event['kind'].replace('_', ' ')}"
        line += f"  {why}" if why else ""
        line += (
            f"  ({where})  report {event['report_id']}" if event["report_id"] else f"  ({where})"
        )
        table.add_row("came back" if i == 0 else "", _plain(line))
    console.print(table)


@contacts_app.command("export")
def export(
    out: Annotated[Path | None, typer.Option("--out", "-o", help="file to write")] = None,
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format", help="jsonl or csv", show_default="from the --out suffix, else jsonl"
        ),
    ] = None,
    list_name: ListOpt = None,
    email: Annotated[
        str | None, typer.Option("--email", help="export one person's full record (JSON)")
    ] = None,
    db: DbOpt = None,
) -> None:
    """Export contacts, or one person's full record.

    A re-importable CSV or JSON Lines file; --email writes one person's full record (JSON),
    for a data-access request.

    Examples:

    \b
      mailer contacts export --out contacts.csv
      mailer contacts export --email someone@example.com --out record.json
    """
    from mailer.core.errors import AudienceError
    from mailer.services.contacts import export_file, person_record

    def action() -> None:
        if email:
            record = person_record(email, db=db)
            text = json.dumps(record, ensure_ascii=False, indent=2)
            if out is None:
                _say(text)
                return
            out.write_text(text + "\n", encoding="utf-8")
            _say(f"wrote {record['email']}'s record to {out}")
            return
        if out is None:
            raise AudienceError("say where to write the export", hint="add --out contacts.jsonl")
        chosen = fmt or ("csv" if out.suffix.lower() == ".csv" else "jsonl")
        count = export_file(out, fmt=chosen, list_name=list_name, db=db)
        _say(f"exported {count} contacts to {out}")

    run(action)


@contacts_app.command("forget")
def forget(
    email: Annotated[str, typer.Argument(help="the person's address", metavar="ADDRESS")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask for confirmation")] = False,
    db: DbOpt = None,
) -> None:
    """Erase a person's data (right to erasure).

    The contact is deleted, their journal rows anonymised, their outbox files removed; the
    address stays suppressed, so they are never mailed again.

    Examples:

    \b
      mailer contacts forget someone@example.com
      mailer contacts forget someone@example.com --yes
    """
    from mailer.services.contacts import forget as forget_person

    if not yes and not typer.confirm(f"Erase all data about {email}?"):
        console.print("nothing erased")
        raise typer.Exit(1)
    outcome = run(lambda: forget_person(email, db=db))
    result = outcome.result
    parts = ["contact erased" if result.contact_erased else "no contact record"]
    parts.append(f"{result.journal_rows} send-journal rows anonymised")
    parts.append(f"{len(outcome.files)} outbox files deleted")
    _say(f"forgot {result.email}: " + ", ".join(parts))
    if result.suppressed:
        console.print("the address stays on the suppression list")


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
    """Never mail an address again (or a file of them).

    Suppressed addresses are skipped by every send, whatever the segment says.

    Examples:

    \b
      mailer suppress someone@example.com --reason unsubscribed
      mailer suppress bounced.txt --reason bounced
    """
    from mailer.services.contacts import suppress_target

    outcome = run(lambda: suppress_target(target, reason, db=db))
    result = outcome.file_result
    if result is not None:
        _say(f"suppressed {result.added} addresses from {Path(target)} ({reason})")
        if result.already:
            console.print(f"{result.already} were already suppressed")
        for reject in result.rejected[:SHOWN_REJECTS]:
            _say(f"  line {reject.line}: {reject.reason}")
        if len(result.rejected) > SHOWN_REJECTS:
            console.print(f"  ... and {len(result.rejected) - SHOWN_REJECTS} more")
    elif outcome.added:
        _say(f"suppressed {outcome.address} ({reason})")
    else:
        _say(f"{outcome.address} was already suppressed")


@app.command("lists")
def lists_cmd(db: DbOpt = None) -> None:
    """Show the contact lists and their sizes.

    Examples:

    \b
      mailer lists
    """
    from mailer.services.contacts import lists

    infos = run(lambda: lists(db=db))
    if not infos:
        console.print("no lists yet (import contacts with --list NAME)")
        return
    table = Table("list", "members", "created")
    for info in infos:
        table.add_row(_plain(info.name), str(info.members), info.created_at)
    console.print(table)


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
    """Check a segment expression and save it by name.

    A campaign then names it in [audience] segment = "NAME".

    Examples:

    \b
      mailer segment save best "rfm.monetary >= 4 and rfm.recency >= 3"
    """
    from mailer.services.contacts import segment_save as save

    count = run(lambda: save(name, expression, db=db))
    _say(f"saved segment {name}: {count} contacts match today")


@segment_app.command("count")
def segment_count(segment: SegmentArg, list_name: ListOpt = None, db: DbOpt = None) -> None:
    """How many contacts match a segment.

    Suppressed addresses are never counted.

    Examples:

    \b
      mailer segment count "'vip' in tags"
      mailer segment count "city == '上海' and orders >= 3" --list customers
      mailer segment count best
    """
    from mailer.services.contacts import segment_count as count

    _say(str(run(lambda: count(segment, list_name=list_name, db=db))))


@segment_app.command("show")
def segment_show(
    segment: SegmentArg,
    list_name: ListOpt = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="how many contacts to show")] = 10,
    db: DbOpt = None,
) -> None:
    """A sample of who a segment selects, and who is held back.

    Examples:

    \b
      mailer segment show best
      mailer segment show "not customer" --limit 20
    """
    from mailer.services.contacts import segment_sample

    found = run(lambda: segment_sample(segment, list_name=list_name, limit=limit, db=db))
    table = Table("#", "email", "name", "tags", "orders", "last order", "RFM")
    for r in found.sample:
        f = r.fields
        table.add_row(
            str(r.contact_id), _plain(r.email), _plain(_short(r.name)),
            _plain(_short(f["tags"])), _short(f["orders"]), _short(f["last_order_at"]),
            "{recency}{frequency}{monetary}".format(**f["rfm"]),
        )  # fmt: skip
    console.print(table)
    held = [f"{found.suppressed} suppressed"] if found.suppressed else []
    if found.cap:
        held.append(
            f"{found.capped} held back by the frequency cap of "
            f"{found.cap.max_messages} in {found.cap.days} days"
        )
    more = f" ({', '.join(held)})" if held else ""
    _say(f"showing {len(found.sample)} of {found.selected}{more}")


@segment_app.command("list")
def segment_list(db: DbOpt = None) -> None:
    """Show the saved segments.

    Examples:

    \b
      mailer segment list
    """
    from mailer.services.contacts import saved_segments

    saved = run(lambda: saved_segments(db=db))
    if not saved:
        console.print("no saved segments (mailer segment save NAME EXPR)")
        return
    table = Table("segment", "expression")
    for name, expression in saved:
        table.add_row(_plain(name), _plain(expression))
    console.print(table)


@segment_app.command("rfm")
def segment_rfm(db: DbOpt = None) -> None:
    """The recency x frequency grid of contacts (RFM).

    Scores 1-5 by quintile over the contacts; contacts without orders are counted apart.

    Examples:

    \b
      mailer segment rfm
    """
    from mailer.services.contacts import rfm

    grid = run(lambda: rfm(db=db))
    table = Table(title="contacts by RFM score", caption="5 = most recent / most orders")
    table.add_column("recency \\ frequency")
    for f in range(1, 6):
        table.add_column(f"F{f}", justify="right")
    for r in range(5, 0, -1):
        table.add_row(f"R{r}", *(str(grid.cell(r, f)) for f in range(1, 6)))
    console.print(table)
    console.print(f"{grid.unscored} contacts without orders (RFM 0, not in the grid)")
