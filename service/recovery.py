"""At start-up, finish what a dead process left half done: questions without answers, images without pictures."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import structlog

from domain.conversation import Pending
from domain.ports import StoreError
from service.conversations import ConversationService

log = structlog.get_logger(__name__)


async def recover_pending(
    service: ConversationService,
    accept: Callable[[str], bool] = lambda stream: True,
    concurrency: int = 8,
    hold: Callable[[str], AbstractAsyncContextManager[None]] | None = None,
    owned: Callable[[Pending], bool] = lambda pending: False,
) -> int:
    """Finish every pending request on accepted streams (delivering through the service's outbox); how many.

    `hold(stream)` is the front end's per-chat turn, so a recovery and a live update of one chat never overlap
    (both would otherwise send the same reply). A request `owned` by the front end (its update is still in the
    inbox, where this or another worker takes it up) is left to it.
    """
    gate = asyncio.Semaphore(concurrency)
    tasks: list[asyncio.Task[None]] = []

    async def finish(stream: str) -> None:
        async with gate, hold(stream) if hold is not None else contextlib.nullcontext():
            try:
                outcome = await service.finish_pending(stream)
            except StoreError as error:
                log.error("recovery_failed", stream=stream, error=str(error))
                return
            log.info("recovered", stream=stream, outcome=type(outcome).__name__ if outcome else None)

    async for stream in service.store.list_streams():
        pending = await service.pending(stream) if accept(stream) else None
        if pending is not None and not owned(pending):
            tasks.append(asyncio.create_task(finish(stream)))
    await asyncio.gather(*tasks)
    return len(tasks)
