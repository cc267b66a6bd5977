"""What every webhook reader shares: the request, refusals, freshness, careful JSON reading.

A reader must never fail on a body it did not expect: relays retry a 500 for
days, and a traceback in the log helps nobody. Every shape check raises
``Refused`` with a one-line reason (answered 400); timestamps must be finite
numbers within ``MAX_SKEW`` of now (``nan`` compares false with everything, so
it once passed the freshness test).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mailer.feedback.classify import judge
from mailer.feedback.events import KIND_OF_CLASS, Event
from mailer.feedback.reasons import Reason

MAX_SKEW = 300.0  # seconds a signed timestamp may be off

Fetch = Callable[[str], bytes]  # GET a URL (https only), return the body


class Refused(Exception):
    """The request is not a genuine, fresh event post; ``status`` is the HTTP answer."""

    def __init__(self, message: str, status: int = 401):
        super().__init__(" ".join(message.split())[:200])  # one line, never a dump
        self.status = status


@dataclass
class Request:
    """What a reader sees of the HTTP request."""

    headers: Mapping[str, str]  # lower-cased names
    body: bytes
    now: float
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    fetch: Fetch | None = None  # for SNS certificates and subscription confirmations
    # Signed one-time tokens the reader saw (Mailgun's): the endpoint remembers them past
    # the freshness window and refuses a second use (a replay with another body).
    tokens: list[str] = field(default_factory=list)


def secret(request: Request, name: str) -> str:
    """The environment variable ``name``; Refused (404) when unset: the webhook is off."""
    value = request.env.get(name, "")
    if not value:
        raise Refused(f"{name} is not set: this webhook is turned off", status=404)
    return value


def fresh(request: Request, timestamp: object) -> None:
    """Refuse a timestamp that is not a finite number within ``MAX_SKEW`` of now."""
    try:
        moment = float(str(timestamp))
    except ValueError:
        raise Refused("bad timestamp") from None
    if not math.isfinite(moment) or abs(request.now - moment) > MAX_SKEW:
        raise Refused("stale, future or non-finite timestamp (a replay?)")


def body_json(body: bytes) -> Any:
    """The body as JSON, or Refused (400)."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise Refused("the body is not JSON", status=400) from None


def obj(value: object, what: str) -> dict[str, Any]:
    """``value`` when it is a JSON object; Refused (400) naming ``what`` otherwise."""
    if not isinstance(value, dict):
        raise Refused(f"{what} is not a JSON object", status=400)
    return value


def maybe_obj(value: object, what: str) -> dict[str, Any]:
    """An optional JSON object: ``{}`` when absent or null."""
    return {} if value is None else obj(value, what)


def items(value: object, what: str) -> list[dict[str, Any]]:
    """A JSON array of objects (absent or null: empty); Refused (400) otherwise."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise Refused(f"{what} is not a JSON array", status=400)
    return [obj(item, f"an item of {what}") for item in value]


def text(value: object) -> str:
    """A JSON scalar as text (objects and arrays are not text: "")."""
    return "" if value is None or isinstance(value, dict | list) else str(value)


def bounce(
    email: str,
    source: str,
    campaign: str,
    event_id: str,
    detail: str,
    *,
    status: str = "",
    temporary: bool,
    fallback: Reason,
) -> Event:
    """A bounce a relay reported, judged by its words: hard, soft, sender-side or ignored."""
    reason, kind = judge(detail, status, temporary=temporary, fallback=fallback)
    return Event(
        KIND_OF_CLASS[kind], email, source, campaign, event_id, detail, str(reason), status
    )
