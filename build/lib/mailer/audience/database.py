"""What the rest of the code may assume about a database connection, on either store.

The workspace database is SQLite by default (``mailer.audience.store``) or
PostgreSQL when ``[store] url`` is set (``mailer.audience.postgres``). Both
give a connection with the subset of the ``sqlite3.Connection`` API the code
uses: ``execute``/``executemany`` with ``?`` or ``:name`` parameters, rows
readable by position and by column name, ``rowcount``, ``in_transaction``.
SQL is written once in the subset both engines accept; the PostgreSQL
connection rewrites the few spellings that differ (see ``postgres.translate``)
and the segment compiler has a PostgreSQL generator of its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol

SQLITE, POSTGRESQL = "sqlite", "postgresql"


class Row(Protocol):
    """A result row: by position (``row[0]``) or by column name (``row["email"]``)."""

    def __getitem__(self, key: Any) -> Any: ...

    def keys(self) -> list[str]: ...


class Cursor(Protocol):
    """The part of a cursor the code reads."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


Params = Sequence[Any] | Mapping[str, Any]


class Connection(Protocol):
    """A connection to the workspace database (``sqlite3.Connection`` or ``PgConnection``)."""

    def execute(self, sql: str, parameters: Params = ..., /) -> Any: ...

    def executemany(self, sql: str, parameters: Iterable[Params], /) -> Any: ...

    @property
    def in_transaction(self) -> bool: ...

    def close(self) -> None: ...


def dialect(conn: Connection) -> str:
    """``"sqlite"`` or ``"postgresql"``: which engine is behind a connection."""
    return str(getattr(conn, "dialect", SQLITE))


def is_postgres(conn: Connection) -> bool:
    """True when the connection is to the PostgreSQL store."""
    return dialect(conn) == POSTGRESQL
