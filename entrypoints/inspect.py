"""`convo inspect`: the log in a browser. A local aiohttp server over the configured store, read only.

It binds 127.0.0.1:8089 unless told otherwise (`--listen`). On a loopback address it needs no token, but answers
only requests addressed to a loopback name (so a web page cannot reach it through DNS rebinding) and takes a form
post only from its own pages. On any other address it refuses to start without CONVO_INSPECT_TOKEN; with a token
set, every request needs it: `Authorization: Bearer <token>`, or a session cookie that `?token=<token>` sets once.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
from collections.abc import Awaitable, Callable, Mapping
from urllib.parse import urlencode, urlsplit

import attrs
import structlog
from aiohttp import web
from aiohttp.typedefs import Middleware

from domain.ports import ChatModel, EventStore
from domain.prices import PriceTable
from entrypoints import inspect_pages as pages
from entrypoints.config import ConfigError
from service.inspection import PAGE_SIZE, TurnNotFound, timeline_page, turn_alternative
from service.replay import Folding, StreamNotFound
from service.stream_list import StreamUsage, stream_rows
from service.what_if import WhatIf, ask_again, recorded_answer

log = structlog.get_logger(__name__)

DEFAULT_LISTEN = "127.0.0.1:8089"
TOKEN_SETTING = "CONVO_INSPECT_TOKEN"
SESSION_COOKIE = "convo_inspect_session"
MIN_TOKEN_CHARS = 16
"""Shortest CONVO_INSPECT_TOKEN taken: the token guards every user's conversation."""
MAX_DIGITS = 18
"""Longest number a query parameter may be (a version or an offset)."""
LIST_PAGE = 50
"""Streams per page of the list."""
_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@attrs.frozen
class Listen:
    """Where the server binds."""

    host: str
    port: int

    @property
    def loopback(self) -> bool:
        """Whether only this machine can reach the address."""
        return is_loopback(self.host)


def parse_listen(text: str) -> Listen:
    """`HOST:PORT` (`[::1]:8089` for IPv6); ConfigError for anything else."""
    host, _, port = text.strip().rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"--listen wants HOST:PORT, e.g. {DEFAULT_LISTEN}; got {text!r}")
    return Listen(host, int(port))


def is_loopback(host: str) -> bool:
    """Whether a host name or address is this machine's loopback."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(listen: Listen, token: str | None) -> None:
    """Refuse a non-loopback address without a token: the log holds every user's conversation."""
    if not listen.loopback and not token:
        raise ConfigError(
            f"convo inspect will not serve the log on {listen.host}, which is not a loopback address, "
            f"without {TOKEN_SETTING}: set it to a long random secret"
        )
    if token and len(token) < MIN_TOKEN_CHARS:
        raise ConfigError(f"{TOKEN_SETTING} is too short to guard the log: use at least {MIN_TOKEN_CHARS} characters")


@attrs.frozen
class Inspector:
    """What the pages read: the store, how prompts fold, prices, and how to reach the model for "ask again"."""

    store: EventStore
    folding: Folding
    prices: PriceTable
    usage: StreamUsage
    persona_of: Callable[[str], str]
    """A preset's prompt by name, or the text itself as a system prompt."""
    chat: Callable[[], ChatModel]
    """The configured chat model (ConfigError when it is not configured); built on first use."""


def build_app(inspector: Inspector, token: str | None) -> web.Application:
    """The web application: the stream list, timelines, "ask again", with the guards the address calls for."""
    app = web.Application(middlewares=[_headers, _guard(token)])
    app["inspector"] = inspector
    app.router.add_get("/", _stream_list)
    app.router.add_get("/style.css", _style)
    app.router.add_get("/healthz", _health)
    app.router.add_get("/streams/{stream}", _timeline)
    app.router.add_post("/streams/{stream}/ask", _ask)
    return app


def session_value(token: str) -> str:
    """The session cookie's value: derived from the token, so the cookie never holds the token itself."""
    return hmac.new(token.encode(), b"convo inspect session", hashlib.sha256).hexdigest()


@web.middleware
async def _headers(request: web.Request, handler: _Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as error:
        response = error
    except Exception:  # a bug must not answer without the headers below (nor show a traceback)
        log.exception("inspect_page_failed", path=request.path)
        response = _page(500, "something went wrong", "the page could not be made; the inspector's log says why")
    response.headers.update(_HEADERS)
    return response


def _guard(token: str | None) -> Middleware:
    """Token, cookie, Host and Origin checks."""

    @web.middleware
    async def guard(request: web.Request, handler: _Handler) -> web.StreamResponse:
        if token:
            refused = _token_refusal(request, token)
            if refused is not None:
                return refused
        elif not is_loopback(_host_name(request.host)):
            return _page(421, "wrong address", "this inspector answers only on 127.0.0.1 or localhost")
        if request.method == "POST" and not _same_origin(request):
            return _page(403, "refused", "a form from another site cannot post here")
        return await handler(request)

    return guard


def _token_refusal(request: web.Request, token: str) -> web.StreamResponse | None:
    """None when the request carries the token (header or cookie); a redirect setting the cookie for `?token=`;
    else 401."""
    bearer = request.headers.get("Authorization", "")
    if bearer.startswith("Bearer ") and _same(bearer[7:], token):
        return None
    session = request.cookies.get(SESSION_COOKIE, "")
    if session and _same(session, session_value(token)):
        return None
    offered = request.query.get("token")
    if offered is not None and _same(offered, token):
        rest = [(key, value) for key, value in request.query.items() if key != "token"]
        path = "/" + request.raw_path.partition("?")[0].lstrip("/")  # still encoded; never `//host`, another site
        redirect = web.HTTPSeeOther(path + (f"?{urlencode(rest)}" if rest else ""))
        redirect.set_cookie(SESSION_COOKIE, session_value(token), httponly=True, samesite="Strict", path="/")
        return redirect
    hint = f"open this page once with ?token=… ({TOKEN_SETTING}), or send it as a Bearer token"
    response = _page(401, "token needed", hint)
    response.headers["WWW-Authenticate"] = 'Bearer realm="convo inspect"'
    return response


def _same(offered: str, expected: str) -> bool:
    """Whether a secret offered equals the one expected, in constant time (any characters, even unpaired ones)."""
    return hmac.compare_digest(offered.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass"))


def _host_name(host: str) -> str:
    """The name in a Host header, without its port (`[::1]:8089` -> `::1`)."""
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if host.count(":") == 1 else host


def _same_origin(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    if origin is None or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.host


def _page(status: int, title: str, text: str) -> web.Response:
    return web.Response(status=status, text=pages.message_page(title, text), content_type="text/html")


def _inspector(request: web.Request) -> Inspector:
    inspector: Inspector = request.app["inspector"]
    return inspector


async def _style(request: web.Request) -> web.Response:
    return web.Response(text=pages.STYLE, content_type="text/css")


async def _health(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def _stream_list(request: web.Request) -> web.Response:
    inspector = _inspector(request)
    query = request.query.get("q", "")
    offset = _whole(request.query, "offset", None) or 0
    rows, matched = await stream_rows(inspector.store, inspector.usage, query, offset, LIST_PAGE)
    return _html(pages.stream_list(rows, matched, query, offset, LIST_PAGE))


async def _timeline(request: web.Request) -> web.Response:
    inspector = _inspector(request)
    stream = request.match_info["stream"]
    at = _whole(request.query, "at", None, least=1)
    last = _whole(request.query, "last", None, least=1)
    try:
        page = await timeline_page(inspector.store, stream, inspector.folding, at=at, last=last, size=PAGE_SIZE)
    except StreamNotFound:
        return _page(404, "no such stream", f"the store holds no events for stream {stream!r}")
    return _html(pages.timeline(page, inspector.prices, PAGE_SIZE, highlight=at))


async def _ask(request: web.Request) -> web.Response:
    inspector = _inspector(request)
    stream = request.match_info["stream"]
    form = await request.post()
    fields = {key: str(value).strip() for key, value in form.items() if isinstance(value, str)}
    question = _whole(fields, "question", None, least=1)
    budget = _whole(fields, "budget", None, least=1)
    if question is None:
        raise web.HTTPBadRequest(text="which question? (question=VERSION)")
    persona = inspector.persona_of(fields["persona"]) if fields.get("persona") else None
    change = WhatIf(persona=persona, model=fields.get("model") or None, budget=budget)
    try:
        alternative = await turn_alternative(inspector.store, stream, inspector.folding, question, change)
        chat = inspector.chat()
    except (TurnNotFound, StreamNotFound) as missing:
        return _page(404, "no such turn", str(missing))
    except ConfigError as error:
        return _page(503, "the model is not configured", str(error))
    new = await ask_again(alternative, chat, inspector.prices)
    old = recorded_answer(alternative, inspector.prices)
    asked = (("persona", fields.get("persona")), ("model", change.model), ("budget", budget))
    described = ", ".join(f"{name} {value!r}" for name, value in asked if value)
    return _html(pages.ask_again_page(stream, alternative, old, new, described or "the recorded settings"))


def _whole(query: Mapping[str, str], name: str, default: int | None, least: int = 0) -> int | None:
    """A whole-number parameter (absent or empty: `default`); 400 for anything else."""
    text = query.get(name, "").strip()
    if not text:
        return default
    if not (text.isascii() and text.isdigit()) or len(text) > MAX_DIGITS or int(text) < least:
        raise web.HTTPBadRequest(text=f"{name} must be a whole number of {least} or more, got {text!r}")
    return int(text)


def _html(text: str) -> web.Response:
    return web.Response(text=text, content_type="text/html")


async def serve(app: web.Application, listen: Listen, started: Callable[[str], None]) -> None:
    """Serve until cancelled; `started` gets the URL once the socket is bound (port 0: the one chosen)."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, listen.host, listen.port)
        await site.start()
        port = runner.addresses[0][1] if runner.addresses else listen.port
        host = f"[{listen.host}]" if ":" in listen.host else listen.host
        started(f"http://{host}:{port}/")
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
