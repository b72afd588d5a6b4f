"""getUpdates (long polling) and the webhook methods."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

from yarl import URL

from .errors import SET_WEBHOOK_CONFLICT, WEBHOOK_CONFLICT, bad_request, conflict, too_many_requests
from .params import Params
from .registry import Reply, api_method
from .state import BotState
from .updates import DEFAULT_ALLOWED_UPDATES

_SECRET_TOKEN = re.compile(r"^[A-Za-z0-9_-]*$")
_WEBHOOK_PORTS = {80, 88, 443, 8443}


def allowed_updates(params: Params) -> list[str] | None:
    """The ``allowed_updates`` parameter, if given."""
    value = params.json("allowed_updates", "can't parse allowed_updates JSON object")
    if value is None:
        return None
    if not isinstance(value, list):
        raise bad_request('field "allowed_updates" must be an Array')
    return [str(item) for item in value]


def _apply_poll_quirks(state: BotState, offset: int, limit: int, timeout: int) -> tuple[int, int]:
    """The real server's anti-busy-loop rules for repeated polls with the same offset."""
    now = time.monotonic()
    previous = state.previous_poll
    state.previous_poll = (offset, now)
    if not state.config.api_quirks or previous is None or previous[0] != offset:
        return limit, timeout
    if timeout < 3 and now < previous[1] + 3.0:
        timeout = 3
    if now < previous[1] + 0.5:
        limit = 1
    return limit, timeout


@api_method("getUpdates")
async def get_updates(state: BotState, params: Params) -> Any:
    """Long polling with confirmation by ``offset``."""
    if state.webhook.active:
        raise conflict(WEBHOOK_CONFLICT)
    offset = params.integer("offset")
    limit = params.integer("limit", 100, low=1, high=100)
    timeout = params.integer("timeout", 0, low=0, high=state.config.long_poll_max_timeout)
    state.queue.set_allowed(allowed_updates(params))
    limit, timeout = _apply_poll_quirks(state, offset, limit, timeout)
    queue = state.queue
    queue.confirm(offset)
    if not queue.pending and timeout > 0:
        poll = queue.start_long_poll()
        try:
            woke = await poll.wait(timeout)
        finally:
            queue.finish_long_poll(poll)
        if woke:
            await asyncio.sleep(state.config.long_poll_batch_delay)
    batch = [dict(update) for update in queue.take(limit)]
    state.notify()
    return batch


def _check_webhook_url(state: BotState, url: str) -> None:
    try:
        parsed = URL(url)
    except ValueError:
        raise bad_request("invalid webhook URL specified") from None
    if parsed.scheme not in {"http", "https"} or not parsed.host:
        raise bad_request("invalid webhook URL specified")
    if state.config.strict_webhook_url:
        if parsed.scheme != "https":
            raise bad_request("bad webhook: HTTPS url must be provided for webhook")
        if parsed.port not in _WEBHOOK_PORTS:
            raise bad_request("bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443")


def _check_secret(secret: str) -> None:
    if len(secret) > 256:
        raise bad_request("secret token is too long")
    if not _SECRET_TOKEN.match(secret):
        raise bad_request("secret token contains unallowed characters")


def _throttle_set_webhook(state: BotState) -> None:
    """The real server accepts one setWebhook with a URL per second."""
    now = time.monotonic()
    if state.config.api_quirks and now < state.next_webhook_set_time:
        raise too_many_requests(1)
    state.next_webhook_set_time = now + 1.0


def _set_webhook(state: BotState, params: Params) -> Reply:
    """Validate and store a webhook; ends a waiting long poll like the real server."""
    _throttle_set_webhook(state)
    url = params.text("url").strip()
    secret = params.text("secret_token")
    max_connections = params.integer("max_connections", 40, low=1, high=100)
    _check_webhook_url(state, url)
    _check_secret(secret)
    wanted_updates = allowed_updates(params)
    drop = params.flag("drop_pending_updates")
    hook = state.webhook
    if (url, secret, max_connections) == (hook.url, hook.secret_token, hook.max_connections) and not drop:
        state.queue.set_allowed(wanted_updates)
        hook.allowed_updates = state.queue.allowed
        return Reply(True, "Webhook is already set")
    state.queue.abort_long_poll(SET_WEBHOOK_CONFLICT)
    if drop:
        state.queue.clear()
    state.queue.set_allowed(wanted_updates)
    hook.url, hook.secret_token, hook.max_connections = url, secret, max_connections
    hook.allowed_updates = state.queue.allowed
    hook.last_error_date = hook.last_error_message = None
    return Reply(True, "Webhook was set")


def _delete_webhook(state: BotState, params: Params) -> Reply:
    """Forget the webhook (and, on request, the pending updates)."""
    if params.flag("drop_pending_updates"):
        state.queue.clear()
    if not state.webhook.active:
        return Reply(True, "Webhook is already deleted")
    state.webhook.url = ""
    state.webhook.secret_token = ""
    state.webhook.last_error_date = state.webhook.last_error_message = None
    return Reply(True, "Webhook was deleted")


@api_method("setWebhook")
async def set_webhook(state: BotState, params: Params) -> Any:
    """Set (or, with an empty ``url``, delete) the webhook."""
    reply = _set_webhook(state, params) if params.text("url").strip() else _delete_webhook(state, params)
    state.notify()
    return reply


@api_method("deleteWebhook")
async def delete_webhook(state: BotState, params: Params) -> Any:
    """Remove the webhook, optionally dropping pending updates."""
    reply = _delete_webhook(state, params)
    state.notify()
    return reply


@api_method("getWebhookInfo")
async def get_webhook_info(state: BotState, params: Params) -> Any:
    """``WebhookInfo`` as the real server reports it."""
    hook = state.webhook
    info: dict[str, Any] = {
        "url": hook.url,
        "has_custom_certificate": False,
        "pending_update_count": len(state.queue.pending),
    }
    if hook.active:
        info["max_connections"] = hook.max_connections
        info["ip_address"] = hook.ip_address
        if hook.allowed_updates != DEFAULT_ALLOWED_UPDATES:
            info["allowed_updates"] = sorted(hook.allowed_updates)
    if hook.last_error_date is not None:
        info["last_error_date"] = hook.last_error_date
        info["last_error_message"] = hook.last_error_message
    return info
