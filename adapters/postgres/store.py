"""The shared event store: PostgreSQL through psycopg 3 and a connection pool, for several bot processes at once.

Schema, in the store's schema (`public` unless told otherwise), created by `init_schema`:

    CREATE TABLE events (
        stream        TEXT COLLATE "C" NOT NULL,
        version       INTEGER NOT NULL CHECK (version >= 1),
        previous      INTEGER GENERATED ALWAYS AS (NULLIF(version - 1, 0)) STORED,
        recorded_at   TIMESTAMPTZ NOT NULL,
        causation_id  TEXT NOT NULL,
        causation_key TEXT CHECK (causation_key IS NULL OR causation_key = causation_id),
        type          TEXT NOT NULL,
        schema        INTEGER NOT NULL,
        data          JSONB NOT NULL,
        PRIMARY KEY (stream, version),
        FOREIGN KEY (stream, previous) REFERENCES events (stream, version) ON DELETE CASCADE
    );
    CREATE UNIQUE INDEX events_causation ON events (stream, causation_key) WHERE causation_key IS NOT NULL;
    CREATE INDEX events_previous ON events (stream, previous);

The database, not a lock in some process, keeps every stream's log whole:
- the primary key lets one writer only take a version, so of two racing appends one fails with a unique violation;
- the foreign key makes each version need its predecessor, so a stream's versions are always exactly 1..n: an
  append racing a `delete_stream` fails (its predecessor is gone) or is deleted with the rest (by the cascade);
- `causation_key` is set on the first event of each batch only (all events of one append share its causation id),
  and its partial unique index lets a stream record each causation id's batch once.
An append checks causation and version and inserts in one transaction; when the insert meets a violation it rolls
back and checks again, returning the racer's batch when it carries the same causation id. `events_previous` keeps
the cascade cheap. `COLLATE "C"` orders streams by code point, as the other stores do.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, TypeAlias, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit

import psycopg
from psycopg import AsyncConnection, sql
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool

from adapters.postgres.inbox import INBOX_TABLE, PostgresInbox
from adapters.store_rules import (
    PAGE_SIZE,
    batch_starts,
    check_import,
    check_page_size,
    keyset_pages,
    new_batch,
    recording_time,
    utc_now,
)
from domain.codec import event_from_document, event_to_document
from domain.events import Event, RecordedEvent
from domain.ports import ConcurrencyConflict, LeaseTaken, StoreUnavailable

Connection: TypeAlias = AsyncConnection[tuple[Any, ...]]
T = TypeVar("T")

URL_FORMS = "postgresql://user[:password]@host[:port]/dbname[?schema=name] (or postgres://...)"
_SCHEMA_LOCK = int.from_bytes(b"convo-es", "big")
"""Advisory lock key that serializes `init_schema` across processes."""
_NO_END = 2**62
_COLUMNS = "version, recorded_at, causation_id, type, schema, data"

_TABLE = """
CREATE TABLE {events} (
    stream        TEXT COLLATE "C" NOT NULL,
    version       INTEGER NOT NULL CHECK (version >= 1),
    previous      INTEGER GENERATED ALWAYS AS (NULLIF(version - 1, 0)) STORED,
    recorded_at   TIMESTAMPTZ NOT NULL,
    causation_id  TEXT NOT NULL,
    causation_key TEXT CHECK (causation_key IS NULL OR causation_key = causation_id),
    type          TEXT NOT NULL,
    schema        INTEGER NOT NULL,
    data          JSONB NOT NULL,
    PRIMARY KEY (stream, version),
    FOREIGN KEY (stream, previous) REFERENCES {events} (stream, version) ON DELETE CASCADE
)
"""
_INDEXES = (
    "CREATE UNIQUE INDEX events_causation ON {events} (stream, causation_key) WHERE causation_key IS NOT NULL",
    "CREATE INDEX events_previous ON {events} (stream, previous)",
)
_PROBE = """
SELECT (SELECT version FROM {events} WHERE stream = %(stream)s AND causation_key = %(causation)s),
       (SELECT COALESCE(MAX(version), 0) FROM {events} WHERE stream = %(stream)s)
"""
_BATCH = f"""
SELECT {_COLUMNS} FROM {{events}}
WHERE stream = %(stream)s AND version >= %(start)s AND version < COALESCE(
    (SELECT version FROM {{events}}
     WHERE stream = %(stream)s AND version > %(start)s AND causation_key IS NOT NULL ORDER BY version LIMIT 1),
    %(no_end)s)
ORDER BY version
"""
_INSERT = """
INSERT INTO {events} (stream, version, recorded_at, causation_id, causation_key, type, schema, data)
SELECT %s, v, r, c, k, t, s, d::jsonb
FROM unnest(%s::int[], %s::timestamptz[], %s::text[], %s::text[], %s::text[], %s::int[], %s::text[])
    AS batch(v, r, c, k, t, s, d)
"""
_FORWARDS = f"SELECT {_COLUMNS} FROM {{events}} WHERE stream = %s AND version >= %s ORDER BY version LIMIT %s"
_BACKWARDS = f"SELECT {_COLUMNS} FROM {{events}} WHERE stream = %s AND version < %s ORDER BY version DESC LIMIT %s"
_VERSION = "SELECT COALESCE(MAX(version), 0) FROM {events} WHERE stream = %s"
_LAST_CAUSATION = "SELECT causation_id FROM {events} WHERE stream = %s ORDER BY version DESC LIMIT 1"
_DELETE = "DELETE FROM {events} WHERE stream = %s"
_ERASE_INBOX = "UPDATE {inbox} SET payload = NULL, preview = NULL WHERE chat = %s"
_VACUUM = "VACUUM {events}, {inbox}"
_NO_STATEMENT_TIMEOUT = "SET statement_timeout = 0"
_STREAMS = """
WITH RECURSIVE names(stream) AS (
    SELECT MIN(stream) FROM {events} WHERE stream {first} %(after)s
    UNION ALL
    SELECT (SELECT MIN(e.stream) FROM {events} AS e WHERE e.stream > names.stream)
    FROM names WHERE names.stream IS NOT NULL
)
SELECT stream FROM names WHERE stream IS NOT NULL LIMIT %(size)s
"""


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


class PostgresEventStore:
    """An EventStore in one PostgreSQL table shared by any number of processes."""

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
        self._schema = schema
        self._conninfo = conninfo
        self._now = now
        self._page_size = check_page_size(page_size)
        self._where = _describe(conninfo)
        events = sql.Identifier(schema, "events")
        inbox = sql.Identifier(schema, "inbox")
        self._q = {
            name: sql.SQL(text).format(events=events, inbox=inbox)
            for name, text in {
                "table": _TABLE,
                "probe": _PROBE,
                "batch": _BATCH,
                "insert": _INSERT,
                "forwards": _FORWARDS,
                "backwards": _BACKWARDS,
                "version": _VERSION,
                "last_causation": _LAST_CAUSATION,
                "delete": _DELETE,
                "inbox_table": INBOX_TABLE,
                "erase_inbox": _ERASE_INBOX,
                "vacuum": _VACUUM,
                "no_statement_timeout": _NO_STATEMENT_TIMEOUT,
            }.items()
        }
        self._indexes = [sql.SQL(text).format(events=events) for text in _INDEXES]
        self._first_streams = sql.SQL(_STREAMS).format(events=events, first=sql.SQL(">="))
        self._next_streams = sql.SQL(_STREAMS).format(events=events, first=sql.SQL(">"))
        milliseconds = max(1, round(statement_timeout * 1000))
        self._q["statement_timeout"] = sql.SQL("SET statement_timeout = {}").format(sql.Literal(milliseconds))

        async def configure(connection: Connection) -> None:
            await connection.execute(self._q["statement_timeout"])

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

    @classmethod
    def from_url(cls, url: str, *, now: Callable[[], datetime] = utc_now) -> PostgresEventStore:
        """The store a `postgresql://` URL names (see URL_FORMS); its `schema` option picks the schema (default public).

        ValueError, with a short reason and never a part of the URL, when it is malformed.
        """
        conninfo, schema = parse_url(url)
        return cls(conninfo, schema=schema, now=now)

    @property
    def clock(self) -> Callable[[], datetime]:
        """The store's clock."""
        return self._now

    @property
    def schema(self) -> str:
        """The PostgreSQL schema holding this store's table."""
        return self._schema

    async def init_schema(self) -> None:
        """Create the schema, table and indexes unless the table exists; safe to run from many processes at once."""

        async def create(connection: Connection) -> None:
            await connection.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            found = await connection.execute("SELECT to_regclass(%s)", (f"{_quoted(self._schema)}.events",))
            if (await _one(found)) == (None,):
                await connection.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self._schema)))
                await connection.execute(self._q["table"])
                for index in self._indexes:
                    await connection.execute(index)
            await connection.execute(self._q["inbox_table"])

        await self._run(create, transaction=True)

    async def append(
        self, stream: str, events: Sequence[Event], expected_version: int, causation_id: str
    ) -> tuple[RecordedEvent, ...]:
        """Record a batch, or return the batch this causation already recorded (see EventStore.append)."""
        if not events:
            return await self._run(lambda connection: self._batch(connection, stream, causation_id))
        moment = recording_time(self._now)
        recorded = new_batch(stream, events, expected_version, moment, causation_id)

        async def write(connection: Connection) -> tuple[RecordedEvent, ...]:
            cursor = await connection.execute(self._q["probe"], {"stream": stream, "causation": causation_id})
            start, current = await _one(cursor)
            if start is not None:
                return await self._batch(connection, stream, causation_id, start)
            if current != expected_version:
                raise ConcurrencyConflict(stream, expected_version, current)
            await self._insert(connection, recorded, [True] + [False] * (len(recorded) - 1))
            return recorded

        try:
            return await self._run(write, transaction=True)
        except psycopg.errors.IntegrityError:
            earlier = await self._run(lambda connection: self._batch(connection, stream, causation_id))
            if earlier:
                return earlier
            raise ConcurrencyConflict(stream, expected_version, await self.current_version(stream)) from None

    def read_forwards(
        self, stream: str, from_version: int = 1, limit: int | None = None
    ) -> AsyncIterator[RecordedEvent]:
        """Events from `from_version` up, oldest first, at most `limit` of them, a page per query."""

        async def page(after: int | None, size: int) -> list[RecordedEvent]:
            start = from_version if after is None else after + 1
            return await self._rows(stream, self._q["forwards"], (stream, start, size))

        return keyset_pages(page, _version_of, limit, self._page_size)

    def read_backwards(
        self, stream: str, before: int | None = None, limit: int | None = None
    ) -> AsyncIterator[RecordedEvent]:
        """Events below version `before` (or from the end), newest first, at most `limit` of them."""

        async def page(after: int | None, size: int) -> list[RecordedEvent]:
            below = (_NO_END if before is None else before) if after is None else after
            return await self._rows(stream, self._q["backwards"], (stream, below, size))

        return keyset_pages(page, _version_of, limit, self._page_size)

    async def current_version(self, stream: str) -> int:
        """The newest version of a stream; 0 when it has no events."""

        async def version(connection: Connection) -> int:
            (found,) = await _one(await connection.execute(self._q["version"], (stream,)))
            return int(found)

        return await self._run(version)

    def list_streams(self) -> AsyncIterator[str]:
        """Every stream that has events, in code point order; each page is one loose index scan."""

        async def page(after: str | None, size: int) -> list[str]:
            query = self._first_streams if after is None else self._next_streams

            async def names(connection: Connection) -> list[str]:
                cursor = await connection.execute(query, {"after": after or "", "size": size})
                return [name for (name,) in await cursor.fetchall()]

            return await self._run(names)

        return keyset_pages(page, str, None, self._page_size)

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
        return PostgresInbox(self, bot, sql.Identifier(self._schema, "inbox"))

    async def run(self, work: Callable[[Connection], Awaitable[T]], *, transaction: bool = False) -> T:
        """`work(connection)` on a pooled connection (for the inbox); see `_run`."""
        return await self._run(work, transaction=transaction)

    async def delete_stream(self, stream: str) -> None:
        """Erase every event of the stream (the cascade takes any append that raced it) and its inbox text, then
        vacuum both tables so the dead rows' space is reclaimed rather than left readable in the heap."""

        async def delete(connection: Connection) -> None:
            await connection.execute(self._q["delete"], (stream,))
            await connection.execute(self._q["erase_inbox"], (stream,))

        async def vacuum(connection: Connection) -> None:
            await connection.execute(self._q["no_statement_timeout"])  # a large table takes its time
            try:
                await connection.execute(self._q["vacuum"])
            finally:
                await connection.execute(self._q["statement_timeout"])

        await self._run(delete, transaction=True)
        await self._run(vacuum)

    async def import_recorded(self, events: Sequence[RecordedEvent]) -> None:
        """Write recorded events verbatim; they must continue their stream (else ConcurrencyConflict)."""
        if not events:
            return
        stream = check_import(events)
        expected = events[0].version - 1

        async def write(connection: Connection) -> None:
            (current,) = await _one(await connection.execute(self._q["version"], (stream,)))
            if current != expected:
                raise ConcurrencyConflict(stream, expected, current)
            last = await (await connection.execute(self._q["last_causation"], (stream,))).fetchone()
            starts = batch_starts(None if last is None else last[0], (event.causation_id for event in events))
            await self._insert(connection, events, starts)

        try:
            await self._run(write, transaction=True)
        except psycopg.errors.IntegrityError:
            current = await self.current_version(stream)
            if current != expected:
                raise ConcurrencyConflict(stream, expected, current) from None
            raise ValueError(f"import into {stream!r} repeats a causation id of an earlier batch") from None

    async def close(self) -> None:
        """Close the pool's connections."""
        await self._pool.close()

    async def _run(self, work: Callable[[Connection], Awaitable[T]], *, transaction: bool = False) -> T:
        """`work(connection)` on a pooled connection, in a transaction if asked.

        A pooled connection may have died while idle (server restarted, backend terminated): then the pool is
        purged of dead connections and `work` runs once more on a fresh one. Every `work` here may run twice: reads,
        deletes and init_schema are idempotent; a repeated append finds its own batch by causation id; a repeated
        import whose first try did commit reports ConcurrencyConflict (and a copy run again resumes after it).
        psycopg failures other than constraint violations become StoreUnavailable.
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

    async def _batch(
        self, connection: Connection, stream: str, causation_id: str, start: int | None = None
    ) -> tuple[RecordedEvent, ...]:
        """The batch the stream recorded for this causation id (starting at `start` if known), or ()."""
        if start is None:
            cursor = await connection.execute(self._q["probe"], {"stream": stream, "causation": causation_id})
            start, _ = await _one(cursor)
            if start is None:
                return ()
        parameters = {"stream": stream, "start": start, "no_end": _NO_END}
        cursor = await connection.execute(self._q["batch"], parameters)
        return tuple(_recorded(stream, row) for row in await cursor.fetchall())

    async def _rows(self, stream: str, query: sql.Composed, parameters: tuple[Any, ...]) -> list[RecordedEvent]:
        async def rows(connection: Connection) -> list[RecordedEvent]:
            cursor = await connection.execute(query, parameters)
            return [_recorded(stream, row) for row in await cursor.fetchall()]

        return await self._run(rows)

    async def _insert(self, connection: Connection, events: Sequence[RecordedEvent], starts: Sequence[bool]) -> None:
        documents = [event_to_document(event.event) for event in events]
        await connection.execute(
            self._q["insert"],
            (
                events[0].stream,
                [event.version for event in events],
                [event.recorded_at for event in events],
                [event.causation_id for event in events],
                [event.causation_id if start else None for event, start in zip(events, starts, strict=True)],
                [document["type"] for document in documents],
                [document["schema"] for document in documents],
                [json.dumps(document["data"], separators=(",", ":")) for document in documents],
            ),
        )


async def _one(cursor: psycopg.AsyncCursor[tuple[Any, ...]]) -> tuple[Any, ...]:
    row = await cursor.fetchone()
    if row is None:
        raise StoreUnavailable("PostgreSQL returned no row where one was due")
    return row


def _recorded(stream: str, row: tuple[Any, ...]) -> RecordedEvent:
    version, recorded_at, causation_id, name, schema, data = row
    event = event_from_document({"type": name, "schema": schema, "data": data})
    return RecordedEvent(
        stream=stream, version=version, recorded_at=recorded_at.astimezone(UTC), causation_id=causation_id, event=event
    )


def _describe(conninfo: str) -> str:
    """`host:port/dbname` for messages: never the password or the rest of the conninfo."""
    try:
        parts = conninfo_to_dict(conninfo)
    except psycopg.Error:
        return "(malformed conninfo)"
    host = parts.get("host") or parts.get("hostaddr") or "localhost"
    port = parts.get("port") or "5432"
    return f"{host}:{port}/{parts.get('dbname') or parts.get('user') or ''}"


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _version_of(event: RecordedEvent) -> int:
    return event.version
