"""``mailer serve`` over real HTTP: one-click unsubscribes, the page, resubscribes, guards.

A real uvicorn on 127.0.0.1 (port 0) serves the app over the demo workspace's
contacts in a real SQLite file; requests go through httpx.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from mailer.audience.store import connect
from mailer.core.settings import Settings
from mailer.core.tokens import KEY_ENV, make_token
from mailer.feedback.server import MAX_BODY, Endpoint, Limiter
from tests.feedback.served import serving
from tests.workspace import example_settings

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC).timestamp()
ZH = "lin.xiaomei@inbox.test"  # locale zh-CN in the demo contacts
EN = "emma.clarke@mail.test"


@pytest.fixture()
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv(KEY_ENV, "test-key-0123456789")
    return example_settings(tmp_path)


def make_endpoint(settings: Settings, log: list[str]) -> Endpoint:
    return Endpoint(settings, now=lambda: NOW, log=log.append)


def suppressions(settings: Settings) -> dict[str, str]:
    conn = connect(settings.db_path)
    try:
        return {row[0]: row[1] for row in conn.execute("SELECT email, reason FROM suppressions")}
    finally:
        conn.close()


def events(settings: Settings) -> list[tuple[str, str, str]]:
    conn = connect(settings.db_path)
    try:
        rows = conn.execute("SELECT kind, email, source FROM feedback_events ORDER BY id")
        return [tuple(row) for row in rows]
    finally:
        conn.close()


def test_demo_contacts_have_the_locales_these_tests_rely_on(settings: Settings) -> None:
    conn = connect(settings.db_path)
    locales = dict(conn.execute("SELECT email, locale FROM contacts").fetchall())
    conn.close()
    assert locales[ZH] == "zh-CN" and locales[EN].startswith("en")


def test_one_click_post_suppresses_once_and_says_nothing_about_the_address(
    settings: Settings,
) -> None:
    log: list[str] = []
    token = make_token(ZH, "spring", NOW - 86400)
    stranger = make_token("nobody@nowhere.test", "spring", NOW)
    with serving(make_endpoint(settings, log)) as base:
        form = {"List-Unsubscribe": "One-Click"}
        first = httpx.post(f"{base}/u/{token}", data=form)
        again = httpx.post(f"{base}/u/{token}", data=form)
        unknown = httpx.post(f"{base}/u/{stranger}", data=form)
    assert (first.status_code, again.status_code, unknown.status_code) == (200, 200, 200)
    assert first.text == again.text == unknown.text  # the answer never tells who is a contact
    assert suppressions(settings)[ZH] == "unsubscribed"
    assert events(settings).count(("unsubscribe", ZH, "one-click")) == 1  # idempotent
    conn = connect(settings.db_path)
    (campaign,) = conn.execute(
        "SELECT campaign_id FROM feedback_events WHERE email = ?", (ZH,)
    ).fetchone()
    conn.close()
    assert campaign == "spring"
    # The access log: one JSON line per request, no address, no token, no client IP.
    assert len(log) == 3 and all(json.loads(line)["path"] == "/u/<token>" for line in log)
    assert not any(token in line or "@" in line or "127.0.0.1" in line for line in log)


@pytest.mark.parametrize("how", ["forged", "altered", "expired", "garbage"])
def test_a_bad_token_is_refused_and_suppresses_nobody(settings: Settings, how: str) -> None:
    good = make_token(ZH, "spring", NOW)
    token = {
        "forged": make_token(ZH, "spring", NOW, key=b"someone else's key"),
        "altered": make_token(EN, "spring", NOW).split(".")[0] + "." + good.split(".")[1],
        "expired": make_token(ZH, "spring", NOW - 401 * 86400),
        "garbage": "not-a-token",
    }[how]
    with serving(make_endpoint(settings, [])) as base:
        posted = httpx.post(f"{base}/u/{token}")
        page = httpx.get(f"{base}/u/{token}")
    assert posted.status_code == 400
    assert "not valid or has expired" in page.text and "无效" in page.text
    assert suppressions(settings) == {} and events(settings) == []


def _press(base: str, page: httpx.Response) -> httpx.Response:
    """Submit the page's (first) form as a browser does: a plain POST of its fields."""
    form = re.search(r'<form method=post action="([^"]+)">(.*?)</form>', page.text, re.S)
    assert form is not None, page.text
    fields = dict(re.findall(r"<input type=hidden name=(\w+) value=(\w+)>", form.group(2)))
    return httpx.post(base + form.group(1).replace("&amp;", "&"), data=fields)


def test_the_page_asks_first_and_speaks_the_contacts_language(settings: Settings) -> None:
    zh_token, en_token = make_token(ZH, "spring", NOW), make_token(EN, "spring", NOW)
    with serving(make_endpoint(settings, [])) as base:
        zh_page = httpx.get(f"{base}/u/{zh_token}")
        en_page = httpx.get(f"{base}/u/{en_token}")
        assert suppressions(settings) == {}  # looking at the page changes nothing
        zh_done = _press(base, zh_page)
        assert suppressions(settings) == {ZH: "unsubscribed"}
        back = _press(base, zh_done)
    assert zh_page.status_code == en_page.status_code == zh_done.status_code == 200
    assert (
        '<html lang="zh">' in zh_page.text and "<button type=submit>退订</button>" in zh_page.text
    )
    assert ZH in zh_page.text and "不再向" in zh_page.text
    assert '<html lang="en">' in en_page.text and ">Unsubscribe</button>" in en_page.text
    assert "您已退订" in zh_done.text and "重新订阅" in zh_done.text
    for page in (zh_page.text, en_page.text, zh_done.text):  # no JavaScript, nothing fetched
        assert "<script" not in page and "src=" not in page and "http" not in page
    assert back.status_code == 200 and "您已重新订阅" in back.text
    assert suppressions(settings) == {}


def test_get_and_head_of_the_footer_link_leave_the_contact_subscribed(settings: Settings) -> None:
    """Link scanners GET (or HEAD) every link of every message: only a POST unsubscribes."""
    token = make_token(EN, "spring", NOW)
    with serving(make_endpoint(settings, [])) as base:
        for url in (f"{base}/u/{token}", f"{base}/unsubscribe?t={token}"):
            assert httpx.head(url).status_code == 200
            assert httpx.get(url).status_code == 200
            assert httpx.get(url, headers={"Purpose": "prefetch"}).status_code == 200
        assert suppressions(settings) == {}
        one_click = httpx.post(f"{base}/u/{token}", content=b"List-Unsubscribe=One-Click",
                               headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
        assert one_click.status_code == 200 and one_click.text == "unsubscribed"
    assert suppressions(settings) == {EN: "unsubscribed"}


def test_mailer_toml_words_the_page_per_language(settings: Settings) -> None:
    """[unsubscribe.page.<tag>] adds a language (unset keys stay English) or rewords one;
    the texts are plain text, escaped; the contact's locale falls back zh-TW -> zh."""
    from dataclasses import replace

    ja, tw = "ja.reader@inbox.test", "tw.reader@inbox.test"
    conn = connect(settings.db_path)
    for email, locale in ((ja, "ja-JP"), (tw, "zh-TW")):
        conn.execute(
            "INSERT INTO contacts (email, locale, created_at, updated_at) "
            "VALUES (?, ?, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')",
            (email, locale),
        )
    conn.close()
    pages = {"ja": {"title": "配信停止", "done": "{sender} <配信> を停止しました。",
                    "ask_button": "配信停止する"},
             "zh": {"title": "退订成功"}}  # fmt: skip
    custom = replace(settings, unsubscribe_pages=pages)
    with serving(make_endpoint(custom, [])) as base:
        ja_ask = httpx.get(f"{base}/u/{make_token(ja, 'spring', NOW)}")
        ja_page = _press(base, ja_ask).text
        tw_page = _press(base, httpx.get(f"{base}/u/{make_token(tw, 'spring', NOW)}")).text
    assert '<html lang="ja">' in ja_ask.text and ">配信停止する</button>" in ja_ask.text
    assert '<html lang="ja">' in ja_page and "<h1>配信停止</h1>" in ja_page
    assert "&lt;配信&gt; を停止しました" in ja_page  # escaped, sender filled in
    assert "Resubscribe" in ja_page  # a key the table does not give stays English
    assert '<html lang="zh">' in tw_page and "<h1>退订成功</h1>" in tw_page
    assert "重新订阅" in tw_page  # the built-in Chinese for the rest


def test_the_default_url_form_works_too(settings: Settings) -> None:
    """mailer.toml's default is https://…/unsubscribe?t={{ token }}; both forms are served."""
    token = make_token(EN, "spring", NOW)
    log: list[str] = []
    with serving(make_endpoint(settings, log)) as base:
        page = httpx.get(f"{base}/unsubscribe", params={"t": token})
        assert suppressions(settings) == {}
        done = _press(base, page)
        assert suppressions(settings) == {EN: "unsubscribed"}
        action = re.search(r'<form method=post action="([^"]+)"', done.text)
        assert action is not None and action.group(1).startswith("/unsubscribe/resubscribe?t=")
        _press(base, done)
        assert suppressions(settings) == {}
        assert httpx.post(f"{base}/unsubscribe?t={token}").status_code == 200
    assert suppressions(settings) == {EN: "unsubscribed"}
    assert not any(token in line for line in log)


def test_resubscribe_never_lifts_a_bounce_or_a_complaint(settings: Settings) -> None:
    from mailer.feedback.events import Event, Kind, apply_event

    conn = connect(settings.db_path)
    moment = datetime.fromtimestamp(NOW, UTC)
    apply_event(conn, Event(Kind.UNSUBSCRIBE, ZH, "one-click"), settings.feedback, moment)
    apply_event(conn, Event(Kind.COMPLAINT, ZH, "ses", event_id="c1"), settings.feedback, moment)
    conn.close()
    with serving(make_endpoint(settings, [])) as base:
        back = httpx.post(f"{base}/u/{make_token(ZH, 'spring', NOW)}/resubscribe")
    assert "仍不在发送名单中" in back.text
    assert suppressions(settings) == {ZH: "unsubscribed"}


def test_oversized_bodies_get_413_and_floods_get_429(settings: Settings) -> None:
    endpoint = make_endpoint(settings, [])
    endpoint.limiter = Limiter(rate=1.0, burst=3.0, clock=lambda: 0.0)  # time stands still
    token = make_token(ZH, "spring", NOW)
    with serving(endpoint) as base:
        big = httpx.post(f"{base}/u/{token}", content=b"x" * (MAX_BODY + 1))
        codes = [httpx.get(f"{base}/healthz").status_code for _ in range(4)]
    assert big.status_code == 413
    assert codes == [200, 200, 429, 429]  # 3 tokens: the 413 took one
    assert suppressions(settings) == {}


def test_limiter_refills_with_its_clock() -> None:
    now = [0.0]
    limiter = Limiter(rate=2.0, burst=2.0, clock=lambda: now[0])
    assert [limiter.allow("a") for _ in range(3)] == [True, True, False]
    assert limiter.allow("b")  # per client
    now[0] = 0.5  # one token back at 2 a second
    assert [limiter.allow("a") for _ in range(2)] == [True, False]


def test_mailer_serve_refuses_to_start_without_a_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.workspace import invoke, make_workspace

    make_workspace(tmp_path)
    monkeypatch.delenv(KEY_ENV)
    result = invoke(tmp_path, "serve", "--port", "8025")
    assert result.exit_code == 1
    assert "MAILER_UNSUBSCRIBE_KEY is not set" in result.output
    assert "openssl rand -hex 32" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("command", [["serve"], ["bounces", "serve"]])
def test_a_port_in_use_is_a_clear_error(
    tmp_path: Path, command: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    from tests.workspace import invoke, make_workspace

    make_workspace(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = invoke(tmp_path, *command, "--port", port)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"cannot listen on 127.0.0.1:{port}" in result.output
    assert "another program uses this port" in result.output
