"""Group commit: appends that wait for the store's thread together are written in one transaction, one fsync.

With `synchronous=FULL` every commit waits for the disk (~5 ms here), so one transaction per append caps a store
at ~200 appends/s whatever the CPU. Here each append joins a queue and asks the store's thread to drain it; the
first drain to run takes every append queued by then, runs each in a savepoint of one `BEGIN IMMEDIATE`
transaction (an append that fails, say on a concurrency conflict, rolls back alone), commits once, and only then
tells each caller its result. Nothing is reported written before its commit; if the commit fails, every append of
the group fails and nothing of it was written. Alone, an append costs what it did before: a group of one.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any, Generic, TypeVar

T = TypeVar("T")

MOST_PER_GROUP = 256
"""Appends committed together at most (bounds one transaction's time and memory)."""

Work = Callable[[sqlite3.Connection], Any]


class _Queued(Generic[T]):
    __slots__ = ("future", "loop", "work")

    def __init__(self, work: Callable[[sqlite3.Connection], T], loop: asyncio.AbstractEventLoop) -> None:
        self.work = work
        self.loop = loop
        self.future: asyncio.Future[T] = loop.create_future()


class GroupCommit:
    """Writes run on one executor thread, committed in groups (see the module's docstring)."""

    def __init__(
        self,
        executor: Executor,
        connect: Callable[[], sqlite3.Connection],
        translate: Callable[[BaseException], BaseException],
    ) -> None:
        """`connect` runs on the thread; `translate` maps an sqlite3 or OS error to what callers should see."""
        self._executor = executor
        self._connect = connect
        self._translate = translate
        self._queue: deque[_Queued[Any]] = deque()

    async def write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run `work` inside a transaction shared with the other writes queued with it; its result once committed."""
        queued = _Queued(work, asyncio.get_running_loop())
        self._queue.append(queued)
        self._executor.submit(self._drain)
        return await queued.future

    def _drain(self) -> None:
        """On the thread: commit whatever is queued, group by group, until nothing is."""
        while self._queue:
            group = [self._queue.popleft() for _ in range(min(len(self._queue), MOST_PER_GROUP))]
            for queued, (result, error) in zip(group, self._commit(group), strict=True):
                queued.loop.call_soon_threadsafe(_settle, queued.future, result, error)

    def _commit(self, group: list[_Queued[Any]]) -> list[tuple[Any, BaseException | None]]:
        outcomes: list[tuple[Any, BaseException | None]] = []
        try:
            connection = self._connect()
            connection.execute("BEGIN IMMEDIATE")
            try:
                outcomes = [_in_savepoint(connection, queued.work) for queued in group]
                connection.execute("COMMIT")
            except BaseException:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise
        except (sqlite3.Error, OSError) as error:
            failure = self._translate(error)
            return [(None, failure)] * len(group)
        return [(result, None if error is None else self._translate(error)) for result, error in outcomes]


def _in_savepoint(connection: sqlite3.Connection, work: Work) -> tuple[Any, BaseException | None]:
    """One write's result, or its error with its changes rolled back (the transaction goes on)."""
    connection.execute("SAVEPOINT one_write")
    try:
        result = work(connection)
    except Exception as error:
        connection.execute("ROLLBACK TO one_write")
        connection.execute("RELEASE one_write")
        return None, error
    connection.execute("RELEASE one_write")
    return result, None


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():  # the caller was cancelled; what was committed stays committed
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)
