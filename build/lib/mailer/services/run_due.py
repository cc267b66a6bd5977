"""``run-due``: send every scheduled wave that is due now, exactly once, from cron or a loop.

For each scheduled campaign (``mailer.services.scheduled``), ``run_due`` plans
the waves (``mailer.schedule.plan``) and, for each wave, decides with a fresh
``now`` (a pass that spent an hour on one wave must not judge the next on the
hour-old moment):

1. a *due* wave: take its lease (``mailer.schedule.leases``), so a second
   ``run-due`` process skips the wave while the first sends it (a thread
   renews the lease, on the real clock, for as long as the sending takes);
2. ask the send journal who in the wave has no row yet under the wave's
   journal key (``<campaign id>@2027``, ``<campaign id>@birthday-2027``), or a
   pending one (to try again, or held back by the frequency cap); rows left
   unknown by a crash are reported, and sent again only with ``resend_unknown``;
3. contacts the frequency cap still holds back get a ``held`` row and are
   looked at again by the next pass, with that pass's ``now``; a pass that has
   nobody to send writes no run rows (cron every five minutes stays quiet);
4. run the pre-send checks and hand the rest to
   ``mailer.delivery.send.send_campaign``, told to stop taking new messages
   when the wave's send window closes or its grace period ends; what is left
   goes in the next window, or is missed;
5. record the outcome in ``schedule_runs`` and release the lease.

A wave whose grace period ended without reaching everyone is closed once, its
unreached recipients marked ``missed`` in the journal — but never by a pass
whose ``now`` is ahead of the real clock (``run-due --now`` in the future):
that would close a real wave before its day. ``rehearsal`` passes write
nothing at all: they say what a pass at that moment would do.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path

from mailer.audience.database import Connection
from mailer.audience.frequency import capped_among
from mailer.audience.store import connect_store, store_errors
from mailer.checks.gate import refuse_on_errors, run_checks
from mailer.core.clock import PassClock, SystemClock, utc_now
from mailer.core.errors import MailerError
from mailer.core.process import ProcessLock, process_owner
from mailer.core.recipient import Recipient
from mailer.core.settings import Settings
from mailer.delivery.choose import transport_for as settings_transport
from mailer.delivery.journal import PENDING, Journal
from mailer.delivery.report import SendOptions, SendReport
from mailer.delivery.send import send_campaign
from mailer.delivery.transport import Transport
from mailer.schedule.leases import (
    ALL_WAVES,
    Lease,
    LeaseKeeper,
    claim,
    closed_waves,
    release,
    settle_occurrence,
)
from mailer.schedule.model import Wave, wave_key, zone_named
from mailer.schedule.plan import (
    date_filter,
    last_deadline,
    near,
    occurrences_near,
    plan_waves,
    sending_until,
    wave_state,
)
from mailer.schedule.runs import finish_wave_run, mark_crashed, start_wave_run
from mailer.services.ab import ab_pass
from mailer.services.scheduled import ScheduledCampaign, load_scheduled
from mailer.services.workspace import send_options

# Misses older than this (e.g. last year's holiday when a campaign is first added) go unrecorded.
MISSED_LOOKBACK = timedelta(days=7)
# How often a wave's lease is renewed while it is being sent (seconds).
RENEW_SECONDS = 60.0
UNKNOWN_HINT = "perhaps delivered; run-due --resend-unknown sends them again"


@dataclass(frozen=True)
class WaveResult:
    """What ``run_due`` did with one wave."""

    campaign: str
    key: str  # journal key
    wave: str
    # "sent" | "missed" | "failed" | "busy" | "closed" | "unknown"; a rehearsal (or a
    # pass ahead of the real clock) says "would send" / "would miss" and changes nothing.
    outcome: str
    recipients: int
    sent: int = 0
    failed: int = 0
    note: str = ""
    unknown: int = 0  # left unknown by a crashed run: perhaps delivered, not sent again
    held: int = 0  # held back by the frequency cap; the next pass looks again


@dataclass
class RunDueReport:
    """One ``run-due`` pass: campaigns looked at, wave results and broken campaign files."""

    now: datetime
    campaigns: int = 0
    rehearsal: bool = False
    results: list[WaveResult] = field(default_factory=list)
    errors: list[MailerError] = field(default_factory=list)
    ab: list[str] = field(default_factory=list)  # A/B winners sent to the rest ([ab] campaigns)
    stopped: bool = False  # a stop request (SIGTERM, Ctrl-C) ended the pass early
    busy: str | None = None  # another pass holds the lock: who (a pid), or "" when unknown

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
    now: datetime | None = None,
    *,
    force: bool = False,
    browser: bool = True,
    rehearsal: bool = False,
    resend_unknown: bool = False,
    stop: threading.Event | None = None,
) -> RunDueReport:
    """One pass over the scheduled campaigns in ``folder``: load, send what is due, report.

    ``now`` (default: the real clock) is the moment the pass runs for; see
    ``run_due`` for ``rehearsal``. One pass at a time per workspace: a pass that
    finds another one running (cron starting the next before the last ended)
    returns at once with ``busy`` set. ``stop``: set it (SIGTERM) to take no new
    message or wave; in-flight messages finish.
    """
    if rehearsal:  # writes nothing: no need to wait for anyone
        return _pass(settings, folder, now, force, browser, rehearsal, resend_unknown, stop)
    lock_path = run_due_lock(settings)
    if not lock_path.parent.is_dir():  # the store's own error says what is missing
        return _pass(settings, folder, now, force, browser, rehearsal, resend_unknown, stop)
    with ProcessLock(str(lock_path)) as lock:
        if not lock.acquired:
            moment = now or utc_now()
            return RunDueReport(moment, busy=lock.holder or "")
        with store_errors(str(settings.db_path)):
            return _pass(settings, folder, now, force, browser, rehearsal, resend_unknown, stop)


def run_due_lock(settings: Settings) -> Path:
    """The lock file of run-due passes: beside the SQLite file, else in the workspace."""
    if settings.store_url is None:
        return settings.db_path.with_name(settings.db_path.name + ".run-due.lock")
    return settings.root / ".mailer-run-due.lock"


def _pass(
    settings: Settings,
    folder: Path,
    now: datetime | None,
    force: bool,
    browser: bool,
    rehearsal: bool,
    resend_unknown: bool,
    stop: threading.Event | None,
) -> RunDueReport:
    clock = PassClock.at(now) if now is not None else PassClock(SystemClock())
    found, errors = load_scheduled(folder, settings, clock.now().date())
    conn = connect_store(settings)
    try:
        options = send_options(settings, forced=force, stop=stop)
        options.resend_unknown = resend_unknown
        report = run_due(
            found,
            conn=conn,
            clock=clock,
            transport_for=default_transport,
            options=options,
            browser=browser,
            rehearsal=rehearsal,
        )
    finally:
        conn.close()
    report.errors[:0] = errors
    if report.stopped:
        return report
    report.ab, ab_errors = ab_pass(
        settings, folder, clock.now(), rehearsal=rehearsal, force=force, browser=browser
    )
    report.errors += ab_errors
    return report


def run_due(
    campaigns: list[ScheduledCampaign],
    *,
    conn: Connection,
    transport_for: TransportFor,
    now: datetime | None = None,
    clock: PassClock | None = None,
    options: SendOptions | None = None,
    checks: bool = True,
    browser: bool = True,
    owner: str | None = None,
    rehearsal: bool = False,
) -> RunDueReport:
    """Send every due wave of ``campaigns``; record misses; return what happened.

    The pass runs at ``clock``'s time (or at ``now`` on the real clock when no
    clock is given). ``checks`` runs the pre-send checks before a campaign's
    first wave of the pass, ``browser`` includes the fold check in headless
    Chromium. A ``rehearsal`` writes nothing and sends nothing: each wave's
    result says what would happen.
    """
    if clock is None:
        clock = PassClock.at(now) if now is not None else PassClock(SystemClock())
    report = RunDueReport(clock.now(), len(campaigns), rehearsal)
    me = owner or process_owner()
    stop = options.stop if options is not None else None
    for item in campaigns:
        if stop is not None and stop.is_set():
            report.stopped = True
            break
        now = clock.now()
        occurrences = occurrences_near(item.schedule, now, MISSED_LOOKBACK)
        if occurrences is not None:
            # Occurrences settled for good need nothing: often none is left to look at,
            # and the audience is not even read.
            occurrences = [
                (label, day)
                for label, day in occurrences
                if ALL_WAVES not in closed_waves(conn, item.occurrence_key(label))
            ]
            if not occurrences:
                continue
        days = near(item.schedule, now, MISSED_LOOKBACK)
        try:
            # Birthdays (order dates) near now only: the rest of the audience has no wave.
            people = list(item.prepared.recipients(only=date_filter(item.schedule, days)))
        except MailerError as exc:
            report.errors.append(exc)
            continue
        runner = _CampaignRun(
            item,
            conn,
            clock,
            transport_for,
            options or SendOptions(),
            me,
            checks=checks,
            browser=browser,
            rehearsal=rehearsal,
        )
        for wave in plan_waves(item.schedule, people, now, days=days).waves:
            if stop is not None and stop.is_set():
                report.stopped = True
                break
            result = runner.handle(wave)
            if result is not None:
                report.results.append(result)
        report.errors += runner.errors
        if occurrences and not rehearsal and not clock.ahead:
            runner.settle(occurrences)
    return report


class _CampaignRun:
    """Handles the waves of one campaign in one ``run_due`` pass."""

    def __init__(
        self,
        item: ScheduledCampaign,
        conn: Connection,
        clock: PassClock,
        transport_for: TransportFor,
        options: SendOptions,
        owner: str,
        *,
        checks: bool,
        browser: bool,
        rehearsal: bool,
    ):
        self.item, self.conn, self.clock, self.owner = item, conn, clock, owner
        self.transport_for, self.options = transport_for, options
        self.checks_pending = checks
        self.checks_failed = False
        self.browser = browser
        self.rehearsal = rehearsal
        self.errors: list[MailerError] = []
        self.closed: dict[str, set[str]] = {}  # journal key -> waves settled for good
        self.unclosed: set[str] = set()  # keys with a wave past its grace that stayed open

    def handle(self, wave: Wave) -> WaveResult | None:
        """Send a due wave, or close a recent miss; None when there is nothing to say."""
        now = self.clock.now()  # fresh for every wave
        state = wave_state(self.item.schedule, wave, now)
        if state == "due":
            return self._rehearse(wave) if self.rehearsal else self._send(wave)
        if state == "missed" and wave.deadline > now - MISSED_LOOKBACK:
            return self._close(wave)
        return None

    def settle(self, occurrences: list[tuple[str, date]]) -> None:
        """Mark occurrences whose every wave is past its grace period and closed."""
        now = self.clock.now()
        for label, day in occurrences:
            key = self.item.occurrence_key(label)
            if now >= last_deadline(self.item.schedule, day) and key not in self.unclosed:
                settle_occurrence(self.conn, key, self.owner, self.clock.real_now())

    def _result(self, wave: Wave, outcome: str, recipients: int, **more: object) -> WaveResult:
        key = self.item.key(wave)
        return WaveResult(self.item.id, key, wave.key, outcome, recipients, **more)  # type: ignore[arg-type]

    def _rehearse(self, wave: Wave) -> WaveResult | None:
        """What a real pass would do with a due wave; nothing is written."""
        key = self.item.key(wave)
        todo, unknown = _unsent(self.conn, key, wave, resend_unknown=self.options.resend_unknown)
        sendable, held = self._split_held(key, todo)
        if not sendable and not unknown:
            return None
        note = _notes(held=len(held), unknown=len(unknown))
        return self._result(
            wave, "would send", len(sendable), note=note, unknown=len(unknown), held=len(held)
        )

    def _send(self, wave: Wave) -> WaveResult | None:
        key = self.item.key(wave)
        lease = claim(self.conn, key, wave.key, self.owner, self.clock.real_now())
        if lease is Lease.BUSY:
            return self._result(
                wave, "busy", len(wave.recipients), note="another run-due is sending this wave"
            )
        if lease is Lease.CLOSED:
            return self._result(
                wave, "closed", len(wave.recipients), note="this wave was closed as missed"
            )
        try:
            return self._send_leased(wave, key, lease)
        finally:
            release(self.conn, key, wave.key, self.owner)

    def _send_leased(self, wave: Wave, key: str, lease: Lease) -> WaveResult | None:
        todo, unknown = _unsent(self.conn, key, wave, resend_unknown=self.options.resend_unknown)
        if lease is Lease.TAKEN_OVER:
            note = "its run-due process died" + (
                f"; {len(unknown)} unknown ({UNKNOWN_HINT})" if unknown else ""
            )
            mark_crashed(self.conn, key, wave.key, note, now=self.clock.now())
        sendable, held = self._split_held(key, todo)
        if not sendable:
            # Nobody to send now: note who the cap holds, write no run rows.
            journal = Journal(self.conn, key, clock=self.clock)
            for person in held:
                journal.mark_held(person, "held back by the frequency cap")
            if not unknown:
                return None
            return self._result(
                wave, "unknown", len(unknown), note=UNKNOWN_HINT, unknown=len(unknown)
            )
        keeper = LeaseKeeper(
            self.conn, key, wave.key, self.owner, clock=self.clock.real_now, every=RENEW_SECONDS
        )
        with keeper:
            return self._deliver(wave, key, todo, len(unknown))

    def _split_held(
        self, key: str, todo: list[Recipient]
    ) -> tuple[list[Recipient], list[Recipient]]:
        """``todo`` split into (sendable now, held back by the frequency cap at this pass's now)."""
        cap = self.item.prepared.settings.frequency_cap
        if cap is None or not todo:
            return todo, []
        capped = capped_among(
            self.conn,
            [p.email for p in todo],
            max_messages=cap.max_messages,
            days=cap.days,
            exclude=key,
            now=self.clock.now(),
        )
        sendable = [p for p in todo if p.email.lower() not in capped]
        return sendable, [p for p in todo if p.email.lower() in capped]

    def _deliver(self, wave: Wave, key: str, todo: list[Recipient], unknown: int) -> WaveResult:
        now = self.clock.now()
        transport = self.transport_for(self.item, wave_key(self.item.id, wave))
        run_id = start_wave_run(self.conn, self.item.id, key, wave, len(todo), now=now)
        if not self._checks_pass():
            note = "pre-send checks failed"
            finish_wave_run(self.conn, run_id, "failed", 0, 0, note, now=self.clock.now())
            return self._result(wave, "failed", len(todo), note=note)
        until = sending_until(self.item.schedule, wave, now)
        options = replace(
            self.options, stop_at=until.timestamp(), stop_reason=self._stop_reason(wave, until)
        )
        try:
            sent = send_campaign(
                self.item.prepared,
                conn=self.conn,
                transport=transport,
                options=options,
                clock=self.clock,
                recipients=todo,
                campaign_id=key,
            )
        except MailerError as exc:
            self._error(exc)
            finish_wave_run(self.conn, run_id, "failed", 0, 0, exc.message, now=self.clock.now())
            return self._result(wave, "failed", len(todo), note=exc.message)
        note = "; ".join(
            part
            for part in (wave_note(sent), _notes(held=sent.skipped_capped, unknown=unknown))
            if part
        )
        outcome = "sent" if sent.complete or sent.sent else "failed"
        finish_wave_run(
            self.conn, run_id, outcome, sent.sent, sent.failed, note, now=self.clock.now()
        )
        return self._result(
            wave,
            outcome,
            len(todo),
            sent=sent.sent,
            failed=sent.failed,
            note=note,
            unknown=unknown,
            held=sent.skipped_capped,
        )

    def _stop_reason(self, wave: Wave, until: datetime) -> str:
        local = until.astimezone(zone_named(wave.zone) or until.tzinfo)
        if until >= wave.deadline:
            return f"the grace period ended ({local:%Y-%m-%d %H:%M} {wave.zone})"
        return (
            f"the send window closed ({local:%H:%M} {wave.zone}); "
            "the rest goes in the next window if the grace period allows"
        )

    def _checks_pass(self) -> bool:
        """Pre-send checks, once per campaign per pass; a forced pass sends anyway."""
        if self.checks_pending:
            self.checks_pending = False
            try:
                report = run_checks(
                    self.item.prepared,
                    browser=self.browser,
                    conn=self.conn,
                    now=self.clock.now(),
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
        if key not in self.closed:  # one read per key and pass, not a write per wave
            self.closed[key] = closed_waves(self.conn, key)
        if wave.key in self.closed[key]:
            return None
        note = f"grace ended {wave.deadline:%Y-%m-%d %H:%M} UTC"
        if self.rehearsal or self.clock.ahead:
            # Never settle a wave on a made-up moment: only say what would happen.
            missing, _ = _unsent(self.conn, key, wave)
            if not missing:
                return None
            if not self.rehearsal:
                note += "; not closed: this pass's --now is ahead of the real clock"
            return self._result(wave, "would miss", len(missing), note=note)
        if not claim(self.conn, key, wave.key, self.owner, self.clock.real_now()).ours:
            self.unclosed.add(key)  # someone is still sending it: settle the occurrence later
            return None
        missing, _ = _unsent(self.conn, key, wave)
        if missing:
            now = self.clock.now()
            Journal(self.conn, key, clock=self.clock).mark_missed(missing, note)
            run_id = start_wave_run(self.conn, self.item.id, key, wave, len(missing), now=now)
            finish_wave_run(self.conn, run_id, "missed", 0, 0, note, now=now)
        release(self.conn, key, wave.key, self.owner, status="closed")
        if not missing:
            return None
        return self._result(wave, "missed", len(missing), note=note)


def _notes(*, held: int, unknown: int) -> str:
    parts = []
    if held:
        parts.append(f"{held} held back by the frequency cap (looked at again next pass)")
    if unknown:
        parts.append(f"{unknown} unknown ({UNKNOWN_HINT})")
    return "; ".join(parts)


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
    conn: Connection, key: str, wave: Wave, *, resend_unknown: bool = False
) -> tuple[list[Recipient], list[Recipient]]:
    """(to send, unknown): wave members with no row under ``key`` or a pending one, and
    those left ``sending`` by a run that died (added to the first list with ``resend_unknown``).
    """
    statuses = Journal(conn, key).statuses([p.email for p in wave.recipients])
    todo: list[Recipient] = []
    unknown: list[Recipient] = []
    for person in wave.recipients:
        status = statuses.get(person.email.lower())
        if status is None or status in PENDING:
            todo.append(person)
        elif status == "sending":
            (todo if resend_unknown else unknown).append(person)
    return todo, unknown
