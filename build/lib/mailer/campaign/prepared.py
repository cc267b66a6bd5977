"""The prepared campaign: the one object check, preview, schedule and send all start from.

``prepare_campaign`` loads and validates the campaign file, compiles its
templates once, and returns a ``PreparedCampaign`` that knows its audience
(a CSV file, or a list and segment of the workspace database) and builds
each recipient's message through ``mailer.compose.outgoing`` — there is no
second render path. The clock it dates messages by is passed in, so tests
and the preview can fix it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from mailer.audience.csv_source import CsvAudience, open_csv_audience
from mailer.audience.database import Connection
from mailer.audience.selection import DateFilter, Selection, select_recipients
from mailer.audience.store import connect_store
from mailer.audience.textfile import Decoding
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
    conn: Connection | None = None
    clock: Clock = field(default_factory=SystemClock)
    # Who of the audience this send is for (an A/B test share); None: everyone.
    keep: Callable[[Recipient], bool] | None = None
    _csv: CsvAudience | None = field(default=None, repr=False)

    def recipients(self, only: DateFilter | None = None) -> Iterator[Recipient]:
        """A fresh iterator over the audience, streamed (database: suppressed addresses left out).

        A CSV audience is validated once (again only when the file changes) and
        then read from the file on each iteration; a database audience is read
        in batches. Either way memory does not grow with the audience. ``only``
        keeps the contacts with a date near now (a scheduled pass's birthdays).
        """
        if self.campaign.audience.csv is not None:
            people: Iterator[Recipient] = self._csv_audience().matching(only)
        else:
            people = iter(self._selection(only).recipients)
        return people if self.keep is None else filter(self.keep, people)

    def audience_size(self) -> int:
        """How many recipients ``recipients`` yields now (a count query, or the CSV's rows).

        With ``keep`` (an A/B test share) they are counted by reading the audience:
        no query knows which addresses the hash keeps.
        """
        if self.keep is not None:
            return sum(1 for _ in self.recipients())
        if self.campaign.audience.csv is not None:
            return self._csv_audience().count
        return self._selection().selected

    def csv_decoding(self) -> Decoding | None:
        """How a CSV audience's bytes are read (None for a database audience)."""
        if self.campaign.audience.csv is None:
            return None
        return self._csv_audience().decoding

    def _csv_audience(self) -> CsvAudience:
        path = self.campaign.audience.csv
        assert path is not None
        if self._csv is None or not self._csv.unchanged():
            self._csv = open_csv_audience(path, self.campaign.audience.encoding)
        return self._csv

    def _selection(self, only: DateFilter | None = None) -> Selection:
        spec = self.campaign.audience
        return select_recipients(
            self.database(), list_name=spec.list, segment=spec.segment, now=self.now(), only=only
        )

    def now(self) -> datetime:
        """The clock's current moment (UTC)."""
        return datetime.fromtimestamp(self.clock.time(), UTC)

    def database(self) -> Connection:
        """The workspace database, opened on first use."""
        if self.conn is None:
            self.conn = connect_store(self.settings)
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

        ``variant`` overrides the A/B assignment (the preview, and the winner of an A/B
        test sent to the rest). ``key`` is the journal key a send records the message
        under (see ``build_outgoing``).
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
        return preflight(self.compiled, self.recipients() if recipients is None else recipients)


def prepare_campaign(
    path: Path | str, settings: Settings, *, clock: Clock | None = None
) -> PreparedCampaign:
    """Load, validate and compile a campaign file; ``clock`` dates its messages (default: real)."""
    campaign = load_campaign(path, settings)
    compiled = compile_campaign(campaign)
    return PreparedCampaign(campaign, compiled, campaign.settings, clock=clock or SystemClock())
