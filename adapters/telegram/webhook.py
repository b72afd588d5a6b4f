"""Webhook mode: an aiohttp server that checks Telegram's secret-token header and serves a health endpoint.

An update is answered 200 only once it is admitted (recorded), so Telegram re-sends it if this worker dies first;
401 without the right secret, and nothing is recorded then.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import structlog
from aiogram import Bot, Dispatcher
from aiogram.types import Update
from aiohttp import web
from pydantic import ValidationError

from adapters.telegram.middlewares import Admission
from adapters.telegram.polling import ADMISSION_TIMEOUT

log = structlog.get_logger(__name__)
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


def build_webhook_app(bot: Bot, dispatcher: Dispatcher, path: str, secret: str) -> web.Application:
    """The aiohttp application: POST `path` for updates, GET /healthz for health."""
    tasks: set[asyncio.Task[None]] = set()

    async def receive(request: web.Request) -> web.Response:
        if not secrets.compare_digest(request.headers.get(SECRET_HEADER, ""), secret):
            log.warning("webhook_unauthorized", remote=request.remote)
            return web.json_response({"ok": False, "error": "unauthorized"}, status=401)
        try:
            payload: Any = await request.json()
            update = Update.model_validate(payload, context={"bot": bot})
        except (ValueError, ValidationError):
            return web.json_response({"ok": False, "error": "not a Telegram update"}, status=400)
        admitted: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def admit() -> None:
            if not admitted.done():
                admitted.set_result(None)

        async def handle() -> None:
            try:
                await dispatcher.feed_update(bot, update, admission=Admission(admit))
            except Exception:
                log.exception("update_crashed", update_id=update.update_id)
            finally:
                admit()

        task = asyncio.create_task(handle())
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        try:
            await asyncio.wait_for(asyncio.shield(admitted), timeout=ADMISSION_TIMEOUT)
        except TimeoutError:
            log.warning("admission_slow", update_id=update.update_id)
        return web.json_response({"ok": True})

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "in_flight": len(tasks)})

    app = web.Application()
    app.router.add_post(path, receive)
    app.router.add_get("/healthz", health)
    app["tasks"] = tasks
    return app
