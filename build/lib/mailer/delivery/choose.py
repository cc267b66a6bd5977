"""Which transport a run uses: the configured SMTP relay, else the outbox folder.

One rule for every caller (send, run-due, the preview's test send, the dry
run's journal key): a relay URL in the settings means SMTP; without one,
messages become ``.eml`` files under ``<outbox>/<folder>``.
"""

from __future__ import annotations

from dataclasses import replace

from mailer.core.settings import Settings
from mailer.delivery.relay import relay_from_settings
from mailer.delivery.smtp import SmtpTransport
from mailer.delivery.transport import OutboxTransport, Transport


def transport_name(settings: Settings) -> str:
    """``smtp`` when a relay is configured, else ``outbox`` (decides the journal key)."""
    return "smtp" if settings.smtp_configured else "outbox"


def transport_for(
    settings: Settings,
    folder: str,
    *,
    insecure_skip_verify: bool = False,
    pool: int | None = None,
) -> Transport:
    """The SMTP transport for the configured relay, else the outbox ``<outbox>/<folder>``.

    ``pool`` grows the connection pool (messages in flight are at most one per
    connection).
    """
    if not settings.smtp_configured:
        return OutboxTransport(settings.outbox / folder)
    relay = relay_from_settings(settings, insecure_skip_verify=insecure_skip_verify)
    if pool and pool > relay.pool:
        relay = replace(relay, pool=pool)
    return SmtpTransport(relay)


def unverified_relay(transport: Transport) -> str | None:
    """``host:port`` of an encrypted relay whose certificate will not be verified, else None."""
    if not isinstance(transport, SmtpTransport):
        return None
    relay = transport.relay
    if relay.verify or not (relay.starttls or relay.implicit_tls):
        return None
    return relay.where
