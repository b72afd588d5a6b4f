"""The embedded event store: one SQLite file, reached from a dedicated thread so the event loop never blocks.

Schema (created on first use; `init_schema` only forces that first use):

    CREATE TABLE events (
        stream        TEXT    NOT NULL,
        version       INTEGER NOT NULL CHECK (version >= 1),
        recorded_at   TEXT    NOT NULL,   -- ISO 8601 UTC, as the codec writes it
        causation_id  TEXT    NOT NULL,
        causation_key TEXT    CHECK (causation_key IS NULL OR causation_key = causation_id),
        type          TEXT    NOT NULL,
        schema        INTEGER NOT NULL,
        data          TEXT    NOT NULL,   -- the event document's "data", as JSON
        PRIMARY KEY (stream, version)
    );
    CREATE UNIQUE INDEX events_causation ON events (stream, causation_key) WHERE causation_key IS NOT NULL;

`causation_key` is set on the first event of each batch only (the events of one append share its causation id), so
the unique index lets a stream record each causation id's batch once; the primary key keeps versions unique.
Every append checks and writes inside a `BEGIN IMMEDIATE` transaction, which holds SQLite's single write lock
from the first read, so processes sharing the file cannot interleave a check and a write; a constraint violation
(which that lock makes unreachable) is still handled by rolling back and checking again. Appends that wait for the
store's thread together share one transaction, each in its own savepoint (`group_commit.py`).

Durability: WAL journal with `synchronous=FULL`. NORMAL would skip the fsync at each commit and may lose the last
appends on power loss (though never corrupt the file); the bot acknowledges a Telegram update once its events are
appended, so an append must survive power loss; group commit makes that one fsync per group of appends.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, TypeVar

from adapters.sqlite.group_commit import GroupCommit
from adapters.sqlite.inbox import INBOX_TABLE, SqliteInbox
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
from domain.codec import event_from_document, event_to_document, parse_utc
from domain.events import Event, RecordedEvent
from domain.ports import ConcurrencyConflict, LeaseTaken, StoreUnavailable

T = TypeVar("T")

MEMORY = ":memory:"
URL_FORMS = "sqlite:///relative/path.db, sqlite:////absolute/path.db or sqlite://:memory: (optionally ?mode=ro)"
_NO_END = 2**62

_SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS events (
        stream        TEXT    NOT NULL,
        version       INTEGER NOT NULL CHECK (version >= 1),
        recorded_at   TEXT    NOT NULL,
        causation_id  TEXT    NOT NULL,
        causation_key TEXT    CHECK (causation_key IS NULL OR causation_key = causation_id),
        type          TEXT    NOT NULL,
        schema        INTEGER NOT NULL,
        data          TEXT    NOT NULL,
        PRIMARY KEY (stream, version)
    )
    """,
    """
    CREATE UNIQUE INDEX IF NOT EXISTS events_causation
        ON events (stream, causation_key) WHERE causation_key IS NOT NULL
    """,
    INBOX_TABLE,
)
_COLUMNS = "version, recorded_at, causation_id, type, schema, data"
_FORWARDS = f"SELECT {_COLUMNS} FROM events WHERE stream = ? AND version >= ? ORDER BY version LIMIT ?"
_BACKWARDS = f"SELECT {_COLUMNS} FROM events WHERE stream = ? AND version < ? ORDER BY version DESC LIMIT ?"
_VERSION = "SELECT COALESCE(MAX(version), 0) FROM events WHERE stream = ?"
_LAST_CAUSATION = "SELECT causation_id FROM events WHERE stream = ? ORDER BY version DESC LIMIT 1"
_BATCH_START = "SELECT version FROM events WHERE stream = ? AND causation_key = ?"
_BATCH = f"""
SELECT {_COLUMNS} FROM events
WHERE stream = :stream AND version >= :start AND version < COALESCE(
    (SELECT version FROM events
     WHERE stream = :stream AND version > :start AND causation_key IS NOT NULL ORDER BY version LIMIT 1),
    :no_end)
ORDER BY version
"""
_FIRST_STREAM = "SELECT MIN(stream) FROM events"
_NEXT_STREAM = "SELECT MIN(stream) FROM events WHERE stream > ?"
_INSERT = "INSERT INTO events (stream, version, recorded_at, causation_id, causation_key, type, schema, data) " + (
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


def parse_url(url: str) -> tuple[str, bool]:
    """(path, read_only) named by a sqlite URL (see URL_FORMS); ValueError with a short reason for anything else."""
    if not url.startswith("sqlite://"):
        raise ValueError("not a sqlite URL")
    rest, _, query = url.removeprefix("sqlite://").partition("?")
    if query not in ("", "mode=ro", "mode=rw"):
        raise ValueError(f"unsupported sqlite URL option {query!r} (only mode=ro)")
    if rest in (MEMORY, "/" + MEMORY):
        return MEMORY, query == "mode=ro"
    if not rest.startswith("/") or rest in ("/", "//"):
        raise ValueError("malformed sqlite URL (a path needs three slashes, an absolute one four)")
    return rest[1:], query == "mode=ro"


class SqliteEventStore:
    """An EventStore in one SQLite file (or in memory), all sqlite3 work on one dedicated thread."""

    def __init__(
        self,
        path: str | Path,
        *,
        read_only: bool = False,
        now: Callable[[], datetime] = utc_now,
        page_size: int = PAGE_SIZE,
        busy_timeout: float = 5.0,
    ) -> None:
        """A store over `path` (":memory:" for a private in-memory database), opened lazily on first use.

        `read_only` opens an existing file without ever writing (appends raise StoreUnavailable); `busy_timeout`
        is how long to wait for another connection's lock before giving up with StoreUnavailable.
        """
        self._path = str(path)
        self._read_only = read_only
        self._now = now
        self._page_size = check_page_size(page_size)
        self._busy_timeout = busy_timeout
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="convo-sqlite")
        self._writes = GroupCommit(self._executor, self._connect, self._translate)
        self._connection: sqlite3.Connection | None = None
        self._file: tuple[int, int] | None = None
        self._closed = False

    @classmethod
    def from_url(cls, url: str, *, now: Callable[[], datetime] = utc_now) -> SqliteEventStore:
        """The store a `sqlite://` URL names (see URL_FORMS)."""
        path, read_only = parse_url(url)
        return cls(path, read_only=read_only, now=now)

    @property
    def path(self) -> str:
        """The database file (or ":memory:")."""
        return self._path

    @property
    def read_only(self) -> bool:
        """Whether the store opens its file read-only."""
        return self._read_only

    @property
    def clock(self) -> Callable[[], datetime]:
        """The store's clock."""
        return self._now

    @asynccontextmanager
    async def poller_lease(self, bot: str) -> AsyncIterator[None]:
        """An exclusive lock on `<database>-poller-<bot>.lock` beside the file (released when the process dies)."""
        if self._path == MEMORY:
            yield
            return
        lock_path = Path(f"{self._path}-poller-{bot}.lock")
        lock_file = _take_file_lock(lock_path)
        try:
            yield
        finally:
            lock_file.close()

    def inbox(self, bot: str) -> SqliteInbox:
        """The inbox of one bot, in this file."""
        return SqliteInbox(self, bot)

    async def init_schema(self) -> None:
        """Create the file, its directory and the schema if missing (any first use does the same)."""
        await self._run(lambda connection: None)

    async def read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run a read on the store's thread (for the inbox)."""
        return await self._run(work)

    async def write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run a write in the store's next group commit (for the inbox)."""
        if self._closed:
            raise StoreUnavailable(f"SQLite event store {self._path} is closed")
        return await self._writes.write(work)

    async def append(
        self, stream: str, events: Sequence[Event], expected_version: int, causation_id: str
    ) -> tuple[RecordedEvent, ...]:
        """Record a batch, or return the batch this causation already recorded (see EventStore.append)."""
        if not events:
            return await self._run(lambda connection: _batch(connection, stream, causation_id))
        moment = recording_time(self._now)
        documents = [event_to_document(event) for event in events]
        stamp = moment.isoformat()
        rows = [
            (stream, expected_version + offset, stamp, causation_id, causation_id if offset == 1 else None, *columns)
            for offset, columns in enumerate(map(_document_columns, documents), start=1)
        ]
        recorded = new_batch(stream, events, expected_version, moment, causation_id)

        def write(connection: sqlite3.Connection) -> tuple[RecordedEvent, ...]:
            earlier = _batch(connection, stream, causation_id)
            if earlier:
                return earlier
            current = _version(connection, stream)
            if current != expected_version:
                raise ConcurrencyConflict(stream, expected_version, current)
            connection.executemany(_INSERT, rows)
            return recorded

        if self._closed:
            raise StoreUnavailable(f"SQLite event store {self._path} is closed")
        try:
            return await self._writes.write(write)
        except sqlite3.IntegrityError:
            earlier = await self._run(lambda connection: _batch(connection, stream, causation_id))
            if earlier:
                return earlier
            raise ConcurrencyConflict(stream, expected_version, await self.current_version(stream)) from None

    def read_forwards(
        self, stream: str, from_version: int = 1, limit: int | None = None
    ) -> AsyncIterator[RecordedEvent]:
        """Events from `from_version` up, oldest first, at most `limit` of them, a page per query."""

        async def page(after: int | None, size: int) -> list[RecordedEvent]:
            start = from_version if after is None else after + 1
            return await self._run(lambda connection: _rows(connection, stream, _FORWARDS, (stream, start, size)))

        return keyset_pages(page, _version_of, limit, self._page_size)

    def read_backwards(
        self, stream: str, before: int | None = None, limit: int | None = None
    ) -> AsyncIterator[RecordedEvent]:
        """Events below version `before` (or from the end), newest first, at most `limit` of them."""

        async def page(after: int | None, size: int) -> list[RecordedEvent]:
            below = (_NO_END if before is None else before) if after is None else after
            return await self._run(lambda connection: _rows(connection, stream, _BACKWARDS, (stream, below, size)))

        return keyset_pages(page, _version_of, limit, self._page_size)

    async def current_version(self, stream: str) -> int:
        """The newest version of a stream; 0 when it has no events."""
        return await self._run(lambda connection: _version(connection, stream))

    def list_streams(self) -> AsyncIterator[str]:
        """Every stream that has events, in code point order, a page of names per trip to the thread."""

        def names(connection: sqlite3.Connection, after: str | None, size: int) -> list[str]:
            found: list[str] = []
            while len(found) < size:
                if after is None:
                    (name,) = connection.execute(_FIRST_STREAM).fetchone()
                else:
                    (name,) = connection.execute(_NEXT_STREAM, (after,)).fetchone()
                if name is None:
                    break
                found.append(name)
                after = name
            return found

        async def page(after: str | None, size: int) -> list[str]:
            return await self._run(lambda connection: names(connection, after, size))

        return keyset_pages(page, str, None, self._page_size)

    async def delete_stream(self, stream: str) -> None:
        """Erase every event of the stream, and the text of its inbox entries, in one transaction.

        `secure_delete` zeroes what is deleted in the file; the WAL, which still holds the pages as they were, is
        then checkpointed into the file and truncated (unless another process is reading at that moment).
        """

        def delete(connection: sqlite3.Connection) -> None:
            connection.execute("DELETE FROM events WHERE stream = ?", (stream,))
            connection.execute("UPDATE inbox SET payload = NULL, preview = NULL WHERE chat = ?", (stream,))

        def erase(connection: sqlite3.Connection) -> None:
            _in_transaction(connection, delete)
            if self._path != MEMORY:
                connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

        await self._run(erase)

    async def import_recorded(self, events: Sequence[RecordedEvent]) -> None:
        """Write recorded events verbatim; they must continue their stream (else ConcurrencyConflict)."""
        if not events:
            return
        stream = check_import(events)
        expected = events[0].version - 1

        def write(connection: sqlite3.Connection) -> None:
            current = _version(connection, stream)
            if current != expected:
                raise ConcurrencyConflict(stream, expected, current)
            last = connection.execute(_LAST_CAUSATION, (stream,)).fetchone()
            starts = batch_starts(None if last is None else last[0], (event.causation_id for event in events))
            connection.executemany(_INSERT, map(_recorded_row, events, starts))

        try:
            await self._run(lambda connection: _in_transaction(connection, write))
        except sqlite3.IntegrityError:
            current = await self.current_version(stream)
            if current != expected:
                raise ConcurrencyConflict(stream, expected, current) from None
            raise ValueError(f"import into {stream!r} repeats a causation id of an earlier batch") from None

    async def close(self) -> None:
        """Close the connection and stop the thread; later calls raise StoreUnavailable."""
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._disconnect)
        self._executor.shutdown(wait=False)

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run `work` on the store's thread; sqlite3 failures but constraint violations become StoreUnavailable."""
        if self._closed:
            raise StoreUnavailable(f"SQLite event store {self._path} is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._work, work)

    def _work(self, work: Callable[[sqlite3.Connection], T]) -> T:
        try:
            return work(self._connect())
        except (sqlite3.Error, OSError) as error:
            raise self._translate(error) from error

    def _translate(self, error: BaseException) -> BaseException:
        """What callers see of an error: StoreUnavailable for sqlite3 and OS errors but constraint violations."""
        if isinstance(error, sqlite3.IntegrityError):
            return error
        if isinstance(error, sqlite3.Error):
            failure = StoreUnavailable(self._explain(error))
        elif isinstance(error, OSError):
            failure = StoreUnavailable(f"SQLite database {self._path} cannot be created: {error.strerror}")
        else:
            return error
        failure.__cause__ = error
        return failure

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            self._connection = self._open()
            self._file = _identity(self._path)
        elif self._file is not None and _identity(self._path) != self._file:
            # Writing on would put every answer into a file nobody can open again.
            raise sqlite3.OperationalError(
                "file was deleted or replaced while open (restore it, or restart to begin a new one)"
            )
        return self._connection

    def _open(self) -> sqlite3.Connection:
        if self._path == MEMORY:
            connection = sqlite3.connect(MEMORY, isolation_level=None)
        elif self._read_only:
            target = Path(self._path).absolute().as_uri() + "?mode=ro"
            connection = sqlite3.connect(target, uri=True, isolation_level=None, timeout=self._busy_timeout)
        else:
            Path(self._path).parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self._path, isolation_level=None, timeout=self._busy_timeout)
        try:
            connection.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
            connection.execute("PRAGMA secure_delete = ON")
            if not self._read_only:
                connection.execute("PRAGMA journal_mode = WAL")
                connection.execute("PRAGMA synchronous = FULL")
                _in_transaction(connection, _create_schema)
            connection.execute("SELECT 1 FROM events LIMIT 1").fetchall()
        except BaseException:
            connection.close()
            raise
        return connection

    def _disconnect(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _explain(self, error: sqlite3.Error) -> str:
        code = getattr(error, "sqlite_errorname", "")
        if code.startswith("SQLITE_BUSY") or code.startswith("SQLITE_LOCKED"):
            why = f"is locked by another connection (gave up after {self._busy_timeout:g} s)"
        elif code.startswith("SQLITE_READONLY"):
            why = "is read-only"
        elif code.startswith("SQLITE_CANTOPEN"):
            why = "cannot be opened"
        elif code == "SQLITE_ERROR" and "no such table" in str(error):
            why = "has no events table (open it once without mode=ro to create it)"
        else:
            why = f"failed: {error}"
        return f"SQLite database {self._path} {why}; nothing was written"


def _identity(path: str) -> tuple[int, int] | None:
    """(device, inode) of the database file; None in memory or when it is gone."""
    if path == MEMORY:
        return None
    try:
        found = os.stat(path)
    except FileNotFoundError:
        return (-1, -1)
    return found.st_dev, found.st_ino


def _take_file_lock(path: Path) -> IO[str]:
    """The open lock file, exclusively locked by this process; LeaseTaken if another process holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock_file = path.open("a")
    try:
        fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock_file.close()
        raise LeaseTaken(f"{path} is locked by another process") from None
    return lock_file


def _in_transaction(connection: sqlite3.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
    """Run `work` inside BEGIN IMMEDIATE ... COMMIT, rolling back on any failure."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        result = work(connection)
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise
    return result


def _create_schema(connection: sqlite3.Connection) -> None:
    for statement in _SCHEMA:
        connection.execute(statement)


def _version(connection: sqlite3.Connection, stream: str) -> int:
    (version,) = connection.execute(_VERSION, (stream,)).fetchone()
    return int(version)


def _batch(connection: sqlite3.Connection, stream: str, causation_id: str) -> tuple[RecordedEvent, ...]:
    """The batch the stream recorded for this causation id, or ()."""
    found = connection.execute(_BATCH_START, (stream, causation_id)).fetchone()
    if found is None:
        return ()
    parameters = {"stream": stream, "start": found[0], "no_end": _NO_END}
    return tuple(_rows(connection, stream, _BATCH, parameters))


def _rows(connection: sqlite3.Connection, stream: str, query: str, parameters: Any) -> list[RecordedEvent]:
    return [_recorded(stream, row) for row in connection.execute(query, parameters)]


def _recorded(stream: str, row: tuple[Any, ...]) -> RecordedEvent:
    version, recorded_at, causation_id, name, schema, data = row
    event = event_from_document({"type": name, "schema": schema, "data": json.loads(data)})
    return RecordedEvent(
        stream=stream, version=version, recorded_at=parse_utc(recorded_at), causation_id=causation_id, event=event
    )


def _document_columns(document: dict[str, Any]) -> tuple[str, int, str]:
    data = json.dumps(document["data"], ensure_ascii=False, separators=(",", ":"))
    return document["type"], document["schema"], data


def _recorded_row(event: RecordedEvent, starts_batch: bool) -> tuple[Any, ...]:
    key = event.causation_id if starts_batch else None
    columns = _document_columns(event_to_document(event.event))
    return (
        event.stream,
        event.version,
        event.recorded_at.astimezone(UTC).isoformat(),
        event.causation_id,
        key,
        *columns,
    )


def _version_of(event: RecordedEvent) -> int:
    return event.version
