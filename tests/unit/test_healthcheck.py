"""The container's health probe (`entrypoints.healthcheck`): which URL it asks, and what it calls unhealthy."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
from aiohttp import web

from entrypoints.healthcheck import health_url, problem


@pytest.mark.parametrize(
    ("listen", "url"),
    [
        (None, "http://127.0.0.1:8080/healthz"),
        ("  ", "http://127.0.0.1:8080/healthz"),
        ("0.0.0.0:9000", "http://127.0.0.1:9000/healthz"),
        (":9001", "http://127.0.0.1:9001/healthz"),
        ("127.0.0.5:9002", "http://127.0.0.5:9002/healthz"),
        ("[::]:9003", "http://[::1]:9003/healthz"),
        ("::1:9004", "http://[::1]:9004/healthz"),
    ],
)
def test_it_asks_the_webhook_server_where_convo_webhook_listen_puts_it(listen, url):
    env = {} if listen is None else {"CONVO_WEBHOOK_LISTEN": listen}
    assert health_url(env) == url


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def serving(handler: Handler) -> AsyncIterator[str]:
    """GET /healthz answered by `handler` on a free loopback port; its URL."""
    app = web.Application()
    app.router.add_get("/healthz", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/healthz"
    finally:
        await runner.cleanup()


async def ok(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "in_flight": 0})


async def failing(request: web.Request) -> web.Response:
    return web.json_response({"ok": False}, status=503)


async def starting(request: web.Request) -> web.Response:
    return web.json_response({"status": "starting"})


async def not_json(request: web.Request) -> web.Response:
    return web.Response(text="<html>proxy error</html>")


async def test_status_ok_is_healthy():
    async with serving(ok) as url:
        assert await asyncio.to_thread(problem, url) is None


@pytest.mark.parametrize(
    ("handler", "says"),
    [(failing, "503"), (starting, "'starting'"), (not_json, "Expecting value")],
)
async def test_anything_but_status_ok_is_unhealthy_and_says_why(handler, says):
    async with serving(handler) as url:
        found = await asyncio.to_thread(problem, url)
    assert found is not None
    assert found.startswith(url)
    assert says in found


async def test_nothing_listening_is_unhealthy():
    async with serving(ok) as url:
        pass
    found = await asyncio.to_thread(problem, url, 2.0)
    assert found is not None
    assert "refused" in found.lower()
