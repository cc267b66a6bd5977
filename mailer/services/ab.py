"""``mailer ab``: where a campaign's A/B test stands, and picking its winner."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from mailer.core.campaign import AbTest, load_campaign
from mailer.core.errors import CampaignError, MailerError, SendError
from mailer.core.keys import journal_key
from mailer.core.settings import Settings
from mailer.delivery.choose import transport_name
from mailer.feedback import abtest
from mailer.report.abreport import AbSection
from mailer.report.data import ab_of
from mailer.services.workspace import open_database, workspace_settings

__all__ = ["AbSection", "AbView", "ab_pass", "ab_pick", "ab_view"]


@dataclass(frozen=True)
class AbView:
    """A campaign's test: its settings, state, the test share's figures so far and, once
    sent, the report's A/B section (test share and winner send apart, the decision)."""

    key: str
    test: AbTest
    state: abtest.AbState
    figures: list[abtest.Figures]
    section: AbSection | None = None


def _open(campaign: Path, smtp: str | None) -> tuple[Settings, str, AbTest]:
    """The workspace settings, the campaign's journal key and its [ab] table.

    The key is the one the test was sent under, whatever the transport now: the
    current transport's key when it holds a test, else the other one (a test sent
    through a relay is found without ``--smtp``, an outbox rehearsal with it).
    """
    settings = workspace_settings(smtp_url=smtp)
    loaded = load_campaign(campaign, settings)
    if loaded.ab is None:
        raise CampaignError(
            "this campaign has no [ab] table",
            where=str(campaign),
            hint="add [ab] with test_share and wait to send a test share first",
        )
    key = journal_key(loaded.id, transport_name(settings))
    conn = open_database(settings)
    try:
        keys = abtest.test_keys(conn, loaded.id)
    finally:
        conn.close()
    if keys and key not in keys:
        key = keys[0]
    return settings, key, loaded.ab


def ab_view(campaign: Path, *, smtp: str | None = None) -> AbView:
    """The test's state and figures."""
    settings, key, test = _open(campaign, smtp)
    conn = open_database(settings)
    try:
        state = abtest.state_of(conn, key)
        section = ab_of(conn, key) if state.started_at else None
        return AbView(key, test, state, abtest.figures(conn, key, test.pick_by), section)
    finally:
        conn.close()


def ab_pick(
    campaign: Path, variant: str | None, now: datetime, *, smtp: str | None = None
) -> abtest.Decision:
    """Decide the winner: ``variant`` by hand, else by the rule once the wait is over."""
    settings, key, test = _open(campaign, smtp)
    conn = open_database(settings)
    try:
        state = abtest.state_of(conn, key)
        if state.winner is not None:
            raise SendError(
                f"the winner is already {state.winner} ({state.reason})",
                hint="the rest of the audience gets it with: mailer send --live",
            )
        if state.started_at is None:
            raise SendError(
                "the test share has not been sent yet",
                hint=f"mailer send {campaign} --live sends it first",
            )
        found = abtest.figures(conn, key, test.pick_by)
        if variant is not None:
            letter = variant.strip().upper()
            if letter not in {f.variant for f in found}:
                raise SendError(
                    f"no variant {variant!r} was sent in the test",
                    hint="sent: " + ", ".join(f.variant for f in found),
                )
            decision = abtest.Decision(letter, f"{letter} picked by hand", found)
        elif not state.due(now):
            assert state.decide_after is not None
            raise SendError(
                f"the test runs until {state.decide_after:%Y-%m-%d %H:%M} UTC",
                hint="wait, or name the variant to send to the rest: mailer ab pick CAMPAIGN B",
            )
        else:
            decision = abtest.choose(found, test)
        abtest.record(conn, key, decision, now, test)
        return decision
    finally:
        conn.close()


def ab_pass(
    settings: Settings, folder: Path, now: datetime, *, rehearsal: bool, force: bool, browser: bool
) -> tuple[list[str], list[MailerError]]:
    """``run-due``'s A/B step: once a test's wait is over, pick the winner and send it to the
    rest of the audience. Tests whose share was never sent, or that are finished, are left."""
    from mailer.services.send import SendRequest, open_send

    lines: list[str] = []
    errors: list[MailerError] = []
    for path in sorted(folder.glob("*.toml")) if folder.is_dir() else []:
        if "[ab]" not in path.read_text(encoding="utf-8", errors="replace"):
            continue
        try:
            loaded = load_campaign(path, settings)
            if loaded.ab is None:
                continue
            key = journal_key(loaded.id, transport_name(settings))
            conn = open_database(settings)
            try:
                state = abtest.state_of(conn, key)
                ready = state.winner is not None or state.due(now)
                if state.started_at is None or state.finished or not ready:
                    continue
                if rehearsal:
                    lines.append(f"{key}: would pick the A/B winner and send it to the rest")
                    continue
                if state.winner is None:
                    found = abtest.figures(conn, key, loaded.ab.pick_by)
                    abtest.record(conn, key, abtest.choose(found, loaded.ab), now, loaded.ab)
            finally:
                conn.close()
            opened = open_send(
                SendRequest(campaign=path, force=force, browser=browser),
                live=True,
                settings=settings,
            )
            transport = opened.transport()
            opened.pre_send_checks()
            report = opened.send(transport)
            if report.complete:
                conn = open_database(settings)
                try:
                    abtest.finish(conn, key, now)
                finally:
                    conn.close()
            lines.append(f"{key}: {opened.ab_note}: {report.sent} sent, {report.failed} failed")
        except MailerError as exc:
            errors.append(exc)
    return lines, errors
