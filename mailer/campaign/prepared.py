"""The prepared campaign: the one object check, preview, schedule and send all start from.

``prepare_campaign`` loads and validates the campaign file, compiles its
templates once, and returns a ``PreparedCampaign`` that knows its audience
(a CSV file, or a list and segment of the workspace database) and builds
each recipient's message through ``mailer.compose.outgoing`` — there is no
second render path. The clock it dates messages by is passed in, so tests
and the preview can fix it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from mailer.audience.csv_source import read_csv_recipients
from mailer.audience.selection import select_recipients
from mailer.audience.store import connect
from mailer.compose.compile import CompiledCampaign, compile_campaign
from mailer.compose.outgoing import Outgoing, build_outgoing, preflight
from mailer.compose.render import Rendered, render_for
from mailer.core.campaign import Campaign, load_campaign
from mailer.core.clock import Clock, SystemClock
from mailer.core.recipient import Recipient
from mailer.core.settings import Settings


@dataclass
class PreparedCampaign:
    """A compiled campaign plus its audience; build messages with ``build``."""

    campaign: Campaign
    compiled: CompiledCampaign
    settings: Settings
    conn: sqlite3.Connection | None = None
    clock: Clock = field(default_factory=SystemClock)
    _csv_cache: list[Recipient] | None = field(default=None, repr=False)

    def recipients(self) -> Iterator[Recipient]:
        """A fresh iterator over the audience (suppressed addresses already left out)."""
        spec = self.campaign.audience
        if spec.csv is not None:
            if self._csv_cache is None:
                self._csv_cache = read_csv_recipients(spec.csv)
            return iter(self._csv_cache)
        selection = select_recipients(
            self.database(),
            list_name=spec.list,
            segment=spec.segment,
            now=self.now(),
        )
        return iter(selection.recipients)

    def now(self) -> datetime:
        """The clock's current moment (UTC)."""
        return datetime.fromtimestamp(self.clock.time(), UTC)

    def database(self) -> sqlite3.Connection:
        """The workspace database, opened on first use."""
        if self.conn is None:
            self.conn = connect(self.settings.db_path)
        return self.conn

    def render(self, recipient: Recipient, *, variant: int | None = None) -> Rendered:
        """Render every part of the email for one recipient (``variant``: see render_for)."""
        return render_for(self.compiled, recipient, variant=variant)

    def build(
        self,
        recipient: Recipient,
        *,
        salt: str = "",
        subject_prefix: str = "",
        variant: int | None = None,
        key: str | None = None,
    ) -> Outgoing:
        """Render and build one recipient's MIME message, dated by the campaign's clock.

        ``variant`` overrides the A/B assignment (preview only); ``send`` never sets it.
        ``key`` is the journal key a send records the message under (see ``build_outgoing``).
        """
        return build_outgoing(
            self.compiled,
            recipient,
            now=self.clock.time(),
            salt=salt,
            subject_prefix=subject_prefix,
            variant=variant,
            key=key,
        )

    def preflight(self, recipients: Iterable[Recipient] | None = None) -> int:
        """Check every recipient (default: the audience) renders; see ``compose.preflight``."""
        people = list(self.recipients() if recipients is None else recipients)
        return preflight(self.compiled, people)


def prepare_campaign(
    path: Path | str, settings: Settings, *, clock: Clock | None = None
) -> PreparedCampaign:
    """Load, validate and compile a campaign file; ``clock`` dates its messages (default: real)."""
    campaign = load_campaign(path, settings)
    compiled = compile_campaign(campaign)
    return PreparedCampaign(campaign, compiled, campaign.settings, clock=clock or SystemClock())
