"""Bounce (RFC 3464) and complaint (RFC 5965, ARF) messages written out as real MTAs and
feedback loops send them, quoting the headers of one of our messages."""

from __future__ import annotations

import uuid


def _headers(original: bytes, *, drop_to: bool = False) -> str:
    head = original.split(b"\r\n\r\n", 1)[0].decode("ascii", "replace").replace("\r\n", "\n")
    if drop_to:  # redacted, as many feedback loops do
        head = "\n".join(line for line in head.splitlines() if not line.lower().startswith("to:"))
    return head


def _report(kind: str, sender: str, subject: str, text: str, fields: str, quoted: str) -> bytes:
    boundary = uuid.uuid4().hex
    own_id = f"<{uuid.uuid4().hex}@{sender.rpartition('@')[2]}>"
    message = (
        f"From: {sender}\n"
        "To: bounces@tea.test\n"
        f"Subject: {subject}\n"
        f"Message-ID: {own_id}\n"
        "MIME-Version: 1.0\n"
        f'Content-Type: multipart/report; report-type={kind}; boundary="{boundary}"\n'
        "\n"
        f"--{boundary}\n"
        "Content-Type: text/plain; charset=us-ascii\n\n"
        f"{text}\n"
        f"--{boundary}\n"
        f"Content-Type: message/{kind}\n\n"
        f"{fields}\n"
        f"--{boundary}\n"
        "Content-Type: text/rfc822-headers\n\n"
        f"{quoted}\n"
        f"--{boundary}--\n"
    )
    return message.replace("\n", "\r\n").encode()


def dsn(
    original: bytes,
    recipient: str,
    *,
    status: str = "5.1.1",
    reporting: str = "mx.receiver.test",
) -> bytes:
    """A Postfix-style delivery status notification for ``original``."""
    action = "failed" if status.startswith("5") else "delayed"
    code = "550" if status.startswith("5") else "452"
    fields = (
        f"Reporting-MTA: dns; {reporting}\n\n"
        f"Final-Recipient: rfc822; {recipient}\n"
        f"Action: {action}\n"
        f"Status: {status}\n"
        f"Diagnostic-Code: smtp; {code} {status} <{recipient}>: Recipient address rejected\n"
    )
    text = (
        f"This is the mail system at host {reporting}.\n\n"
        "I'm sorry to have to inform you that your message could not\n"
        "be delivered to one or more recipients.\n"
    )
    subject = "Undelivered Mail Returned to Sender"
    sender = f"MAILER-DAEMON@{reporting}"
    return _report("delivery-status", sender, subject, text, fields, _headers(original))


def arf(original: bytes, recipient: str | None = None) -> bytes:
    """An abuse report quoting ``original``; ``recipient`` None: the address is redacted."""
    fields = "Feedback-Type: abuse\nUser-Agent: SomeFBL/1.0\nVersion: 1\n"
    if recipient:
        fields += f"Original-Rcpt-To: {recipient}\n"
    quoted = _headers(original, drop_to=recipient is None)
    text = "This is an email abuse report for an email message.\n"
    subject = "Email Feedback Report for IP 192.0.2.1"
    return _report("feedback-report", "feedback@fbl.mailbox.test", subject, text, fields, quoted)
