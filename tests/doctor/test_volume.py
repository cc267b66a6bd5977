"""Bulk-sender thresholds per provider family, counted per day across campaigns (the journal)."""

from __future__ import annotations

from datetime import UTC, datetime

from mailer.audience.store import transaction
from mailer.core.recipient import Recipient
from mailer.delivery.provider_volume import sent_per_day
from mailer.doctor.message import PROVIDER_DOMAINS, SentHistory, check_volume
from mailer.doctor.model import Status

NOW = datetime(2027, 3, 10, 15, 0, tzinfo=UTC)
TODAY = "2027-03-10"


def sent(conn, campaign: str, emails: list[str], at: str, status: str = "sent") -> None:  # type: ignore[no-untyped-def]
    with transaction(conn):
        conn.executemany(
            "INSERT INTO journal (campaign_id, email, status, queued_at, updated_at, sent_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [(campaign, e, status, at, at, at) for e in emails],
        )


def test_the_journal_counts_each_family_per_day_across_campaigns(any_store):
    conn = any_store
    gmail = [f"g{n}@gmail.com" for n in range(2600)] + [f"h{n}@GoogleMail.com" for n in range(1)]
    sent(conn, "spring", gmail, "2027-03-02T09:00:00Z")
    sent(conn, "autumn", [f"a{n}@googlemail.com" for n in range(2500)], "2027-03-02T20:00:00Z")
    sent(conn, "autumn", [f"y{n}@ymail.com" for n in range(30)], "2027-03-02T20:00:00Z")
    sent(conn, "spring", [f"y{n}@aol.com" for n in range(20)], "2027-03-10T08:00:00Z")
    sent(conn, "spring", [f"o{n}@hotmail.com" for n in range(7)], "2027-03-10T08:00:00Z")
    sent(conn, "spring", ["other@example.org"], "2027-03-10T08:00:00Z")
    sent(conn, "spring@outbox", [f"z{n}@gmail.com" for n in range(9000)], "2027-03-10T08:00:00Z")
    sent(conn, "late", [f"f{n}@live.com" for n in range(3)], "2027-03-10T08:00:00Z", "failed")
    sent(conn, "old", [f"q{n}@msn.com" for n in range(6000)], "2027-01-01T08:00:00Z")
    rows = sent_per_day(conn, PROVIDER_DOMAINS, "2027-02-08T15:00:00Z")
    history = SentHistory.from_rows(rows)
    assert history.per_day == {
        "gmail": {"2027-03-02": 5101},  # two campaigns, both Google domains, one day
        "yahoo": {"2027-03-02": 30, "2027-03-10": 20},
        "outlook": {"2027-03-10": 7},  # failed, outbox and too-old rows do not count
    }
    checks = {c.id: c for c in check_volume(None, history, TODAY)}
    assert checks["volume.gmail"].status is Status.WARN
    assert "5,101 messages on 2027-03-02" in checks["volume.gmail"].reason
    assert checks["volume.yahoo"].status is Status.PASS
    assert checks["volume.outlook"].status is Status.PASS


def test_today_s_sends_plus_this_campaign_cross_the_threshold():
    history = SentHistory({"outlook": {TODAY: 4000}, "yahoo": {"2027-03-09": 4900}})
    people = [Recipient(f"p{n}@outlook.com", "", {}, "") for n in range(1001)]
    people += [Recipient(f"y{n}@yahoo.com", "", {}, "") for n in range(200)]
    checks = {c.id: c for c in check_volume(people, history, TODAY)}
    outlook = checks["volume.outlook"]
    assert outlook.status is Status.WARN
    assert "4,000 sent today + 1,001 in this campaign = 5,001" in outlook.reason
    # Yahoo: 200 today, 4,900 yesterday — each day under the threshold.
    assert checks["volume.yahoo"].status is Status.PASS
    assert checks["volume.gmail"].status is Status.PASS


def test_the_service_reads_the_workspace_journal(tmp_path):
    from mailer.audience.store import connect
    from mailer.core.settings import load_settings
    from mailer.services.doctor import sent_history
    from tests.workspace import make_workspace

    make_workspace(tmp_path)
    settings = load_settings(tmp_path, env={})
    assert sent_history(settings, NOW) is None  # no database yet: none is created
    assert not settings.db_path.exists()
    conn = connect(settings.db_path)
    sent(conn, "spring", [f"g{n}@gmail.com" for n in range(3)], "2027-03-10T01:00:00Z")
    conn.close()
    history = sent_history(settings, NOW)
    assert history is not None and history.per_day == {"gmail": {TODAY: 3}}
