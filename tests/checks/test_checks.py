"""Content and compliance rules (one test per rule), the repetition check, run_checks, and the CLI.

No browser here: ``tests/test_fold.py`` has the Chromium tests.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mailer.campaign.prepared import prepare_campaign
from mailer.checks import content as cc
from mailer.checks.findings import Finding
from mailer.checks.gate import (
    CheckReport,
    check_email,
    merge_findings,
    refuse_on_errors,
    run_checks,
)
from mailer.checks.repetition import check_repetition
from mailer.compose.message import Headers, build_bytes
from mailer.compose.render import Rendered
from mailer.core.errors import CheckError
from mailer.core.settings import Sender, load_settings
from tests.workspace import CAMPAIGN, example_settings, invoke, make_workspace

REPO = Path(__file__).resolve().parents[2]
ADDRESS = "Lotus Tea House, 18 Willow Lane, Hangzhou 310000"
SUBJECT = "Spring green tea: 20% off"
UNSUB = "https://shop.test/unsubscribe?t=abc123"
STORY = (
    "Our tea masters picked these leaves in the first warm week of March on the hills "
    "above the West Lake. Brew them at eighty degrees for two minutes and taste the "
    "chestnut sweetness that only the first harvest has."
)
BODY = f"""<!doctype html><html><head><title>{SUBJECT}</title></head><body>
<div style="display:none">Fresh leaves from the first spring harvest, picked last week</div>
<div class="mailer-headline"><h1>Spring teas are here</h1></div>
<div class="mailer-offer"><p>20% off every green tea until 15 April.</p></div>
<table><tr><td class="mailer-cta"><a href="https://shop.test/spring">Shop spring teas</a></td></tr>
</table>
<img src="https://shop.test/img/hero.jpg" alt="Green tea leaves" width="600" height="300">
<p>{STORY}</p>
<p>{{extra}}</p>
<footer><p>{ADDRESS}</p><p><a href="{UNSUB}">Unsubscribe</a></p></footer>
</body></html>"""
TEXT = f"""Spring teas are here
20% off every green tea until 15 April.
Shop spring teas: https://shop.test/spring
{STORY}
{ADDRESS}
Unsubscribe: {UNSUB}
"""
PREHEADER = "Fresh leaves from the first spring harvest, picked last week"


def rendered(html: str | None = None, **changes: object) -> Rendered:
    base = Rendered(
        subject=SUBJECT,
        preheader=PREHEADER,
        html=BODY.replace("{extra}", "") if html is None else html,
        text=TEXT,
        variant=0,
        unsubscribe_url=UNSUB,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def envelope(**changes: object) -> bytes:
    headers = Headers(
        sender=Sender("Lotus Tea House", "news@lotus-tea.test"),
        to_name="Ann",
        to_email="ann@inbox.test",
        subject=SUBJECT,
        message_id="<1.spring@lotus-tea.test>",
        date="Sun, 22 Nov 2026 08:00:00 +0000",
        list_unsubscribe=f"<mailto:unsubscribe@lotus-tea.test>,\r\n <{UNSUB}>",
        one_click=True,
    )
    return build_bytes(replace(headers, **changes), TEXT, BODY)  # type: ignore[arg-type]


def codes(findings: list[Finding], *, severity: str | None = None) -> list[str]:
    return [f.code for f in findings if severity is None or f.severity == severity]


def check(html: str | None = None, data: bytes | None = None, **changes: object) -> list[Finding]:
    return check_email(rendered(html, **changes), data or envelope(), postal_address=ADDRESS)


def with_body(extra: str) -> str:
    return BODY.replace("{extra}", extra)


def test_good_email_has_no_errors_or_warnings() -> None:
    found = check()
    assert [f for f in found if f.severity != "info"] == []
    assert codes(found) == ["word-count"]


def test_html_size_warning_at_80_kb_and_error_at_102_kb() -> None:
    padding = "<!-- " + "x" * 1024 + " -->"
    assert codes(check(with_body(padding * 81))) == ["html-size", "word-count"]
    assert check(with_body(padding * 81))[0].severity == "warning"
    big = check(with_body(padding * 103))
    assert big[0].code == "html-size" and big[0].severity == "error"


def test_image_without_alt() -> None:
    found = check(with_body('<img src="https://shop.test/img/cup.png">'))
    assert codes(found, severity="warning") == ["img-alt-missing"]
    assert "cup.png" in found[0].message
    # A 1×1 tracking pixel needs no alt text.
    assert codes(check(with_body('<img src="https://t.test/p.gif" width="1" height="1">'))) == [
        "word-count"
    ]


def test_insecure_http_link() -> None:
    found = check(with_body('<a href="http://shop.test/old">old shop</a>'))
    assert codes(found, severity="warning") == ["link-insecure"]


def test_relative_link() -> None:
    found = check(with_body('<a href="/spring">spring</a>'))
    assert codes(found, severity="error") == ["link-relative"]


@pytest.mark.parametrize("href", ["#", "", "https://example.com/offer", "https://www.example.org/"])
def test_placeholder_links(href: str) -> None:
    found = check(with_body(f'<a href="{href}">more</a>'))
    assert codes(found, severity="error") == ["link-placeholder"]


def test_image_only_email() -> None:
    html = (
        f"<html><head><title>{SUBJECT}</title></head><body>"
        '<div class="mailer-cta"><a href="https://shop.test/"><img src="https://shop.test/a.jpg" '
        'alt="Spring sale"></a></div>'
        f'<p>{ADDRESS} <a href="{UNSUB}">Unsubscribe</a></p></body></html>'
    )
    assert "image-only" in codes(check(html), severity="error")
    # Words hidden from the reader (display:none) do not rescue an image-only email.
    hidden = html.replace("<body>", '<body><div style="display: none">' + "tea " * 50 + "</div>")
    assert "image-only" in codes(check(hidden), severity="error")


def test_missing_call_to_action() -> None:
    html = with_body("").replace('class="mailer-cta"', 'class="button"')
    assert codes(check(html), severity="error") == ["cta-missing"]


def test_more_than_one_primary_call_to_action() -> None:
    extra = '<div class="mailer-cta"><a href="https://shop.test/all">See all teas</a></div>'
    assert codes(check(with_body(extra)), severity="error") == ["cta-multiple"]


def test_nested_cta_classes_count_once() -> None:
    extra = '<div class="mailer-cta"><p class="mailer-cta"><a href="https://shop.test/x">x</a></p></div>'
    html = with_body("").replace('<td class="mailer-cta">', "<td>") + extra
    assert cc.read_html(html).key_blocks["mailer-cta"] == 1


def test_text_part_missing_or_out_of_step() -> None:
    assert codes(check(text=""), severity="error") == ["text-missing"]
    short = check(text="Spring teas are here. https://shop.test/spring")
    assert codes(short, severity="warning") == ["text-parity"]
    no_link = check(text=TEXT.replace("https://shop.test/spring", "our shop"))
    assert codes(no_link, severity="warning") == ["text-parity"]
    assert "call-to-action link" in next(f.message for f in no_link if f.code == "text-parity")


def test_title_must_equal_subject() -> None:
    found = check(with_body("").replace(f"<title>{SUBJECT}</title>", "<title>Newsletter</title>"))
    assert codes(found, severity="warning") == ["title-mismatch"]
    untitled = check(with_body("").replace(f"<title>{SUBJECT}</title>", ""))
    assert codes(untitled, severity="warning") == ["title-mismatch"]


def test_word_count_shorter_is_better() -> None:
    found = check(with_body("<p>" + "tea leaves " * 200 + "</p>"))
    assert codes(found, severity="warning") == ["word-count"]
    assert cc.word_count("新春快乐 happy new year") == 5  # 4 CJK characters = 2 words


def test_unsubscribe_link_missing() -> None:
    html = with_body("").replace(f'<a href="{UNSUB}">Unsubscribe</a>', "")
    assert codes(check(html), severity="error") == ["unsubscribe-missing"]
    chinese = with_body("").replace(
        f'<a href="{UNSUB}">Unsubscribe</a>', '<a href="mailto:u@x.test">退订</a>'
    )
    assert codes(check(chinese, unsubscribe_url=None), severity="error") == []


@pytest.mark.parametrize(
    "href", ["#", "", "https://other-shop.test/unsubscribe", "https://shop.test/unsubscribe"]
)
def test_an_unsubscribe_link_that_goes_elsewhere_is_an_error(href: str) -> None:
    html = with_body("").replace(
        f'<a href="{UNSUB}">Unsubscribe</a>', f'<a href="{href}">Unsubscribe</a>'
    )
    [found] = [f for f in check(html) if f.code.startswith("unsubscribe")]
    assert (found.code, found.severity) == ("unsubscribe-not-yours", "error")
    assert f"goes to {href or '(nothing)'!r}" in found.message
    assert 'href="{{ unsubscribe_url }}"' in found.message


def test_the_real_unsubscribe_link_passes_with_utm_tags_or_as_the_mailto() -> None:
    tagged = with_body("").replace(f'href="{UNSUB}"', f'href="{UNSUB}&amp;utm_source=newsletter"')
    assert codes(check(tagged), severity="error") == []
    mailto = with_body("").replace(
        f'<a href="{UNSUB}">Unsubscribe</a>',
        '<a href="mailto:Unsubscribe@lotus-tea.test?subject=unsubscribe">退订</a>',
    )
    found = check_email(
        rendered(mailto),
        envelope(),
        postal_address=ADDRESS,
        unsubscribe_mailto="unsubscribe@lotus-tea.test",
    )
    assert codes(found, severity="error") == []


def test_list_unsubscribe_header_missing() -> None:
    found = check(data=envelope(list_unsubscribe=None, one_click=False))
    assert codes(found, severity="error") == ["list-unsubscribe-missing"]


def test_list_unsubscribe_without_one_click() -> None:
    found = check(data=envelope(one_click=False))
    assert codes(found, severity="warning") == ["list-unsubscribe-one-click"]


def test_postal_address_missing() -> None:
    html = with_body("").replace(f"<p>{ADDRESS}</p>", "")
    assert codes(check(html), severity="error") == ["postal-address-missing"]
    unset = check_email(rendered(), envelope(), postal_address="")
    assert codes(unset, severity="error") == ["postal-address-missing"]


def test_postal_address_belongs_in_the_footer() -> None:
    html = with_body("").replace("<h1>Spring teas are here</h1>", f"<h1>{ADDRESS}</h1>")
    html = html.replace(f"<p>{ADDRESS}</p>", "")
    assert codes(check(html), severity="warning") == ["postal-address-position"]


def test_sender_missing() -> None:
    data = b"Subject: x\r\nList-Unsubscribe: <mailto:u@lotus-tea.test>\r\n\r\nbody"
    assert codes(cc.check_headers(data)) == ["sender-missing"]


def test_preheader_missing_from_the_html() -> None:
    # A template without <mj-preview>: the campaign has a preheader, the email does not.
    html = with_body("").replace(f'<div style="display:none">{PREHEADER}</div>', "")
    found = check(html)
    assert codes(found, severity="warning") == ["preheader-not-in-html"]
    message = next(f.message for f in found if f.code == "preheader-not-in-html")
    assert "<mj-preview>{{ preheader }}</mj-preview>" in message
    # Escaped in the HTML (& -> &amp;) still counts as present.
    escaped = with_body("").replace(PREHEADER, "Fresh leaves &amp; buds from the first harvest")
    assert check(escaped, preheader="Fresh leaves & buds from the first harvest") == check()


def test_preheader_with_spam_words() -> None:
    spammy = "Act now: fresh leaves from the first spring harvest in Hangzhou"
    found = check(with_body("").replace(PREHEADER, spammy), preheader=spammy)
    assert codes(found, severity="warning") == ["preheader-spam"]


def test_sender_identity() -> None:
    no_name = check(data=envelope(sender=Sender("", "news@lotus-tea.test")))
    assert codes(no_name, severity="warning") == ["sender-name-missing"]
    placeholder = check(data=envelope(sender=Sender("Shop", "news@example.com")))
    assert codes(placeholder, severity="error") == ["sender-placeholder"]
    freemail = check(data=envelope(sender=Sender("Shop", "lotus.tea@gmail.com")))
    assert codes(freemail, severity="warning") == ["sender-freemail"]


@pytest.mark.parametrize(
    "claim",
    ["本店龙井全国第一", "最佳口感", "国家级非遗工艺", "100% guaranteed fresh", "the best ever"],
)
def test_absolute_claims_are_flagged(claim: str) -> None:
    found = check(with_body(f"<p>{claim}</p>"))
    assert codes(found, severity="warning") == ["claims"]


def test_ordinary_ordinals_are_not_claims() -> None:
    found = check(with_body("<p>第一次购买的客户，第一步先选茶。</p>"))
    assert codes(found, severity="warning") == []


def test_claims_in_the_subject() -> None:
    found = check(subject="全国第一的龙井")
    assert ("claims", "subject") in [(f.code, f.where) for f in found]


# --- repetition: campaign_runs in a real SQLite file ---------------------------


@pytest.fixture
def db(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    from mailer.audience.store import connect

    conn = connect(tmp_path / "mailer.db")
    yield conn
    conn.close()


def add_run(
    conn: sqlite3.Connection,
    campaign_id: str,
    when: datetime,
    subject: str,
    body: str,
    audience: str,
) -> None:
    conn.execute(
        "INSERT INTO campaign_runs (campaign_id, started_at, transport, subject, body_text, "
        "audience) VALUES (?, ?, 'outbox', ?, ?, ?)",
        (campaign_id, when.isoformat(), subject, body, audience),
    )


NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


def test_repetition_warns_for_a_similar_recent_send_to_the_same_audience(
    db: sqlite3.Connection,
) -> None:
    add_run(
        db, "spring-1", NOW - timedelta(days=10), "Spring green tea: 20% off!", TEXT, "list:vip"
    )
    found = check_repetition(
        db, campaign_id="spring-2", audience="list:vip", subjects=[SUBJECT], body_text=TEXT, now=NOW
    )
    assert codes(found) == ["repeat-subject", "repeat-body"]
    assert found[0].where == "sent 2026-11-12 as spring-1"


def test_repetition_ignores_old_sends_other_audiences_and_different_content(
    db: sqlite3.Connection,
) -> None:
    add_run(db, "old", NOW - timedelta(days=31), SUBJECT, TEXT, "list:vip")
    add_run(db, "others", NOW - timedelta(days=1), SUBJECT, TEXT, "list:prospects")
    add_run(
        db, "autumn", NOW - timedelta(days=2), "Autumn oolong has landed", "Oolong...", "list:vip"
    )
    add_run(db, "spring-2", NOW - timedelta(days=1), SUBJECT, TEXT, "list:vip")  # itself, resumed
    found = check_repetition(
        db, campaign_id="spring-2", audience="list:vip", subjects=[SUBJECT], body_text=TEXT, now=NOW
    )
    assert found == []


# --- merging, the report, and the send gate ------------------------------------


def test_merge_names_samples_once() -> None:
    a = Finding("warning", "x", "same", "html")
    merged = merge_findings([("sample 1", [a]), ("sample 2", [a]), ("sample 3", [])])
    assert merged == [Finding("warning", "x", "same", "html · sample 1, sample 2")]
    everywhere = merge_findings([("sample 1", [a]), ("sample 2", [a])])
    assert everywhere[0].where == "html · all 2 samples"


def test_refuse_on_errors_lists_them() -> None:
    report = CheckReport("spring", findings=[Finding("error", "cta-missing", "no CTA", "html")])
    with pytest.raises(CheckError) as caught:
        refuse_on_errors(report)
    assert str(caught.value).startswith(
        "spring: 1 pre-send check error(s):\n  [cta-missing] html: no CTA\n  hint:"
    )
    refuse_on_errors(CheckReport("ok"))  # no errors: no exception


# --- the starter campaigns and a crafted bad one, through the pipeline ---------


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO / "campaigns").glob("*.toml")))
def test_starter_campaigns_have_no_errors_without_browser(name: str, tmp_path: Path) -> None:
    prepared = prepare_campaign(REPO / "campaigns" / name, example_settings(tmp_path))
    report = run_checks(prepared, browser=False)
    assert report.errors == [], report.errors
    assert not report.fold_ran
    assert "fold-not-run" in codes(report.findings)
    assert report.subjects and all(s.score >= 60 for s in report.subjects)


CAMPAIGN_WITH_NICKNAME = CAMPAIGN.replace(
    "headline = \"Spring tea, {{ contact.first_name | default('friend', true) }}\"",
    'headline = "Spring tea, {{ contact.nickname }}"',
)


def one_contact_workspace(root: Path) -> Path:
    return make_workspace(root, contacts="email,first_name\nann@tea.test,Ann\n")


def test_every_variant_is_scored_even_with_one_recipient(tmp_path: Path) -> None:
    path = one_contact_workspace(tmp_path)
    prepared = prepare_campaign(path, load_settings(tmp_path, env={}))
    report = run_checks(prepared, browser=False)
    assert [(s.variant, s.subject) for s in report.subjects] == [
        ("A", "Ann，新春快乐"),
        ("B", "Spring tea is here"),
    ]
    assert report.samples == 2  # the real recipient and a stand-in for the other variant
    off = [f for f in report.findings if f.code == "subject-off-message"]
    assert [f.where for f in off] == [f"subject A ({tmp_path / 'campaigns' / 'spring.toml'}:3)"]


def test_a_recipient_that_does_not_render_is_a_finding_not_a_crash(tmp_path: Path) -> None:
    campaign = CAMPAIGN_WITH_NICKNAME
    path = make_workspace(tmp_path, campaign=campaign)
    prepared = prepare_campaign(path, load_settings(tmp_path, env={}))
    report = run_checks(prepared, browser=False)
    assert codes(report.findings) == ["render", "audience-empty"]
    render, empty = report.findings
    assert "nickname" in render.message
    assert render.where.startswith("contacts.csv line 2, contacts.csv line 3")
    assert empty.message.startswith("no recipient could be rendered (see the render errors)")
    assert report.fold_note == "NOT RUN: no sample could be rendered" and not report.ok


def test_an_empty_audience_says_so(tmp_path: Path) -> None:
    path = make_workspace(tmp_path, contacts="email,first_name\n")
    report = run_checks(prepare_campaign(path, load_settings(tmp_path, env={})), browser=False)
    assert [(f.code, f.where) for f in report.findings] == [("audience-empty", "csv:contacts.csv")]
    assert report.findings[0].message.startswith("the audience has no recipients")


def test_run_checks_warns_about_a_recent_similar_campaign(tmp_path: Path) -> None:
    from mailer.audience.store import connect

    path = one_contact_workspace(tmp_path)
    conn = connect(tmp_path / "mailer.db")
    recent = datetime.now(UTC) - timedelta(days=3)
    # As `mailer send` stores it: the subject templates, one per line.
    stored = "{{ contact.first_name }}，新年快乐\nSpring tea is here!"
    add_run(conn, "spring-2025", recent, stored, "", "csv:contacts.csv")
    conn.close()
    prepared = prepare_campaign(path, load_settings(tmp_path, env={}))
    report = run_checks(prepared, browser=False)
    repeat = [f for f in report.findings if f.code == "repeat-subject"]
    assert [f.where for f in repeat] == [f"sent {recent.date().isoformat()} as spring-2025"]


BAD_TEMPLATE = """<mjml><mj-head><mj-title>Newsletter</mj-title></mj-head><mj-body>
<mj-section><mj-column>
<mj-text css-class="mailer-headline">{{ headline }}</mj-text>
<mj-text css-class="mailer-offer">{{ offer }} 全国第一的龙井。</mj-text>
<mj-image src="/img/hero.jpg" />
<mj-button href="#">{{ cta.text }}</mj-button>
</mj-column></mj-section></mj-body></mjml>
"""

BAD_CAMPAIGN = """id = "bad"
template = "bad"
subjects = ["RE: FREE TEA!!!", "Spring tea"]
preheader = "Spring tea"

[content]
headline = "Spring tea, {{ contact.first_name | default('friend', true) }}"
offer = "20% off green teas"
cta_text = "Shop"
cta_url = "https://tea.test/spring"

[audience]
csv = "contacts.csv"
"""


def bad_workspace(root: Path) -> Path:
    path = make_workspace(root, campaign=BAD_CAMPAIGN)
    (root / "templates" / "bad.mjml").write_text(BAD_TEMPLATE, encoding="utf-8")
    return path


def test_bad_campaign_json_lists_each_rule_and_exits_1(tmp_path: Path) -> None:
    bad_workspace(tmp_path)
    result = invoke(tmp_path, "check", "campaigns/spring.toml", "--json", "--no-browser")
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    found = {f["code"] for f in data["findings"]}
    assert {
        "subject-fake-reply",
        "subject-spam",
        "subject-caps",
        "subject-punctuation",
        "preheader-short",
        "link-relative",
        "link-placeholder",
        "img-alt-missing",
        "cta-missing",
        "title-mismatch",
        "unsubscribe-missing",
        "postal-address-missing",
        "claims",
        "fold-not-run",
    } <= found
    assert [s["variant"] for s in data["subjects"]] == ["A", "B"]  # every variant scored
    assert data["fold"] == {"ran": False, "note": data["fold"]["note"], "measurements": []}
    assert data["fold"]["note"].startswith("NOT RUN")
    assert data["ok"] is False


def test_table_output_says_fold_not_run(tmp_path: Path) -> None:
    make_workspace(tmp_path)
    result = invoke(tmp_path, "check", "campaigns/spring.toml", "--no-browser")
    assert result.exit_code == 0, result.output
    assert "fold check: NOT RUN (skipped on request)" in result.output
    assert "✓ 0 error(s)" in result.output


def test_missing_chromium_is_an_error_not_a_pass(tmp_path: Path) -> None:
    make_workspace(tmp_path)
    missing = tmp_path / "no-such-chromium"
    result = invoke(tmp_path, "check", "campaigns/spring.toml", "--chromium", str(missing))
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: fold check: Chromium not found at {missing}: the above-the-fold check cannot "
        "run (it was NOT run, so it did not pass)\n"
        "  hint: install it with: apt-get install -y chromium (or pass --chromium PATH); or use "
        "--no-browser to skip it knowingly\n"
    )
    assert "✓" not in result.stdout


def test_bad_viewport_flag(tmp_path: Path) -> None:
    make_workspace(tmp_path)
    result = invoke(tmp_path, "check", "campaigns/spring.toml", "--phone", "tall")
    assert result.exit_code == 2
    assert "'tall' is not WIDTHxHEIGHT (for example 375x667)" in result.stderr
    for flag, size in (("--phone", "00x00"), ("--desktop", "99999x600")):
        tiny = invoke(tmp_path, "check", "campaigns/spring.toml", flag, size)
        assert tiny.exit_code == 2
        assert f"'{size}': width and height must be 200–5000 pixels" in tiny.stderr


def test_a_web_unsubscribe_link_without_a_key_of_our_own_is_a_warning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mailer.checks.content import check_unsubscribe_key

    url = "https://tea.test/unsubscribe?t=abc"
    assert check_unsubscribe_key(url) == []  # the tests' key is set
    monkeypatch.delenv("MAILER_UNSUBSCRIBE_KEY")
    found = check_unsubscribe_key(url)
    assert [f.code for f in found] == ["unsubscribe-key"]
    assert "openssl rand -hex 32" in found[0].message
    assert check_unsubscribe_key("mailto:u@tea.test") == []  # nothing to forge
