"""Pushing updates to the bot's webhook the way Telegram does.

Each update is POSTed as JSON with the ``X-Telegram-Bot-Api-Secret-Token``
header (when a secret was set).  A 2xx answer confirms the update; anything
else is recorded for ``getWebhookInfo`` (``last_error_message``) and retried
later, in order.  A 2xx answer whose JSON body names a ``method`` is executed
as a Bot API call, like the real server does for webhook replies.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from .state import BotState

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"

MethodRunner = Callable[[str, dict[str, str]], Awaitable[Any]]


class WebhookOutcome:
    """Status and body of one webhook POST (status 0 when the connection failed)."""

    def __init__(self, status: int, body: str = "", error: str | None = None) -> None:
        self.status = status
        self.body = body
        self.error = error

    @property
    def ok(self) -> bool:
        """True for a 2xx answer."""
        return 200 <= self.status < 300


async def post_update(
    session: aiohttp.ClientSession, url: str, update: dict[str, Any], secret: str | None, seconds: float
) -> WebhookOutcome:
    """POST one update; never raises for HTTP or connection problems."""
    headers = {"Content-Type": "application/json"}
    if secret:
        headers[SECRET_HEADER] = secret
    try:
        async with session.post(
            url, data=json.dumps(update), headers=headers, timeout=aiohttp.ClientTimeout(total=seconds)
        ) as response:
            body = await response.text()
            if 200 <= response.status < 300:
                return WebhookOutcome(response.status, body)
            reason = f"Wrong response from the webhook: {response.status} {response.reason or ''}".strip()
            return WebhookOutcome(response.status, body, reason)
    except TimeoutError:
        return WebhookOutcome(0, error="Read timeout expired")
    except aiohttp.ClientConnectorError:
        return WebhookOutcome(0, error="Connection refused")
    except aiohttp.ClientError as exc:
        return WebhookOutcome(0, error=f"Connection error: {exc}")


def reply_method(body: str) -> tuple[str, dict[str, str]] | None:
    """A Bot API call embedded in a webhook answer (``{"method": ..., ...}``)."""
    try:
        payload = json.loads(body) if body.strip() else None
    except ValueError:
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("method"), str):
        return None
    params = {
        key: value if isinstance(value, str) else json.dumps(value)
        for key, value in payload.items()
        if key != "method" and value is not None
    }
    return payload["method"], params


class WebhookWorker:
    """Background task delivering pending updates while a webhook is set."""

    def __init__(self, state: BotState, session: aiohttp.ClientSession, run_method: MethodRunner) -> None:
        self.state = state
        self.session = session
        self.run_method = run_method
        self._task: asyncio.Task[None] | None = None

    def sync(self) -> None:
        """Start or stop according to ``state.webhook`` and ``auto_webhook``."""
        wanted = self.state.webhook.active and self.state.config.auto_webhook
        if wanted and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())
        elif not wanted and self._task is not None:
            self._task.cancel()
            self._task = None

    async def stop(self) -> None:
        """Cancel the task and wait for it."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def deliver(self, update: dict[str, Any], secret: str | None) -> WebhookOutcome:
        """POST ``update`` to the current webhook and account for the outcome."""
        hook = self.state.webhook
        outcome = await post_update(self.session, hook.url, update, secret, self.state.config.webhook_timeout)
        hook.deliveries += 1
        if outcome.ok:
            embedded = reply_method(outcome.body)
            if embedded is not None:
                await self.run_method(*embedded)
        else:
            hook.last_error_date = int(time.time())
            hook.last_error_message = outcome.error
        self.state.notify()
        return outcome

    async def _run(self) -> None:
        state = self.state
        while state.webhook.active:
            if not await state.queue.wait_for_pending(seconds=0.5):
                continue
            update = state.queue.pending[0]
            outcome = await self.deliver(update, state.webhook.secret_token or None)
            if outcome.ok:
                state.queue.remove(update["update_id"])
                state.notify()
            else:
                await asyncio.sleep(state.config.webhook_retry_delay)
