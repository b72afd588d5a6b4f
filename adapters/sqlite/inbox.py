"""The inbox of one bot in the SQLite store's file (the `inbox` table of `adapters.sql.schema`), written through
the store's thread and group commit."""

from __future__ import annotations

from adapters.sql.inbox import SqlInbox


class SqliteInbox(SqlInbox):
    """An Inbox in the store's `inbox` table: `SqliteInbox(store, bot)`."""
