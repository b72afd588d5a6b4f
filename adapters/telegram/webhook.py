"""Webhook mode: an aiohttp server that checks Telegram's secret-token header and serves health and metrics.

An update is answered 200 only once the inbox holds it (see intake.py), so Telegram sends it again if this worker
dies first or the store cannot take it (500); 401 without the right secret, and nothing is recorded then.
"""

from __future__ import annotations

import secrets
from typing import Any

import structlog
from aiohttp import web

from adapters.metrics.http import add_metrics_route
from adapters.metrics.registry import Metrics
from adapters.telegram.intake import Intake
from domain.ports import StoreError

log = structlog.get_logger(__name__)
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


def build_webhook_app(intake: Intake, path: str, secret: str, metrics: Metrics | None = None) -> web.Application:
    """The aiohttp application: POST `path` for updates, GET /healthz for health, GET /metrics for Prometheus."""

    async def receive(request: web.Request) -> web.Response:
        if not secrets.compare_digest(request.headers.get(SECRET_HEADER, ""), secret):
            log.warning("webhook_unauthorized", remote=request.remote)
            return web.json_response({"ok": False, "error": "unauthorized"}, status=401)
        try:
            payload: Any = await request.json()
        except ValueError:
            return web.json_response({"ok": False, "error": "not a Telegram update"}, status=400)
        if not isinstance(payload, dict) or not isinstance(payload.get("update_id"), int):
            return web.json_response({"ok": False, "error": "not a Telegram update"}, status=400)
        try:
            await intake.take([payload])
        except StoreError as error:
            log.error("inbox_unavailable", error=str(error))
            return web.json_response({"ok": False, "error": "store unavailable"}, status=500)
        return web.json_response({"ok": True})

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "in_flight": intake.in_flight})

    app = web.Application()
    app.router.add_post(path, receive)
    app.router.add_get("/healthz", health)
    if metrics is not None:
        add_metrics_route(app, metrics)
    return app
