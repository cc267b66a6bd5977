"""The PostgreSQL store: the workspace database on a server several hosts can share.

``connect_postgres(url)`` returns a ``PgConnection`` that behaves like the
``sqlite3.Connection`` the rest of the code was written against (see
``database.Connection``), so one body of SQL serves both engines. Why a thin
layer and not SQLAlchemy Core: the SQL is already written once in the subset
both engines speak; what differs is a handful of spellings (parameters,
``INSERT OR IGNORE``, ``json_each``, negative ``substr``, ``instr``), which
``translate`` rewrites once per statement text and caches, and the segment
compiler, whose exactness rules depend on each engine's typing and so has a
generator per engine (``segment_pg``). An ORM would have meant rewriting
every query for no gain in either.

Transactions keep SQLite's meaning: ``BEGIN IMMEDIATE`` (a writer that may
read-then-write) takes one database-wide advisory lock, so code that relied on
SQLite's single writer stays correct; statements that are atomic on their own
rows (the journal's conditional claim, batch leases) run without it and
PostgreSQL's row locks let several hosts write at once.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from mailer.audience.database import POSTGRESQL, Params
from mailer.core.errors import StoreError

# Key of the advisory lock that BEGIN IMMEDIATE takes ("mailer" in ASCII).
WRITER_LOCK = 0x6D61696C6572
_SUBSTR_FROM_END = re.compile(r"substr\(((?:[^()]|\([^()]*\))*),\s*-(\d+)\)")
_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


class PgRow(Sequence[Any]):
    """A row readable by position and by column name, like ``sqlite3.Row``."""

    __slots__ = ("_index", "_values")

    def __init__(self, values: Sequence[Any], index: Mapping[str, int]):
        self._values = tuple(values)
        self._index = index

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            try:
                return self._values[self._index[key]]
            except KeyError:
                raise IndexError(f"no column named {key!r}") from None
        return self._values[key]

    def __len__(self) -> int:
        return len(self._values)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PgRow):
            return self._values == other._values
        return self._values == other

    def __hash__(self) -> int:
        return hash(self._values)

    def __repr__(self) -> str:
        return f"PgRow{self._values!r}"

    def keys(self) -> list[str]:
        """Column names, in order."""
        return list(self._index)


def _row_factory(cursor: Any) -> Any:
    names = [column.name for column in cursor.description or ()]
    index = {name: number for number, name in enumerate(names)}
    return lambda values: PgRow(values, index)


def _outside_quotes(sql: str, change: Any) -> str:
    """Apply ``change`` to the parts of ``sql`` that are not inside '...' literals."""
    parts = sql.split("'")
    return "'".join(change(part) if i % 2 == 0 else part for i, part in enumerate(parts))


def _code(part: str) -> str:
    part = part.replace("?", "%s")
    part = _NAMED.sub(r"%(\1)s", part)
    part = part.replace("json_each(", "json_array_elements_text(")
    part = re.sub(r"\binstr\(", "strpos(", part)
    # SQLite's `x IS ?` compares values null-safely; PostgreSQL spells it out.
    part = re.sub(r"\bIS NOT (%s|%\(\w+\)s)", r"IS DISTINCT FROM \1", part)
    part = re.sub(r"\bIS (%s|%\(\w+\)s)", r"IS NOT DISTINCT FROM \1", part)
    return _SUBSTR_FROM_END.sub(r"right(\1, \2)", part)


@functools.lru_cache(maxsize=2048)
def translate(sql: str, *, with_params: bool = True) -> str:
    """Rewrite one statement from the shared SQL subset into PostgreSQL's spelling.

    ``?`` and ``:name`` become psycopg placeholders; ``INSERT OR IGNORE`` becomes
    ``ON CONFLICT DO NOTHING``; ``json_each(x)`` (one column, ``value``) becomes
    ``json_array_elements_text(x)``, which names its column ``value`` too;
    ``substr(x, -n)`` becomes ``right(x, n)``; ``instr`` becomes ``strpos``;
    ``x IS ?`` becomes ``x IS NOT DISTINCT FROM ?``.
    With parameters, a literal ``%`` is doubled (psycopg reads ``%`` as a placeholder).
    """
    text = _outside_quotes(sql.replace("%", "%%") if with_params else sql, _code)
    if re.match(r"\s*INSERT OR IGNORE INTO", text, re.I):
        text = re.sub(r"INSERT OR IGNORE INTO", "INSERT INTO", text, count=1, flags=re.I)
        text = text.rstrip().rstrip(";") + " ON CONFLICT DO NOTHING"
    return text


def _params(parameters: Params | None) -> Any:
    # The schema keeps SQLite's 0/1 integers for flags: a Python bool goes in as one.
    if parameters is None:
        return None
    if isinstance(parameters, Mapping):
        return {k: int(v) if isinstance(v, bool) else v for k, v in parameters.items()}
    return [int(v) if isinstance(v, bool) else v for v in parameters]


class _NoRows:
    """The result of a statement PostgreSQL has no use for (SQLite's PRAGMAs)."""

    rowcount = 0

    def fetchone(self) -> None:
        return None

    def fetchall(self) -> list[Any]:
        return []

    def __iter__(self) -> Iterator[Any]:
        return iter(())


class PgConnection:
    """A psycopg connection with the ``sqlite3.Connection`` surface the code uses."""

    dialect = POSTGRESQL

    def __init__(self, url: str, *, lock_timeout: float = 30.0):
        import psycopg

        self.url = url
        self._psycopg = psycopg
        try:
            self._conn = psycopg.Connection.connect(
                url, autocommit=True, cursor_factory=psycopg.ClientCursor
            )
        except psycopg.Error as exc:
            raise StoreError(
                f"cannot connect to PostgreSQL: {_first_line(exc)}",
                where=redact(url),
                hint="is the server running and the URL right? The password comes from "
                "PGPASSWORD or ~/.pgpass, never from the URL",
            ) from None
        self._conn.row_factory = _row_factory
        # As SQLite's busy timeout: a writer waits up to 30 s for another, then fails
        # with a clear error instead of waiting forever.
        self._conn.execute(f"SET lock_timeout = '{int(lock_timeout * 1000)}ms'")

    def clone(self) -> PgConnection:
        """A second connection to the same database (for a heartbeat thread)."""
        return PgConnection(self.url)

    @property
    def in_transaction(self) -> bool:
        """True between BEGIN and COMMIT/ROLLBACK."""
        idle = self._psycopg.pq.TransactionStatus.IDLE
        return self._conn.info.transaction_status != idle

    def execute(self, sql: str, parameters: Params | None = None, /) -> Any:
        """Run one statement (shared SQL subset, ``?``/``:name`` parameters)."""
        head = sql.lstrip()[:16].upper()
        if head.startswith("PRAGMA"):
            return _NoRows()
        if head.startswith("BEGIN IMMEDIATE"):  # one round trip for both
            try:
                self._run(f"BEGIN; SELECT pg_advisory_xact_lock({WRITER_LOCK})", None)
            except StoreError:
                self._conn.execute("ROLLBACK")  # the caller never got a transaction
                raise
            return _NoRows()
        if head.startswith("BEGIN"):
            self._run("BEGIN", None)
            return _NoRows()
        if not parameters:
            return self._run(translate(sql, with_params=False), None)
        return self._run(translate(sql), _params(parameters))

    def executemany(self, sql: str, parameters: Iterable[Params], /) -> Any:
        """Run one statement for each parameter set (in one round trip where psycopg can)."""
        rows = [_params(p) for p in parameters]
        if not rows:
            return _NoRows()
        cursor = self._conn.cursor()
        try:
            cursor.executemany(translate(sql), rows)
        except self._psycopg.Error as exc:
            raise _store_error(exc, sql) from None
        return cursor

    def copy_rows(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        """Load rows into ``table`` with COPY (the fast path for bulk import)."""
        statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
        try:
            with self._conn.cursor() as cursor, cursor.copy(statement) as copy:
                for row in rows:
                    copy.write_row(row)
        except self._psycopg.Error as exc:
            raise _store_error(exc, statement) from None

    def _run(self, sql: str, parameters: Any) -> Any:
        try:
            return self._conn.execute(sql, parameters)
        except self._psycopg.Error as exc:
            raise _store_error(exc, sql) from None

    def close(self) -> None:
        """Close the connection (rolling back an open transaction)."""
        self._conn.close()


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _store_error(exc: BaseException, sql: str) -> StoreError:
    import psycopg

    statement = " ".join(sql.split())[:120]
    if isinstance(exc, psycopg.errors.LockNotAvailable):
        hint = "another mailer process held the store too long (a long import?): try again"
    elif isinstance(exc, psycopg.OperationalError):
        hint = "the connection to PostgreSQL failed: is the server up? Run the command again"
    else:
        hint = "this is a bug in mailer if the schema is up to date; please report it"
    return StoreError(
        f"PostgreSQL refused a statement: {_first_line(exc)}", where=statement, hint=hint
    )


def redact(url: str) -> str:
    """The URL without a password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return parts._replace(netloc=netloc).geturl()


def connect_postgres(url: str, version: int) -> PgConnection:
    """Connect to the PostgreSQL store and bring its schema up to ``version``
    (``store.SCHEMA_VERSION``: one migration history for both engines)."""
    conn = PgConnection(url)
    try:
        migrate_postgres(conn, version)
    except BaseException:
        conn.close()
        raise
    return conn


def schema_version(conn: PgConnection) -> int:
    """The store's schema version (0 for an empty database)."""
    # A plain read of pg_class, not to_regclass(): the catalog cache behind the latter
    # may not yet see a table another process committed while we waited for the lock.
    row = conn.execute(
        "SELECT count(*) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n"
        " ON n.oid = c.relnamespace WHERE c.relname = 'mailer_schema'"
        " AND n.nspname = current_schema()"
    ).fetchone()
    if not row[0]:
        return 0
    return int(conn.execute("SELECT version FROM mailer_schema").fetchone()[0])


def migrate_postgres(conn: PgConnection, target: int) -> int:
    """Create the schema (at the baseline) or apply the migrations it has not seen.

    Runs under the writer lock, so two processes starting on an empty database
    take turns and the second finds the work done.
    """
    from mailer.audience.postgres_schema import BASELINE, MIGRATIONS, SCHEMA

    if schema_version(conn) == target:
        return target
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = schema_version(conn)
        if version > target:
            raise StoreError(
                f"the database has schema version {version}, newer than this mailer ({target})",
                where=redact(conn.url),
                hint="upgrade mailer before using this database",
            )
        if version == 0:
            for statement in SCHEMA:
                conn.execute(statement)
            conn.execute("CREATE TABLE mailer_schema (version integer NOT NULL)")
            conn.execute("INSERT INTO mailer_schema (version) VALUES (?)", (BASELINE,))
            version = BASELINE
        for number in range(version, target):
            for statement in MIGRATIONS[number - BASELINE]:
                conn.execute(statement)
        conn.execute("UPDATE mailer_schema SET version = ?", (target,))
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return target
