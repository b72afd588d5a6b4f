"""The embedded event store: one SQLite file, reached from a dedicated thread so the event loop never blocks.

The tables, statements and append logic are the SQL core's (`adapters.sql`); this module holds what is SQLite's
own: the file and its one connection, the thread, group commit and the meaning of SQLite's errors. The schema is
created on first use (`init_schema` only forces that first use).

Every write checks and writes inside a `BEGIN IMMEDIATE` transaction, which holds SQLite's single write lock from
the first read, so processes sharing the file cannot interleave a check and a write; a constraint violation (which
that lock makes unreachable) is still handled by rolling back and checking again. Appends and inbox writes that
wait for the store's thread together share one transaction, each in its own savepoint (`group_commit.py`).

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
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import IO, Any, TypeVar

from adapters.sql.ledger import ledger_tables
from adapters.sql.schema import SQLITE, events_table, global_order, inbox_table
from adapters.sql.statements import Change, Mode, Parameters, Rows, Script, Step, render
from adapters.sql.store import SqlEventStore
from adapters.sqlite.group_commit import GroupCommit
from adapters.sqlite.inbox import SqliteInbox
from adapters.store_rules import PAGE_SIZE, utc_now
from domain.ports import LeaseTaken, StoreUnavailable

T = TypeVar("T")

MEMORY = ":memory:"
URL_FORMS = "sqlite:///relative/path.db, sqlite:////absolute/path.db or sqlite://:memory: (optionally ?mode=ro)"
_SCHEMA = (
    *events_table(SQLITE, "events"),
    inbox_table(SQLITE, "inbox"),
    *ledger_tables(SQLITE, "ledger", "ledger_checkpoint"),
)
_REFUSED = (UnicodeEncodeError, OverflowError)
"""What sqlite3 raises for a value it cannot bind: text that is not UTF-8 (a lone surrogate), an int beyond 64 bits."""


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


class SqliteEventStore(SqlEventStore):
    """An EventStore in one SQLite file (or in memory), all sqlite3 work on one dedicated thread."""

    violation = sqlite3.IntegrityError

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
        super().__init__(SQLITE, render(SQLITE, "events", "inbox"), now, page_size)
        self._path = str(path)
        self._read_only = read_only
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
        """Run a read on the store's thread."""
        return await self._run(work)

    async def run(self, script: Callable[[], Script[T]], mode: Mode) -> T:
        """Run a script on the store's thread: writes in the next group commit, ALONE in a transaction of its own."""
        if mode is Mode.READ:
            return await self._run(lambda connection: _drive(connection, script()))
        if mode is Mode.ALONE:
            return await self._run(lambda connection: _in_transaction(connection, script))
        if self._closed:
            raise StoreUnavailable(f"SQLite event store {self._path} is closed")
        return await self._writes.write(lambda connection: _drive(connection, script()))

    async def reclaim(self) -> None:
        """`secure_delete` has zeroed what was deleted in the file; the WAL, which still holds the pages as they
        were, is checkpointed into the file and truncated (unless another process is reading at that moment)."""
        if self._path != MEMORY:
            await self._run(lambda connection: connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall())

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
        except (sqlite3.Error, OSError, *_REFUSED) as error:
            raise self._translate(error) from error

    def _translate(self, error: BaseException) -> BaseException:
        """What callers see of an error: StoreUnavailable for sqlite3 and OS errors but constraint violations."""
        if isinstance(error, sqlite3.IntegrityError):
            return error
        if isinstance(error, sqlite3.Error):
            failure = StoreUnavailable(self._explain(error))
        elif isinstance(error, OSError):
            failure = StoreUnavailable(f"SQLite database {self._path} cannot be created: {error.strerror}")
        elif isinstance(error, _REFUSED):
            failure = StoreUnavailable(f"SQLite database {self._path} refused a value ({error}); nothing was written")
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


def _in_transaction(connection: sqlite3.Connection, script: Callable[[], Script[T]]) -> T:
    """Run a script inside BEGIN IMMEDIATE ... COMMIT, rolling back on any failure."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        result = _drive(connection, script())
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise
    return result


def _create_schema() -> Script[None]:
    for statement in _SCHEMA:
        yield Change(statement, {})
    columns = yield Rows("SELECT name FROM pragma_table_info('events')", {})
    if ("position",) not in columns:  # made before positions: they follow the rows' insertion order
        yield Change("ALTER TABLE events ADD COLUMN position INTEGER", {})
        yield Change("UPDATE events SET position = rowid", {})
    for statement in global_order(SQLITE, "events", "event_positions"):
        yield Change(statement, {})


def _drive(connection: sqlite3.Connection, script: Script[T]) -> T:
    """Execute the script's steps one after another; what it returns."""
    try:
        step = next(script)
        while True:
            step = script.send(_execute(connection, step))
    except StopIteration as done:
        result: T = done.value
        return result


def _execute(connection: sqlite3.Connection, step: Step) -> Any:
    if isinstance(step, Rows):
        return connection.execute(step.statement, _bound(step.parameters)).fetchall()
    if isinstance(step, Change):
        return connection.execute(step.statement, _bound(step.parameters)).rowcount
    connection.executemany(step.statement, step.rows)
    return None


def _bound(parameters: Parameters) -> Parameters:
    """SQLite has no arrays: a list goes as JSON text, which a statement reads with json_each."""
    if not any(isinstance(value, list) for value in parameters.values()):
        return parameters
    return {name: json.dumps(value) if isinstance(value, list) else value for name, value in parameters.items()}
