"""A month of cron every five minutes: each greeting once, in its window, run rows per wave."""

from __future__ import annotations

from tests.schedule_sim import simulate
from tests.smtp_server import RecordingHandler, SmtpServer


def test_a_month_of_cron_sends_each_greeting_once_inside_its_window(tmp_path):
    server = SmtpServer(RecordingHandler(keep_data="headers")).start()
    try:
        sim = simulate(tmp_path, server, contacts=150)
    finally:
        server.close()
    assert sim.problems == []
    greetings = sum(sim.deliveries.values())
    assert greetings > 150  # everyone's New Year, and the month's birthdays
    # Run rows grow with the waves that sent something, not with the 8,640 passes.
    assert sim.passes == 30 * 24 * 12
    # One wave run per wave, one send run per wave that sent.
    assert sim.schedule_runs == sim.waves
    assert sim.campaign_runs == sim.sent_waves
