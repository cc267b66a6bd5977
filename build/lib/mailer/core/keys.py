"""Journal keys: under which name the send journal records a run's recipients.

A manual send of campaign ``spring`` is journaled under ``spring``; a scheduled
wave under ``spring@2027`` (see ``mailer.schedule.model.wave_key``). Runs
through the outbox transport write files, not mail: they get the suffix
``@outbox``, so a later real send still reaches everyone, and they count
towards no quota, frequency cap or repetition check.
"""

from __future__ import annotations

OUTBOX_SUFFIX = "@outbox"


def journal_key(campaign_key: str, transport_name: str) -> str:
    """The key a run journals under: ``campaign_key``, or ``<campaign_key>@outbox``.

    Idempotent: a key that already names the outbox is returned as it is.
    """
    if transport_name != "outbox" or is_outbox_key(campaign_key):
        return campaign_key
    return campaign_key + OUTBOX_SUFFIX


def is_outbox_key(key: str) -> bool:
    """True for the key of an outbox run (files, not mail)."""
    return key.endswith(OUTBOX_SUFFIX)


def without_outbox(key: str) -> str:
    """The key without the ``@outbox`` suffix, for display."""
    return key.removesuffix(OUTBOX_SUFFIX)
