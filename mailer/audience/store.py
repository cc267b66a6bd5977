"""The embedded SQLite database: one file per workspace (``mailer.db``).

It holds contacts, lists, suppressions, saved segments, the send journal and
schedule records. The schema is versioned with ``PRAGMA user_version``; each
migration is a list of SQL statements applied in one transaction, so a
migration either happens whole or not at all and never drops data.
"""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mailer.audience.database import Connection, is_postgres
from mailer.audience.postgres import PgConnection, connect_postgres
from mailer.audience.postgres_schema import FEEDBACK_KINDS
from mailer.core.errors import StoreError
from mailer.core.settings import Settings

# Statuses a journal row can take. ``sending`` means "the SMTP transaction may
# have happened": after a crash such a row is *unknown* and is not re-sent
# unless the user asks for it. ``held``: not sent yet because the frequency cap
# holds the contact back (looked at again by the next run); ``missed``: a
# scheduled greeting whose grace period ended before it could be sent.
JOURNAL_STATUSES = (
    "queued",
    "sending",
    "sent",
    "deferred",
    "failed",
    "suppressed",
    "held",
    "missed",
)

SUPPRESSION_REASONS = ("unsubscribed", "bounced", "complained", "manual")

# Every timestamp column, and the shape its values have (mailer.core.clock.stamp).
_TIMESTAMP_COLUMNS = {
    "contacts": ("created_at", "updated_at"),
    "lists": ("created_at",),
    "suppressions": ("created_at",),
    "segments": ("created_at",),
    "journal": ("queued_at", "updated_at", "sent_at"),
    "campaign_runs": ("started_at", "finished_at"),
    "schedule_claims": ("claimed_at", "expires_at"),
    "schedule_runs": ("due_at", "started_at", "finished_at"),
}
_STAMP_GLOB = "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]Z"

# Append only. Never edit a migration that has shipped: add a new one.
MIGRATIONS: list[list[str]] = [
    # v1: contacts, lists, suppressions, segments, journal, campaign runs.
    [
        """CREATE TABLE contacts (
            id INTEGER PRIMARY KEY,
            email TEXT NOT NULL COLLATE NOCASE UNIQUE,
            first_name TEXT,
            last_name TEXT,
            locale TEXT,
            timezone TEXT,
            birthday TEXT,            -- YYYY-MM-DD, or --MM-DD when the year is unknown
            tags TEXT NOT NULL DEFAULT '[]',        -- JSON array of strings
            attributes TEXT NOT NULL DEFAULT '{}',  -- JSON object: city, tier, ...
            orders INTEGER,           -- RFM inputs live in columns so SQL can rank them
            total_spent REAL,
            last_order_at TEXT,       -- ISO date
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )""",
        """CREATE TABLE lists (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            created_at TEXT NOT NULL
        )""",
        """CREATE TABLE list_members (
            list_id INTEGER NOT NULL REFERENCES lists(id) ON DELETE CASCADE,
            contact_id INTEGER NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
            PRIMARY KEY (list_id, contact_id)
        ) WITHOUT ROWID""",
        # Deleting a contact cascades to list_members; without this index each
        # delete would scan every membership.
        "CREATE INDEX list_members_by_contact ON list_members (contact_id)",
        # RFM quintile boundaries: a customer scores 1 + the number of cuts
        # their value reaches. Recomputed after each import (segments.refresh_rfm);
        # scores themselves are computed on the fly, so they are never stale.
        """CREATE TABLE rfm_cuts (
            metric TEXT NOT NULL CHECK (metric IN ('recency', 'frequency', 'monetary')),
            score INTEGER NOT NULL CHECK (score BETWEEN 2 AND 5),
            cut NOT NULL,
            PRIMARY KEY (metric, score)
        )""",
        # Free attribute names seen on import and the JSON kinds their values
        # had ('text', 'number', 'json'): segment validation uses the names for
        # "did you mean", the SQL compiler uses the kinds to stay exact.
        """CREATE TABLE attribute_fields (
            name TEXT PRIMARY KEY,
            kinds TEXT NOT NULL DEFAULT ''
        )""",
        """CREATE TABLE suppressions (
            email TEXT NOT NULL COLLATE NOCASE PRIMARY KEY,
            reason TEXT NOT NULL CHECK (reason IN
                ('unsubscribed', 'bounced', 'complained', 'manual')),
            created_at TEXT NOT NULL,
            source TEXT NOT NULL DEFAULT ''
        )""",
        """CREATE TABLE segments (
            name TEXT PRIMARY KEY,
            expression TEXT NOT NULL,
            created_at TEXT NOT NULL
        )""",
        # One row per (campaign, recipient). Written *before* the SMTP
        # transaction (status 'sending') and updated after it.
        """CREATE TABLE journal (
            campaign_id TEXT NOT NULL,
            email TEXT NOT NULL COLLATE NOCASE,
            contact_id INTEGER,
            variant TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL CHECK (status IN
                ('queued', 'sending', 'sent', 'deferred', 'failed', 'suppressed')),
            attempts INTEGER NOT NULL DEFAULT 0,
            last_code INTEGER,
            last_reply TEXT,
            message_id TEXT,
            bounce INTEGER NOT NULL DEFAULT 0,
            queued_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            sent_at TEXT,
            PRIMARY KEY (campaign_id, email)
        )""",
        "CREATE INDEX journal_by_status ON journal (campaign_id, status)",
        "CREATE INDEX journal_by_recipient ON journal (email, sent_at)",
        # One row per `mailer send` run: what went out, how, and whether the
        # pre-send checks were overridden with --force.
        """CREATE TABLE campaign_runs (
            id INTEGER PRIMARY KEY,
            campaign_id TEXT NOT NULL,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            transport TEXT NOT NULL,
            forced INTEGER NOT NULL DEFAULT 0,
            subject TEXT NOT NULL DEFAULT '',
            body_text TEXT NOT NULL DEFAULT '',
            audience TEXT NOT NULL DEFAULT '',
            note TEXT NOT NULL DEFAULT ''
        )""",
    ],
    # v2: scheduled sends (mailer.services.run_due).
    [
        # One row per (journal key, wave): a lease that makes two `run-due`
        # processes take turns on a wave. 'running' rows belong to ``owner``
        # (host:pid:token) until ``expires_at``; 'idle' rows may be taken again
        # (to reach contacts added during the grace period); 'closed' rows are
        # past their grace period and settled.
        """CREATE TABLE schedule_claims (
            campaign_id TEXT NOT NULL,      -- journal key, e.g. xmas@2027
            wave TEXT NOT NULL,             -- local date + zone, e.g. 2027-12-25 America/New_York
            status TEXT NOT NULL CHECK (status IN ('running', 'idle', 'closed')),
            owner TEXT NOT NULL,
            claimed_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            PRIMARY KEY (campaign_id, wave)
        ) WITHOUT ROWID""",
        # What each scheduled wave did: sent (with counts), missed (grace
        # period over, never sent) or failed (checks or the send stopped it).
        """CREATE TABLE schedule_runs (
            id INTEGER PRIMARY KEY,
            campaign TEXT NOT NULL,         -- the campaign's own id
            campaign_id TEXT NOT NULL,      -- journal key
            wave TEXT NOT NULL,
            due_at TEXT NOT NULL,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            outcome TEXT NOT NULL CHECK (outcome IN ('running', 'sent', 'missed', 'failed')),
            recipients INTEGER NOT NULL DEFAULT 0,
            sent INTEGER NOT NULL DEFAULT 0,
            failed INTEGER NOT NULL DEFAULT 0,
            note TEXT NOT NULL DEFAULT ''
        )""",
        "CREATE INDEX schedule_runs_by_campaign ON schedule_runs (campaign, started_at)",
    ],
    # v3: one timestamp format in every table (mailer.core.clock.stamp). Imports
    # wrote 2026-11-22T08:20:38.123456+00:00 and the scheduler ...+00:00.
    [
        f"UPDATE {table} SET {column} = coalesce(strftime('%Y-%m-%dT%H:%M:%SZ', {column}),"
        f" {column}) WHERE {column} NOT GLOB '{_STAMP_GLOB}'"
        for table, columns in _TIMESTAMP_COLUMNS.items()
        for column in columns
    ],
    # v4: send runs keep a heartbeat, so a row in flight in a live run is told apart
    # from one left unknown by a crash; a row in flight names the run that sent it.
    [
        "ALTER TABLE campaign_runs ADD COLUMN owner TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE campaign_runs ADD COLUMN heartbeat_at TEXT",
        "ALTER TABLE journal ADD COLUMN run_id INTEGER",
    ],
    # v5: no index on (campaign_id, status). Every message changes its row's status
    # twice (claimed, then sent), and keeping the index costs about half of each
    # journal commit; counts by status read the campaign's rows by primary key instead.
    ["DROP INDEX IF EXISTS journal_by_status"],
    # v6: journal rows for contacts the frequency cap holds back ('held') and for
    # scheduled greetings whose grace period ended ('missed'); wave runs whose
    # run-due process died are 'crashed'. SQLite cannot change a CHECK in place:
    # both tables are copied into new ones.
    [
        """CREATE TABLE journal_v6 (
            campaign_id TEXT NOT NULL,
            email TEXT NOT NULL COLLATE NOCASE,
            contact_id INTEGER,
            variant TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL CHECK (status IN ('queued', 'sending', 'sent', 'deferred',
                'failed', 'suppressed', 'held', 'missed')),
            attempts INTEGER NOT NULL DEFAULT 0,
            last_code INTEGER,
            last_reply TEXT,
            message_id TEXT,
            bounce INTEGER NOT NULL DEFAULT 0,
            queued_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            sent_at TEXT,
            run_id INTEGER,
            PRIMARY KEY (campaign_id, email)
        )""",
        "INSERT INTO journal_v6 (campaign_id, email, contact_id, variant, status, attempts,"
        " last_code, last_reply, message_id, bounce, queued_at, updated_at, sent_at, run_id)"
        " SELECT campaign_id, email, contact_id, variant, status, attempts, last_code,"
        " last_reply, message_id, bounce, queued_at, updated_at, sent_at, run_id FROM journal",
        "DROP TABLE journal",
        "ALTER TABLE journal_v6 RENAME TO journal",
        "CREATE INDEX journal_by_recipient ON journal (email, sent_at)",
        """CREATE TABLE schedule_runs_v6 (
            id INTEGER PRIMARY KEY,
            campaign TEXT NOT NULL,
            campaign_id TEXT NOT NULL,
            wave TEXT NOT NULL,
            due_at TEXT NOT NULL,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            outcome TEXT NOT NULL CHECK (outcome IN
                ('running', 'sent', 'missed', 'failed', 'crashed')),
            recipients INTEGER NOT NULL DEFAULT 0,
            sent INTEGER NOT NULL DEFAULT 0,
            failed INTEGER NOT NULL DEFAULT 0,
            note TEXT NOT NULL DEFAULT ''
        )""",
        "INSERT INTO schedule_runs_v6 SELECT id, campaign, campaign_id, wave, due_at,"
        " started_at, finished_at, outcome, recipients, sent, failed, note FROM schedule_runs",
        "DROP TABLE schedule_runs",
        "ALTER TABLE schedule_runs_v6 RENAME TO schedule_runs",
        "CREATE INDEX schedule_runs_by_campaign ON schedule_runs (campaign, started_at)",
    ],
    # v7: a birthday (order follow-up) campaign's cron pass reads only the contacts
    # whose date is near (audience.selection.DateFilter): index exactly those expressions.
    [
        "CREATE INDEX contacts_by_birthday_day ON contacts (substr(trim(birthday), -5))",
        "CREATE INDEX contacts_by_order_day ON contacts (substr(trim(last_order_at), 1, 10))",
    ],
    # v8: what came back from recipients and relays (mailer.feedback): bounces after
    # the send, complaints, one-click unsubscribes. (source, event_id) is unique, so a
    # webhook delivered twice, or replayed, is applied once.
    [
        """CREATE TABLE feedback_events (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL CHECK (kind IN ('hard_bounce', 'soft_bounce', 'complaint',
                'unsubscribe', 'resubscribe')),
            email TEXT NOT NULL COLLATE NOCASE,
            campaign_id TEXT NOT NULL DEFAULT '',
            source TEXT NOT NULL,
            event_id TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT '',
            received_at TEXT NOT NULL,
            UNIQUE (source, event_id)
        )""",
        "CREATE INDEX feedback_by_email ON feedback_events (email, kind, received_at)",
        "CREATE INDEX feedback_by_campaign ON feedback_events (campaign_id, kind)",
    ],
    # v9: clicks through mailer serve's /c/<token> (click tracking, off by default):
    # which link of which campaign and variant, and when. No IP, no user agent.
    [
        """CREATE TABLE clicks (
            id INTEGER PRIMARY KEY,
            campaign_id TEXT NOT NULL,
            email TEXT NOT NULL COLLATE NOCASE,
            variant TEXT NOT NULL DEFAULT '',
            url TEXT NOT NULL,
            clicked_at TEXT NOT NULL
        )""",
        "CREATE INDEX clicks_by_campaign ON clicks (campaign_id, url)",
    ],
    # v10: A/B tests with a test share ([ab]): when the share went out, when the
    # winner may be picked, and the decision with the figures behind it.
    [
        """CREATE TABLE ab_tests (
            campaign_id TEXT PRIMARY KEY,
            started_at TEXT NOT NULL,
            decide_after TEXT NOT NULL,
            winner TEXT,
            reason TEXT,
            figures TEXT,
            decided_at TEXT,
            finished_at TEXT
        )""",
    ],
    # v11: sends shared by several worker processes (mailer worker). A job is a live
    # send queued by `send --live --enqueue-only`; workers walk its audience batch by
    # batch and lease each batch to their run, so two workers never plan the same
    # batch; a dead run's batches are taken over. Runs name the job they work for.
    [
        """CREATE TABLE send_jobs (
            id INTEGER PRIMARY KEY,
            campaign_path TEXT NOT NULL,    -- relative to the workspace root when inside it
            journal_key TEXT NOT NULL,
            fingerprint TEXT NOT NULL,      -- the campaign and template files when queued
            options TEXT NOT NULL DEFAULT '{}',
            status TEXT NOT NULL CHECK (status IN ('open', 'paused', 'done', 'cancelled')),
            enqueued_at TEXT NOT NULL,
            finished_at TEXT,
            note TEXT NOT NULL DEFAULT ''
        )""",
        """CREATE TABLE batch_leases (
            job_id INTEGER NOT NULL REFERENCES send_jobs(id) ON DELETE CASCADE,
            batch INTEGER NOT NULL,
            run_id INTEGER NOT NULL,
            taken_at TEXT NOT NULL,
            PRIMARY KEY (job_id, batch)
        ) WITHOUT ROWID""",
        "ALTER TABLE campaign_runs ADD COLUMN job_id INTEGER",
    ],
    # v12: every feedback decision keeps its reason (mailer.feedback.reasons), the raw
    # status and the Message-ID of the report it came from; two more kinds, a sender-side
    # refusal (counted against the campaign, never suppressing) and an ignored report
    # (auto-reply, delivery notice). SQLite cannot change a CHECK: the table is rebuilt.
    # webhook_tokens remembers each signed webhook token until it expires, so a captured
    # Mailgun request cannot be replayed with another body.
    [
        f"""CREATE TABLE feedback_events_v12 (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL CHECK (kind IN ({FEEDBACK_KINDS})),
            email TEXT NOT NULL COLLATE NOCASE,
            campaign_id TEXT NOT NULL DEFAULT '',
            source TEXT NOT NULL,
            event_id TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT '',
            received_at TEXT NOT NULL,
            reason TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL DEFAULT '',
            report_id TEXT NOT NULL DEFAULT '',
            UNIQUE (source, event_id)
        )""",
        "INSERT INTO feedback_events_v12 (id, kind, email, campaign_id, source, event_id, detail,"
        " received_at) SELECT id, kind, email, campaign_id, source, event_id, detail, received_at"
        " FROM feedback_events",
        "DROP TABLE feedback_events",
        "ALTER TABLE feedback_events_v12 RENAME TO feedback_events",
        "CREATE INDEX feedback_by_email ON feedback_events (email, kind, received_at)",
        "CREATE INDEX feedback_by_campaign ON feedback_events (campaign_id, kind)",
        """CREATE TABLE webhook_tokens (
            provider TEXT NOT NULL,
            token TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            PRIMARY KEY (provider, token)
        )""",
        "CREATE INDEX webhook_tokens_by_expiry ON webhook_tokens (expires_at)",
    ],
    # v13: an A/B test remembers where its test share ends (the last run before the
    # decision: later runs sent the winner) and its rule, so a report tells the test
    # share and the winner send apart without the campaign file.
    [
        "ALTER TABLE ab_tests ADD COLUMN test_runs_upto INTEGER",
        "ALTER TABLE ab_tests ADD COLUMN rule TEXT NOT NULL DEFAULT ''",
    ],
]

SCHEMA_VERSION = len(MIGRATIONS)


# During a send the WAL is checkpointed every this many pages (4 KiB each: 4 MiB), SQLite's
# default. Sends used to checkpoint every 20,000 (80 MB of WAL before the first one, which
# failed near-full disks early) to save commit time; end to end the saving was lost in
# the noise (tests/benchmarks/bench_faults.py: 1,000 pages ran at 0.95x and 1.13x the
# 20,000-page rate in two runs of 3 and 5 rounds).
WAL_CHECKPOINT_PAGES = 1000
# A checkpointed WAL is cut back to this size (bytes) when it is reset.
WAL_SIZE_LIMIT = 4 * 1024 * 1024
BUSY_TIMEOUT = 30.0  # seconds a writer waits for another process's lock


def open_store(
    path: Path | str, url: str | None = None, *, busy_timeout: float = BUSY_TIMEOUT
) -> Connection:
    """The workspace database: PostgreSQL at ``url`` when given, else the SQLite file ``path``."""
    if url:
        return connect_postgres(url, SCHEMA_VERSION)
    return connect(path, busy_timeout=busy_timeout)


def connect_store(settings: Settings) -> Connection:
    """The workspace's database as its settings name it ([store] url, else [store] path)."""
    return open_store(
        settings.db_path, settings.store_url, busy_timeout=settings.store_busy_timeout
    )


# Disk a send's journal needs per message: measured 268 bytes per journalled message in
# the database (tests/benchmarks/bench_faults.py), rounded up to 1 KiB for what else a
# workspace writes meanwhile (suppressions, runs, feedback).
JOURNAL_BYTES_PER_MESSAGE = 1024


@dataclass(frozen=True)
class DiskRoom:
    """Free space on the database's disk and what a send's journal needs there."""

    path: str
    free: int  # bytes
    need: int  # bytes: the journal rows plus the WAL's bound

    @property
    def short(self) -> bool:
        """True when the disk has less room than the send needs."""
        return self.free < self.need


def journal_room(conn: Connection, messages: int) -> DiskRoom | None:
    """The disk room for journalling ``messages`` (None: not a local SQLite file)."""
    path = database_file(conn)
    if not isinstance(conn, sqlite3.Connection) or not path:
        return None
    free = shutil.disk_usage(Path(path).parent).free
    need = messages * JOURNAL_BYTES_PER_MESSAGE + 2 * WAL_SIZE_LIMIT
    return DiskRoom(path, free, need)


def database_file(conn: Connection) -> str:
    """The file behind a SQLite connection (``""`` in memory), else the store's description."""
    if isinstance(conn, sqlite3.Connection):
        row = conn.execute("PRAGMA database_list").fetchone()
        return str(row[2]) if row else ""
    return "the PostgreSQL store"


@contextmanager
def store_errors(where: str) -> Iterator[None]:
    """Turn SQLite's "database is locked", "disk is full" and I/O errors into a ``StoreError``
    that says what happened, to which file, and what to do (never a traceback)."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        raise sqlite_error(exc, where) from exc


def _is_environmental(exc: sqlite3.Error) -> bool:
    name = getattr(exc, "sqlite_errorname", "")
    text = str(exc)
    return name.startswith(_ENVIRONMENT) or "locked" in text or "disk is full" in text


_ENVIRONMENT = ("SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_FULL", "SQLITE_IOERR", "SQLITE_READONLY")


def sqlite_error(exc: sqlite3.Error, where: str) -> StoreError:
    """What a SQLite error means for the user, with the remedy."""
    name = getattr(exc, "sqlite_errorname", "")
    text = str(exc)
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in text:
        return StoreError(
            "the database stayed locked by another process past the busy timeout "
            f"({text}); the journal could not be written, so the work stopped",
            where=where,
            hint="find the other process writing to this file (another mailer command, a "
            "sqlite3 shell with an open transaction), let it finish or stop it, then resume; "
            "[store] busy_timeout sets how long to wait",
        )
    if name.startswith("SQLITE_FULL") or "disk is full" in text:
        return StoreError(
            f"the disk holding the database is full ({text}); the journal could not be "
            "written, so the work stopped",
            where=where,
            hint="free space on that disk (or move the database to a bigger one), then resume",
        )
    if name.startswith(("SQLITE_IOERR", "SQLITE_READONLY", "SQLITE_CANTOPEN")):
        return StoreError(
            f"the database file cannot be written ({text})",
            where=where,
            hint="check the disk, the file's permissions and free space, then resume",
        )
    return StoreError(f"the database failed: {text}", where=where)


def connect(path: Path | str, *, busy_timeout: float = BUSY_TIMEOUT) -> sqlite3.Connection:
    """Open (creating if needed) the workspace database and bring its schema up to date.

    WAL mode lets a reader (``mailer status``) run while a sender writes; the
    busy timeout makes two processes wait for each other instead of failing.
    """
    path = Path(path)
    if path.parent and not path.parent.exists():
        raise StoreError(
            f"the folder for the database does not exist: {path.parent}",
            hint="create it, or choose another database file (MAILER_DB, [store] path)",
            advice="db-path",
        )
    try:
        conn = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None)
        conn.row_factory = sqlite3.Row
        _use_wal(conn)
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        conn.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
        migrate(conn)
    except sqlite3.OperationalError as exc:
        if _is_environmental(exc):  # locked, full, unwritable: say that, not "corrupt"
            raise sqlite_error(exc, str(path)) from exc
        raise StoreError(
            f"cannot open the database: {exc}",
            where=str(path),
            hint="is this a mailer database? Move it aside to start a new one",
        ) from exc
    except sqlite3.DatabaseError as exc:
        raise StoreError(
            f"cannot open the database: {exc}",
            where=str(path),
            hint="is this a mailer database? Move it aside to start a new one",
        ) from exc
    return conn


def _use_wal(conn: sqlite3.Connection, wait: float = 30.0) -> None:
    """Switch the database to WAL mode, waiting for other connections if needed.

    WAL is stored in the file, so this usually finds it already on. Switching
    needs an exclusive lock and SQLite answers "database is locked" at once,
    without calling the busy handler, when another connection opens the same
    new database at the same moment (two cron jobs, two send runs): retry.
    """
    deadline = time.monotonic() + wait
    while True:
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
                return
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def migrate(conn: sqlite3.Connection) -> int:
    """Apply the migrations the database has not seen yet; return the new version."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"the database has schema version {version}, newer than this mailer ({SCHEMA_VERSION})",
            hint="upgrade mailer before using this database",
        )
    for number in range(version, SCHEMA_VERSION):
        with transaction(conn):
            # Another process (two cron jobs on a new workspace) may have applied
            # this migration while we waited for the write lock.
            if conn.execute("PRAGMA user_version").fetchone()[0] > number:
                continue
            for statement in MIGRATIONS[number]:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number + 1}")
    return SCHEMA_VERSION


class Heartbeat:
    """Calls ``beat(conn)`` every ``every`` seconds from its own thread, while in a ``with``.

    For records that must show a process is still at work (a wave's lease, a
    send run's heartbeat) however long the work waits: a throttle waiting out
    its daily quota sends nothing for hours. The thread has its own connection
    (SQLite connections are not shared between threads). ``beat`` returns False
    when there is nothing left to keep (the record was taken over or released).
    """

    def __init__(self, conn: Connection, beat: Callable[[Connection], bool], every: float):
        self.reopen = _second_connection(conn)
        self.beat, self.every = beat, every
        self.beats = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="mailer-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        if self.reopen is not None:  # an in-memory database has no second process to tell
            self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _loop(self) -> None:
        assert self.reopen is not None
        conn = self.reopen()
        try:
            while not self._stop.wait(self.every):
                try:
                    if not self.beat(conn):
                        return
                    self.beats += 1
                except (sqlite3.Error, StoreError):
                    continue  # a busy database, a lost server connection: try again
        finally:
            conn.close()


def _second_connection(conn: Connection) -> Callable[[], Connection] | None:
    """How to open another connection to ``conn``'s database (None: an in-memory one)."""
    if isinstance(conn, sqlite3.Connection):
        row = conn.execute("PRAGMA database_list").fetchone()
        path = str(row[2]) if row else ""
        if not path:
            return None
        return lambda: sqlite3.connect(path, timeout=30.0, isolation_level=None)
    assert isinstance(conn, PgConnection), conn
    return conn.clone


@contextmanager
def transaction(
    conn: Connection, *, immediate: bool = True, rows_only: bool = False
) -> Iterator[None]:
    """Run a block in one transaction: commit on success, roll back on any error.

    ``BEGIN IMMEDIATE`` takes the write lock up front, so two processes that
    both mean to write queue up instead of deadlocking half-way (on PostgreSQL:
    one database-wide advisory lock). ``rows_only`` says every statement of the
    block is atomic on its own rows (conditional upserts): SQLite still takes
    its single write lock, PostgreSQL relies on row locks and lets other
    writers (other hosts) run at the same time.
    """
    exclusive = immediate and not (rows_only and is_postgres(conn))
    conn.execute("BEGIN IMMEDIATE" if exclusive else "BEGIN")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
