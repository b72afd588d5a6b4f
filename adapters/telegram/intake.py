"""Durable before confirmed, for every update, in polling and webhook mode alike.

An update is written to the inbox (in the event store) before Telegram is told it arrived: before the next
getUpdates moves the offset past it, before the webhook answers 200. Then it is handled in arrival order per chat,
and finished in the inbox once handled. A process that dies leaves its unfinished updates in the inbox, and the
next one takes them up before it polls (`resume`). An update that cannot be parsed is logged as poison and
skipped: it never stops the bot.

While the store cannot be written, the update is handled again with a growing pause, in its chat's turn (later
updates of that chat wait behind it): the user is told once that the answer will come when the store is back.

Webhook workers sharing one store (`Sharing`) take turns through the inbox: a worker claims an update before
handling it (a claim another worker renewed recently is left alone; one gone stale is a dead worker's, and taken
over), and handles a chat's earlier unfinished updates, or waits for the worker handling them, before its own.
An update Telegram sent to two workers is therefore handled by one.

A Stop press or a /cancel (`generations.interrupts`) is handled at once, outside its chat's turn: it acts on the
answer that holds the turn.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager, nullcontext, suppress
from datetime import timedelta
from typing import Any

import attrs
import structlog
from aiogram import Bot, Dispatcher
from aiogram.dispatcher.middlewares.user_context import UserContextMiddleware
from aiogram.methods import TelegramMethod
from aiogram.types import Update
from pydantic import ValidationError

from adapters.telegram.errors import tell_store_down
from adapters.telegram.generations import interrupts
from adapters.telegram.identity import stream_of
from adapters.telegram.tally import CountUpdate, not_counted, raw_kind, update_kind
from domain.ports import Inbox, InboxEntry, StoreError, StoreUnavailable
from service.locks import StreamLocks

log = structlog.get_logger(__name__)

RETRY_PAUSE_MAX = 30.0
"""Longest pause between two tries of an update the store could not record."""
TURN_POLL = 0.25
"""How often a worker looks again at a chat's updates another worker is handling."""


@attrs.frozen
class Sharing:
    """How this worker shares the inbox with other webhook workers."""

    worker: str
    """This worker's name in claims (unique among the workers)."""
    stale_after: timedelta
    """A claim not renewed for this long belongs to a dead worker."""


class GetRawUpdates(TelegramMethod[list[dict[str, Any]]]):
    """getUpdates, answered as plain JSON objects: each update is parsed on its own, so one bad update is one
    poison update rather than a failed poll."""

    __returning__ = list[dict[str, Any]]
    __api_method__ = "getUpdates"

    offset: int | None = None
    timeout: int | None = None
    allowed_updates: list[str] | None = None


@attrs.frozen
class Preview:
    """The message shown while an update is answered, remembered in the inbox so a restart can finish it."""

    message_id: int | None
    """The preview a dead process left on screen for this update, if any."""
    remember: Callable[[int], Awaitable[None]] = attrs.field(eq=False)
    """Records a newly sent preview."""


class Intake:
    """Admits updates to the inbox and handles each once, in order per chat."""

    def __init__(
        self,
        bot: Bot,
        dispatcher: Dispatcher,
        inbox: Inbox,
        locks: StreamLocks,
        on_arrival: Callable[[Update], dict[str, Any]] = lambda update: {},
        sharing: Sharing | None = None,
        count: CountUpdate = not_counted,
    ) -> None:
        """`on_arrival(update)` runs as an update arrives (not when its turn comes): what it returns reaches the
        handlers with the update (the rate limiter's verdict, say, which must count arrivals, not turns). `count`
        counts the updates that never reach the dispatcher: duplicates and poison (see `tally`)."""
        self._bot = bot
        self._dispatcher = dispatcher
        self._inbox = inbox
        self._locks = locks
        self._on_arrival = on_arrival
        self._sharing = sharing
        self._count = count
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._told_store_down: set[int] = set()

    @property
    def in_flight(self) -> int:
        """Updates being handled now."""
        return len(self._tasks)

    async def take(self, raw_updates: Sequence[Any]) -> None:
        """Write the updates to the inbox, then start handling each one still unhandled.

        Raises StoreError when the inbox cannot be written: then none of them may be confirmed.
        """
        parsed = [(raw, update) for raw in raw_updates if (update := self._parse(raw)) is not None]
        entries = [(_entry(raw, update), update) for raw, update in parsed]
        try:
            unhandled = await self._inbox.admit([entry for entry, _ in entries])
        except StoreError:
            await self._tell_store_down([update for _, update in entries])
            raise
        for entry, update in entries:
            if entry.update_id in unhandled and entry.update_id not in self._tasks:  # a redelivery counts once
                self._start(entry, update, self._on_arrival(update))
            else:
                self._count(update_kind(update), "duplicate")

    async def resume(self) -> list[int]:
        """Start handling what the inbox holds unfinished (left by a process that stopped, or being handled by
        another webhook worker, which keeps it by its claim); the update ids."""
        entries = await self._inbox.unfinished()
        for entry in entries:
            update = self._parse(json.loads(entry.payload))
            if update is None:
                await self._inbox.finish(entry.update_id)
                continue
            self._start(entry, update)
        if entries:
            log.info("inbox_resumed", updates=len(entries))
        return [entry.update_id for entry in entries]

    async def drain(self, grace: float) -> None:
        """Wait up to `grace` seconds for updates in flight; the rest stay in the inbox for the next start."""
        if self._tasks:
            await asyncio.wait(set(self._tasks.values()), timeout=grace)

    def _parse(self, raw: Any) -> Update | None:
        try:
            return Update.model_validate(raw, context={"bot": self._bot})
        except ValidationError as error:
            update_id = raw.get("update_id") if isinstance(raw, dict) else None
            problems = [".".join(map(str, problem["loc"])) for problem in error.errors()][:5]
            log.error("update_poison", update_id=update_id, problems=problems)
            self._count(raw_kind(raw), "poison")
            return None

    def _start(self, entry: InboxEntry, update: Update, context: dict[str, Any] | None = None) -> None:
        if entry.update_id in self._tasks:
            return
        task = asyncio.create_task(self._handle(entry, update, context or {}))
        self._tasks[entry.update_id] = task
        task.add_done_callback(lambda _: self._tasks.pop(entry.update_id, None))

    async def _handle(self, entry: InboxEntry, update: Update, context: dict[str, Any]) -> None:
        if interrupts(update):  # it acts on the chat's answer in flight, so it cannot wait behind it
            sharing = self._sharing
            if sharing is None or await self._inbox.claim(entry.update_id, sharing.worker, sharing.stale_after):
                await self._process(entry, update, context)
            else:
                self._count(update_kind(update), "duplicate")
            return
        async with self._locks.hold(entry.chat) if entry.chat is not None else nullcontext():
            if self._sharing is None:
                await self._process(entry, update, context)
            elif await self._take_turn(entry, self._sharing):
                async with self._claimed(entry, self._sharing):
                    await self._process(entry, update, context)
            else:  # another worker handled it
                self._count(update_kind(update), "duplicate")

    async def _take_turn(self, entry: InboxEntry, sharing: Sharing) -> bool:
        """Handle or wait out the chat's earlier updates, then claim this one; False if another worker finished it."""
        while True:
            try:
                rows = await self._inbox.unfinished(entry.chat) if entry.chat is not None else [entry]
                if all(row.update_id != entry.update_id for row in rows):
                    return False
                # the chat's oldest earlier update is handled now, inline, once no live worker holds it (its own
                # turn then finds it done); never one behind it, which would answer the chat out of order while a
                # dead worker's claim on the oldest runs out, and race whoever takes that one over
                oldest = min(
                    (row for row in rows if row.update_id < entry.update_id),
                    key=lambda row: row.update_id,
                    default=None,
                )
                if oldest is None:
                    if await self._inbox.claim(entry.update_id, sharing.worker, sharing.stale_after):
                        return True
                    await asyncio.sleep(TURN_POLL)
                elif await self._inbox.claim(oldest.update_id, sharing.worker, sharing.stale_after):
                    update = self._parse(json.loads(oldest.payload))
                    if update is not None:
                        async with self._claimed(oldest, sharing):
                            await self._process(oldest, update, {})
                else:
                    await asyncio.sleep(TURN_POLL)
            except StoreError as error:
                log.warning("inbox_unavailable", error=str(error))
                await asyncio.sleep(RETRY_PAUSE_MAX / 10)

    @asynccontextmanager
    async def _claimed(self, entry: InboxEntry, sharing: Sharing) -> AsyncIterator[None]:
        """Renew this worker's claim on the entry while the block runs."""

        async def renew() -> None:
            while True:
                await asyncio.sleep(sharing.stale_after.total_seconds() / 3)
                with suppress(StoreError):
                    await self._inbox.claim(entry.update_id, sharing.worker, sharing.stale_after)

        renewing = asyncio.create_task(renew())
        try:
            yield
        finally:
            renewing.cancel()

    async def _process(self, entry: InboxEntry, update: Update, context: dict[str, Any]) -> None:
        """Handle the update until the store took what it had to record, then finish it in the inbox."""

        async def remember(message_id: int) -> None:
            try:
                await self._inbox.note_preview(entry.update_id, message_id)
            except StoreError as error:
                log.warning("preview_not_remembered", error=str(error))

        preview = Preview(entry.preview, remember)
        attempt = 1
        while not await self._feed(update, context | {"preview": preview, "attempt": attempt}):
            await asyncio.sleep(min(RETRY_PAUSE_MAX, 2.0**attempt))
            attempt += 1
        self._told_store_down.discard(entry.update_id)
        try:
            await self._inbox.finish(entry.update_id)
        except StoreError as error:  # handled already; a later start finds it done (replies are idempotent)
            log.warning("inbox_finish_failed", update_id=entry.update_id, error=str(error))

    async def _feed(self, update: Update, context: dict[str, Any]) -> bool:
        """Handle the update once; False when the store could not record it (try again later)."""
        try:
            await self._dispatcher.feed_update(self._bot, update, store_down_told=self._told_store_down, **context)
        except StoreUnavailable:
            return False
        except Exception:
            log.exception("update_crashed", update_id=update.update_id)
        return True

    async def _tell_store_down(self, updates: Sequence[Update]) -> None:
        """The store cannot hold these updates yet: say so once per update; Telegram will hand them over again."""
        for update in updates:
            if update.update_id not in self._told_store_down:
                self._told_store_down.add(update.update_id)
                await tell_store_down(update, self._bot)


def _entry(raw: Any, update: Update) -> InboxEntry:
    context = UserContextMiddleware.resolve_event_context(update)
    stream = stream_of(context.chat, context.thread_id) if context.chat is not None else None
    return InboxEntry(update_id=update.update_id, chat=stream, payload=json.dumps(raw))
