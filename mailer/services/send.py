"""``mailer send`` as a use case: dry run, pre-send checks, confirmation data, live and test sends.

The CLI parses flags into a ``SendRequest``, calls ``open_send`` and then the
steps it needs; each step returns data (a ``DryRun``, a ``SendReport`` ...)
that the CLI words. Nothing here prints, prompts or names a flag.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from email.utils import formataddr
from pathlib import Path

from mailer.audience.database import Connection
from mailer.audience.store import DiskRoom, journal_room
from mailer.campaign.prepared import PreparedCampaign, prepare_campaign
from mailer.checks.gate import CheckReport, refuse_on_errors, run_checks
from mailer.compose.dkim import DkimSigner, signer_from_settings
from mailer.core.campaign import check_address
from mailer.core.errors import SendError
from mailer.core.keys import journal_key
from mailer.core.settings import Settings
from mailer.delivery.choose import transport_for, transport_name, unverified_relay
from mailer.delivery.jobs import BatchShare
from mailer.delivery.plan import DryRun, Plan, dry_run
from mailer.delivery.report import Progress, SendOptions, SendReport
from mailer.delivery.send import describe_transport, send_campaign
from mailer.delivery.testsend import TestSend, send_tests
from mailer.delivery.transport import Transport
from mailer.feedback import abtest
from mailer.services.scheduled import schedule_of
from mailer.services.workspace import open_database, send_options, workspace_settings

Tick = Callable[[int, int], None]  # (done, total), for progress bars

MAX_FAILURES = 25  # failures in a row before a run pauses itself, unless told otherwise

__all__ = [
    "MAX_FAILURES",
    "CampaignSend",
    "CheckOutcome",
    "DiskRoom",
    "DryRun",
    "DryRunView",
    "Plan",
    "SendReport",
    "SendRequest",
    "TestSend",
    "Transport",
    "describe_transport",
    "open_send",
]


@dataclass(frozen=True)
class SendRequest:
    """What the user asked a send to do."""

    campaign: Path
    db: Path | None = None
    smtp: str | None = None
    smtp_profile: str | None = None
    insecure_skip_tls_verify: bool = False
    resend_unknown: bool = False
    retry_failed: bool = False
    force: bool = False
    browser: bool = True
    concurrency: int | None = None
    max_failures: int = MAX_FAILURES
    ignore_schedule: bool = False


@dataclass
class DryRunView:
    """What a live send would do now: the plan, its size, and the checks without the fold."""

    result: DryRun
    checks: CheckReport
    schedule: str | None  # the schedule's description, when the campaign has one
    ab: str | None = None  # the A/B phase of this send, for an [ab] campaign


@dataclass(frozen=True)
class CheckOutcome:
    """The pre-send checks before a live send: a summary line, and whether they were forced."""

    forced: bool
    errors: int
    summary: str
    # Each warning as "[code] where: message", so the confirmation names them.
    warnings: list[str] = field(default_factory=list)
    sender: str = ""  # the From line: "Lotus Tea House <hello@lotus-tea.cn>"


@dataclass
class CampaignSend:
    """A campaign opened for sending: prepared, with its options, signer and database."""

    request: SendRequest
    prepared: PreparedCampaign
    options: SendOptions
    schedule: str | None = None
    # An [ab] campaign: what this send is in the test (the share, or the winner to the rest).
    ab_note: str | None = None
    _ab_start: bool = field(default=False, repr=False)  # record the test's start when sending
    _conn: Connection | None = field(default=None, repr=False)
    _surveyed: Plan | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        """The campaign's settings (workspace, campaign overrides, flags)."""
        return self.prepared.settings

    @property
    def signer(self) -> DkimSigner | None:
        """The DKIM signer, when ``[dkim]`` is configured."""
        return self.options.dkim

    def database(self) -> Connection:
        """The workspace database; database audiences read through the same connection."""
        if self._conn is None:
            self._conn = open_database(self.settings)
            self.prepared.conn = self.prepared.conn or self._conn
        return self._conn

    def close(self) -> None:
        """Close the database connection this send opened (it opens again when needed)."""
        if self._conn is not None:
            if self.prepared.conn is self._conn:
                self.prepared.conn = None
            self._conn.close()
            self._conn = None

    def dry_run(self, progress: Tick | None = None) -> DryRunView:
        """Check and render every message a live send would send now; send nothing.

        ``progress(done, total)`` hears how many recipients have been checked.
        """
        conn = self.database()
        key = journal_key(self.prepared.campaign.id, transport_name(self.settings))
        result = dry_run(
            self.prepared,
            conn,
            options=self.options,
            campaign_id=key,
            now=self.prepared.now(),
            progress=self._counting(progress),
        )
        checks = run_checks(self.prepared, browser=False, conn=conn)
        return DryRunView(result, checks, self.schedule, self.ab_note)

    def transport(self) -> Transport:
        """The relay (its pool grown to the requested concurrency), else the outbox folder."""
        transport = transport_for(
            self.settings,
            self.prepared.campaign.id,
            insecure_skip_verify=self.request.insecure_skip_tls_verify,
            pool=self.request.concurrency,
        )
        # The outbox is a folder, not a relay: there is no quota to protect.
        self.options.unthrottled = transport.name == "outbox"
        return transport

    def pre_send_checks(self) -> CheckOutcome:
        """Run the checks a live send runs first; errors stop it (``CheckError``) unless forced.

        An empty audience stops it even when forced: there is nobody to send to, and a
        "sent 0" report reads like success.
        """
        if self.prepared.audience_size() == 0:
            raise SendError(
                "the audience is empty: a live send would reach nobody",
                where=self.prepared.campaign.audience.describe(),
                hint="import contacts, or check the segment and the contacts file "
                "(a file with only its header row has no contacts)",
            )
        report = run_checks(self.prepared, browser=self.request.browser, conn=self.database())
        # A skipped fold has a summary row of its own, so it is not counted as a warning here.
        warnings = [f for f in report.warnings if f.code != "fold-not-run"]
        summary = f"{len(report.errors)} error(s), {len(warnings)} warning(s)"
        if report.fold_ran:
            summary += "; fold " + report.fold_note
        if not report.ok and not self.request.force:
            refuse_on_errors(report)
        self.options.forced = not report.ok
        self.options.fold_skipped = not self.request.browser
        shown = [f"[{f.code}] {f.where}: {f.message}" if f.where else f"[{f.code}] {f.message}"
                 for f in (*report.errors, *warnings)]  # fmt: skip
        sender = self.prepared.campaign.sender
        return CheckOutcome(
            self.options.forced,
            len(report.errors),
            summary,
            shown,
            formataddr((sender.name, sender.email)),
        )

    def confirmation(self, transport: Transport, progress: Tick | None = None) -> DryRun:
        """Who the live send is about to reach (no rendering beyond one subject per variant).

        Every recipient is checked here; the send that follows does not check them again.
        ``progress(done, total)`` hears how many have been checked.
        """
        key = journal_key(self.prepared.campaign.id, transport.name)
        result = dry_run(
            self.prepared,
            self.database(),
            options=self.options,
            build=False,
            campaign_id=key,
            now=self.prepared.now(),
            progress=self._counting(progress),
        )
        self._surveyed = result.plan
        return result

    def _counting(self, progress: Tick | None) -> Callable[[int], None] | None:
        """``progress`` with the audience size filled in (counted once, up front)."""
        if progress is None:
            return None
        total = self.prepared.audience_size()
        return lambda done: progress(done, total)

    def send(
        self,
        transport: Transport,
        progress: Progress | None = None,
        share: BatchShare | None = None,
        stop: threading.Event | None = None,
    ) -> SendReport:
        """Send for real, journaled; resumes where an earlier run stopped.

        ``share``: a worker's run on a queued job (``mailer.services.worker``).
        ``stop``: set it (SIGTERM, Ctrl-C) to take no new message; in-flight ones finish.
        """
        if stop is not None:
            self.options.stop = stop
        ab = self.prepared.campaign.ab
        key = journal_key(self.prepared.campaign.id, transport.name)
        if ab is not None and self._ab_start:
            abtest.start(self.database(), key, ab, self.prepared.now())
        report = send_campaign(
            self.prepared,
            conn=self.database(),
            transport=transport,
            options=self.options,
            progress=progress,
            surveyed=self._surveyed,
            share=share,
        )
        if ab is not None and self.options.ab_variant is not None and report.complete:
            # The winner has reached the rest of the audience: the test is over.
            abtest.finish(self.database(), key, self.prepared.now())
        return report

    @property
    def planned(self) -> int:
        """Messages the confirmed plan sends (0 before ``confirmation``)."""
        return self._surveyed.todo if self._surveyed is not None else 0

    def disk_room(self, messages: int) -> DiskRoom | None:
        """Free space on the database's disk against what journalling ``messages`` needs;
        None when there is room (or the store is not a local file)."""
        room = journal_room(self.database(), messages)
        return room if room is not None and room.short else None

    def test_send(self, address: str) -> list[TestSend]:
        """Send each subject variant once to ``address``, marked [TEST]; no journal entry."""
        target = check_address(address, "", "the test address")
        transport = self.transport()
        return send_tests(
            self.prepared, target, transport, dkim=self.signer, now=self.prepared.clock.time()
        )


def open_send(
    request: SendRequest, *, live: bool, settings: Settings | None = None
) -> CampaignSend:
    """Load settings, prepare the campaign and set up the send options.

    A campaign with a ``[schedule]`` is validated; a ``live`` manual send of it
    is refused unless ``ignore_schedule``: run-due sends it to each recipient at
    the scheduled local time, under another journal key, so the same people
    would be greeted again on the day. ``settings``: already loaded (run-due's).
    """
    settings = settings or workspace_settings(
        db=request.db, smtp_url=request.smtp, smtp_profile=request.smtp_profile
    )
    prepared = prepare_campaign(request.campaign, settings)
    schedule = None
    if prepared.campaign.schedule_table is not None:
        parsed = schedule_of(prepared.campaign, prepared.settings, prepared.now().date())
        if live and not request.ignore_schedule:
            raise SendError(
                "this campaign has a [schedule]: run-due sends it to each recipient "
                "at the scheduled local time; sending it by hand mails everyone now, and "
                "run-due would greet them again on the day",
                where=prepared.campaign.where("schedule"),
                advice="ignore-schedule",
            )
        schedule = parsed.describe()
    options = send_options(
        prepared.settings,
        dkim=signer_from_settings(prepared.settings),
        concurrency=request.concurrency,
        max_consecutive_failures=request.max_failures,
        resend_unknown=request.resend_unknown,
        retry_failed=request.retry_failed,
    )
    opened = CampaignSend(request, prepared, options, schedule)
    if prepared.campaign.ab is not None:
        opened.ab_note, opened._ab_start = _ab_phase(prepared, options, opened.database())
    return opened


def _ab_phase(
    prepared: PreparedCampaign, options: SendOptions, conn: Connection
) -> tuple[str, bool]:
    """Set the send up for its A/B phase; return what to tell the user and whether the
    test starts with this send.

    Before a winner: only the test share is sent (split A/B as usual). Once the
    wait is over the winner is decided (``feedback.abtest``); from then on the
    rest of the audience gets the winning subject.
    """
    ab = prepared.campaign.ab
    assert ab is not None
    key = journal_key(prepared.campaign.id, transport_name(prepared.settings))
    now = prepared.now()
    state = abtest.state_of(conn, key)
    if state.due(now):
        decision = abtest.choose(abtest.figures(conn, key, ab.pick_by), ab)
        abtest.record(conn, key, decision, now, ab)
        state = abtest.state_of(conn, key)
    if state.winner is not None:
        options.ab_variant = ord(state.winner) - ord("A")
        return f"winner {state.winner} to the rest of the audience ({state.reason})", False
    campaign_id = prepared.campaign.id
    prepared.keep = lambda person: abtest.in_test_share(campaign_id, person.email, ab.test_share)
    if state.started_at is None:
        note = (
            f"test share first: {ab.test_share:.0%} of the audience, split between the "
            f"variants; {_duration(ab.wait)} after sending, the winner by {ab.pick_by} goes to "
            "the rest"
        )
        return note, True
    assert state.decide_after is not None
    return (
        f"test running: the share only, until {state.decide_after:%Y-%m-%d %H:%M} UTC "
        "(then the winner goes to the rest; mailer ab pick decides now)",
        False,
    )


def _duration(span: timedelta) -> str:
    """4 h, 90 min, 2 d."""
    minutes = round(span.total_seconds() / 60)
    if minutes % 1440 == 0:
        return f"{minutes // 1440} d"
    return f"{minutes // 60} h" if minutes % 60 == 0 else f"{minutes} min"


def unverified(transport: Transport) -> str | None:
    """``host:port`` when the transport will not verify an encrypted relay's certificate."""
    return unverified_relay(transport)
