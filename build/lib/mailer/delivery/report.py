"""What a send run is told (``SendOptions``) and what it reports (``SendReport``)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mailer.core.settings import Feedback, Throttle

if TYPE_CHECKING:
    from mailer.compose.dkim import DkimSigner


@dataclass
class SendOptions:
    """How a run behaves. Delays are seconds; tests make them short."""

    concurrency: int | None = None
    throttle: Throttle | None = None
    unthrottled: bool = False
    max_attempts: int = 5
    retry_base: float = 30.0
    retry_max: float = 900.0
    reconnect_base: float = 0.5
    reconnect_max: float = 30.0
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    max_consecutive_failures: int = 25
    max_quota_wait: float = 900.0
    resend_unknown: bool = False
    retry_failed: bool = False
    forced: bool = False
    fold_skipped: bool = False  # the pre-send fold check was skipped on request: recorded
    dkim: DkimSigner | None = None
    workers: int | None = None  # processes that build messages; None: decided by the size
    stop: threading.Event | None = None
    # Take no new message from this Unix time on (the run's clock): a scheduled
    # wave's send window or grace period ends. In-flight messages finish.
    stop_at: float | None = None
    stop_reason: str = "the send window closed"
    # Pause when the campaign's bounce or complaint rate passes these limits
    # (``[feedback]``); checked before each batch of recipients is queued.
    feedback: Feedback | None = None
    # The winner of an A/B test: everyone this run sends to gets this subject (0 = A).
    ab_variant: int | None = None
    seed: int | None = None
    # After a stop request, in-flight messages get this long to finish (seconds); one
    # still unanswered then is cut off and left unknown. Below Docker's 10 s default.
    stop_grace: float = 8.0
    # Messages left unknown (perhaps delivered) before the run pauses: the larger of
    # ``max_unknown`` and ``max_unknown_share`` of the messages planned.
    max_unknown: int = 10
    max_unknown_share: float = 0.01
    # A relay nobody answers is tried again with back-off; after this long, pause.
    relay_down_limit: float = 60.0


@dataclass(frozen=True)
class Failure:
    """One recipient the relay refused for good."""

    email: str
    code: int | None
    reply: str
    bounce: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"email": self.email, "code": self.code, "reply": self.reply, "bounce": self.bounce}


@dataclass
class SendReport:
    """What a run did. Counts are for this run; ``pending`` are left for the next one."""

    campaign_id: str
    transport: str
    audience: int = 0
    planned: int = 0
    sent: int = 0
    failed: int = 0
    bounced: int = 0
    retries: int = 0
    pending: int = 0
    skipped_sent: int = 0
    skipped_failed: int = 0
    skipped_suppressed: int = 0
    skipped_capped: int = 0  # held back by the workspace's frequency cap
    skipped_other_run: int = 0  # sent, or being sent, by another run at the same time
    # Unknown recipients: perhaps delivered. ``unknown`` holds them all (left by earlier
    # runs, skipped, and this run's own); ``new_unknown`` only this run's.
    unknown: list[str] = field(default_factory=list)
    new_unknown: list[str] = field(default_factory=list)
    unknown_reason: str = ""  # the last reason this run left a message unknown
    variants: Counter[str] = field(default_factory=Counter)
    failures: list[Failure] = field(default_factory=list)
    stopped: bool = False
    paused: str | None = None  # why the run paused itself (facts; the caller words what next)
    hint: str | None = None  # what to do about the pause, when the cause says it
    advice: str | None = None  # a remedy key the CLI words (see ``MailerError.advice``)
    notes: list[str] = field(default_factory=list)  # things worth saying (pool too small ...)
    connections: dict[str, int | None] = field(default_factory=dict)  # the pool's figures
    resume_in: float | None = None  # seconds until a spent quota allows sending again
    # What paused it, when the CLI's advice depends on it: "unknown" (too many messages
    # left unknown), or feedback's "complaints", "bounces", "sender"; "" otherwise.
    pause_cause: str = ""
    run_id: int | None = None
    forced: bool = False
    elapsed: float = 0.0
    # What the run is waiting for right now (relay gone, asked to slow down), for progress bars.
    waiting: str = ""
    checked: int = 0  # recipients checked before sending (the preflight), for progress bars

    @property
    def done(self) -> int:
        """Messages finished this run (sent or failed)."""
        return self.sent + self.failed

    @property
    def rate(self) -> float:
        """Messages per second over the run."""
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def complete(self) -> bool:
        """Nothing left to do: no pending messages and no pause or stop."""
        return not self.pending and not self.stopped and not self.paused

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for ``--json``."""
        return {
            "campaign": self.campaign_id,
            "transport": self.transport,
            "run_id": self.run_id,
            "audience": self.audience,
            "planned": self.planned,
            "sent": self.sent,
            "failed": self.failed,
            "bounced": self.bounced,
            "retries": self.retries,
            "pending": self.pending,
            "skipped": {
                "already_sent": self.skipped_sent,
                "failed_before": self.skipped_failed,
                "suppressed": self.skipped_suppressed,
                "frequency_capped": self.skipped_capped,
                "other_run": self.skipped_other_run,
            },
            "unknown": self.unknown,
            "unknown_this_run": self.new_unknown,
            "unknown_reason": self.unknown_reason or None,
            "variants": dict(sorted(self.variants.items())),
            "failures": [f.to_dict() for f in self.failures],
            "stopped": self.stopped,
            "paused": self.paused,
            "hint": self.hint,
            "notes": self.notes,
            "connections": self.connections,
            "resume_in_s": None if self.resume_in is None else round(self.resume_in),
            "pause_cause": self.pause_cause or None,
            "forced": self.forced,
            "elapsed_s": round(self.elapsed, 3),
            "rate_per_s": round(self.rate, 2),
            "complete": self.complete,
        }


Progress = Callable[[SendReport], None]
