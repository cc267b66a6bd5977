"""Naming what went wrong while talking to a relay: each cause with its own remedy.

A connection is opened step by step (``mailer.delivery.smtp``); these functions turn
the failure of a step into ``RelayRefused`` (the relay answers but refuses this client:
a ``554`` greeting, a close right after the greeting, a broken TLS handshake, an
unverifiable certificate) or ``RelayUnreachable`` (nobody answers: refused, timed out),
with the hint that fits the cause: "is the relay running" only when nothing listens.
"""

from __future__ import annotations

import ssl

from mailer.core.errors import TransportError
from mailer.delivery.policy import Stage
from mailer.delivery.relay import Relay
from mailer.delivery.transport import RelayRefused, RelayUnreachable

_CLEAR_TEXT = '; to send in clear text on purpose, set [smtp] tls = "none"'


def describe_lost(exc: BaseException, stage: Stage, timeout: float) -> str:
    """What a connection lost (or a reply timed out) during ``stage`` looks like to the user."""
    import aiosmtplib

    if isinstance(exc, aiosmtplib.SMTPTimeoutError):
        if stage is Stage.LOST_AFTER_END:
            return (
                f"timed out after {timeout:g} s waiting for the relay's reply to the end of "
                "the message"
            )
        return f"timed out after {timeout:g} s waiting for the relay's reply ({stage})"
    text = str(exc).strip() or type(exc).__name__
    return f"connection lost: {text}"


def refused_reply(step: str, code: int, message: str, relay: Relay) -> TransportError:
    """A 5xx while connecting: at the greeting the relay refuses this client outright."""
    if step == "connect":
        return RelayRefused(
            f"the relay refused the connection at its greeting: {code} {message}",
            where=relay.where,
            hint="the relay is running but refuses this client (its address, a block "
            "list or a connection limit): ask its operator to accept it",
        )
    if step == "starttls":
        return RelayRefused(
            f"the relay refused STARTTLS: {code} {message}",
            where=relay.where,
            hint="fix the relay's TLS set-up" + ("" if relay.starttls else _CLEAR_TEXT),
        )
    return RelayRefused(
        f"the relay refused us at {step.upper()}: {code} {message}",
        where=relay.where,
        hint="check the relay's settings for this client",
    )


def connect_failure(step: str, exc: BaseException, relay: Relay) -> TransportError:
    """Name what went wrong while opening a connection, with the hint for that cause."""
    import aiosmtplib

    cause = exc.__cause__ or exc
    text = str(exc).strip() or type(exc).__name__
    where = relay.where
    if isinstance(cause, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in text:
        return RelayRefused(
            f"the relay's TLS certificate could not be verified ({_reason(cause)})",
            where=where,
            hint="fix the relay's certificate; for a local test relay only, turn "
            "verification off (smtp.insecure_skip_verify = true)",
            advice="skip-tls-verify",
        )
    if isinstance(cause, ssl.SSLError) or step == "starttls":
        if step == "starttls":
            return RelayRefused(
                f"the relay offered STARTTLS but the TLS handshake failed ({_reason(cause)})",
                where=where,
                hint="fix the relay's TLS set-up" + ("" if relay.starttls else _CLEAR_TEXT),
            )
        return RelayRefused(
            f"the TLS handshake failed ({_reason(cause)})",
            where=where,
            hint="is this port TLS from the start? smtps:// is for that (usually 465); "
            "use smtp+starttls:// for 587 and smtp:// for 25",
        )
    timeout = f"{relay.timeout:g}"
    if isinstance(exc, aiosmtplib.SMTPConnectTimeoutError):
        if "ready message" in text:
            return RelayUnreachable(
                f"the relay accepted the connection but sent no greeting within {timeout} s",
                where=where,
                hint="the relay is overloaded or holds this client back (a tarpit); check "
                "its logs, or raise [smtp] timeout",
            )
        return RelayUnreachable(
            f"timed out after {timeout} s connecting (no answer at all)",
            where=where,
            hint="check the host and port; a firewall may drop the connection",
            advice="relay-unreachable",
        )
    if isinstance(exc, aiosmtplib.SMTPTimeoutError):
        return RelayUnreachable(
            f"the relay stopped answering during {step.upper()} (timed out after {timeout} s)",
            where=where,
            hint="the relay is overloaded or holds this client back; check its logs, or "
            "raise [smtp] timeout",
        )
    if step == "ehlo" and isinstance(exc, aiosmtplib.SMTPServerDisconnected):
        return RelayRefused(
            "the relay closed the connection right after its greeting (before EHLO)",
            where=where,
            hint="the relay is running but drops this client: check its access rules "
            "(allowed addresses, connection limits) and its logs",
        )
    if isinstance(exc, aiosmtplib.SMTPConnectError) and "Unexpected EOF" in text:
        return RelayRefused(
            "the relay closed the connection before its greeting",
            where=where,
            hint="something listens there but drops this client: is it an SMTP relay, "
            "and does it accept this client's address?",
        )
    refused = isinstance(cause, ConnectionRefusedError) or "Connect call failed" in text
    what = "connection refused (nothing listens there)" if refused else text
    return RelayUnreachable(
        f"cannot connect to the SMTP relay: {what}",
        where=where,
        hint="check the host and port (MAILER_SMTP_URL, [smtp] url) and that the relay is running",
        advice="relay-unreachable",
    )


def _reason(exc: BaseException) -> str:
    return getattr(exc, "verify_message", None) or getattr(exc, "reason", None) or str(exc)
