"""The shared event store: PostgreSQL through psycopg 3 and a connection pool, for several bot processes at once.

The tables (in the store's schema, `public` unless told otherwise, created by `init_schema`), statements and
append logic are the SQL core's (`adapters.sql`); this module holds what is PostgreSQL's own: the pool, its
retry on a connection that died while idle, the statement timeout, advisory locks and the meaning of its errors.
Each version's foreign key to its predecessor makes the database keep every stream whole while several processes
append and erase at once (see `adapters.sql.schema`).
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, TypeAlias, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit

import psycopg
from psycopg import AsyncConnection, sql
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool

from adapters.postgres.inbox import PostgresInbox
from adapters.sql.ledger import ledger_tables
from adapters.sql.schema import POSTGRES, events_table, global_order, inbox_table
from adapters.sql.statements import Insert, Mode, Parameters, Rows, Script, Step, render
from adapters.sql.store import SqlEventStore
from adapters.store_rules import PAGE_SIZE, utc_now
from domain.ports import LeaseTaken, StoreUnavailable

Connection: TypeAlias = AsyncConnection[tuple[Any, ...]]
T = TypeVar("T")

URL_FORMS = "postgresql://user[:password]@host[:port]/dbname[?schema=name] (or postgres://...)"
_SCHEMA_LOCK = int.from_bytes(b"convo-es", "big")
"""Advisory lock key that serializes `init_schema` across processes."""
_NO_STATEMENT_TIMEOUT = "SET statement_timeout = 0"
_REFUSED = (UnicodeEncodeError, OverflowError)
"""What psycopg raises, before sending, for a value it cannot encode: text with a lone surrogate, say."""


def parse_url(url: str) -> tuple[str, str]:
    """(libpq URL, schema) from a `postgresql://` or `postgres://` URL with an optional `schema` query option.

    ValueError with a short reason, never quoting the URL (it may hold a password).
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        raise ValueError("malformed PostgreSQL URL") from None
    if parts.scheme not in ("postgresql", "postgres"):
        raise ValueError("not a PostgreSQL URL")
    options = parse_qsl(parts.query, keep_blank_values=True)
    schemas = [value for key, value in options if key == "schema"]
    if len(schemas) > 1 or "" in schemas:
        raise ValueError("a PostgreSQL URL takes one non-empty schema option at most")
    query = urlencode([(key, value) for key, value in options if key != "schema"], safe="/")
    conninfo = url.partition("?")[0] + (f"?{query}" if query else "")
    try:
        ports = str(conninfo_to_dict(conninfo).get("port") or "5432")
    except psycopg.Error:
        raise ValueError("malformed PostgreSQL URL (libpq cannot parse it)") from None
    if not all(port.isdigit() for port in ports.split(",")):
        raise ValueError("malformed PostgreSQL URL (a port is not a number)")
    return conninfo, schemas[0] if schemas else "public"


class PostgresEventStore(SqlEventStore):
    """An EventStore in one PostgreSQL table shared by any number of processes."""

    violation = psycopg.errors.IntegrityError

    def __init__(
        self,
        conninfo: str,
        *,
        schema: str = "public",
        now: Callable[[], datetime] = utc_now,
        page_size: int = PAGE_SIZE,
        min_size: int = 1,
        max_size: int = 10,
        timeout: float = 5.0,
        statement_timeout: float = 30.0,
        application_name: str = "convo",
    ) -> None:
        """A store over `conninfo` (a libpq URL or key=value string), its table in `schema`; connects lazily.

        `schema` isolates one store's table from another's in one database (tests give each a fresh one).
        `timeout` bounds both connecting and waiting for a pooled connection before StoreUnavailable;
        `statement_timeout` bounds every statement (a stalled or locked database is reported, not waited on forever).
        """
        self._events_name = sql.Identifier(schema, "events").as_string()
        self._inbox_table = sql.Identifier(schema, "inbox")
        self._inbox_name = self._inbox_table.as_string()
        super().__init__(POSTGRES, render(POSTGRES, self._events_name, self._inbox_name), now, page_size)
        self._ledger_names = (
            sql.Identifier(schema, "ledger").as_string(),
            sql.Identifier(schema, "ledger_checkpoint").as_string(),
        )
        self._schema = schema
        self._conninfo = conninfo
        self._where = _describe(conninfo)
        self._vacuum = f"VACUUM {self._events_name}, {self._inbox_name}"
        milliseconds = max(1, round(statement_timeout * 1000))
        self._statement_timeout = sql.SQL("SET statement_timeout = {}").format(sql.Literal(milliseconds))

        async def configure(connection: Connection) -> None:
            await connection.execute(self._statement_timeout)

        self._pool: AsyncConnectionPool[Connection] = AsyncConnectionPool(
            conninfo,
            configure=configure,
            min_size=min_size,
            max_size=max_size,
            open=False,
            timeout=timeout,
            kwargs={
                "autocommit": True,
                "connect_timeout": max(2, round(timeout)),
                "application_name": application_name,
            },
            name=f"convo-events-{schema}",
        )

    @property
    def schema(self) -> str:
        """The PostgreSQL schema holding this store's table."""
        return self._schema

    @classmethod
    def from_url(cls, url: str, *, now: Callable[[], datetime] = utc_now) -> PostgresEventStore:
        """The store a `postgresql://` URL names (see URL_FORMS); its `schema` option picks the schema (default public).

        ValueError, with a short reason and never a part of the URL, when it is malformed.
        """
        conninfo, schema = parse_url(url)
        return cls(conninfo, schema=schema, now=now)

    @property
    def ledger_names(self) -> tuple[str, str]:
        """The ledger's tables, in the store's schema."""
        return self._ledger_names

    async def init_schema(self) -> None:
        """Create the schema, table and indexes unless the table exists; safe to run from many processes at once."""

        async def create(connection: Connection) -> None:
            await connection.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            found = await connection.execute("SELECT to_regclass(%s)", (self._events_name,))
            if (await _one(found)) == (None,):
                await connection.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self._schema)))
                for statement in events_table(POSTGRES, self._events_name):
                    await connection.execute(statement)
            await connection.execute(inbox_table(POSTGRES, self._inbox_name))
            for statement in ledger_tables(POSTGRES, *self.ledger_names):
                await connection.execute(statement)
            ordered = await connection.execute(
                "SELECT 1 FROM information_schema.columns "
                "WHERE table_schema = %s AND table_name = 'events' AND column_name = 'xact'",
                (self._schema,),
            )
            if await ordered.fetchone() is None:  # new, or made before the global order (ALTER locks the table)
                for statement in global_order(POSTGRES, self._events_name, ""):
                    await connection.execute(statement)

        await self._run(create, transaction=True)

    @asynccontextmanager
    async def poller_lease(self, bot: str) -> AsyncIterator[None]:
        """A session advisory lock on its own connection (released when the process or the connection dies)."""
        name = f"convo-poller:{self._schema}:{bot}".encode()
        key = int.from_bytes(hashlib.sha256(name).digest()[:8], "big", signed=True)
        try:
            connection = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
        except psycopg.Error as error:
            raise self._unavailable(error) from error
        async with connection:
            (taken,) = await _one(await connection.execute("SELECT pg_try_advisory_lock(%s)", (key,)))
            if not taken:
                raise LeaseTaken(f"PostgreSQL {self._where}: another process polls for this bot")
            yield

    def inbox(self, bot: str) -> PostgresInbox:
        """The inbox of one bot, in this store's schema."""
        return PostgresInbox(self, bot, self._inbox_table)

    async def run(self, script: Callable[[], Script[T]], mode: Mode) -> T:
        """Run a script on a pooled connection, in a transaction when it makes several changes (see `_run`)."""
        atomic = mode in (Mode.ATOMIC, Mode.ALONE)
        return await self._run(lambda connection: _drive(connection, script()), transaction=atomic)

    async def reclaim(self) -> None:
        """Vacuum both tables, so the space of deleted rows is reclaimed rather than left readable in the heap."""

        async def vacuum(connection: Connection) -> None:
            await connection.execute(_NO_STATEMENT_TIMEOUT)  # a large table takes its time
            try:
                await connection.execute(self._vacuum)
            finally:
                await connection.execute(self._statement_timeout)

        await self._run(vacuum)

    async def close(self) -> None:
        """Close the pool's connections."""
        await self._pool.close()

    async def _run(self, work: Callable[[Connection], Awaitable[T]], *, transaction: bool = False) -> T:
        """`work(connection)` on a pooled connection, in a transaction if asked.

        A pooled connection may have died while idle (server restarted, backend terminated): then the pool is
        purged of dead connections and `work` runs once more on a fresh one. Every `work` here may run twice: reads,
        deletes and init_schema are idempotent; a repeated append finds its own batch by causation id; a repeated
        import whose first try did commit reports ConcurrencyConflict (and a copy run again resumes after it).
        psycopg failures other than constraint violations, and values it cannot encode, become StoreUnavailable.
        """
        for attempt in (1, 2):
            connection: Connection | None = None
            try:
                await self._pool.open()
                async with self._pool.connection() as connection:
                    if not transaction:
                        return await work(connection)
                    async with connection.transaction():
                        return await work(connection)
            except psycopg.errors.IntegrityError:
                raise
            except psycopg.OperationalError as error:
                if attempt == 2 or connection is None or not connection.broken:
                    raise self._unavailable(error) from error
                await self._pool.check()
            except psycopg.Error as error:
                raise self._unavailable(error) from error
            except _REFUSED as error:
                raise StoreUnavailable(
                    f"PostgreSQL {self._where} refused a value ({error}); nothing was written"
                ) from error
        raise AssertionError("unreachable: the second attempt returns or raises")

    def _unavailable(self, error: psycopg.Error) -> StoreUnavailable:
        if isinstance(error, psycopg.errors.UndefinedTable | psycopg.errors.InvalidSchemaName):
            why = f"has no events table in schema {self._schema!r}: run init_schema first"
        elif isinstance(error, psycopg.errors.UntranslatableCharacter):
            why = "refused text it cannot store (U+0000)"
        else:
            lines = str(error).strip().splitlines()
            why = "unavailable: " + (lines[0] if lines else type(error).__name__)
        return StoreUnavailable(f"PostgreSQL {self._where} {why}; nothing was written")


async def _drive(connection: Connection, script: Script[T]) -> T:
    """Execute the script's steps one after another; what it returns."""
    try:
        step = next(script)
        while True:
            step = script.send(await _execute(connection, step))
    except StopIteration as done:
        result: T = done.value
        return result


async def _execute(connection: Connection, step: Step) -> Any:
    if isinstance(step, Insert):
        if step.rows:
            await connection.execute(step.statement, _columns(step.rows))
        return None
    cursor = await connection.execute(step.statement, step.parameters)
    return await cursor.fetchall() if isinstance(step, Rows) else cursor.rowcount


def _columns(rows: Sequence[Parameters]) -> dict[str, list[Any]]:
    """Rows as one array per column, for a statement that inserts from `unnest`."""
    return {name: [row[name] for row in rows] for name in rows[0]}


async def _one(cursor: psycopg.AsyncCursor[tuple[Any, ...]]) -> tuple[Any, ...]:
    row = await cursor.fetchone()
    if row is None:
        raise StoreUnavailable("PostgreSQL returned no row where one was due")
    return row


def _describe(conninfo: str) -> str:
    """`host:port/dbname` for messages: never the password or the rest of the conninfo."""
    try:
        parts = conninfo_to_dict(conninfo)
    except psycopg.Error:
        return "(malformed conninfo)"
    host = parts.get("host") or parts.get("hostaddr") or "localhost"
    port = parts.get("port") or "5432"
    return f"{host}:{port}/{parts.get('dbname') or parts.get('user') or ''}"
