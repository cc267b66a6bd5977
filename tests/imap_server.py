"""A real Dovecot IMAP server for tests: own config in a temp folder, loopback, high ports.

Started as root (as CI runs), in a temp folder of its own; mail is kept as the user ``nobody`` in a Maildir the
test can fill directly. Both plain IMAP (loopback only) and IMAPS with a
self-signed certificate the test trusts are served.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

DOVECOT = "/usr/sbin/dovecot"
USER, PASSWORD = "bounces", "imap-test-password"

CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <{root}/cert.pem
ssl_key = <{root}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain
passdb {{
  driver = passwd-file
  args = {root}/passwd
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={root}/home/%u
}}
mail_location = maildir:~/Maildir
default_login_user = dovenull
default_internal_user = dovecot
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
  }}
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _certificate(root: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    start = datetime.now(UTC) - timedelta(days=1)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(IPv4Address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    (root / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (root / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


class ImapServer:
    """One Dovecot instance; ``deliver`` drops messages into the user's INBOX."""

    def __init__(self) -> None:
        # Not under pytest's tmp_path: Dovecot's own users (dovecot, nobody) must be
        # able to reach the folder, and pytest keeps its base folder private (0700).
        self.root = Path(tempfile.mkdtemp(prefix="mailer-imap-"))
        self.root.chmod(0o755)
        self.port, self.tls_port = _free_port(), _free_port()
        self.cafile = self.root / "cert.pem"
        self.maildir = self.root / "home" / USER / "Maildir"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ImapServer:
        """Write the config, start Dovecot in the foreground, wait for both ports."""
        for sub in ("run", "state", "home"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        for sub in ("cur", "new", "tmp"):
            (self.maildir / sub).mkdir(parents=True, exist_ok=True)
        shutil.chown(self.root / "home", "nobody", "nogroup")
        for path in (self.root / "home").rglob("*"):
            shutil.chown(path, "nobody", "nogroup")
        _certificate(self.root)
        (self.root / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}::::::\n")
        conf = self.root / "dovecot.conf"
        conf.write_text(CONFIG.format(root=self.root, port=self.port, tls_port=self.tls_port))
        self.process = subprocess.Popen([DOVECOT, "-F", "-c", str(conf)])
        deadline = time.monotonic() + 30  # a readiness wait, not a timing assertion
        for port in (self.port, self.tls_port):
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or self.process.poll() is not None:
                        raise RuntimeError(self.log()) from None
                    time.sleep(0.05)
        return self

    def deliver(self, raw: bytes) -> None:
        """Put one message in the INBOX (Maildir ``new``), as a delivery agent would."""
        name = f"{time.time():.0f}.{uuid.uuid4().hex}.test"
        path = self.maildir / "new" / name
        path.write_bytes(raw)
        shutil.chown(path, "nobody", "nogroup")

    def folder_count(self, folder: str) -> int:
        """Messages in a folder, counted on disk (``INBOX`` or a Maildir++ subfolder)."""
        base = self.maildir if folder == "INBOX" else self.maildir / f".{folder}"
        return sum(len(list((base / sub).glob("*"))) for sub in ("cur", "new") if base.exists())

    def log(self) -> str:
        """Dovecot's log, for failure messages."""
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else "(no log)"

    def url(self, tls: bool = True, folder: str = "INBOX") -> str:
        """The mailbox URL for ``[feedback] imap``."""
        if tls:
            return f"imaps://{USER}@127.0.0.1:{self.tls_port}/{folder}"
        return f"imap://{USER}@127.0.0.1:{self.port}/{folder}"

    def stop(self) -> None:
        """Stop Dovecot."""
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=30)
        shutil.rmtree(self.root, ignore_errors=True)
