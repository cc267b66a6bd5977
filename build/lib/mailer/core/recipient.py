"""The unit every stage passes along: one recipient and what templates see of them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Recipient:
    """One person a campaign goes to.

    ``fields`` is everything a template sees as ``contact.*`` (email, names,
    attributes, RFM scores...). ``source`` names where the person came from,
    for error messages (``campaigns/contacts.csv line 7``, ``contact #12``).
    """

    email: str
    name: str = ""
    fields: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""
    contact_id: int | None = None
