"""A real PostgreSQL server (Debian's) on loopback for the PostgreSQL-store tests.

One cluster per test session in a temp folder, on a free port, listening on
127.0.0.1 only; each test gets a database of its own (``PgServer.database``).
As root the server runs as the ``postgres`` user (PostgreSQL refuses root).
fsync is off: these tests are about behaviour, and the data dies with the folder.
``PgServer(durable=True)`` is the benchmarks' server: fsync on, and memory and WAL
sized as a real deployment would (shared_buffers 1 GB, max_wal_size 4 GB). Both
commit with synchronous_commit=off, the same promise as the SQLite store's WAL with
synchronous=NORMAL: a crash of the process loses nothing committed, a power cut
may lose the last moments.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pg_bin() -> Path | None:
    """Folder of Debian's PostgreSQL programs (initdb, postgres), newest version first."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    return Path(found[0]).parent if found else None


class PgServer:
    """One PostgreSQL cluster; ``database()`` makes an empty database and returns its URL."""

    def __init__(self, *, durable: bool = False) -> None:
        binaries = pg_bin()
        if binaries is None:
            raise RuntimeError("PostgreSQL is missing: run scripts/servers-setup")
        self.bin = binaries
        self.root = Path(tempfile.mkdtemp(prefix="mailer-pg-"))
        self.root.chmod(0o755)
        self.data = self.root / "data"
        self.port = _free_port()
        self.durable = durable
        self.user = "postgres" if os.geteuid() == 0 else os.environ.get("USER", "postgres")
        self.process: subprocess.Popen[bytes] | None = None

    def _as_owner(self, args: list[str]) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args

    def start(self) -> PgServer:
        """initdb, start the server in the foreground, wait until it accepts connections."""
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        initdb = [str(self.bin / "initdb"), "-D", str(self.data), "-U", self.user]
        subprocess.run(
            self._as_owner([*initdb, "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"]),
            check=True,
            capture_output=True,
        )
        settings = [
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"unix_socket_directories={self.root}",
        ]
        settings += ["-c", "synchronous_commit=off", "-c", "max_connections=200"]
        if self.durable:
            settings += ["-c", "shared_buffers=1GB", "-c", "max_wal_size=4GB"]
        else:
            settings += ["-c", "fsync=off", "-c", "full_page_writes=off"]
        log = open(self.root / "server.log", "wb")  # noqa: SIM115 - closed in stop()
        self._log = log
        self.process = subprocess.Popen(
            self._as_owner([str(self.bin / "postgres"), "-D", str(self.data), "-p", str(self.port)])
            + settings,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60  # a readiness wait, not a timing assertion
        while True:
            ready = subprocess.run(
                [str(self.bin / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                capture_output=True,
            )
            if ready.returncode == 0:
                return self
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(self.log())
            time.sleep(0.1)

    def url(self, database: str = "postgres") -> str:
        """The URL of one database (no password: the server trusts loopback)."""
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def database(self) -> str:
        """Create an empty database and return its URL."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def log(self) -> str:
        """The server's log, for failure messages."""
        path = self.root / "server.log"
        return path.read_text(errors="replace") if path.exists() else "(no log)"

    def stop(self) -> None:
        """Stop the server and remove its folder."""
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=60)
            self._log.close()
        shutil.rmtree(self.root, ignore_errors=True)
