"""The inbox of one bot in a SQL store's `inbox` table (see `schema`), written through the store's `run`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from adapters.inbox_rules import KEEP_FINISHED
from adapters.sql.rows import inbox_entry, time_to_row
from adapters.sql.statements import Change, Insert, Mode, Rows, Script, Statements
from adapters.store_rules import recording_time
from domain.ports import InboxEntry

if TYPE_CHECKING:
    from adapters.sql.store import SqlEventStore


class SqlInbox:
    """An Inbox in the store's `inbox` table."""

    def __init__(self, store: SqlEventStore, bot: str, statements: Statements | None = None) -> None:
        """The inbox of `bot`, through the store's statements unless others (over another table) are given."""
        self._store = store
        self._bot = bot
        self._q = store.statements if statements is None else statements

    async def admit(self, entries: Sequence[InboxEntry]) -> frozenset[int]:
        """Insert the entries that are new, in one transaction; the ids still unhandled (see Inbox.admit)."""
        now = recording_time(self._store.clock)
        admitted_at = self._time(now)
        rows = [
            {
                "bot": self._bot,
                "update_id": e.update_id,
                "chat": e.chat,
                "admitted_at": admitted_at,
                "payload": e.payload,
            }
            for e in entries
        ]

        def write() -> Script[frozenset[int]]:
            yield Change(self._q.prune, {"bot": self._bot, "before": self._time(now - KEEP_FINISHED)})
            yield Insert(self._q.admit, rows)
            found = yield Rows(self._q.unhandled, {"bot": self._bot, "ids": [e.update_id for e in entries]})
            return frozenset(update_id for (update_id,) in found)

        return await self._store.run(write, Mode.ATOMIC)

    async def unfinished(self, chat: str | None = None) -> list[InboxEntry]:
        """Unhandled entries (of one chat, when given), oldest update first."""

        def read() -> Script[list[InboxEntry]]:
            rows = yield Rows(self._q.unfinished, {"bot": self._bot, "chat": chat})
            return [inbox_entry(self._store.dialect, row) for row in rows]

        return await self._store.run(read, Mode.READ)

    async def claim(self, update_id: int, worker: str, stale_after: timedelta) -> bool:
        """Take or renew the right to handle an unhandled entry (see Inbox.claim)."""
        now = recording_time(self._store.clock)
        parameters = {"worker": worker, "now": self._time(now), "stale": self._time(now - stale_after)}
        return await self._change(self._q.claim, {"bot": self._bot, "update_id": update_id, **parameters}) == 1

    async def note_preview(self, update_id: int, message_id: int) -> None:
        """Remember the preview of an unhandled entry."""
        await self._change(self._q.preview, {"bot": self._bot, "update_id": update_id, "preview": message_id})

    async def finish(self, update_id: int) -> None:
        """Drop the entry's text, keep its id."""
        await self._change(self._q.finish, {"bot": self._bot, "update_id": update_id})

    async def erase_chat(self, chat: str) -> None:
        """Drop the text of the chat's entries (of every bot)."""
        await self._change(self._q.erase_inbox, {"chat": chat})

    async def _change(self, statement: str, parameters: dict[str, Any]) -> int:
        """Run one statement that changes entries; how many it changed."""

        def change() -> Script[int]:
            count: int = yield Change(statement, parameters)
            return count

        return await self._store.run(change, Mode.WRITE)

    def _time(self, moment: datetime) -> Any:
        return time_to_row(self._store.dialect, moment)
