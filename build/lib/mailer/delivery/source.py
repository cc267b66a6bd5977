"""What delivery needs from a campaign: the interface the send loop is written against.

The prepared campaign (``mailer.campaign.prepared.PreparedCampaign``) sits
beside delivery, not below it, so delivery defines the shape it depends on
and the prepared campaign fits it (as in listmonk, the manager defines the
store and messenger it uses).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol

from mailer.compose.compile import CompiledCampaign
from mailer.compose.outgoing import Outgoing
from mailer.compose.render import Rendered
from mailer.core.campaign import Campaign
from mailer.core.recipient import Recipient
from mailer.core.settings import Settings


class CampaignSource(Protocol):
    """A compiled campaign with its audience, able to build each recipient's message."""

    campaign: Campaign
    settings: Settings
    compiled: CompiledCampaign

    def recipients(self) -> Iterator[Recipient]:
        """A fresh iterator over the audience."""
        ...

    def preflight(self, recipients: Iterable[Recipient] | None = None) -> int:
        """Check that every recipient renders; raise ``TemplateError`` naming those who do not."""
        ...

    def render(self, recipient: Recipient, *, variant: int | None = None) -> Rendered:
        """Render one recipient's email."""
        ...

    def build(
        self,
        recipient: Recipient,
        *,
        salt: str = "",
        subject_prefix: str = "",
        variant: int | None = None,
        key: str | None = None,
    ) -> Outgoing:
        """Render and build one recipient's MIME message (``key``: the journal key)."""
        ...
