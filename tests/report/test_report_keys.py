"""Which sends a report (and ``schedule list``) finds: the outbox send of a campaign file,
a scheduled campaign's instances, every campaign with ``--all``; sent waves are sent
whatever transport ``schedule list`` would use itself."""

from __future__ import annotations

import json
from pathlib import Path

from tests.smtp_server import SmtpServer
from tests.workspace import CAMPAIGN, invoke, make_workspace

CONTACTS = "email,first_name,timezone\n" + "".join(
    f"p{i}@{'ab'[i % 2]}.test,P{i},Asia/Shanghai\n" for i in range(6)
)
SCHEDULED = CAMPAIGN.replace('id = "spring"', 'id = "qixi"') + (
    '\n[schedule]\nday = "七夕"\nrecurring = "yearly"\nlocal_time = "10:00"\n'
)


def test_a_campaign_sent_to_the_outbox_is_reported(tmp_path: Path) -> None:
    make_workspace(tmp_path, contacts=CONTACTS)
    sent = invoke(tmp_path, "send", "campaigns/spring.toml", "--live", "--yes", "--no-browser")
    assert sent.exit_code == 0, sent.output
    shown = invoke(tmp_path, "report", "campaigns/spring.toml")
    assert shown.exit_code == 0 and "nothing has been sent" not in shown.output
    assert "spring@outbox: 6 sent" in shown.output and "outbox send" in shown.output
    data = json.loads(invoke(tmp_path, "report", "spring", "--json").output)
    assert data["campaign"] == "spring@outbox" and data["overview"]["sent"] == 6


def test_a_scheduled_campaign_reports_its_instances_and_schedule_list_says_sent(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    make_workspace(tmp_path, campaign=SCHEDULED, contacts=CONTACTS)
    # Qixi 2027 is 8 August: 10:00 in Shanghai is 02:00 UTC. The relay is given on the
    # command line only, as a marketer running cron would.
    due = invoke(tmp_path, "run-due", "--now", "2027-08-08T02:05Z", "--commit", "--no-browser",
                 "--smtp", smtp_server.url)  # fmt: skip
    assert due.exit_code == 0, due.output
    assert len(smtp_server.handler.received) == 6
    listed = " ".join(
        invoke(tmp_path, "schedule", "list", "--now", "2027-08-08T02:10Z").output.split()
    )
    assert "sent (6)" in listed and "due now" not in listed and "pending" not in listed
    shown = invoke(tmp_path, "report", "campaigns/spring.toml")
    assert shown.exit_code == 0, shown.output
    assert "nothing has been sent" not in shown.output and "qixi@2027" in shown.output
    data = json.loads(invoke(tmp_path, "report", "campaigns/spring.toml", "--json").output)
    assert [row["campaign"] for row in data["campaigns"]] == ["qixi@2027"]
    assert data["campaigns"][0]["sent"] == 6 and data["campaigns"][0]["delivered"]["count"] == 6
    one = json.loads(invoke(tmp_path, "report", "qixi@2027", "--json").output)
    assert one["overview"]["delivered"]["count"] == 6


def test_report_all_has_one_row_per_campaign_and_instance(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    make_workspace(tmp_path, campaign=SCHEDULED, contacts=CONTACTS)
    (tmp_path / "campaigns" / "promo.toml").write_text(CAMPAIGN, encoding="utf-8")
    for now in ("2027-08-08T02:05Z", "2028-08-26T02:05Z"):  # two years of Qixi
        invoke(tmp_path, "run-due", "--now", now, "--commit", "--no-browser",
               "--smtp", smtp_server.url)  # fmt: skip
    sent = invoke(tmp_path, "send", "campaigns/promo.toml", "--live", "--yes", "--no-browser",
                  "--smtp", smtp_server.url)  # fmt: skip
    assert sent.exit_code == 0, sent.output
    data = json.loads(invoke(tmp_path, "report", "--all", "--json").output)
    keys = [row["campaign"] for row in data["campaigns"]]
    assert sorted(keys) == ["qixi@2027", "qixi@2028", "spring"]
    assert all(row["sent"] == 6 and row["unique_clicks"]["rate"] == 0 for row in data["campaigns"])
    table = invoke(tmp_path, "report", "--all")
    assert table.exit_code == 0 and "qixi@2028" in table.output and "spring" in table.output
    page = tmp_path / "all.html"
    invoke(tmp_path, "report", "--all", "--html", str(page))
    assert "qixi@2027" in page.read_text(encoding="utf-8")
    both = invoke(tmp_path, "report", "spring", "--all")
    assert both.exit_code == 2 and "or --all" in both.output
