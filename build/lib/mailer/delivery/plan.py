"""Who a run would send to, batch by batch, and the dry run that shows it without sending.

A ``Planner`` looks at one batch of recipients at a time (a few queries per
batch: journal rows, suppressions, the frequency cap) and decides, without
writing anything, who of them a run sends to. The send loop plans each batch
just before building it; ``survey`` plans (and preflights) the whole audience
once, in constant memory, for the counts a dry run or a confirmation shows.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mailer.audience.database import Connection
from mailer.audience.frequency import capped_among
from mailer.audience.suppressions import suppressed_among
from mailer.compose.locales import pick_locale, version_label
from mailer.compose.outgoing import Preflight
from mailer.compose.render import assign_variant
from mailer.core.recipient import Recipient
from mailer.core.settings import FrequencyCapSetting
from mailer.delivery.journal import Journal
from mailer.delivery.report import SendOptions
from mailer.delivery.runs import live_runs
from mailer.delivery.source import CampaignSource

BATCH = 500  # recipients planned, queued and built together


def batches(people: Iterable[Recipient], size: int = BATCH) -> Iterator[list[Recipient]]:
    """``people`` in lists of ``size`` (the last one shorter)."""
    stream = iter(people)
    while batch := list(itertools.islice(stream, size)):
        yield batch


@dataclass
class BatchPlan:
    """What to do with one batch of recipients."""

    todo: list[Recipient] = field(default_factory=list)
    suppressed: list[Recipient] = field(default_factory=list)
    capped: list[Recipient] = field(default_factory=list)  # held back by the frequency cap
    skipped_sent: int = 0
    skipped_failed: int = 0
    unknown: list[str] = field(default_factory=list)  # perhaps delivered by a run that is gone
    in_flight: list[str] = field(default_factory=list)  # being sent by another live run now
    # Unknown rows sent again on request (``resend_unknown``): when each was handed over.
    resend: list[str] = field(default_factory=list)


@dataclass
class Plan:
    """Who a run would send to, counted over the whole audience."""

    audience: int = 0
    todo: int = 0
    skipped_sent: int = 0
    skipped_failed: int = 0
    suppressed: int = 0
    capped: int = 0  # held back by the frequency cap
    unknown: list[str] = field(default_factory=list)
    in_flight: list[str] = field(default_factory=list)
    sample: Recipient | None = None  # the first recipient to send to
    # Unknown rows a ``resend_unknown`` run sends again: how many, and when the first
    # and the last of them were handed to the relay (journal stamps).
    resend: int = 0
    resend_first: str | None = None
    resend_last: str | None = None

    def add(self, batch: BatchPlan, size: int) -> None:
        """Count one planned batch of ``size`` recipients."""
        if self.sample is None and batch.todo:
            self.sample = batch.todo[0]
        self.audience += size
        self.todo += len(batch.todo)
        self.skipped_sent += batch.skipped_sent
        self.skipped_failed += batch.skipped_failed
        self.suppressed += len(batch.suppressed)
        self.capped += len(batch.capped)
        self.unknown += batch.unknown
        self.in_flight += batch.in_flight
        if batch.resend:
            self.resend += len(batch.resend)
            first, last = min(batch.resend), max(batch.resend)
            self.resend_first = min(first, self.resend_first or first)
            self.resend_last = max(last, self.resend_last or last)


class Planner:
    """Decides, batch by batch, who a run sends to.

    A recipient is skipped when the journal says ``sent``, ``failed`` (unless
    failures are retried, and never a hard bounce), in flight in another live
    run, or unknown (in flight when a run that is gone stopped; only
    ``resend_unknown`` sends them); when the address is suppressed; or when
    the frequency cap holds them back (this campaign's own rows do not count,
    so a resumed run does not cap itself).
    """

    def __init__(
        self,
        conn: Connection,
        key: str,
        *,
        now: datetime,
        resend_unknown: bool = False,
        retry_failed: bool = False,
        cap: FrequencyCapSetting | None = None,
    ):
        self.conn, self.key, self.now, self.cap = conn, key, now, cap
        self.resend_unknown, self.retry_failed = resend_unknown, retry_failed
        self.journal = Journal(conn, key)
        self.live_runs = live_runs(conn, now)

    def plan(self, people: list[Recipient]) -> BatchPlan:
        """Decide for one batch, without writing anything."""
        emails = [p.email for p in people]
        entries = self.journal.entries_for(emails)
        suppressed = suppressed_among(self.conn, emails)
        capped: set[str] = set()
        if self.cap is not None:
            capped = capped_among(
                self.conn,
                emails,
                max_messages=self.cap.max_messages,
                days=self.cap.days,
                exclude=self.key,
                now=self.now,
            )
        plan = BatchPlan()
        for person in people:
            key = person.email.lower()
            entry = entries.get(key)
            status = entry.status if entry else "queued"
            if status == "sent":
                plan.skipped_sent += 1
            elif status == "failed" and (not self.retry_failed or (entry and entry.bounce)):
                plan.skipped_failed += 1  # its row keeps the SMTP reply that failed it
            elif status == "sending" and entry and entry.run_id in self.live_runs:
                plan.in_flight.append(person.email)
            elif status == "sending" and not self.resend_unknown:
                plan.unknown.append(person.email)
            elif key in suppressed:
                plan.suppressed.append(person)
            elif key in capped:
                plan.capped.append(person)
            else:
                if status == "sending" and entry is not None:
                    plan.resend.append(entry.updated_at)  # handed to the relay then
                plan.todo.append(person)
        return plan


def planner_for(
    prepared: CampaignSource,
    conn: Connection,
    key: str,
    options: SendOptions | None,
    now: datetime,
) -> Planner:
    """The planner a run of ``prepared`` under journal key ``key`` uses."""
    return Planner(
        conn,
        key,
        now=now,
        resend_unknown=options.resend_unknown if options else False,
        retry_failed=options.retry_failed if options else False,
        cap=prepared.settings.frequency_cap,
    )


def survey(
    prepared: CampaignSource,
    people: Iterable[Recipient],
    planner: Planner,
    *,
    each: Callable[[BatchPlan], None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> Plan:
    """Preflight and plan the whole audience once, batch by batch; return the counts.

    Raises ``TemplateError`` (nothing was sent) when some recipients cannot be
    rendered. ``each`` sees every batch's plan; ``progress`` the number checked so far.
    """
    check = Preflight(prepared.compiled)
    plan = Plan()
    for batch in batches(people):
        check.check(batch)
        planned = planner.plan(batch)
        plan.add(planned, len(batch))
        if each is not None and not check.failed:  # it ends in an error: build nothing more
            each(planned)
        if progress is not None:
            progress(check.checked)
    check.raise_problems()
    return plan


@dataclass
class DryRun:
    """What a real send would do now: nothing is written or sent."""

    campaign_id: str
    plan: Plan
    variants: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)
    total_bytes: int = 0
    largest: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "campaign": self.campaign_id,
            "dry_run": True,
            "audience": self.plan.audience,
            "would_send": self.plan.todo,
            "skipped": {
                "already_sent": self.plan.skipped_sent,
                "failed_before": self.plan.skipped_failed,
                "suppressed": self.plan.suppressed,
                "frequency_capped": self.plan.capped,
                "other_run": len(self.plan.in_flight),
            },
            "unknown": self.plan.unknown,
            "resend_unknown": {
                "count": self.plan.resend,
                "first_handed_over": self.plan.resend_first,
                "last_handed_over": self.plan.resend_last,
            },
            "variants": dict(sorted(self.variants.items())),
            "examples": dict(sorted(self.examples.items())),
            "total_bytes": self.total_bytes,
            "largest_bytes": self.largest,
        }


def dry_run(
    prepared: CampaignSource,
    conn: Connection,
    *,
    now: datetime,
    options: SendOptions | None = None,
    recipients: Iterable[Recipient] | None = None,
    campaign_id: str | None = None,
    build: bool = True,
    progress: Callable[[int], None] | None = None,
) -> DryRun:
    """Check and (with ``build``) render every message a real send would send; send nothing.

    Without ``build`` only one subject per A/B variant is rendered (the
    confirmation before a live send); the counts are the same. ``progress``
    hears how many recipients have been checked so far.
    """
    key = campaign_id or prepared.campaign.id
    planner = planner_for(prepared, conn, key, options, now)
    result = DryRun(key, Plan())

    forced = options.ab_variant if options is not None else None

    def each(batch: BatchPlan) -> None:
        for person in batch.todo:
            if build:
                out = prepared.build(person, variant=forced)
                label = out.variant_name
                result.examples.setdefault(label, out.subject)
                result.total_bytes += len(out.envelope.data)
                result.largest = max(result.largest, len(out.envelope.data))
            else:
                # Each language version has its own A/B split.
                version = pick_locale(prepared.compiled, person)
                count = len(version.subjects)
                variant = assign_variant(prepared.campaign.id, person.email, count)
                if forced is not None and forced < count:
                    variant = forced
                label = version_label(prepared.compiled, version, variant)
                if label not in result.examples:
                    # One real render per variant, so the summary shows a subject as sent.
                    result.examples[label] = prepared.build(person, variant=forced).subject
            result.variants[label] += 1

    people = prepared.recipients() if recipients is None else recipients
    result.plan = survey(prepared, people, planner, each=each, progress=progress)
    return result
