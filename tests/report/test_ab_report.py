"""The "done when" of issue 31: a 1,000-recipient A/B campaign sent through aiosmtpd, with
clicks through ``mailer serve``; the report tells the test share and the winner send apart
with the decision, and every figure agrees with the sink and the click log."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from mailer.core.clock import parse_stamp
from tests.report.ab_scenario import DOMAINS, RECIPIENTS, Scenario, run
from tests.smtp_server import SmtpServer
from tests.workspace import invoke


@pytest.fixture(scope="module")
def played(tmp_path_factory: pytest.TempPathFactory) -> tuple[Scenario, dict[str, Any]]:
    server = SmtpServer().start()
    # Module-wide: the autouse key fixture is per test; the same key, as a real sender's.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MAILER_UNSUBSCRIBE_KEY", "tests-unsubscribe-key-0123456789abcdef")
        try:
            scenario = run(tmp_path_factory.mktemp("ab"), server)
        finally:
            server.close()
        result = invoke(scenario.root, "report", "campaigns/spring.toml", "--json")
    assert result.exit_code == 0, result.output
    return scenario, json.loads(result.output)


def _z_test(a: tuple[int, int], b: tuple[int, int]) -> tuple[float, float, float]:
    """Independent arithmetic: pooled two-sided p, and the Wald 95 % interval of b - a."""
    (ha, na), (hb, nb) = a, b
    pa, pb = ha / na, hb / nb
    pooled = (ha + hb) / (na + nb)
    z = (pb - pa) / math.sqrt(pooled * (1 - pooled) * (1 / na + 1 / nb))
    p = 2 * (1 - 0.5 * (1 + math.erf(abs(z) / math.sqrt(2))))
    half = 1.959964 * math.sqrt(pa * (1 - pa) / na + pb * (1 - pb) / nb)
    return p, pb - pa - half, pb - pa + half


def test_the_overview_agrees_with_the_sink_and_the_click_log(
    played: tuple[Scenario, dict[str, Any]],
) -> None:
    scenario, report = played
    delivered = {**scenario.test_share, **scenario.rest}
    assert len(delivered) + len(scenario.refused) == RECIPIENTS  # each person once
    overview = report["overview"]
    assert overview["sent"] == RECIPIENTS
    assert overview["delivered"]["count"] == len(delivered)
    assert overview["delivered"]["rate"] == round(len(delivered) / RECIPIENTS, 5)
    clickers = {c.email for c in scenario.clicks}
    assert clickers <= set(delivered)
    assert overview["unique_clicks"]["count"] == len(clickers) > 100
    assert overview["unique_clicks"]["rate"] == round(len(clickers) / len(delivered), 5)
    assert overview["clicks_per_recipient"]["count"] == len(scenario.clicks)
    assert overview["clicks_per_recipient"]["rate"] == round(
        len(scenario.clicks) / len(delivered), 5
    )
    assert overview["unsubscribes"]["count"] == len(scenario.unsubscribed) > 0
    assert overview["complaints"]["count"] == 0 and overview["complaints"]["limit"] == 0.003
    assert overview["hard_bounces"]["count"] == len(scenario.refused) > 0
    assert overview["hard_bounces"]["rate"] == round(len(scenario.refused) / RECIPIENTS, 5)
    # Greylisted at first, delivered on the retry: not a soft bounce at the end.
    assert scenario.greylisted and overview["soft_bounces"]["count"] == 0
    deferred_first = sum(b["deferred_first"] for b in report["sending"])
    assert deferred_first == len(scenario.greylisted - scenario.refused)
    assert sum(b["sent"] for b in report["sending"]) == len(delivered)


def test_the_test_share_and_the_winner_send_are_apart_with_the_decision(
    played: tuple[Scenario, dict[str, Any]],
) -> None:
    scenario, report = played
    ab = report["ab"]
    clickers = {c.email for c in scenario.clicks}
    for row in ab["test_share"]:
        people = {e for e, v in scenario.test_share.items() if v == row["variant"]}
        assert row["sent"] == len(people)
        assert row["clickers"] == len(people & clickers)
        assert row["unsubscribed"] == len(people & scenario.unsubscribed)
        assert row["click_rate"] == round(len(people & clickers) / len(people), 5)
    assert {r["variant"] for r in ab["test_share"]} == {"A", "B"}
    assert set(scenario.rest.values()) == {"B"}  # the sink: only B after the test
    winner = ab["winner_send"]
    assert winner["variant"] == "B" and winner["sent"] == len(scenario.rest)
    assert winner["clickers"] == len(set(scenario.rest) & clickers)
    assert not set(scenario.rest) & set(scenario.test_share)
    assert ab["finished"] is True  # the winner reached everyone: run-due leaves it alone

    decision = ab["decision"]
    assert decision["winner"] == "B" and decision["how"] == "rule"
    at_decision = {f["variant"]: (f["hits"], f["sent"]) for f in decision["figures"]}
    for variant, (hits, sent) in at_decision.items():
        assert sent == sum(1 for v in scenario.test_share.values() if v == variant)
        # The share's readers all clicked before the pick (their clicks are stamped later).
        assert hits == sum(
            1 for e, v in scenario.test_share.items() if v == variant and e in clickers
        )
    p, low, high = _z_test(at_decision["A"], at_decision["B"])
    comparison = decision["comparison"]
    assert comparison["best"] == "B" and comparison["runner_up"] == "A"
    assert comparison["p_value"] == pytest.approx(p, rel=1e-6, abs=1e-12)
    assert p < 0.001 and comparison["p"] == "p < 0.001" and comparison["significant"]
    assert comparison["ci95"] == [pytest.approx(low, abs=1e-4), pytest.approx(high, abs=1e-4)]
    assert 0 < comparison["ci95"][0] < comparison["difference"] < comparison["ci95"][1]
    assert ab["rule"]["test_share"] == 0.3 and ab["rule"]["min_per_variant"] == 100
    assert "p = 0.000" not in scenario.picked_output


def test_engagement_by_domain_over_time_and_per_link(
    played: tuple[Scenario, dict[str, Any]],
) -> None:
    scenario, report = played
    delivered = {**scenario.test_share, **scenario.rest}
    clickers = {c.email for c in scenario.clicks}
    rows = {r["domain"]: r for r in report["domains"]}
    assert set(rows) == set(DOMAINS)
    for domain, row in rows.items():
        people = {e for e in delivered if e.endswith("@" + domain)}
        assert row["sent"] == len(people)
        assert row["clickers"] == len(people & clickers)
        assert row["unsubscribed"] == len(people & scenario.unsubscribed)
        assert row["hard_bounced"] == sum(1 for e in scenario.refused if e.endswith(domain))
    timeline = report["timeline"]
    assert sum(b.get("first_clicks", 0) for b in timeline) == len(clickers)
    assert sum(b.get("clicks", 0) for b in timeline) == len(scenario.clicks)
    assert sum(b.get("unsubscribe", 0) for b in timeline) == len(scenario.unsubscribed)
    # Half the clickers: the hour bin where the running count of first clicks reaches half,
    # counted here from the click log itself.
    firsts = sorted(min(c.at for c in scenario.clicks if c.email == e) for e in clickers)
    origin = min(parse_stamp(b["start"]) for b in timeline)
    half = firsts[(len(firsts) + 1) // 2 - 1]
    hours = int((half.replace(minute=0, second=0, microsecond=0) - origin).total_seconds() // 3600)
    assert report["click_times"][0] == {"share": 0.5, "when": f"within {hours + 1} h"}
    hourly = [b for b in timeline if b["seconds"] == 3600]
    assert len(hourly) == 48 and all(b["seconds"] == 86400 for b in timeline[48:])
    assert len(timeline) > 48  # the winner's readers click for days: daily bins follow
    per_link = Counter(c.url for c in scenario.clicks)
    assert sum(link["clicks"] for link in report["links"]) == sum(per_link.values())
    assert sorted(link["clicks"] for link in report["links"]) == sorted(
        Counter(_url_of(scenario, c.url) for c in scenario.clicks).values()
    )


def _url_of(scenario: Scenario, token: str) -> str:
    from mailer.core.tokens import read_link_token

    found = read_link_token(token)
    assert found is not None
    return found.url


def test_the_terminal_and_the_page_say_the_same(
    played: tuple[Scenario, dict[str, Any]], tmp_path: Path
) -> None:
    scenario, report = played
    page = tmp_path / "report.html"
    shown = invoke(scenario.root, "report", "campaigns/spring.toml", "--html", str(page))
    assert shown.exit_code == 0, shown.output
    headline = "B wins"
    text = page.read_text(encoding="utf-8")
    for needle in (headline, "Test share (30% of the audience)", "Winner send", "95% CI"):
        assert needle in shown.output or needle in text
        assert needle in text
    assert "winner send (B)" in shown.output and "p < 0.001" in shown.output
    unique = report["overview"]["unique_clicks"]
    assert f"{unique['count']:,} of {report['overview']['delivered']['count']:,}" in text
    ab = invoke(scenario.root, "ab", "show", "campaigns/spring.toml")  # no --smtp: found anyway
    assert ab.exit_code == 0 and "winner B" in ab.output and "B wins" in ab.output, ab.output


# What the page must be at both widths, measured in the browser (px).
_TEXT_BOXES = """() => {
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const boxes = [];
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (!node.textContent.trim()) continue;
    const style = getComputedStyle(node.parentElement);
    const range = document.createRange();
    range.selectNodeContents(node);
    for (const r of range.getClientRects()) {
      if (r.width > 0 && r.height > 0) boxes.push({x: r.left + scrollX, y: r.top + scrollY,
        w: r.width, h: r.height, size: parseFloat(style.fontSize),
        text: node.textContent.trim().slice(0, 40)});
    }
  }
  return boxes;
}"""
_CHARTS = """() => [...document.querySelectorAll('figure.chart')].map(f => {
  const box = e => { const r = e.getBoundingClientRect();
    return {x: r.left, y: r.top, w: r.width, h: r.height}; };
  return {figure: box(f), legend: box(f.querySelector('.legend')),
          bars: box(f.querySelector('.bars')),
          ticks: [...f.querySelectorAll('.xaxis span')].map(box)};
})"""
_SCALE = {13.0, 16.0, 20.0, 25.0, 31.25}  # the page's type scale: 0.8125rem ... 1.953rem


def _overlap(a: dict[str, float], b: dict[str, float]) -> float:
    wide = min(a["x"] + a["w"], b["x"] + b["w"]) - max(a["x"], b["x"])
    high = min(a["y"] + a["h"], b["y"] + b["h"]) - max(a["y"], b["y"])
    return wide * high if wide > 0.5 and high > 0.5 else 0.0


@pytest.mark.parametrize("width", [390, 1280])
def test_the_page_reads_at_390_and_1280_px(
    played: tuple[Scenario, dict[str, Any]], tmp_path: Path, browser: Any, width: int
) -> None:
    scenario, _ = played
    page_file = tmp_path / "report.html"
    made = invoke(scenario.root, "report", "campaigns/spring.toml", "--html", str(page_file))
    assert made.exit_code == 0, made.output
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(page_file.as_uri())
    assert requests == [page_file.as_uri()]  # one self-contained file
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    hidden = page.evaluate(
        "[...document.querySelectorAll('.scroll')].filter(e => e.scrollWidth > e.clientWidth)"
        ".length"
    )
    assert hidden == 0  # no table column pushed out of sight
    boxes = page.evaluate(_TEXT_BOXES)
    sizes = {round(b["size"], 2) for b in boxes}
    assert sizes <= _SCALE, sizes  # one type scale, nothing under 13 px
    assert all(b["x"] >= 0 and b["x"] + b["w"] <= width + 0.5 for b in boxes)
    clashes = [
        (a["text"], b["text"])
        for i, a in enumerate(boxes)
        for b in boxes[i + 1 :]
        if _overlap(a, b) > 1
    ]
    assert clashes == []
    charts = page.evaluate(_CHARTS)
    assert len(charts) >= 3
    for chart in charts:
        assert chart["legend"]["y"] + chart["legend"]["h"] <= chart["bars"]["y"]  # above
        assert chart["bars"]["w"] >= 0.75 * chart["figure"]["w"]  # as wide as the page lets
        for tick in chart["ticks"]:
            inside = chart["figure"]["x"] - 0.5 <= tick["x"]
            assert (
                inside
                and tick["x"] + tick["w"] <= chart["figure"]["x"] + chart["figure"]["w"] + 0.5
            )
    context.close()
