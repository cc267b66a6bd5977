"""``mailer status``: where a campaign stands in the send journal (real mail and outbox runs)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mailer.core.campaign import load_campaign
from mailer.core.clock import utc_now
from mailer.core.errors import SendError
from mailer.core.keys import journal_key
from mailer.core.settings import Settings
from mailer.delivery.jobs import Job, jobs
from mailer.delivery.runs import Status, campaign_ids, campaign_status
from mailer.doctor.codes import explain
from mailer.feedback.history import ReasonCount, campaign_reasons
from mailer.feedback.rates import Rates, campaign_rates
from mailer.services.workspace import open_database, workspace_settings

__all__ = ["CampaignStatus", "Rates", "ReasonCount", "Status", "status_of"]


@dataclass(frozen=True)
class CampaignStatus:
    """A campaign's real journal and its outbox journal (files, not mail)."""

    real: Status
    outbox: Status
    known: list[str]  # every campaign id in the journal, when this one has nothing
    # The journals of a scheduled campaign's instances (``<id>@2027``,
    # ``<id>@birthday-2027``, and their ``@outbox`` twins), oldest key first.
    instances: list[Status] = field(default_factory=list)
    # What the providers' sender-rule refusals among the failures mean (see doctor.codes).
    explanations: list[str] = field(default_factory=list)
    # Bounces, complaints and unsubscribes about the real journal (mailer serve, webhooks).
    feedback: Rates | None = None
    # Sends of this campaign queued for workers (send --enqueue-only), oldest first.
    jobs: list[Job] = field(default_factory=list)
    reasons: list[ReasonCount] = field(default_factory=list)  # what came back, by reason

    @property
    def shown(self) -> Status:
        """The journal to show: the real one, unless only outbox runs happened."""
        return self.real if has_rows(self.real) or not has_rows(self.outbox) else self.outbox

    @property
    def anything(self) -> bool:
        """True when the campaign or any of its scheduled instances has been sent or run."""
        return has_rows(self.real) or has_rows(self.outbox) or bool(self.instances or self.jobs)


def has_rows(status: Status) -> bool:
    """True when the journal or the run log knows the campaign."""
    return bool(status.total or status.runs)


def status_of(campaign: str, *, db: Path | None = None) -> CampaignStatus:
    """The status of a campaign given by file or id."""
    settings = workspace_settings(db=db)
    conn = open_database(settings)
    campaign_id = campaign_id_of(campaign, settings)
    now = utc_now()
    real = campaign_status(conn, campaign_id, now)
    outbox_key = journal_key(campaign_id, "outbox")
    outbox = campaign_status(conn, outbox_key, now)
    every = campaign_ids(conn)
    instances = [
        campaign_status(conn, key, now)
        for key in every
        if key.startswith(campaign_id + "@") and key != outbox_key
    ]
    known = [] if real.total or real.runs or instances else every
    replies = [e.last_reply or "" for s in (real, *instances) for e in (*s.failures, *s.deferred)]
    explanations = list(dict.fromkeys(x for x in map(explain, replies) if x))
    rates = campaign_rates(conn, campaign_id)
    reasons = campaign_reasons(conn, campaign_id)
    queued = [job for job in jobs(conn) if job.journal_key in (campaign_id, outbox_key)]
    conn.close()
    return CampaignStatus(real, outbox, known, instances, explanations, rates, queued, reasons)


def campaign_id_of(value: str, settings: Settings) -> str:
    """A campaign id from a campaign file path, or the id itself."""
    path = Path(value)
    if path.suffix == ".toml" or "/" in value:
        if not path.is_file():
            raise SendError(
                f"campaign file not found: {value}",
                hint="give an existing campaign file, or a campaign id",
                advice="status-argument",
            )
        return load_campaign(path, settings).id
    return value
