"""The inbox of one bot in the SQLite store's file, written through the store's thread and group commit.

CREATE TABLE inbox (
    bot         TEXT    NOT NULL,   -- which bot (its numeric id): update ids are per bot
    update_id   INTEGER NOT NULL,
    chat        TEXT,               -- the stream it belongs to
    admitted_at TEXT    NOT NULL,   -- ISO 8601 UTC
    payload     TEXT,               -- the update's JSON; NULL once handled (or erased)
    preview     INTEGER,            -- the message shown while answering it
    claimed_by  TEXT,               -- the worker handling it (webhook workers sharing a store)
    claimed_at  TEXT,
    PRIMARY KEY (bot, update_id)
);
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

from adapters.inbox_rules import prune_before
from adapters.store_rules import recording_time
from domain.codec import parse_utc
from domain.ports import InboxEntry

if TYPE_CHECKING:
    from adapters.sqlite.store import SqliteEventStore

INBOX_TABLE = """
    CREATE TABLE IF NOT EXISTS inbox (
        bot         TEXT    NOT NULL,
        update_id   INTEGER NOT NULL,
        chat        TEXT,
        admitted_at TEXT    NOT NULL,
        payload     TEXT,
        preview     INTEGER,
        claimed_by  TEXT,
        claimed_at  TEXT,
        PRIMARY KEY (bot, update_id)
    )
"""
_PRUNE = "DELETE FROM inbox WHERE bot = ? AND payload IS NULL AND admitted_at < ?"
_INSERT = "INSERT OR IGNORE INTO inbox (bot, update_id, chat, admitted_at, payload) VALUES (?, ?, ?, ?, ?)"
_UNHANDLED = "SELECT MAX(update_id) FROM inbox WHERE bot = ? AND update_id = ? AND payload IS NOT NULL"
_PREVIEW = "UPDATE inbox SET preview = ? WHERE bot = ? AND update_id = ?"
_FINISH = "UPDATE inbox SET payload = NULL, preview = NULL, claimed_by = NULL WHERE bot = ? AND update_id = ?"
_ERASE = "UPDATE inbox SET payload = NULL, preview = NULL WHERE chat = ?"
_UNFINISHED = (
    "SELECT update_id, chat, payload, preview, admitted_at FROM inbox WHERE bot = ? AND payload IS NOT NULL "
    "AND (? IS NULL OR chat = ?) ORDER BY update_id"
)
_CLAIM = (
    "UPDATE inbox SET claimed_by = ?, claimed_at = ? WHERE bot = ? AND update_id = ? AND payload IS NOT NULL "
    "AND (claimed_by IS NULL OR claimed_by = ? OR claimed_at < ?)"
)


class SqliteInbox:
    """An Inbox in the store's `inbox` table."""

    def __init__(self, store: SqliteEventStore, bot: str) -> None:
        self._store = store
        self._bot = bot

    async def admit(self, entries: Sequence[InboxEntry]) -> frozenset[int]:
        """Insert the entries that are new, in one commit; the ids still unhandled (see Inbox.admit)."""
        now = recording_time(self._store.clock)
        rows = [(self._bot, e.update_id, e.chat, now.isoformat(), e.payload) for e in entries]

        def write(connection: sqlite3.Connection) -> frozenset[int]:
            connection.execute(_PRUNE, (self._bot, prune_before(now)))
            connection.executemany(_INSERT, rows)
            unhandled = (connection.execute(_UNHANDLED, (self._bot, row[1])).fetchone()[0] for row in rows)
            return frozenset(update_id for update_id in unhandled if update_id is not None)

        return await self._store.write(write)

    async def unfinished(self, chat: str | None = None) -> list[InboxEntry]:
        """Unhandled entries (of one chat, when given), oldest update first."""

        def read(connection: sqlite3.Connection) -> list[InboxEntry]:
            rows = connection.execute(_UNFINISHED, (self._bot, chat, chat))
            return [
                InboxEntry(
                    update_id=update_id, chat=where, payload=payload, preview=preview, admitted_at=parse_utc(admitted)
                )
                for update_id, where, payload, preview, admitted in rows
            ]

        return await self._store.read(read)

    async def claim(self, update_id: int, worker: str, stale_after: timedelta) -> bool:
        """Take or renew the right to handle an unhandled entry (see Inbox.claim)."""
        now = recording_time(self._store.clock)
        values = (worker, now.isoformat(), self._bot, update_id, worker, (now - stale_after).isoformat())
        return bool(await self._store.write(lambda connection: connection.execute(_CLAIM, values).rowcount))

    async def note_preview(self, update_id: int, message_id: int) -> None:
        """Remember the preview of an unhandled entry."""
        await self._change(_PREVIEW, (message_id, self._bot, update_id))

    async def finish(self, update_id: int) -> None:
        """Drop the entry's text, keep its id."""
        await self._change(_FINISH, (self._bot, update_id))

    async def erase_chat(self, chat: str) -> None:
        """Drop the text of the chat's entries (of every bot)."""
        await self._change(_ERASE, (chat,))

    async def _change(self, statement: str, values: tuple[object, ...]) -> None:
        await self._store.write(lambda connection: connection.execute(statement, values))
