"""A/B with a test share, end to end: the share goes out split A/B, clicks come in, the
winner is picked by the stated rule, and the rest of the audience gets it — each person once."""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta
from email import message_from_bytes
from email.header import decode_header, make_header
from pathlib import Path

from mailer.audience.store import connect
from mailer.core.campaign import AbTest
from mailer.core.clock import parse_stamp, stamp
from mailer.core.tokens import LinkData
from mailer.feedback.abtest import Figures, choose, in_test_share
from mailer.feedback.events import record_click
from tests.send_workspace import addresses, contacts_csv
from tests.smtp_server import SmtpServer
from tests.workspace import CAMPAIGN, invoke, make_workspace

AB = '\n[ab]\ntest_share = 0.3\nwait = "4h"\nmin_per_variant = 50\n'


def subject_of(data: bytes) -> str:
    return str(make_header(decode_header(message_from_bytes(data)["Subject"])))


def test_the_share_first_then_the_winner_to_the_rest(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    make_workspace(tmp_path, campaign=CAMPAIGN + AB, contacts=contacts_csv(1000))
    live = ["--live", "--yes", "--no-browser", "--smtp", smtp_server.url]
    dry = invoke(tmp_path, "send", "campaigns/spring.toml", "--smtp", smtp_server.url)
    assert "test share first: 30% of the audience" in dry.output
    first = invoke(tmp_path, "send", "campaigns/spring.toml", *live)
    assert first.exit_code == 0, first.output
    share = {a for a in addresses(1000) if in_test_share("spring", a, 0.3)}
    delivered = Counter(smtp_server.handler.delivered_to())
    assert set(delivered) == share and 250 < len(share) < 350  # the share only

    # The test share's readers click: B's subject works better.
    conn = connect(tmp_path / "mailer.db")
    rows = conn.execute("SELECT email, variant, sent_at FROM journal").fetchall()
    started = parse_stamp(conn.execute("SELECT started_at FROM ab_tests").fetchone()[0])
    for i, (email, variant, _) in enumerate(rows):
        if (variant == "B" and i % 5 < 2) or (variant == "A" and i % 20 == 0):
            link = LinkData(email, "spring", variant, "https://tea.test/spring")
            record_click(conn, link, started + timedelta(hours=1))
    conn.close()

    relay = ["--smtp", smtp_server.url]  # the test is kept per journal key, as sends are
    early = invoke(tmp_path, "ab", "pick", "campaigns/spring.toml", "--now", stamp(started), *relay)
    assert early.exit_code == 1 and "the test runs until" in early.output
    later = stamp(started + timedelta(hours=5))
    picked = invoke(tmp_path, "ab", "pick", "campaigns/spring.toml", "--now", later, *relay)
    assert picked.exit_code == 0, picked.output
    assert "winner B: B wins" in picked.output and "p < 0.001" in picked.output
    assert "p = 0.000" not in picked.output
    shown = invoke(tmp_path, "ab", "show", "campaigns/spring.toml", *relay)
    assert "winner B" in shown.output

    rest = invoke(tmp_path, "send", "campaigns/spring.toml", *live)
    assert rest.exit_code == 0, rest.output
    assert "winner B to the rest of the audience" in rest.output
    delivered = Counter(smtp_server.handler.delivered_to())
    assert set(delivered) == set(addresses(1000)) and max(delivered.values()) == 1
    later_subjects = {
        subject_of(r.data) for r in smtp_server.handler.received if r.rcpt_tos[0] not in share
    }
    assert later_subjects == {"Spring tea is here"}  # B, for everyone after the test
    report = json.loads(invoke(tmp_path, "report", "campaigns/spring.toml", "--json").output)
    assert report["statuses"] == {"sent": 1000}
    ab = report["ab"]  # the test share and the winner send apart
    assert sum(v["sent"] for v in ab["test_share"]) == len(share)
    assert ab["winner_send"]["variant"] == "B" and ab["winner_send"]["sent"] == 1000 - len(share)
    assert ab["decision"]["how"] == "rule" and ab["decision"]["comparison"]["p"] == "p < 0.001"
    # Without --smtp the transport is the outbox, but the test was sent through the relay.
    shown = invoke(tmp_path, "ab", "show", "campaigns/spring.toml")
    assert shown.exit_code == 0 and "not sent yet" not in shown.output, shown.output
    assert "B wins" in shown.output and "winner send (B)" in shown.output


def test_the_rule_falls_back_to_the_default_when_the_test_cannot_tell() -> None:
    test = AbTest(0.2, timedelta(hours=4), "clicks", "A", 100)
    small = choose([Figures("A", 40, 2), Figures("B", 38, 20)], test)
    assert small.winner == "A" and "too few sends to tell" in small.reason
    close = choose([Figures("A", 500, 50), Figures("B", 500, 56)], test)
    assert close.winner == "A" and "no clear difference" in close.reason and "p = " in close.reason
    clear = choose([Figures("A", 500, 50), Figures("B", 500, 90)], test)
    assert clear.winner == "B" and clear.reason.startswith("B wins")
    fewer = AbTest(0.2, timedelta(hours=4), "unsubscribes", "A", 100)
    assert choose([Figures("A", 500, 20), Figures("B", 500, 3)], fewer).winner == "B"
    manual = AbTest(0.2, timedelta(hours=4), "manual", "B", 100)
    assert choose([Figures("A", 500, 50), Figures("B", 500, 90)], manual).winner == "B"


def test_ab_settings_are_checked(tmp_path: Path) -> None:
    for table, message in (
        ('\n[ab]\ntest_share = 2\nwait = "4h"\n', "ab.test_share must be a share"),
        ('\n[ab]\ntest_share = 0.2\nwait = "soon"\n', "ab.wait must be a duration"),
        ('\n[ab]\ntest_share = 0.2\nwait = "1d"\ndefault = "C"\n', "ab.default must name"),
    ):
        make_workspace(tmp_path, campaign=CAMPAIGN + table)
        result = invoke(tmp_path, "send", "campaigns/spring.toml")
        assert result.exit_code == 1 and message in result.output, result.output


def test_run_due_sends_the_winner_once_the_wait_is_over(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    make_workspace(tmp_path, campaign=CAMPAIGN + AB, contacts=contacts_csv(400))
    relay = ["--smtp", smtp_server.url]
    first = invoke(
        tmp_path, "send", "campaigns/spring.toml", "--live", "--yes", "--no-browser", *relay
    )
    assert first.exit_code == 0, first.output
    conn = connect(tmp_path / "mailer.db")
    started = parse_stamp(conn.execute("SELECT started_at FROM ab_tests").fetchone()[0])
    conn.close()
    soon = stamp(started + timedelta(hours=1))
    waiting = invoke(tmp_path, "run-due", "--now", soon, "--commit", "--no-browser", *relay)
    assert "ab " not in waiting.output  # the wait is not over: nothing
    later = stamp(started + timedelta(hours=5))
    rehearsal = invoke(tmp_path, "run-due", "--now", later, "--no-browser", *relay)
    assert "would pick the A/B winner" in rehearsal.output
    sent_before = len(smtp_server.handler.delivered_to())
    passed = invoke(tmp_path, "run-due", "--now", later, "--commit", "--no-browser", *relay)
    assert passed.exit_code == 0, passed.output
    # Few sends per variant (min_per_variant 50 is met, but no clicks): the default, A.
    assert "winner A to the rest" in passed.output and "no clear difference" in passed.output
    delivered = Counter(smtp_server.handler.delivered_to())
    assert set(delivered) == set(addresses(400)) and max(delivered.values()) == 1
    assert len(delivered) > sent_before
    again = invoke(tmp_path, "run-due", "--now", later, "--commit", "--no-browser", *relay)
    assert "ab " not in again.output  # finished: left alone


def test_the_audience_size_of_a_test_share_counts_the_share(tmp_path: Path) -> None:
    from mailer.campaign.prepared import prepare_campaign
    from mailer.core.settings import load_settings

    make_workspace(tmp_path, campaign=CAMPAIGN + AB, contacts=contacts_csv(200))
    prepared = prepare_campaign(
        tmp_path / "campaigns" / "spring.toml", load_settings(tmp_path, env={})
    )
    assert prepared.audience_size() == 200
    prepared.keep = lambda person: in_test_share("spring", person.email, 0.3)
    share = [a for a in addresses(200) if in_test_share("spring", a, 0.3)]
    assert prepared.audience_size() == len(share) == len(list(prepared.recipients()))
