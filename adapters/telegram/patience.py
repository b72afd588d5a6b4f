"""Waiting out Telegram's passing failures, in one place: a request middleware on the bot's session.

A message the user is owed (sendMessage, editMessageText, sendPhoto, deleteMessage) is sent again after flood
control (429, waiting the `retry_after` Telegram names, however long), a 5xx, a timeout, a refused connection or a
proxy's HTML error page, with a growing pause, until Telegram accepts it or answers with an error that will not
pass (403 blocked, 400 chat not found, ...). The bot's own stop ends the waiting: what was not delivered stays
owed in the log and is delivered at the next start.

Best-effort calls (streaming previews, typing indicators) are made inside `best_effort()`: one try, no waiting.
A request that reached Telegram and whose answer was lost is sent again: that one message can be shown twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import structlog
from aiogram import Bot
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.exceptions import ClientDecodeError, TelegramNetworkError, TelegramRetryAfter, TelegramServerError
from aiogram.methods import DeleteMessage, EditMessageText, SendMessage, SendPhoto, TelegramMethod
from aiogram.methods.base import Response, TelegramType

log = structlog.get_logger(__name__)

PAUSE_MAX = 30.0
"""Longest pause between two tries after a 5xx, a timeout or a refused connection."""
OWED = (SendMessage, EditMessageText, SendPhoto, DeleteMessage)
"""The methods that carry what a user is owed."""

_best_effort: ContextVar[bool] = ContextVar("telegram_best_effort", default=False)


@contextmanager
def best_effort() -> Iterator[None]:
    """Requests made inside are tried once: their failure costs only a preview or an indicator."""
    token = _best_effort.set(True)
    try:
        yield
    finally:
        _best_effort.reset(token)


class Patience(BaseRequestMiddleware):
    """Retries owed requests through passing failures (see the module's docstring)."""

    def __init__(self, pause_max: float = PAUSE_MAX) -> None:
        self._pause_max = pause_max

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        owed = type(method) in OWED
        if not owed or _best_effort.get():
            return await make_request(bot, method)
        failures = 0
        while True:
            try:
                return await make_request(bot, method)
            except TelegramRetryAfter as flood:
                pause: float = flood.retry_after
                reason: Any = "flood_control"
            except (TelegramServerError, TelegramNetworkError, ClientDecodeError) as error:
                failures += 1
                pause = min(self._pause_max, 0.5 * 2.0**failures)
                reason = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
            log.warning("telegram_retry", method=method.__api_method__, reason=reason, retry_in=pause)
            await asyncio.sleep(pause)
