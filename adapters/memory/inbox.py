"""The reference inbox: a dict, the model the other inboxes are held to."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import attrs

from adapters.inbox_rules import KEEP_FINISHED
from adapters.store_rules import utc_now
from domain.ports import InboxEntry


@attrs.define
class _Held:
    entry: InboxEntry | None
    """None once handled (or erased)."""
    admitted_at: datetime
    claim: tuple[str, datetime] | None = None


class MemoryInbox:
    """An Inbox in a dict: update id -> what is held of it."""

    def __init__(self, now: Callable[[], datetime] = utc_now) -> None:
        self._now = now
        self._held: dict[int, _Held] = {}

    async def admit(self, entries: Sequence[InboxEntry]) -> frozenset[int]:
        """Keep the new entries; the ids still unhandled (see Inbox.admit)."""
        now = self._now()
        for update_id, held in list(self._held.items()):
            if held.entry is None and held.admitted_at < now - KEEP_FINISHED:
                del self._held[update_id]
        for entry in entries:
            self._held.setdefault(entry.update_id, _Held(entry, now))
        return frozenset(e.update_id for e in entries if self._held[e.update_id].entry is not None)

    async def unfinished(self, chat: str | None = None) -> list[InboxEntry]:
        """Unhandled entries (of one chat, when given), oldest update first."""
        return [
            attrs.evolve(held.entry, admitted_at=held.admitted_at)
            for _, held in sorted(self._held.items())
            if held.entry is not None and (chat is None or held.entry.chat == chat)
        ]

    async def claim(self, update_id: int, worker: str, stale_after: timedelta) -> bool:
        """Take or renew the right to handle an unhandled entry (see Inbox.claim)."""
        held = self._held.get(update_id)
        now = self._now()
        if held is None or held.entry is None:
            return False
        if held.claim is not None and held.claim[0] != worker and held.claim[1] > now - stale_after:
            return False
        held.claim = (worker, now)
        return True

    async def note_preview(self, update_id: int, message_id: int) -> None:
        """Remember the preview of an unhandled entry."""
        held = self._held.get(update_id)
        if held is not None and held.entry is not None:
            held.entry = attrs.evolve(held.entry, preview=message_id)

    async def finish(self, update_id: int) -> None:
        """Drop the entry's text, keep its id."""
        if update_id in self._held:
            self._held[update_id].entry = None
            self._held[update_id].claim = None

    async def erase_chat(self, chat: str) -> None:
        """Drop the text of the chat's entries."""
        for held in self._held.values():
            if held.entry is not None and held.entry.chat == chat:
                held.entry = None
