"""The inbox of one bot in the PostgreSQL store's schema (the `inbox` table of `adapters.sql.schema`), shared by
every worker of that bot."""

from __future__ import annotations

from typing import TYPE_CHECKING

from psycopg import sql

from adapters.sql.inbox import SqlInbox
from adapters.sql.schema import POSTGRES
from adapters.sql.statements import render

if TYPE_CHECKING:
    from adapters.postgres.store import PostgresEventStore


class PostgresInbox(SqlInbox):
    """An Inbox in a table of the store's database."""

    def __init__(self, store: PostgresEventStore, bot: str, table: sql.Identifier) -> None:
        """The inbox of `bot` in `table` (the store's own `inbox`, or another table of that shape)."""
        events = sql.Identifier(store.schema, "events").as_string()
        super().__init__(store, bot, render(POSTGRES, events, table.as_string()))
