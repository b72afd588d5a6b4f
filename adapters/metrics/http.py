"""Serving the metrics: the `/metrics` route (on the webhook server, or on a server of its own in polling mode)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from aiohttp import web
from prometheus_client.aiohttp import make_aiohttp_handler

from adapters.metrics.registry import Metrics
from adapters.settings import ConfigError

log = structlog.get_logger(__name__)
PATH = "/metrics"


def add_metrics_route(app: web.Application, metrics: Metrics) -> None:
    """GET /metrics on `app`: the registry in Prometheus's text format (or OpenMetrics, if the scraper asks)."""
    app.router.add_get(PATH, make_aiohttp_handler(metrics.registry))


@asynccontextmanager
async def serving_metrics(metrics: Metrics, host: str, port: int) -> AsyncIterator[None]:
    """A server of GET /metrics on host:port while the block runs; ConfigError when it cannot listen there."""
    app = web.Application()
    add_metrics_route(app, metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as error:
        await runner.cleanup()
        raise ConfigError(f"cannot listen on {host}:{port} (CONVO_METRICS_LISTEN): {error.strerror}") from None
    log.info("metrics_listening", host=host, port=port, path=PATH)
    try:
        yield
    finally:
        await runner.cleanup()
