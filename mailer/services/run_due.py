"""``run-due``: send every scheduled wave that is due now, exactly once, from cron or a loop.

For each campaign file with a ``[schedule]`` table in the campaigns folder,
``run_due`` plans the waves (``mailer.schedule.plan``) at ``now`` and, for each
wave that is due:

1. takes the wave's lease in ``schedule_claims`` inside ``BEGIN IMMEDIATE``,
   so a second ``run-due`` process skips the wave while the first sends it
   (a thread renews the lease for as long as the sending takes);
2. asks the send journal who in the wave has no row yet under the wave's
   journal key (``<campaign id>@2027``, ``<campaign id>@birthday-2027``) — the
   journal is what makes "once a year" and "once per birthday" hold, even
   across crashes, and it lets contacts added during the grace period still
   get their greeting;
3. runs the pre-send checks (the fold check in Chromium too, unless
   ``browser=False`` / ``--no-browser``, as for ``mailer send``) and hands those people to
   ``mailer.send.send_campaign``: throttle, suppression, retries and the
   journal work exactly as for a manual send;
4. records the outcome in ``schedule_runs`` and releases the lease.

Waves whose grace period ended recently without reaching everyone are
recorded once as *missed* and never sent.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import time
import tomllib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mailer.core.errors import MailerError
from mailer.delivery.journal import PENDING
from mailer.delivery.journal import journal_key as delivery_key
from mailer.schedule.leases import (
    LeaseKeeper,
    claim,
    finish_wave_run,
    journal_statuses,
    release,
    start_wave_run,
)
from mailer.schedule.plan import Schedule, Wave, journal_key, near, parse_schedule, plan

if TYPE_CHECKING:
    from mailer.campaign.prepared import PreparedCampaign
    from mailer.core.campaign import Campaign
    from mailer.core.settings import Settings
    from mailer.delivery.report import SendOptions
    from mailer.delivery.transport import Transport

# Misses older than this (e.g. last year's holiday when a campaign is first added) go unrecorded.
MISSED_LOOKBACK = timedelta(days=7)
# How often a wave's lease is renewed while it is being sent (seconds), and the clock for it.
RENEW_SECONDS = 60.0
renew_clock = time.monotonic


@dataclass(frozen=True)
class ScheduledCampaign:
    """A campaign file with a valid ``[schedule]``, compiled and ready to send."""

    path: Path
    prepared: PreparedCampaign
    schedule: Schedule

    @property
    def id(self) -> str:
        """The campaign's id."""
        return str(self.prepared.campaign.id)


@dataclass(frozen=True)
class WaveResult:
    """What ``run_due`` did with one wave."""

    campaign: str
    key: str  # journal key
    wave: str
    outcome: str  # "sent" | "missed" | "failed" | "busy"
    recipients: int
    sent: int = 0
    failed: int = 0
    note: str = ""


@dataclass
class RunDueReport:
    """One ``run-due`` pass: campaigns looked at, wave results and broken campaign files."""

    now: datetime
    campaigns: int = 0
    results: list[WaveResult] = field(default_factory=list)
    errors: list[MailerError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """False when a campaign file was broken or a wave failed."""
        return not self.errors and all(r.outcome != "failed" for r in self.results)


TransportFor = Callable[["ScheduledCampaign", str], "Transport"]


def load_scheduled(
    folder: Path, settings: Settings
) -> tuple[list[ScheduledCampaign], list[MailerError]]:
    """Every campaign in ``folder`` with a ``[schedule]`` table, and the errors of broken ones.

    A broken campaign does not stop the others: cron must keep greeting
    people while someone fixes a typo in another file.
    """
    from mailer.campaign.prepared import prepare_campaign
    from mailer.core.errors import ScheduleError

    if not folder.is_dir():
        raise ScheduleError(
            f"the campaigns folder does not exist: {folder}",
            hint="run from the workspace, or pass --campaigns DIR",
        )
    found: list[ScheduledCampaign] = []
    errors: list[MailerError] = []
    for path in sorted(folder.glob("*.toml")):
        if not _has_schedule(path):
            continue
        try:
            prepared = prepare_campaign(path, settings)
            schedule = schedule_of(prepared.campaign, settings)
        except MailerError as exc:
            errors.append(exc)
            continue
        found.append(ScheduledCampaign(path, prepared, schedule))
    return found, errors


def schedule_of(campaign: Campaign, settings: Settings) -> Schedule:
    """Parse a loaded campaign's ``[schedule]`` table, with errors at its file:line."""

    def where(key: str) -> str:
        return campaign.where("schedule", key) if key else campaign.where("schedule")

    return parse_schedule(
        campaign.schedule_table or {}, where=where, default_timezone=settings.default_timezone
    )


def _has_schedule(path: Path) -> bool:
    # A cheap look before compiling templates; a syntax error is reported by the loader.
    try:
        return "schedule" in tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return True


def run_due(
    campaigns: list[ScheduledCampaign],
    *,
    conn: sqlite3.Connection,
    now: datetime,
    transport_for: TransportFor,
    options: SendOptions | None = None,
    checks: bool = True,
    browser: bool = True,
    owner: str | None = None,
) -> RunDueReport:
    """Send every due wave of ``campaigns`` at ``now``; record misses; return what happened.

    ``checks`` runs the pre-send checks before a campaign's first wave of the
    pass, ``browser`` includes the fold check in headless Chromium (as
    ``mailer send`` does unless ``--no-browser``).
    """
    from mailer.delivery.report import SendOptions

    now = now.astimezone(UTC)
    report = RunDueReport(now, len(campaigns))
    me = owner or new_owner()
    for item in campaigns:
        try:
            people = list(item.prepared.recipients())
        except MailerError as exc:
            report.errors.append(exc)
            continue
        runner = _CampaignRun(
            item, conn, now, transport_for, options or SendOptions(), checks, me, browser=browser
        )
        days = near(item.schedule, now, MISSED_LOOKBACK)
        for wave in plan(item.schedule, people, now, days=days).waves:
            result = runner.handle(wave)
            if result is not None:
                report.results.append(result)
        report.errors += runner.errors
    return report


def new_owner() -> str:
    """A lease owner name: ``host:pid:token`` (the token tells runs in one process apart)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class _CampaignRun:
    """Handles the waves of one campaign in one ``run_due`` pass."""

    def __init__(
        self,
        item: ScheduledCampaign,
        conn: sqlite3.Connection,
        now: datetime,
        transport_for: TransportFor,
        options: SendOptions,
        checks: bool,
        owner: str,
        *,
        browser: bool = True,
    ):
        self.item, self.conn, self.now, self.owner = item, conn, now, owner
        self.transport_for, self.options = transport_for, options
        self.checks_pending = checks
        self.checks_failed = False
        self.browser = browser
        self.errors: list[MailerError] = []

    def handle(self, wave: Wave) -> WaveResult | None:
        """Send a due wave, or record a recent miss; None when there is nothing to say."""
        if wave.state == "due":
            return self._send(wave)
        if wave.state == "missed" and wave.deadline > self.now - MISSED_LOOKBACK:
            return self._close(wave)
        return None

    def _key(self, wave: Wave) -> tuple[str, Transport]:
        """The wave's journal key and transport: outbox runs keep a key of their own."""
        base = journal_key(self.item.id, wave)
        transport = self.transport_for(self.item, base)
        return delivery_key(base, transport.name), transport

    def _send(self, wave: Wave) -> WaveResult | None:
        key, transport = self._key(wave)
        if not claim(self.conn, key, wave.key, self.owner, self.now):
            return WaveResult(
                self.item.id,
                key,
                wave.key,
                "busy",
                len(wave.recipients),
                note="another run-due is sending this wave",
            )
        try:
            todo = _unsent(self.conn, key, wave)
            if not todo:
                return None
            keeper = LeaseKeeper(
                self.conn,
                key,
                wave.key,
                self.owner,
                self.now,
                every=RENEW_SECONDS,
                clock=renew_clock,
            )
            with keeper:
                return self._deliver(wave, key, todo, transport)
        finally:
            release(self.conn, key, wave.key, self.owner)

    def _deliver(self, wave: Wave, key: str, todo: list[Any], transport: Transport) -> WaveResult:
        run_id = start_wave_run(self.conn, self.item.id, key, wave, len(todo))
        if not self._checks_pass():
            note = "pre-send checks failed"
            finish_wave_run(self.conn, run_id, "failed", 0, 0, note)
            return WaveResult(self.item.id, key, wave.key, "failed", len(todo), note=note)
        from mailer.delivery.engine import send_campaign

        try:
            sent = send_campaign(
                self.item.prepared,
                conn=self.conn,
                transport=transport,
                options=self.options,
                recipients=todo,
                campaign_id=key,
            )
        except MailerError as exc:
            self._error(exc)
            finish_wave_run(self.conn, run_id, "failed", 0, 0, exc.message)
            return WaveResult(self.item.id, key, wave.key, "failed", len(todo), note=exc.message)
        notes = [sent.paused or ("stopped" if sent.stopped else "")]
        if sent.skipped_suppressed:
            notes.append(f"{sent.skipped_suppressed} suppressed")
        note = "; ".join(n for n in notes if n)
        outcome = "sent" if sent.complete or sent.sent else "failed"
        finish_wave_run(self.conn, run_id, outcome, sent.sent, sent.failed, note)
        return WaveResult(
            self.item.id, key, wave.key, outcome, len(todo), sent.sent, sent.failed, note
        )

    def _checks_pass(self) -> bool:
        """Pre-send checks, once per campaign per pass; --force sends anyway."""
        if self.checks_pending:
            self.checks_pending = False
            from mailer.checks.gate import refuse_on_errors, run_checks

            try:
                refuse_on_errors(
                    run_checks(self.item.prepared, browser=self.browser, conn=self.conn)
                )
            except MailerError as exc:
                self.checks_failed = not self.options.forced
                if self.checks_failed:
                    self._error(exc)
        return not self.checks_failed

    def _error(self, error: MailerError) -> None:
        # The same failure in every wave is reported once, with its hint.
        if all(str(e) != str(error) for e in self.errors):
            self.errors.append(error)

    def _close(self, wave: Wave) -> WaveResult | None:
        key, _ = self._key(wave)
        if not claim(self.conn, key, wave.key, self.owner, self.now):
            return None  # closed already, or someone is still sending it
        missing = _unsent(self.conn, key, wave, pending_too=False)
        if missing:
            run_id = start_wave_run(self.conn, self.item.id, key, wave, len(missing))
            note = f"grace ended {wave.deadline:%Y-%m-%d %H:%M} UTC"
            finish_wave_run(self.conn, run_id, "missed", 0, 0, note)
        release(self.conn, key, wave.key, self.owner, status="closed")
        if not missing:
            return None
        return WaveResult(self.item.id, key, wave.key, "missed", len(missing), note=note)


def _unsent(conn: sqlite3.Connection, key: str, wave: Wave, pending_too: bool = True) -> list[Any]:
    """Wave members with no journal row under ``key`` (or a pending one, to resume)."""
    statuses = journal_statuses(conn, key, [p.email for p in wave.recipients])
    todo = []
    for person in wave.recipients:
        status = statuses.get(person.email.lower())
        if status is None or (pending_too and status in PENDING):
            todo.append(person)
    return todo


def default_transport(item: ScheduledCampaign, key: str) -> Transport:
    """SMTP when a relay is configured, else ``<outbox>/<journal key>`` (one folder per key)."""
    settings = item.prepared.settings
    if settings.smtp_configured:
        from mailer.delivery.smtp import SmtpTransport, relay_from_settings

        return SmtpTransport(relay_from_settings(settings))
    from mailer.delivery.transport import OutboxTransport

    return OutboxTransport(settings.outbox / key)


@dataclass(frozen=True)
class Overview:
    """What ``schedule list`` shows for one campaign."""

    campaign: str
    path: Path
    description: str
    # Upcoming waves, each with how many of its people are settled in the journal
    # (sent, failed, suppressed or unknown after a crash): they will not be sent again.
    waves: list[tuple[Wave, int]]
    undated: int
    default_zone: int
    more: int = 0  # upcoming waves beyond ``limit``
    problems: tuple[str, ...] = ()  # unreadable timezone / date fields, a few of them
    problem_count: int = 0


def overview(
    item: ScheduledCampaign, now: datetime, conn: sqlite3.Connection | None, limit: int = 10
) -> Overview:
    """The next waves of a scheduled campaign, with recipient counts per wave."""
    from mailer.schedule.plan import upcoming

    found = plan(item.schedule, item.prepared.recipients(), now.astimezone(UTC))
    rows: list[tuple[Wave, int]] = []
    coming = upcoming(found.waves, len(found.waves))
    for wave in coming[:limit]:
        done = 0
        if conn is not None:
            # The key default_transport's runs use: outbox files are journaled apart.
            outbox = not item.prepared.settings.smtp_configured
            key = delivery_key(journal_key(item.id, wave), "outbox" if outbox else "smtp")
            statuses = journal_statuses(conn, key, [r.email for r in wave.recipients])
            done = sum(status not in PENDING for status in statuses.values())
        rows.append((wave, done))
    return Overview(
        item.id,
        item.path,
        item.schedule.describe(),
        rows,
        found.undated,
        found.default_zone,
        max(0, len(coming) - limit),
        found.problems,
        found.problem_count,
    )
