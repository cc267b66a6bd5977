"""Who a run would send to, and the dry run that shows it without sending anything.

``plan_run`` reads the journal and the suppression list and decides, without
writing anything, who a run sends to; ``send_campaign`` and ``dry_run`` share
it, so a dry run shows exactly what a real run would do.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mailer.audience.frequency import capped_addresses
from mailer.audience.suppressions import suppressed_set
from mailer.compose.render import assign_variant, variant_label
from mailer.core.recipient import Recipient
from mailer.core.settings import FrequencyCapSetting
from mailer.delivery.journal import Journal
from mailer.delivery.report import SendOptions
from mailer.delivery.runs import live_runs
from mailer.delivery.source import CampaignSource


@dataclass
class Plan:
    """Who a run would send to, decided from the audience, the journal and suppressions."""

    todo: list[Recipient]
    audience: int
    skipped_sent: int = 0
    skipped_failed: int = 0
    suppressed: list[Recipient] = field(default_factory=list)
    capped: list[Recipient] = field(default_factory=list)  # held back by the frequency cap
    unknown: list[str] = field(default_factory=list)  # perhaps delivered by a crashed run
    in_flight: list[str] = field(default_factory=list)  # being sent by another live run now
    live_runs: frozenset[int] = frozenset()


def plan_run(
    conn: sqlite3.Connection,
    campaign_id: str,
    people: Iterable[Recipient],
    *,
    resend_unknown: bool = False,
    retry_failed: bool = False,
    now: datetime,
    cap: FrequencyCapSetting | None = None,
) -> Plan:
    """Decide, without writing anything, who this run sends to.

    ``cap`` (the workspace's frequency cap) holds back anyone this run would
    send to who already got ``cap.max_messages`` campaign emails in the last
    ``cap.days`` days, counted from the journal (this campaign's own rows
    excepted, so a resumed run does not cap itself). A row another live run has
    in flight is never planned; one left in flight by a run that is gone is
    *unknown* and planned only with ``resend_unknown``.
    """
    entries = Journal(conn, campaign_id).entries()
    live = live_runs(conn, now)
    suppressed = suppressed_set(conn)
    capped: set[str] = set()
    if cap is not None:
        capped = capped_addresses(
            conn,
            max_messages=cap.max_messages,
            days=cap.days,
            exclude=campaign_id,
            now=now,
        )
    seen: set[str] = set()
    plan = Plan([], 0, live_runs=live)
    for person in people:
        key = person.email.lower()
        if key in seen:  # the same address twice in an audience gets one message
            continue
        seen.add(key)
        plan.audience += 1
        entry = entries.get(key)
        status = entry.status if entry else "queued"
        if status == "sent":
            plan.skipped_sent += 1
        elif status == "failed" and (not retry_failed or (entry and entry.bounce)):
            plan.skipped_failed += 1  # its row keeps the SMTP reply that failed it
        elif status == "sending" and entry and entry.run_id in live:
            plan.in_flight.append(person.email)
        elif status == "sending" and not resend_unknown:
            plan.unknown.append(person.email)
        elif key in suppressed:
            plan.suppressed.append(person)
        elif key in capped:
            plan.capped.append(person)
        else:
            plan.todo.append(person)
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
            "would_send": len(self.plan.todo),
            "skipped": {
                "already_sent": self.plan.skipped_sent,
                "failed_before": self.plan.skipped_failed,
                "suppressed": len(self.plan.suppressed),
                "frequency_capped": len(self.plan.capped),
                "other_run": len(self.plan.in_flight),
            },
            "unknown": self.plan.unknown,
            "variants": dict(sorted(self.variants.items())),
            "examples": dict(sorted(self.examples.items())),
            "total_bytes": self.total_bytes,
            "largest_bytes": self.largest,
        }


def dry_run(
    prepared: CampaignSource,
    conn: sqlite3.Connection,
    *,
    now: datetime,
    options: SendOptions | None = None,
    recipients: Iterable[Recipient] | None = None,
    campaign_id: str | None = None,
    build: bool = True,
) -> DryRun:
    """Check and (with ``build``) render every message a real send would send; send nothing."""
    resend_unknown = options.resend_unknown if options else False
    retry_failed = options.retry_failed if options else False
    people = list(prepared.recipients() if recipients is None else recipients)
    prepared.preflight(people)
    key = campaign_id or prepared.campaign.id
    plan = plan_run(
        conn,
        key,
        people,
        resend_unknown=resend_unknown,
        retry_failed=retry_failed,
        cap=prepared.settings.frequency_cap,
        now=now,
    )
    result = DryRun(key, plan)
    if build:
        for person in plan.todo:
            out = prepared.build(person)
            label = variant_label(out.variant)
            result.variants[label] += 1
            result.examples.setdefault(label, out.subject)
            result.total_bytes += len(out.envelope.data)
            result.largest = max(result.largest, len(out.envelope.data))
        return result
    count = len(prepared.campaign.subjects)
    for person in plan.todo:
        label = variant_label(assign_variant(prepared.campaign.id, person.email, count))
        result.variants[label] += 1
        if label not in result.examples:
            # One real render per variant, so the summary shows a subject as sent.
            result.examples[label] = prepared.build(person).subject
    return result
