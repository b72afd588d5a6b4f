"""Long polling: the offset moves past an update only once the inbox holds it (see intake.py).

Telegram forgets an update when the bot asks for the next ones with a higher offset. The next getUpdates is sent
once the batch is in the inbox; if the inbox cannot be written, the same offset is asked again after a pause and
Telegram hands the same updates over. A failed poll of any kind (an HTML error page from a proxy, a 5xx, a
timeout, flood control, another poller's 409) is logged and tried again after a pause: only a revoked token ends
the loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import structlog
from aiogram import Bot
from aiogram.exceptions import (
    AiogramError,
    TelegramConflictError,
    TelegramRetryAfter,
    TelegramUnauthorizedError,
)

from adapters.telegram.intake import GetRawUpdates, Intake
from domain.ports import StoreError

log = structlog.get_logger(__name__)

PAUSE_MAX = 30.0
"""Longest pause between failed polls."""


class SafePolling:
    """A getUpdates loop feeding the intake; `stop()` ends it after the current poll."""

    def __init__(self, bot: Bot, intake: Intake, allowed_updates: Sequence[str], poll_timeout: int = 25) -> None:
        self._bot = bot
        self._intake = intake
        self._allowed = list(allowed_updates)
        self._timeout = poll_timeout
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        """Stop polling after the current request."""
        self._stopping.set()

    async def run(self) -> None:
        """Poll until stopped (or until Telegram rejects the token)."""
        offset: int | None = None
        failures = 0
        while not self._stopping.is_set():
            try:
                raw_updates = await self._poll(offset)
                await self._intake.take(raw_updates)
            except TelegramUnauthorizedError:
                raise
            except TelegramRetryAfter as flood:
                await self._pause(flood.retry_after)
                continue
            except (AiogramError, StoreError) as error:
                failures += 1
                pause = min(PAUSE_MAX, 2.0**failures)
                log.warning(_failure_event(error), error=_describe(error), retry_in=pause)
                await self._pause(pause)
                continue
            failures = 0
            ids = [raw["update_id"] for raw in raw_updates if isinstance(raw.get("update_id"), int)]
            if ids:
                offset = max(ids) + 1

    async def _poll(self, offset: int | None) -> list[dict[str, Any]]:
        request = GetRawUpdates(offset=offset, timeout=self._timeout, allowed_updates=self._allowed)
        poll = asyncio.ensure_future(self._bot(request, request_timeout=self._timeout + 15))
        stop = asyncio.ensure_future(self._stopping.wait())
        done, _ = await asyncio.wait({poll, stop}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if poll not in done:
            poll.cancel()
            return []
        return [raw for raw in poll.result() if isinstance(raw, dict)]

    async def _pause(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
        except TimeoutError:
            return


def _failure_event(error: Exception) -> str:
    if isinstance(error, TelegramConflictError):
        return "another_poller_or_webhook"
    if isinstance(error, StoreError):
        return "inbox_unavailable"
    return "get_updates_failed"


def _describe(error: Exception) -> str:
    """One line, without the body of an HTML error page."""
    return str(error).splitlines()[0][:300] if str(error) else type(error).__name__
