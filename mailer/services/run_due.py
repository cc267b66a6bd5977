"""``run-due``: send every scheduled wave that is due now, exactly once, from cron or a loop.

For each scheduled campaign (``mailer.services.scheduled``), ``run_due`` plans
the waves (``mailer.schedule.plan``) at ``now`` and, for each wave that is due:

1. takes the wave's lease (``mailer.schedule.leases``), so a second
   ``run-due`` process skips the wave while the first sends it (a thread
   renews the lease for as long as the sending takes);
2. asks the send journal who in the wave has no row yet under the wave's
   journal key (``<campaign id>@2027``, ``<campaign id>@birthday-2027``) — the
   journal is what makes "once a year" and "once per birthday" hold, even
   across crashes, and it lets contacts added during the grace period still
   get their greeting;
3. runs the pre-send checks (the fold check in Chromium too, unless
   ``browser=False``, as for a manual send) and hands those people to
   ``mailer.delivery.send.send_campaign``: throttle, suppression, retries and
   the journal work exactly as for a manual send;
4. records the outcome in ``schedule_runs`` and releases the lease.

Waves whose grace period ended recently without reaching everyone are
recorded once as *missed* and never sent.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from mailer.audience.store import connect
from mailer.checks.gate import refuse_on_errors, run_checks
from mailer.core.clock import aware
from mailer.core.errors import MailerError
from mailer.core.process import process_owner
from mailer.core.recipient import Recipient
from mailer.core.settings import Settings
from mailer.delivery.choose import transport_for as settings_transport
from mailer.delivery.journal import PENDING, Journal
from mailer.delivery.report import SendOptions, SendReport
from mailer.delivery.send import send_campaign
from mailer.delivery.transport import Transport
from mailer.schedule.leases import LeaseKeeper, claim, release
from mailer.schedule.model import Wave, wave_key
from mailer.schedule.plan import near, plan_waves
from mailer.schedule.runs import finish_wave_run, start_wave_run
from mailer.services.scheduled import ScheduledCampaign, load_scheduled
from mailer.services.workspace import send_options

# Misses older than this (e.g. last year's holiday when a campaign is first added) go unrecorded.
MISSED_LOOKBACK = timedelta(days=7)
# How often a wave's lease is renewed while it is being sent (seconds), and the clock for it.
RENEW_SECONDS = 60.0
renew_clock = time.monotonic


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


TransportFor = Callable[[ScheduledCampaign, str], Transport]


def default_transport(item: ScheduledCampaign, key: str) -> Transport:
    """The workspace's relay, else the outbox folder ``<outbox>/<wave key>``."""
    return settings_transport(item.prepared.settings, key)


def run_due_pass(
    settings: Settings,
    folder: Path,
    now: datetime,
    *,
    force: bool = False,
    browser: bool = True,
) -> RunDueReport:
    """One pass over the scheduled campaigns in ``folder``: load, send what is due, report."""
    found, errors = load_scheduled(folder, settings, aware(now).date())
    conn = connect(settings.db_path)
    try:
        report = run_due(
            found,
            conn=conn,
            now=now,
            transport_for=default_transport,
            options=send_options(settings, forced=force),
            browser=browser,
        )
    finally:
        conn.close()
    report.errors[:0] = errors
    return report


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
    pass, ``browser`` includes the fold check in headless Chromium.
    """
    now = aware(now)
    report = RunDueReport(now, len(campaigns))
    me = owner or process_owner()
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
        for wave in plan_waves(item.schedule, people, now, days=days).waves:
            result = runner.handle(wave)
            if result is not None:
                report.results.append(result)
        report.errors += runner.errors
    return report


class _PassTime:
    """The pass's ``now`` moved on by the real time elapsed since it started.

    ``--now`` may fake the moment of a pass; what happens during the pass (a
    wave's start and end) is then recorded on that faked timeline.
    """

    def __init__(self, start: datetime):
        self.start = start
        self.started = renew_clock()

    def now(self) -> datetime:
        return self.start + timedelta(seconds=renew_clock() - self.started)


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
        self.time = _PassTime(now)
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

    def _send(self, wave: Wave) -> WaveResult | None:
        transport = self.transport_for(self.item, wave_key(self.item.id, wave))
        key = self.item.key(wave)
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

    def _deliver(
        self, wave: Wave, key: str, todo: list[Recipient], transport: Transport
    ) -> WaveResult:
        run_id = start_wave_run(self.conn, self.item.id, key, wave, len(todo), now=self.time.now())
        if not self._checks_pass():
            note = "pre-send checks failed"
            finish_wave_run(self.conn, run_id, "failed", 0, 0, note, now=self.time.now())
            return WaveResult(self.item.id, key, wave.key, "failed", len(todo), note=note)
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
            finish_wave_run(self.conn, run_id, "failed", 0, 0, exc.message, now=self.time.now())
            return WaveResult(self.item.id, key, wave.key, "failed", len(todo), note=exc.message)
        note = wave_note(sent)
        outcome = "sent" if sent.complete or sent.sent else "failed"
        finish_wave_run(
            self.conn, run_id, outcome, sent.sent, sent.failed, note, now=self.time.now()
        )
        return WaveResult(
            self.item.id, key, wave.key, outcome, len(todo), sent.sent, sent.failed, note
        )

    def _checks_pass(self) -> bool:
        """Pre-send checks, once per campaign per pass; a forced pass sends anyway."""
        if self.checks_pending:
            self.checks_pending = False
            try:
                report = run_checks(
                    self.item.prepared, browser=self.browser, conn=self.conn, now=self.now
                )
                refuse_on_errors(report)
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
        key = self.item.key(wave)
        if not claim(self.conn, key, wave.key, self.owner, self.now):
            return None  # closed already, or someone is still sending it
        missing = _unsent(self.conn, key, wave, pending_too=False)
        if missing:
            now = self.time.now()
            run_id = start_wave_run(self.conn, self.item.id, key, wave, len(missing), now=now)
            note = f"grace ended {wave.deadline:%Y-%m-%d %H:%M} UTC"
            finish_wave_run(self.conn, run_id, "missed", 0, 0, note, now=now)
        release(self.conn, key, wave.key, self.owner, status="closed")
        if not missing:
            return None
        return WaveResult(self.item.id, key, wave.key, "missed", len(missing), note=note)


def wave_note(sent: SendReport) -> str:
    """A wave run's note: why it stopped and who was skipped, in run-due's terms."""
    notes = []
    if sent.paused:
        resume = ""
        if sent.resume_in is not None:
            resume = f"; run-due resumes the wave in about {sent.resume_in / 3600:.1f} h"
        notes.append(sent.paused + resume)
    elif sent.stopped:
        notes.append("stopped")
    if sent.skipped_suppressed:
        notes.append(f"{sent.skipped_suppressed} suppressed")
    return "; ".join(notes)


def _unsent(
    conn: sqlite3.Connection, key: str, wave: Wave, pending_too: bool = True
) -> list[Recipient]:
    """Wave members with no journal row under ``key`` (or a pending one, to resume)."""
    statuses = Journal(conn, key).statuses([p.email for p in wave.recipients])
    todo = []
    for person in wave.recipients:
        status = statuses.get(person.email.lower())
        if status is None or (pending_too and status in PENDING):
            todo.append(person)
    return todo
