"""The intake shared by webhook workers: a chat's updates are handled in order, whoever holds the older ones."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from aiogram import Bot

from adapters.memory.inbox import MemoryInbox
from adapters.telegram.intake import Intake, Sharing
from domain.ports import InboxEntry
from service.locks import StreamLocks

STALE = timedelta(seconds=60)


def raw_update(update_id: int) -> dict[str, Any]:
    user = {"id": 42, "is_bot": False, "first_name": "Al"}
    message = {"message_id": update_id, "date": 0, "chat": {"id": 42, "type": "private"}, "from": user, "text": "q"}
    return {"update_id": update_id, "message": message}


class Dispatcher:
    """Stands in for aiogram's: records the order updates are handed over in."""

    def __init__(self) -> None:
        self.fed: list[int] = []

    async def feed_update(self, bot: Bot, update: Any, **context: Any) -> None:
        self.fed.append(update.update_id)


class CountingInbox(MemoryInbox):
    """Counts how often a worker looked at a chat's unfinished updates (each look is a turn it waited)."""

    def __init__(self) -> None:
        super().__init__()
        self.looks = 0

    async def unfinished(self, chat: str | None = None) -> list[InboxEntry]:
        self.looks += 1
        return await super().unfinished(chat)


async def until(condition: Callable[[], bool], within: float = 10.0) -> None:
    """Return once `condition()` holds; TimeoutError after `within` seconds."""
    async with asyncio.timeout(within):
        for _ in itertools.count():
            if condition():
                return
            await asyncio.sleep(0.01)


async def test_a_worker_waits_for_an_older_update_another_worker_holds_and_never_skips_ahead_of_it():
    """Worker A admitted updates 1 and 2 of a chat and is handling 1 (it may have died doing so). Worker B, given
    update 3, must not handle 2 meanwhile: that answered the chat out of order and, once A's claim ran out, raced
    whoever took 1 over into showing one answer twice. Once 1 is finished, B handles 2, then 3."""
    inbox = CountingInbox()
    await inbox.admit([InboxEntry(update_id=n, chat="42", payload=json.dumps(raw_update(n))) for n in (1, 2)])
    assert await inbox.claim(1, "A", STALE)
    dispatcher = Dispatcher()
    bot = Bot("123:" + "a" * 35)
    worker_b = Intake(bot, dispatcher, inbox, StreamLocks(), sharing=Sharing("B", STALE))  # type: ignore[arg-type]
    try:
        await worker_b.take([raw_update(3)])
        await until(lambda: inbox.looks >= 3)  # B has waited at least two turns
        assert dispatcher.fed == []
        await inbox.finish(1)  # A is done with 1
        await until(lambda: len(dispatcher.fed) >= 2)
        assert dispatcher.fed == [2, 3]
    finally:
        await worker_b.drain(1)
        await bot.session.close()
