"""Group commit: concurrent writes share transactions, fail alone, and are never reported before their commit."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from adapters.sqlite.group_commit import MOST_PER_GROUP, GroupCommit


class Rig:
    """A file database, its one thread, and a count of the COMMITs it ran."""

    def __init__(self, path: Path) -> None:
        self.executor = ThreadPoolExecutor(max_workers=1)
        self.path = path
        self.commits = 0
        self.connection: sqlite3.Connection | None = None

    def connect(self) -> sqlite3.Connection:
        if self.connection is None:
            self.connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self.connection.execute("PRAGMA foreign_keys = ON")
            self.connection.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
            self.connection.execute(
                "CREATE TABLE rows (n INTEGER UNIQUE,"
                " parent INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)"
            )
            self.connection.set_trace_callback(self._saw)
        return self.connection

    def _saw(self, statement: str) -> None:
        self.commits += statement == "COMMIT"

    def rows(self) -> list[int]:
        with sqlite3.connect(self.path) as reader:
            return [n for (n,) in reader.execute("SELECT n FROM rows ORDER BY n")]


@pytest.fixture
def rig(tmp_path) -> Iterator[Rig]:
    rig = Rig(tmp_path / "group.db")
    yield rig
    rig.executor.shutdown(wait=True)


def insert(n: int, parent: int | None = None):
    def work(connection: sqlite3.Connection) -> int:
        connection.execute("INSERT INTO rows (n, parent) VALUES (?, ?)", (n, parent))
        return n

    return work


def translated(error: BaseException) -> BaseException:
    return RuntimeError(f"translated: {error}") if isinstance(error, sqlite3.Error) else error


async def test_concurrent_writes_share_commits_and_each_gets_its_own_result(rig) -> None:
    writes = GroupCommit(rig.executor, rig.connect, translated)
    results = await asyncio.gather(*(writes.write(insert(n)) for n in range(300)))
    assert results == list(range(300))
    assert rig.rows() == list(range(300))
    assert 2 <= rig.commits < 300 / 2  # grouped, and no group above MOST_PER_GROUP
    assert MOST_PER_GROUP < 300


async def test_a_failing_write_rolls_back_alone(rig) -> None:
    writes = GroupCommit(rig.executor, rig.connect, translated)

    def half_then_fail(connection: sqlite3.Connection) -> None:
        connection.execute("INSERT INTO rows (n) VALUES (1000)")
        raise ValueError("conflict")

    outcomes = await asyncio.gather(
        writes.write(insert(1)),
        writes.write(half_then_fail),
        writes.write(insert(1)),
        writes.write(insert(2)),
        return_exceptions=True,
    )
    assert outcomes[0] == 1 and outcomes[3] == 2
    assert isinstance(outcomes[1], ValueError)
    assert isinstance(outcomes[2], RuntimeError) and "UNIQUE" in str(outcomes[2])  # translated sqlite3 error
    assert rig.rows() == [1, 2]


async def test_when_the_commit_fails_every_write_of_the_group_fails_and_nothing_is_written(rig) -> None:
    writes = GroupCommit(rig.executor, rig.connect, translated)
    await writes.write(insert(0))
    orphan = insert(99, parent=12345)  # a deferred foreign key: the statement passes, the COMMIT fails
    outcomes = await asyncio.gather(
        *(writes.write(insert(n)) for n in range(1, 5)), writes.write(orphan), return_exceptions=True
    )
    failed = [o for o in outcomes if isinstance(o, RuntimeError)]
    assert failed and all("FOREIGN KEY" in str(o) for o in failed)
    written = set(rig.rows())
    for n, outcome in zip([1, 2, 3, 4, 99], outcomes, strict=True):
        assert (n in written) == (outcome == n)  # success reported exactly for what was committed
    assert 99 not in written
