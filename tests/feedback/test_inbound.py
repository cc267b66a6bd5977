"""``mailer bounces serve``: a real SMTP client (smtplib) hands bounces to the inbound server."""

from __future__ import annotations

import asyncio
import smtplib
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mailer.audience.store import connect
from mailer.core.settings import Feedback
from mailer.feedback.inbound import BounceHandler, serve_inbound
from tests.feedback.report_mail import arf, dsn
from tests.feedback.test_mailbox import OTHERS, sent  # noqa: F401 (fixture)


@pytest.fixture()
def inbound(sent: tuple[Path, dict[str, bytes]]) -> Iterator[tuple[BounceHandler, int]]:  # noqa: F811
    root, _ = sent
    lines: list[str] = []
    handler = BounceHandler(
        root / "mailer.db", Feedback(), {"tea.test"}, root / "unread",
        lambda: datetime.now(UTC), lines.append,
    )  # fmt: skip
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = asyncio.run_coroutine_threadsafe(serve_inbound(handler, "127.0.0.1", 0), loop).result(
        timeout=30
    )
    port = server.sockets[0].getsockname()[1]
    yield handler, port
    loop.call_soon_threadsafe(server.close)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=30)


def test_bounces_over_smtp_are_applied_and_other_mail_is_kept(
    inbound: tuple[BounceHandler, int],
    sent: tuple[Path, dict[str, bytes]],  # noqa: F811
) -> None:
    handler, port = inbound
    root, messages = sent
    with smtplib.SMTP("127.0.0.1", port) as client:
        client.sendmail("", ["bounces@tea.test"], dsn(messages[OTHERS[0]], OTHERS[0]))
        client.sendmail("", ["bounces@tea.test"], arf(messages[OTHERS[1]]))
        letter = b"From: ann@x.test\r\nSubject: hello\r\n\r\nA real person.\r\n"
        client.sendmail("ann@x.test", ["bounces@tea.test"], letter)
        # Not a relay: any other domain is refused at RCPT.
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            client.sendmail("x@x.test", ["victim@elsewhere.test"], letter)
    conn = connect(root / "mailer.db")
    listed = {r[0]: r[1] for r in conn.execute("SELECT email, reason FROM suppressions")}
    conn.close()
    assert listed == {OTHERS[0]: "bounced", OTHERS[1]: "complained"}
    assert (handler.counts.reports, handler.counts.events, handler.counts.kept) == (2, 2, 1)
    kept = list((root / "unread").glob("*.eml"))
    assert len(kept) == 1 and kept[0].read_bytes().endswith(b"A real person.\r\n")
