"""The bot's pending-update queue with the real ``getUpdates`` semantics.

* An update stays queued until a ``getUpdates`` call arrives whose ``offset``
  is greater than its ``update_id``; returning it does *not* confirm it, so a
  client that dies before confirming gets it again.
* A negative ``offset`` keeps only the last ``-offset`` updates.
* Only one long poll may wait at a time: a newer ``getUpdates`` (or
  ``setWebhook``) ends the older one with ``409 Conflict``.
* ``allowed_updates`` filters updates when they are queued (changing it does
  not touch updates already queued), like the real server.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from .errors import POLL_CONFLICT, conflict

UPDATE_TYPES = (
    "message",
    "edited_message",
    "channel_post",
    "edited_channel_post",
    "business_connection",
    "business_message",
    "edited_business_message",
    "deleted_business_messages",
    "message_reaction",
    "message_reaction_count",
    "inline_query",
    "chosen_inline_result",
    "callback_query",
    "shipping_query",
    "pre_checkout_query",
    "purchased_paid_media",
    "poll",
    "poll_answer",
    "my_chat_member",
    "chat_member",
    "chat_join_request",
    "chat_boost",
    "removed_chat_boost",
    "stopped_message_generation",
)
DEFAULT_ALLOWED_UPDATES = frozenset(UPDATE_TYPES) - {
    "chat_member",
    "message_reaction",
    "message_reaction_count",
}


def update_type(update: dict[str, Any]) -> str | None:
    """The payload key of an update (``message``, ``callback_query`` ...)."""
    return next((key for key in update if key != "update_id"), None)


class LongPoll:
    """A waiting ``getUpdates``: resolved by a new update or aborted with a conflict."""

    def __init__(self) -> None:
        self._future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    def wake(self) -> None:
        """An update arrived."""
        if not self._future.done():
            self._future.set_result(True)

    def abort(self, description: str) -> None:
        """End this poll with ``409 Conflict: <description>``."""
        if not self._future.done():
            self._future.set_exception(conflict(description))

    async def wait(self, seconds: float) -> bool:
        """True if woken by an update, False after ``seconds``; raises ``ApiError`` if aborted."""
        try:
            return await asyncio.wait_for(asyncio.shield(self._future), seconds)
        except TimeoutError:
            return False


class UpdateQueue:
    """Pending updates for one bot, in ``update_id`` order."""

    def __init__(self, first_update_id: int = 1) -> None:
        self.pending: list[dict[str, Any]] = []
        self.history: list[dict[str, Any]] = []
        self.dropped: list[dict[str, Any]] = []
        self.next_id = first_update_id
        self.allowed: frozenset[str] = DEFAULT_ALLOWED_UPDATES
        self.delivery_counts: dict[int, int] = {}
        self.first_handed_over: dict[int, float] = {}
        """update_id -> when (time.monotonic) a getUpdates response first carried it to the bot."""
        self.long_poll: LongPoll | None = None
        self._listeners: list[asyncio.Event] = []

    def push(self, update: dict[str, Any]) -> dict[str, Any]:
        """Queue ``update``, assigning ``update_id`` if missing.

        An update whose type is not in ``allowed_updates`` is returned but not
        queued (it lands in :attr:`dropped`).
        """
        if "update_id" not in update:
            update = {"update_id": self.next_id, **update}
        self.next_id = max(self.next_id, int(update["update_id"]) + 1)
        self.history.append(update)
        if update_type(update) not in self.allowed:
            self.dropped.append(update)
            return update
        self.pending.append(update)
        self.pending.sort(key=lambda item: item["update_id"])
        if self.long_poll is not None:
            self.long_poll.wake()
        for event in self._listeners:
            event.set()
        return update

    def set_allowed(self, types: list[str] | None) -> None:
        """Apply an ``allowed_updates`` parameter (None keeps, [] resets to the default)."""
        if types is None:
            return
        self.allowed = frozenset(types) if types else DEFAULT_ALLOWED_UPDATES

    def confirm(self, offset: int) -> None:
        """Forget updates as a ``getUpdates(offset=...)`` call does."""
        if offset < 0:
            keep = -offset
            self.pending = self.pending[-keep:] if keep < len(self.pending) else self.pending
        elif offset > 0:
            self.pending = [update for update in self.pending if update["update_id"] >= offset]

    def take(self, limit: int) -> list[dict[str, Any]]:
        """The first ``limit`` pending updates (they stay pending until confirmed)."""
        batch = self.pending[:limit]
        now = time.monotonic()
        for update in batch:
            self.delivery_counts[update["update_id"]] = self.delivery_counts.get(update["update_id"], 0) + 1
            self.first_handed_over.setdefault(update["update_id"], now)
        return batch

    def remove(self, update_id: int) -> None:
        """Confirm a single update (webhook delivery succeeded)."""
        self.pending = [update for update in self.pending if update["update_id"] != update_id]

    def clear(self) -> None:
        """Drop every pending update (``drop_pending_updates``)."""
        self.pending.clear()

    def start_long_poll(self) -> LongPoll:
        """Register a waiting ``getUpdates``; an older one ends with 409."""
        self.abort_long_poll(POLL_CONFLICT)
        self.long_poll = LongPoll()
        return self.long_poll

    def finish_long_poll(self, poll: LongPoll) -> None:
        """Forget ``poll`` if it is still the registered one."""
        if self.long_poll is poll:
            self.long_poll = None

    def abort_long_poll(self, description: str) -> None:
        """End the waiting ``getUpdates`` (if any) with ``409 <description>``."""
        if self.long_poll is not None:
            self.long_poll.abort(description)
            self.long_poll = None

    def release_long_poll(self) -> None:
        """Let the waiting ``getUpdates`` (if any) return what is pending now (server shutdown)."""
        if self.long_poll is not None:
            self.long_poll.wake()

    async def wait_for_pending(self, seconds: float | None = None) -> bool:
        """Wait until at least one update is pending (webhook worker)."""
        if self.pending:
            return True
        event = asyncio.Event()
        self._listeners.append(event)
        try:
            await asyncio.wait_for(event.wait(), seconds)
        except TimeoutError:
            return False
        finally:
            self._listeners.remove(event)
        return bool(self.pending)
