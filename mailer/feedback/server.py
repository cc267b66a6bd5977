"""``mailer serve``: the public endpoint for unsubscribes and the relays' event webhooks.

An ASGI app (Starlette), run by uvicorn behind the user's reverse proxy:

* ``POST /u/<token>`` — RFC 8058 one-click (body ``List-Unsubscribe=One-Click``):
  the signed token (``core.tokens``) names the address; it is suppressed at
  once. 200 for every well-formed request, so the answer never tells whether an
  address exists. The same POST from the page's button answers with the page.
* ``GET /u/<token>`` (and ``HEAD``) — the link in the email's footer: shows a
  page (Chinese or English, by the contact's locale) with one "Unsubscribe"
  button and changes nothing. Corporate link scanners and anti-spam fetchers
  open every link of every message, and browsers prefetch: only a POST, the
  button's or the one-click one, unsubscribes. Then the page offers a
  "resubscribe" button (``POST /u/<token>/resubscribe``). Plain HTML forms: no
  JavaScript, no third-party resource.
* ``POST /hooks/<provider>`` — ``generic``, ``mailgun``, ``postmark``, ``sendgrid``,
  ``ses`` (``webhooks``): signature checked, events applied once.
* ``GET /c/<token>`` — a tracked link (``[tracking] clicks``): the click is
  counted and answered with a redirect to the link the token signs; a token
  that does not verify gets 404 and no redirect.
* ``GET /healthz``.

Every request body is capped (``MAX_BODY``: 413 past it), every client is
rate-limited (429; X-Forwarded-For counts only from ``[serve] trusted_proxies``),
and the access log (JSON lines on stderr) has no personal
data: tokens are written as ``<token>``, and no address or IP is logged.
"""

from __future__ import annotations

import html
import json
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Route

from mailer.audience.database import Connection
from mailer.audience.store import connect_store
from mailer.core.languages import for_locale
from mailer.core.settings import Settings
from mailer.core.tokens import read_link_token, read_token
from mailer.feedback.events import Event, Kind, apply_event, record_click
from mailer.feedback.guard import MAX_BODY, Guard, Limiter
from mailer.feedback.tokens_seen import forget_tokens, remember_tokens
from mailer.feedback.webhooks import READERS, Fetch, Refused
from mailer.feedback.webhooks import Request as HookRequest

__all__ = ["MAX_BODY", "Endpoint", "Guard", "Limiter", "create_app"]

_PAGES = {
    "en": {
        "title": "Unsubscribed",
        "done": "You are unsubscribed from {sender}.",
        "no_more": "You will get no more marketing email at {email}.",
        "mistake": "Did you unsubscribe by mistake?",
        "button": "Resubscribe",
        "back_title": "Welcome back",
        "back": "You are subscribed to {sender} again.",
        "kept": "This address stays off the list (it bounced or reported spam).",
        "bad": "This unsubscribe link is not valid or has expired. Reply to any of our "
        "emails and we will take you off the list.",
        "ask_title": "Unsubscribe",
        "ask": "Stop marketing email from {sender} to {email}?",
        "ask_button": "Unsubscribe",
    },
    "zh": {
        "title": "已退订",
        "done": "您已退订{sender}的邮件。",
        "no_more": "我们不会再向 {email} 发送营销邮件。",
        "mistake": "误点了退订？",
        "button": "重新订阅",
        "back_title": "欢迎回来",
        "back": "您已重新订阅{sender}的邮件。",
        "kept": "该地址仍不在发送名单中（曾退信或投诉）。",
        "bad": "该退订链接无效或已过期。回复我们的任意一封邮件，我们会为您退订。",
        "ask_title": "退订",
        "ask": "不再向 {email} 发送{sender}的营销邮件？",
        "ask_button": "退订",
    },
}


def _token(request: Request) -> str:
    """The token from ``/u/<token>`` or from ``/unsubscribe?t=<token>`` (the default URL form)."""
    return str(request.path_params.get("token") or request.query_params.get("t", ""))


def _page(lang: str, title: str, body: str) -> HTMLResponse:
    """A small page; ``title`` and ``body`` are HTML already (their texts escaped)."""
    document = (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title><style>"
        "body{font:17px/1.5 system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;"
        "color:#222}h1{font-size:1.5rem}button{font:inherit;padding:.6rem 1.2rem;"
        "border:1px solid #1565c0;background:#1565c0;color:#fff;border-radius:4px}"
        f"</style></head><body>{body}</body></html>"
    )
    return HTMLResponse(document)


@dataclass
class Endpoint:
    """The app's state: settings, clock, the certificate fetcher for SNS, the limiter."""

    settings: Settings
    now: Callable[[], float] = time.time
    fetch: Fetch | None = None
    limiter: Limiter = field(default_factory=Limiter)
    log: Callable[[str], None] = field(default=lambda line: print(line, file=sys.stderr))
    _local: threading.local = field(default_factory=threading.local, repr=False)

    def _db(self) -> Connection:
        """This thread's database connection, opened on its first request and kept:
        opening one checks the schema, which is not work to repeat per click."""
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = connect_store(self.settings)
        return conn

    def _moment(self) -> datetime:
        return datetime.fromtimestamp(self.now(), UTC)

    def _apply(self, events: list[Event]) -> tuple[int, int]:
        conn, moment = self._db(), self._moment()
        results = [apply_event(conn, e, self.settings.feedback, moment) for e in events]
        new = sum(r.new for r in results)
        return new, len(results) - new

    def _words(self, email: str, written: str = "") -> tuple[str, dict[str, str]]:
        """The page's language and its wording (built in, ``[unsubscribe.page.<tag>]`` on
        top): the email's own language (``written``, from the token) when the page has it,
        else the contact's ``locale`` (zh-TW -> zh), else English."""
        custom = self.settings.unsubscribe_pages
        known = {tag: tag for tag in (*_PAGES, *custom)}
        lang = for_locale(known, written) if written else None
        if lang is None:
            row = (
                self._db()
                .execute("SELECT locale FROM contacts WHERE email = ?", (email,))
                .fetchone()
            )
            lang = for_locale(known, str(row[0])) if row and row[0] else None
        lang = lang or "en"
        words = {**_PAGES["en"], **_PAGES.get(lang, {}), **custom.get(lang, {})}
        # The texts are plain text (mailer.toml's may contain < or &); the filled-in
        # sender and address are escaped by the caller.
        return lang, {key: html.escape(text) for key, text in words.items()}

    def one_click(self, request: Request) -> Response:
        """A POST: RFC 8058's one-click (200 whatever the address), or the page's button."""
        found = read_token(_token(request), self.now())
        if found is None:
            if _from_page(request):
                return self.page(request)  # says the link is bad
            return PlainTextResponse("invalid or expired link", status_code=400)
        source = "unsubscribe page" if _from_page(request) else "one-click"
        self._apply([Event(Kind.UNSUBSCRIBE, found.email, source, found.campaign)])
        if _from_page(request):
            return self._done(request, found.email, found.lang)
        return PlainTextResponse("unsubscribed")

    def page(self, request: Request) -> Response:
        """The footer link (GET or HEAD): a page with one button that unsubscribes.

        Nothing changes here: scanners and prefetchers GET every link.
        """
        token = _token(request)
        found = read_token(token, self.now())
        if found is None:
            text = _PAGES["en"]["bad"] + "<br>" + _PAGES["zh"]["bad"]
            return _page("en", "Invalid link", f"<p>{html.escape(text)}</p>")
        if self._unsubscribed(found.email):
            return self._done(request, found.email, found.lang)
        lang, words = self._words(found.email, found.lang)
        sender = html.escape(self.settings.sender.name or self.settings.sender.email)
        body = (
            f"<h1>{words['ask_title']}</h1>"
            f"<p>{words['ask'].format(sender=sender, email=html.escape(found.email))}</p>"
            f'<form method=post action="{html.escape(_own_path(request, token))}">'
            "<input type=hidden name=confirm value=1>"
            f"<button type=submit>{words['ask_button']}</button></form>"
        )
        return _page(lang, words["ask_title"], body)

    def _unsubscribed(self, email: str) -> bool:
        row = self._db().execute("SELECT 1 FROM suppressions WHERE email = ?", (email,)).fetchone()
        return row is not None

    def _done(self, request: Request, email: str, written: str = "") -> Response:
        """The page after unsubscribing: done, with a resubscribe button."""
        token = _token(request)
        lang, words = self._words(email, written)
        sender = html.escape(self.settings.sender.name or self.settings.sender.email)
        body = (
            f"<h1>{words['title']}</h1><p>{words['done'].format(sender=sender)}</p>"
            f"<p>{words['no_more'].format(email=html.escape(email))}</p>"
            f'<form method=post action="{html.escape(_resubscribe_path(request, token))}">'
            f"<p>{words['mistake']}</p><button type=submit>{words['button']}</button></form>"
        )
        return _page(lang, words["title"], body)

    def resubscribe(self, request: Request) -> Response:
        """Lift an unsubscribe (never a bounce or complaint suppression)."""
        found = read_token(_token(request), self.now())
        if found is None:
            return PlainTextResponse("invalid or expired link", status_code=400)
        conn = self._db()
        event = Event(Kind.RESUBSCRIBE, found.email, "unsubscribe page", found.campaign,
                      event_id=f"resubscribe:{found.email}:{self.now()}")  # fmt: skip
        applied = apply_event(conn, event, self.settings.feedback, self._moment())
        still = conn.execute(
            "SELECT 1 FROM suppressions WHERE email = ?", (found.email,)
        ).fetchone()
        lang, words = self._words(found.email, found.lang)
        sender = html.escape(self.settings.sender.name or self.settings.sender.email)
        text = (
            words["kept"] if still and not applied.lifted else words["back"].format(sender=sender)
        )
        return _page(lang, words["back_title"], f"<h1>{words['back_title']}</h1><p>{text}</p>")

    def click(self, request: Request) -> Response:
        """A tracked link: count the click, redirect to the link the token signs (else 404)."""
        found = read_link_token(request.path_params["token"])
        if found is None:
            return PlainTextResponse("unknown link", status_code=404)
        record_click(self._db(), found, self._moment())
        return RedirectResponse(found.url, status_code=302)

    async def hook(self, request: Request) -> Response:
        """A relay's event post: verify, apply once, say how many were new."""
        from starlette.concurrency import run_in_threadpool

        provider = request.path_params["provider"]
        reader = READERS.get(provider)
        if reader is None:
            return JSONResponse({"error": "unknown provider"}, status_code=404)
        hook_request = HookRequest(
            {k.lower(): v for k, v in request.headers.items()},
            request.state.body,
            self.now(),
            fetch=self.fetch,
        )
        try:
            events = [e for e in reader(hook_request) if "@" in e.email]
        except Refused as exc:
            return JSONResponse({"error": str(exc)}, status_code=exc.status)
        except (AttributeError, TypeError, KeyError, ValueError, IndexError) as exc:
            # A body of a shape the reader did not foresee: the relay must not retry it
            # for days against a 500, and nobody needs a traceback.
            line = f"unexpected {provider} body ({type(exc).__name__})"
            return JSONResponse({"error": line}, status_code=400)
        return await run_in_threadpool(self._apply_hook, provider, hook_request.tokens, events)

    def _apply_hook(self, provider: str, tokens: list[str], events: list[Event]) -> Response:
        """Remember the request's one-time tokens, then apply its events.

        A token seen before is a replay (or the relay retrying a request we already
        applied): 406, which tells Mailgun not to retry, and nothing is applied. If
        applying fails, the tokens are forgotten again so the relay's retry works.
        """
        conn = self._db()
        moment = self._moment()
        if tokens and not remember_tokens(conn, provider, tokens, moment):
            line = "this webhook token was used before (a replay): nothing applied"
            return JSONResponse({"error": line}, status_code=406)
        try:
            new, repeats = self._apply(events) if events else (0, 0)
        except Exception as exc:
            forget_tokens(conn, provider, tokens)
            self.log(json.dumps({"error": f"could not apply a webhook: {type(exc).__name__}"}))
            return JSONResponse({"error": "cannot record this now, retry"}, status_code=503)
        return JSONResponse({"applied": new, "repeats": repeats})


def _from_page(request: Request) -> bool:
    """A POST from the page's button (a form field), not a mail client's one-click."""
    body = bytes(getattr(request.state, "body", b"") or b"")
    return b"List-Unsubscribe=One-Click" not in body and b"confirm=" in body


def _own_path(request: Request, token: str) -> str:
    """Where the page's unsubscribe button posts: the URL form the page was reached by."""
    if "token" in request.path_params:
        return f"/u/{token}"
    return f"/unsubscribe?t={token}"


def _resubscribe_path(request: Request, token: str) -> str:
    """Where the page's button posts, in the same URL form the page was reached by."""
    if "token" in request.path_params:
        return f"/u/{token}/resubscribe"
    return f"/unsubscribe/resubscribe?t={token}"


def create_app(endpoint: Endpoint) -> Guard:
    """The ASGI app: routes, inside the guard (body cap, rate limit, access log)."""
    from starlette.concurrency import run_in_threadpool

    def threaded(handler: Callable[[Request], Response]) -> Callable[[Request], Awaitable[Any]]:
        async def run(request: Request) -> Response:
            return await run_in_threadpool(handler, request)

        return run

    async def health(request: Request) -> Response:
        return PlainTextResponse("ok")

    app = Starlette(
        routes=[
            Route("/healthz", health),
            Route("/u/{token}", threaded(endpoint.one_click), methods=["POST"]),
            Route("/u/{token}", threaded(endpoint.page), methods=["GET"]),
            Route("/u/{token}/resubscribe", threaded(endpoint.resubscribe), methods=["POST"]),
            Route("/unsubscribe", threaded(endpoint.one_click), methods=["POST"]),
            Route("/unsubscribe", threaded(endpoint.page), methods=["GET"]),
            Route("/unsubscribe/resubscribe", threaded(endpoint.resubscribe), methods=["POST"]),
            Route("/hooks/{provider}", endpoint.hook, methods=["POST"]),
            Route("/c/{token}", threaded(endpoint.click), methods=["GET"]),
        ]
    )
    return Guard(app, endpoint)
