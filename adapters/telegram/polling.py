"""Long polling that confirms an update only once it is recorded.

Telegram forgets an update when the bot asks for the next ones with a higher offset. aiogram's own loop asks
again as soon as it has handed the batch to tasks, so an update can be confirmed before anything was stored, and a
crash then loses it. Here the next getUpdates waits until every update of the batch has been admitted: its
events are durable, it needed none, or it is queued behind an earlier update of the same chat.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import structlog
from aiogram import Bot, Dispatcher
from aiogram.exceptions import TelegramAPIError, TelegramNetworkError, TelegramRetryAfter, TelegramUnauthorizedError
from aiogram.methods import GetUpdates
from aiogram.types import Update

from adapters.telegram.middlewares import Admission

log = structlog.get_logger(__name__)

ADMISSION_TIMEOUT = 30.0
"""Longest wait for a batch's admission before polling goes on regardless (a stuck store must not stall all)."""


class SafePolling:
    """A getUpdates loop; `stop()` ends it after the current poll."""

    def __init__(
        self, bot: Bot, dispatcher: Dispatcher, allowed_updates: Sequence[str], poll_timeout: int = 25
    ) -> None:
        self._bot = bot
        self._dispatcher = dispatcher
        self._allowed = list(allowed_updates)
        self._timeout = poll_timeout
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        """Stop polling after the current request."""
        self._stopping.set()

    async def run(self) -> None:
        """Poll until stopped; then wait for handlers in flight (up to a grace period)."""
        offset: int | None = None
        failures = 0
        while not self._stopping.is_set():
            try:
                updates = await self._poll(offset)
                failures = 0
            except TelegramUnauthorizedError:
                raise
            except TelegramRetryAfter as flood:
                await self._pause(flood.retry_after)
                continue
            except (TelegramNetworkError, TelegramAPIError) as error:
                failures += 1
                log.warning("get_updates_failed", error=str(error), retry_in=min(30, 2**failures))
                await self._pause(min(30.0, 2.0**failures))
                continue
            if updates:
                await self._dispatch(updates)
                offset = updates[-1].update_id + 1

    async def _poll(self, offset: int | None) -> list[Update]:
        request = GetUpdates(offset=offset, timeout=self._timeout, allowed_updates=self._allowed)
        poll = asyncio.ensure_future(self._bot(request, request_timeout=self._timeout + 15))
        stop = asyncio.ensure_future(self._stopping.wait())
        done, _ = await asyncio.wait({poll, stop}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if poll not in done:
            poll.cancel()
            return []
        return poll.result()

    async def _dispatch(self, updates: list[Update]) -> None:
        admitted: list[asyncio.Future[None]] = []
        for update in updates:
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            task = asyncio.create_task(self._handle(update, future))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            admitted.append(future)
        _, late = await asyncio.wait(admitted, timeout=ADMISSION_TIMEOUT)
        if late:
            log.warning("admission_slow", updates=len(late))

    async def _handle(self, update: Update, future: asyncio.Future[None]) -> None:
        def admit() -> None:
            if not future.done():
                future.set_result(None)

        try:
            await self._dispatcher.feed_update(self._bot, update, admission=Admission(admit))
        except Exception:
            log.exception("update_crashed", update_id=update.update_id)
        finally:
            admit()

    async def _pause(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
        except TimeoutError:
            return

    async def drain(self, grace: float) -> None:
        """Wait up to `grace` seconds for handlers in flight; the rest are recovered at the next start."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=grace)
