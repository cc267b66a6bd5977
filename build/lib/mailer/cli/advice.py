"""The CLI's wording of remedies that name its commands and flags.

Library errors carry an ``advice`` key where the remedy is a flag or a
command (see ``mailer.core.errors``); their own ``hint`` states the remedy
without naming either, for run-due notes and the preview page. Here the CLI
puts the remedy in its own terms.
"""

from __future__ import annotations

from mailer.core.errors import MailerError

ADVICE = {
    "db-path": "create it, or point --db / MAILER_DB / [store] path at another file",
    "import-to-list": "import contacts with --list NAME",
    "list-contacts": "mailer contacts list",
    "rejects-file": "nothing was imported; give a writable place with --rejects FILE",
    "relay-missing": "pass --smtp smtp+starttls://user@host:587, set MAILER_SMTP_URL, "
    "or add [smtp] url = ... to mailer.toml",
    "relay-unreachable": "check the host and port (--smtp / MAILER_SMTP_URL) and that the relay "
    "is running",
    "skip-tls-verify": "fix the relay's certificate; for a local test relay only, pass "
    "--insecure-skip-tls-verify (or smtp.insecure_skip_verify = true)",
    "render-folder": "choose another folder with --out",
    "check-errors": "see `mailer check` for details; fix them, or pass --force to send anyway "
    "(the override is recorded in the journal)",
    "chromium-missing": "install it with: apt-get install -y chromium (or pass --chromium PATH); "
    "or use --no-browser to skip it knowingly",
    "chromium-broken": "install it with: apt-get install -y chromium (or pass --chromium PATH)",
    "campaigns-folder": "run from the workspace, or pass --campaigns DIR",
    "ignore-schedule": "see what is coming with `mailer schedule list`; to send now anyway, "
    "add --ignore-schedule",
    "status-argument": "pass an existing campaign file, or a campaign id "
    "(see mailer status --help)",
    "preview-port": "choose another port, or --port 0 for a free one",
    "column-map": "rename the column in the file, or name its field with --map COLUMN=FIELD "
    "(see mailer contacts import --help for the names it recognises)",
    "adopt-template": "mailer templates adopt FILE rewrites other tools' merge tags into "
    "mailer's Jinja (it shows the diff; --write saves it)",
    "init-overwrite": "choose an empty folder, or pass --force to overwrite them",
}


def worded(error: MailerError) -> str:
    """The error as the CLI prints it: with the CLI's own advice where it has some."""
    advice = ADVICE.get(error.advice or "")
    if advice is None:
        return str(error)
    text = f"{error.where}: {error.message}" if error.where else error.message
    return f"{text}\n  hint: {advice}"
