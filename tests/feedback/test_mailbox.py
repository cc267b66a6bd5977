"""``mailer bounces fetch`` against a real Dovecot on loopback, with real bounce mail.

A campaign is really sent (aiosmtpd on loopback) so the journal holds real
Message-IDs; then the bounce mailbox receives bounces from several MTAs
(flufl.bounce's collected samples), our own DSNs and ARF complaints quoting the
sent messages, mail that is no report at all, and broken reports.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailer.audience.store import connect
from mailer.core.clock import utc_now
from mailer.core.errors import TransportError
from mailer.core.settings import Feedback
from mailer.delivery.send import send_campaign
from mailer.feedback.mailbox import Mailbox, fetch_bounces
from tests.delivery.test_send import transport_for
from tests.feedback.report_mail import arf, dsn
from tests.imap_server import DOVECOT, PASSWORD, ImapServer
from tests.send_workspace import fast_options
from tests.smtp_server import RecordingHandler, SmtpServer
from tests.workspace import CAMPAIGN, invoke, make_workspace

SAMPLES = Path(__file__).parent / "samples"
# The address each sample bounces (flufl.bounce reads it; the test makes them contacts).
# By what each report says (flufl.bounce alone called all but dsn_05 permanent):
HARD = {  # the recipient does not exist
    "exim_01": "userx@its.example.nl",  # 550 5.1.1 unknown user
    "groupwise_01": "userx@example.edu",  # The recipient name is not recognized
    "postfix_01": "xxxxx@local.ie",  # 550 5.1.1 User unknown
}
SOFT = {  # try again later; suppressed only when it repeats
    "dsn_05": "userx@example.cz",  # 4.4.1 delayed
    "dsn_01": "userx@example.com",  # recipient reached disk quota
    "qmail_01": "userx@example.de",  # "a permanent error", with no reason given
    "simple_01": "bbbsss@example.com",  # 552 ... would exceed mailbox quota
    "smtp32_01": "userx@example.ph",  # Delivery failed 20 attempts
    "yahoo_02": "userx@example.es",  # This account is over quota
}
SENDER = {"aol_01": "screenname@aol.com"}  # not accepting mail from <our list>
OTHERS = [f"fine{i}@tea.test" for i in range(6)]


@pytest.fixture()
def imap() -> Iterator[ImapServer]:
    if not Path(DOVECOT).exists():
        pytest.fail("Dovecot is missing: run scripts/servers-setup (apt-get install dovecot-imapd)")
    if os.geteuid() != 0:
        pytest.skip("the Dovecot fixture runs as root (as CI does)")
    server = ImapServer().start()
    yield server
    server.stop()


@pytest.fixture()
def sent(tmp_path: Path) -> Iterator[tuple[Path, dict[str, bytes]]]:
    """A workspace whose campaign went to every sample address; the messages, by address."""
    people = [*HARD.values(), *SOFT.values(), *SENDER.values(), *OTHERS]
    rows = "".join(f"{email},P{i}\n" for i, email in enumerate(people))
    root = tmp_path / "ws"
    make_workspace(root, campaign=CAMPAIGN, contacts="email,first_name\n" + rows)
    from mailer.campaign.prepared import prepare_campaign
    from mailer.core.settings import load_settings

    prepared = prepare_campaign(root / "campaigns" / "spring.toml", load_settings(root, env={}))
    relay = SmtpServer(RecordingHandler()).start()
    conn = connect(root / "mailer.db")
    try:
        report = send_campaign(
            prepared, conn=conn, transport=transport_for(relay), options=fast_options()
        )
        assert report.sent == len(people)
        messages = {r.rcpt_tos[0].lower(): r.data for r in relay.handler.received}
    finally:
        conn.close()
        relay.close()
    yield root, messages


def trusting(server: ImapServer) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(server.cafile))


def fetch(root: Path, server: ImapServer, tls: bool = True, unsubscribe: str | None = None):  # type: ignore[no-untyped-def]
    conn = connect(root / "mailer.db")
    try:
        return fetch_bounces(
            conn,
            Mailbox.from_url(server.url(tls)),
            PASSWORD,
            Feedback(),
            done_folder="Processed",
            now=utc_now,
            context=trusting(server),
            unsubscribe_address=unsubscribe,
        )
    finally:
        conn.close()


def suppressed(root: Path) -> dict[str, str]:
    conn = connect(root / "mailer.db")
    try:
        return {r[0]: r[1] for r in conn.execute("SELECT email, reason FROM suppressions")}
    finally:
        conn.close()


def test_bounces_from_several_mtas_are_applied_and_filed_over_tls(
    imap: ImapServer, sent: tuple[Path, dict[str, bytes]]
) -> None:
    root, _ = sent
    for name in [*HARD, *SOFT, *SENDER]:
        imap.deliver((SAMPLES / f"{name}.eml").read_bytes())
    # A bounce of mail we never sent, a letter from a person, and a broken report.
    imap.deliver(dsn(b"Message-ID: <x@elsewhere.test>\r\n\r\n", "stranger@elsewhere.test"))
    imap.deliver(b"From: ann@tea.test\r\nSubject: Re: your offer\r\n\r\nCall me!\r\n")
    imap.deliver(
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: message/delivery-status\r\n\r\nStatus: 5.1.1\r\n"
    )
    result = fetch(root, imap)
    assert result.messages == 13
    assert (result.hard_bounces, result.soft_bounces, result.complaints) == (3, 6, 0)
    assert result.sender_side == 1  # counted against the campaign, nobody suppressed
    assert result.not_ours == ["stranger@elsewhere.test"]  # skipped, never suppressed
    assert result.not_reports == 2 and result.moved == 11
    assert suppressed(root) == {address: "bounced" for address in HARD.values()}
    assert imap.folder_count("INBOX") == 2 and imap.folder_count("Processed") == 11
    again = fetch(root, imap)  # the person's letter and the broken report stay put
    assert (again.messages, again.moved, again.hard_bounces) == (2, 0, 0)


def test_reports_quoting_our_message_id_name_the_recipient_and_campaign(
    imap: ImapServer, sent: tuple[Path, dict[str, bytes]]
) -> None:
    root, messages = sent
    first, second, third = OTHERS[:3]
    # The receiving server rewrote the address (an alias): the quoted Message-ID decides.
    imap.deliver(dsn(messages[first], "someone.else@alias.test"))
    imap.deliver(arf(messages[second]))  # complaint, recipient redacted
    imap.deliver(dsn(messages[third], third, status="4.2.2"))  # mailbox full: soft
    result = fetch(root, imap, tls=False)  # plain IMAP (with STARTTLS) on loopback
    assert (result.hard_bounces, result.complaints, result.soft_bounces) == (1, 1, 1)
    assert result.not_ours == []
    assert suppressed(root) == {first: "bounced", second: "complained"}
    conn = connect(root / "mailer.db")
    rows = conn.execute("SELECT kind, email, campaign_id FROM feedback_events ORDER BY id")
    events = [tuple(row) for row in rows]
    conn.close()
    assert sorted(events) == [  # mailbox order is the delivery agent's, not ours
        ("complaint", second, "spring"),
        ("hard_bounce", first, "spring"),
        ("soft_bounce", third, "spring"),
    ]


def test_a_run_cut_short_before_the_move_applies_nothing_twice(
    imap: ImapServer, sent: tuple[Path, dict[str, bytes]]
) -> None:
    root, messages = sent
    report = arf(messages[OTHERS[0]])
    imap.deliver(report)
    assert fetch(root, imap).complaints == 1
    imap.deliver(report)  # as if the move had never happened
    again = fetch(root, imap)
    assert (again.complaints, again.repeats, again.moved) == (0, 1, 1)


def test_wrong_password_and_missing_server_are_clear_errors(
    imap: ImapServer, sent: tuple[Path, dict[str, bytes]]
) -> None:
    root, _ = sent
    conn = connect(root / "mailer.db")
    try:
        with pytest.raises(TransportError, match="refused the login for 'bounces'"):
            fetch_bounces(conn, Mailbox.from_url(imap.url()), "wrong", Feedback(),
                          done_folder="Processed", now=utc_now, context=trusting(imap))  # fmt: skip
        nobody = Mailbox.from_url("imaps://bounces@127.0.0.1:1/INBOX")
        with pytest.raises(TransportError, match="cannot reach the bounce mailbox"):
            fetch_bounces(conn, nobody, PASSWORD, Feedback(), done_folder="Processed",
                          now=utc_now, context=trusting(imap))  # fmt: skip
        # Our own test certificate is not trusted by default: TLS is really checked.
        with pytest.raises(TransportError, match="CERTIFICATE_VERIFY_FAILED"):
            fetch_bounces(conn, Mailbox.from_url(imap.url()), PASSWORD, Feedback(),
                          done_folder="Processed", now=utc_now)  # fmt: skip
    finally:
        conn.close()


def test_the_cli_explains_what_is_missing(sent: tuple[Path, dict[str, bytes]]) -> None:
    root, _ = sent
    result = invoke(root, "bounces", "fetch")
    assert result.exit_code == 1 and "no bounce mailbox is configured" in result.output
    result = invoke(root, "bounces", "fetch", "--imap", "imaps://b@127.0.0.1:1/INBOX")
    assert result.exit_code == 1 and "MAILER_IMAP_PASSWORD is not set" in result.output
    assert "Traceback" not in result.output


def test_sample_messages_are_what_this_test_says(sent: tuple[Path, dict[str, bytes]]) -> None:
    """Guard: each sample really is a bounce of the address, of the class the tables give."""
    from mailer.feedback.classify import classify_bytes

    tables = {"hard": HARD, "soft": SOFT, "sender": SENDER}
    for kind, table in tables.items():
        for name, address in table.items():
            (verdict,) = classify_bytes((SAMPLES / f"{name}.eml").read_bytes()).verdicts
            assert (verdict.recipient, str(verdict.kind)) == (address, kind), name
