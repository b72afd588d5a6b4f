"""The inbox of one bot in the PostgreSQL store's schema, shared by every worker of that bot.

CREATE TABLE inbox (
    bot         TEXT   NOT NULL,   -- which bot (its numeric id): update ids are per bot
    update_id   BIGINT NOT NULL,
    chat        TEXT,              -- the stream it belongs to
    admitted_at TIMESTAMPTZ NOT NULL,
    payload     TEXT,              -- the update's JSON; NULL once handled (or erased)
    preview     BIGINT,            -- the message shown while answering it
    claimed_by  TEXT,              -- the worker handling it (webhook workers sharing the store)
    claimed_at  TIMESTAMPTZ,
    PRIMARY KEY (bot, update_id)
);
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from psycopg import AsyncConnection, sql

from adapters.inbox_rules import KEEP_FINISHED
from adapters.store_rules import recording_time
from domain.ports import InboxEntry

if TYPE_CHECKING:
    from adapters.postgres.store import PostgresEventStore

Connection = AsyncConnection[tuple[Any, ...]]

INBOX_TABLE = """
CREATE TABLE IF NOT EXISTS {inbox} (
    bot         TEXT   NOT NULL,
    update_id   BIGINT NOT NULL,
    chat        TEXT,
    admitted_at TIMESTAMPTZ NOT NULL,
    payload     TEXT,
    preview     BIGINT,
    claimed_by  TEXT,
    claimed_at  TIMESTAMPTZ,
    PRIMARY KEY (bot, update_id)
)
"""
_PRUNE = "DELETE FROM {inbox} WHERE bot = %s AND payload IS NULL AND admitted_at < %s"
_INSERT = """
INSERT INTO {inbox} (bot, update_id, chat, admitted_at, payload)
SELECT %s, u, c, %s, p FROM unnest(%s::bigint[], %s::text[], %s::text[]) AS batch(u, c, p)
ON CONFLICT DO NOTHING
"""
_UNHANDLED = "SELECT update_id FROM {inbox} WHERE bot = %s AND update_id = ANY(%s) AND payload IS NOT NULL"
_UNFINISHED = """
SELECT update_id, chat, payload, preview, admitted_at FROM {inbox}
WHERE bot = %s AND payload IS NOT NULL AND (%s::text IS NULL OR chat = %s) ORDER BY update_id
"""
_CLAIM = """
UPDATE {inbox} SET claimed_by = %s, claimed_at = %s
WHERE bot = %s AND update_id = %s AND payload IS NOT NULL
  AND (claimed_by IS NULL OR claimed_by = %s OR claimed_at < %s)
"""
_PREVIEW = "UPDATE {inbox} SET preview = %s WHERE bot = %s AND update_id = %s"
_FINISH = "UPDATE {inbox} SET payload = NULL, preview = NULL, claimed_by = NULL WHERE bot = %s AND update_id = %s"
_ERASE = "UPDATE {inbox} SET payload = NULL, preview = NULL WHERE chat = %s"


class PostgresInbox:
    """An Inbox in the store's `inbox` table."""

    def __init__(self, store: PostgresEventStore, bot: str, table: sql.Identifier) -> None:
        self._store = store
        self._bot = bot
        self._q = {
            name: sql.SQL(text).format(inbox=table)
            for name, text in {
                "prune": _PRUNE,
                "insert": _INSERT,
                "unhandled": _UNHANDLED,
                "unfinished": _UNFINISHED,
                "claim": _CLAIM,
                "preview": _PREVIEW,
                "finish": _FINISH,
                "erase": _ERASE,
            }.items()
        }

    async def admit(self, entries: Sequence[InboxEntry]) -> frozenset[int]:
        """Insert the entries that are new, in one transaction; the ids still unhandled (see Inbox.admit)."""
        now = recording_time(self._store.clock)
        values = (
            self._bot,
            now,
            [entry.update_id for entry in entries],
            [entry.chat for entry in entries],
            [entry.payload for entry in entries],
        )

        async def write(connection: Connection) -> frozenset[int]:
            await connection.execute(self._q["prune"], (self._bot, now - KEEP_FINISHED))
            await connection.execute(self._q["insert"], values)
            cursor = await connection.execute(self._q["unhandled"], (self._bot, values[2]))
            return frozenset(update_id for (update_id,) in await cursor.fetchall())

        return await self._store.run(write, transaction=True)

    async def unfinished(self, chat: str | None = None) -> list[InboxEntry]:
        """Unhandled entries (of one chat, when given), oldest update first."""

        async def read(connection: Connection) -> list[InboxEntry]:
            cursor = await connection.execute(self._q["unfinished"], (self._bot, chat, chat))
            return [
                InboxEntry(update_id=update_id, chat=where, payload=payload, preview=preview, admitted_at=admitted)
                for update_id, where, payload, preview, admitted in await cursor.fetchall()
            ]

        return await self._store.run(read)

    async def claim(self, update_id: int, worker: str, stale_after: timedelta) -> bool:
        """Take or renew the right to handle an unhandled entry (see Inbox.claim)."""
        now = recording_time(self._store.clock)
        values = (worker, now, self._bot, update_id, worker, now - stale_after)

        async def write(connection: Connection) -> bool:
            return (await connection.execute(self._q["claim"], values)).rowcount == 1

        return await self._store.run(write)

    async def note_preview(self, update_id: int, message_id: int) -> None:
        """Remember the preview of an unhandled entry."""
        await self._change("preview", (message_id, self._bot, update_id))

    async def finish(self, update_id: int) -> None:
        """Drop the entry's text, keep its id."""
        await self._change("finish", (self._bot, update_id))

    async def erase_chat(self, chat: str) -> None:
        """Drop the text of the chat's entries (of every bot)."""
        await self._change("erase", (chat,))

    async def _change(self, query: str, values: tuple[object, ...]) -> None:
        async def change(connection: Connection) -> None:
            await connection.execute(self._q[query], values)

        await self._store.run(change)
