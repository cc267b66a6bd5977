"""Live preview: what the page shows, built through the same pipeline as ``send``.

``PreviewSession`` watches the campaign file, its template (and ``.txt``
sibling), the audience CSV and ``mailer.toml``. When one changes it prepares
the campaign again with ``prepare_campaign`` and bumps a version number that
the server pushes to the page. Every email shown comes from
``PreparedCampaign.build``: the preview has no render path of its own.

A broken file is not fatal: the error is kept and shown in the page, and the
next good save recovers. The HTTP side lives in ``mailer.preview.server``, the
page's data helpers in ``mailer.preview.view``.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mailer.audience.database import Connection
from mailer.audience.store import connect_store
from mailer.campaign.prepared import PreparedCampaign, prepare_campaign
from mailer.checks.gate import run_checks
from mailer.compose.locales import pick_locale
from mailer.compose.outgoing import Envelope, Outgoing, test_salt
from mailer.compose.render import assign_variant, variant_label
from mailer.core.campaign import load_campaign
from mailer.core.errors import ConfigError, MailerError
from mailer.core.recipient import Recipient
from mailer.core.settings import SETTINGS_FILE, Settings
from mailer.delivery.choose import transport_for
from mailer.delivery.transport import Delivery, Transport, hand_over
from mailer.preview.view import (
    configured_test_address,
    error_info,
    inbox_row,
    languages,
    parse_headers,
    pick_samples,
    reading_in,
    recipient_info,
    signed,
    unexpected_error,
    version_key,
    watched_files,
)


@dataclass(frozen=True)
class Snapshot:
    """The campaign as last prepared (or the error that stopped it), with a version."""

    version: int
    prepared: PreparedCampaign | None
    error: MailerError | None
    samples: tuple[Recipient, ...]
    files: tuple[Path, ...]


async def deliver_once(transport: Transport, envelope: Envelope) -> Delivery:
    """Start the transport, hand over one message, close it."""
    await transport.start()
    try:
        return await hand_over(transport, envelope)
    finally:
        await transport.close()


class PreviewSession:
    """Watches the campaign's files and answers the preview page's questions."""

    def __init__(
        self,
        campaign_path: Path | str,
        load_settings: Callable[[], Settings],
        settings_file: Path | None = None,
        *,
        fold: bool = True,
    ):
        self.path = Path(campaign_path)
        self.fold = fold
        self.load_settings = load_settings
        self.settings_file = settings_file or Path.cwd() / SETTINGS_FILE
        self._lock = threading.RLock()
        self._changed = threading.Condition()
        self._stamp: tuple[Any, ...] | None = None
        self._closed = False
        self._checks_lock = threading.Lock()  # one Chromium at a time
        self._checks_cache: dict[tuple[int, str, str, int], dict[str, Any]] = {}
        # Samples survive edits that leave the audience alone: reading a 100k-row CSV
        # takes seconds, and live reload must stay under one.
        self._samples: tuple[tuple[Any, ...], tuple[Recipient, ...]] | None = None
        self._snapshot = Snapshot(0, None, None, (), (self.path, self.settings_file))

    # -- watching ---------------------------------------------------------------

    def _stamp_of(self, files: Iterable[Path]) -> tuple[Any, ...]:
        stamp: list[tuple[str, int | None, int | None]] = []
        for path in files:
            try:
                info = os.stat(path)
                stamp.append((str(path), info.st_mtime_ns, info.st_size))
            except OSError:
                stamp.append((str(path), None, None))
        return tuple(stamp)

    def refresh(self) -> Snapshot:
        """Prepare the campaign again if any watched file changed; return the current snapshot."""
        with self._lock:
            files = self._snapshot.files
            stamp = self._stamp_of(files)
            if stamp == self._stamp:
                return self._snapshot
            time.sleep(0.03)  # let an editor finish writing before reading
            self._stamp = self._stamp_of(files)
            self._snapshot = self._prepare(self._snapshot)
            self._stamp = self._stamp_of(self._snapshot.files)
        with self._changed:
            self._changed.notify_all()
        return self._snapshot

    def _prepare(self, old: Snapshot) -> Snapshot:
        version = old.version + 1
        try:
            prepared = prepare_campaign(self.path, self.load_settings())
        except MailerError as error:
            return self._failed(old, error)
        except (OSError, ValueError) as exc:  # a file vanished or is half-written mid-save
            unreadable = MailerError(
                f"cannot read the campaign's files: {exc}", where=str(self.path)
            )
            return self._failed(old, unreadable)
        try:
            samples = self._samples_for(prepared)
        except MailerError as error:
            return self._failed(old, error)
        finally:
            _close_database(prepared)
        return Snapshot(version, prepared, None, samples, watched_files(prepared))

    def _samples_for(self, prepared: PreparedCampaign) -> tuple[Recipient, ...]:
        """The picker's contacts, read again only when the audience or its data changed."""
        spec = prepared.campaign.audience
        db = prepared.settings.db_path
        data = [spec.csv] if spec.csv is not None else [db, db.with_name(db.name + "-wal")]
        key = (spec, self._stamp_of(data))
        if self._samples is None or self._samples[0] != key:
            found = pick_samples(
                prepared.recipients(),
                language_of=lambda person: version_key(prepared, person),
                languages=[entry["key"] for entry in languages(prepared)],
            )
            self._samples = (key, tuple(found))
        return self._samples[1]

    def _failed(self, old: Snapshot, error: MailerError) -> Snapshot:
        # Keep watching every file we knew, and the template if the campaign still
        # names one: fixing the template must wake us up, even if it never compiled.
        files = (*old.files, self.path, self.settings_file, *self._template_files())
        return Snapshot(old.version + 1, None, error, (), tuple(dict.fromkeys(files)))

    def _template_files(self) -> tuple[Path, ...]:
        try:
            campaign = load_campaign(self.path, self.load_settings())
        except (MailerError, OSError, ValueError):
            return ()
        return (campaign.template, campaign.template.with_suffix(".txt"))

    def wait_change(self, version: int, timeout: float) -> int:
        """Block until the version differs from ``version`` (or ``timeout``); return the version."""
        with self._changed:
            self._changed.wait_for(
                lambda: self._closed or self._snapshot.version != version, timeout
            )
        return self._snapshot.version

    def close(self) -> None:
        """Wake every waiting event stream so the server can stop."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    # -- what the page asks -----------------------------------------------------

    def state(self) -> dict[str, Any]:
        """The campaign overview: id, variants, sample recipients, or the error."""
        snap = self.refresh()
        if snap.prepared is None:
            assert snap.error is not None
            return {"version": snap.version, "error": error_info(snap.error), "recipients": []}
        campaign, settings = snap.prepared.campaign, snap.prepared.settings
        return {
            "version": snap.version,
            "error": None,
            "campaign": {
                "id": campaign.id,
                "path": str(campaign.path),
                "template": str(campaign.template),
                "subjects": list(campaign.subjects),
                "sender": {"name": campaign.sender.name, "email": campaign.sender.email},
            },
            "recipients": [
                {**recipient_info(p), "language": version_key(snap.prepared, p)}
                for p in snap.samples
            ],
            "languages": languages(snap.prepared),
            "test_address": settings.test_address,
            "transport": "smtp" if settings.smtp_configured else "outbox",
            "files": [str(p) for p in snap.files],
        }

    def _pick(
        self, email: str | None, variant: str | None, language: str | None = None
    ) -> tuple[Snapshot, Recipient, int]:
        snap = self.refresh()
        if snap.prepared is None:
            assert snap.error is not None
            raise snap.error
        if not snap.samples:
            raise ConfigError("the campaign's audience is empty", where=str(self.path))
        person = next((p for p in snap.samples if p.email == email), snap.samples[0])
        if language is not None:
            person = reading_in(snap.prepared, person, language)
        count = _variant_count(snap.prepared, person)
        assigned = assign_variant(snap.prepared.campaign.id, person.email, count)
        chosen = int(variant) if variant and variant.isdigit() and int(variant) < count else None
        return snap, person, assigned if chosen is None else chosen

    def view(
        self, email: str | None, variant: str | None, language: str | None = None
    ) -> dict[str, Any]:
        """Everything shown for one recipient and variant: inbox rows, HTML, text, headers.

        ``language`` (a version key, "" for the top-level texts) shows the recipient as
        a reader of that version when it is not theirs.
        """
        try:
            snap, person, chosen = self._pick(email, variant, language)
            assert snap.prepared is not None
            prepared = snap.prepared
            out = prepared.build(person, variant=chosen)
            inbox = [
                inbox_row(prepared, person, v) for v in range(_variant_count(prepared, person))
            ]
            out, dkim = signed(out, prepared.settings, prepared.clock.time())
        except MailerError as error:
            return {"version": self._snapshot.version, "error": error_info(error)}
        except Exception as exc:  # a template's own Python error (1/0): show it, keep serving
            broken = unexpected_error(exc, self._snapshot.prepared, str(self.path))
            return {"version": self._snapshot.version, "error": error_info(broken)}
        payload = _view_payload(snap, out, chosen, inbox)
        return {**payload, "dkim": dkim, "language": version_key(prepared, person)}

    def send_test(
        self, email: str | None, variant: str | None, language: str | None = None
    ) -> dict[str, Any]:
        """Send the chosen recipient's version to the test address, marked ``[TEST]``.

        No journal entry is written: a test is not a send.
        """
        snap, person, chosen = self._pick(email, variant, language)
        assert snap.prepared is not None
        settings = snap.prepared.settings
        address = configured_test_address(settings)
        # The contact's fields stay (personalisation); only the address is the tester's.
        target = replace(person, email=address)
        out = snap.prepared.build(
            target, salt=test_salt(), subject_prefix="[TEST] ", variant=chosen
        )
        # Signed as a real send: the test inbox judges the same bytes.
        out, _ = signed(out, settings, snap.prepared.clock.time())
        transport = transport_for(settings, "test")
        delivery = asyncio.run(deliver_once(transport, out.envelope))
        return {
            "ok": delivery.ok,
            "code": delivery.code,
            "reply": delivery.reply,
            "to": address,
            "transport": transport.name,
            "subject": out.subject,
        }

    def checks(
        self, email: str | None, variant: str | None, language: str | None = None
    ) -> dict[str, Any]:
        """The `mailer check` findings for this recipient in every A/B variant (cached)."""
        try:
            snap, person, chosen = self._pick(email, variant, language)
        except MailerError as error:
            return {"available": False, "reason": str(error)}
        language = version_key(snap.prepared, person)
        key = (snap.version, person.email, language, chosen)
        with self._checks_lock:
            if key not in self._checks_cache:
                self._checks_cache = {key: self._run_checks(snap, person)}
            return self._checks_cache[key]

    def _run_checks(self, snap: Snapshot, person: Recipient) -> dict[str, Any]:
        assert snap.prepared is not None
        prepared = snap.prepared
        try:
            samples = [
                prepared.build(person, variant=v) for v in range(_variant_count(prepared, person))
            ]
            with _database(prepared.settings) as conn:
                try:
                    report = run_checks(prepared, samples, conn=conn, browser=self.fold)
                except MailerError as missing_browser:
                    # No Chromium: say the fold was not measured; never pretend it passed.
                    report = run_checks(prepared, samples, conn=conn, browser=False)
                    report.fold_note = f"NOT RUN: {missing_browser.message}"
        except MailerError as error:
            return {"available": False, "reason": str(error)}
        return {"available": True, **report.to_dict()}


def _variant_count(prepared: PreparedCampaign, person: Recipient) -> int:
    """The A/B variants of the language version ``person`` gets (the preview shows theirs)."""
    return len(pick_locale(prepared.compiled, person).subjects)


def _view_payload(
    snap: Snapshot, out: Outgoing, chosen: int, inbox: list[dict[str, Any]]
) -> dict[str, Any]:
    assert snap.prepared is not None
    count = _variant_count(snap.prepared, out.recipient)
    headers, raw = parse_headers(out.envelope.data)
    sender = snap.prepared.campaign.sender
    return {
        "version": snap.version,
        "error": None,
        "recipient": recipient_info(out.recipient),
        "variant": chosen,
        "label": variant_label(chosen),
        "assigned": assign_variant(snap.prepared.campaign.id, out.recipient.email, count),
        "subject": out.subject,
        "preheader": out.rendered.preheader,
        "from": {"name": sender.name, "email": sender.email},
        "html": out.rendered.html,
        "text": out.rendered.text,
        "headers": headers,
        "raw_headers": raw,
        "size": len(out.envelope.data),
        "inbox": inbox,
    }


@contextmanager
def _database(settings: Settings) -> Iterator[Connection | None]:
    """The workspace database for this thread only, if it exists (checks read the journal)."""
    if not settings.db_path.exists():
        yield None
        return
    conn = connect_store(settings)
    try:
        yield conn
    finally:
        conn.close()


def _close_database(prepared: PreparedCampaign | None) -> None:
    # sqlite3 connections belong to the thread that opened them; the samples are
    # already read, so close now rather than touch it from a request thread.
    if prepared is not None and prepared.conn is not None:
        prepared.conn.close()
        prepared.conn = None
