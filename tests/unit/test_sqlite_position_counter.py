"""SQLite's counter of global positions keeps exactly one row however often the store starts, and a store that an
older version left with several rows is repaired to the highest, so positions keep growing and stay unique."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from adapters.sqlite.store import SqliteEventStore
from domain.events import UserRegistered


def counter_rows(path: Path) -> list[int]:
    with sqlite3.connect(path) as connection:
        return [row[0] for row in connection.execute("SELECT last FROM event_positions")]


async def start(path: Path, stream: str | None = None) -> None:
    store = SqliteEventStore(str(path))
    await store.init_schema()
    if stream is not None:
        await store.append(
            stream, [UserRegistered(user_id=1, username=None, first_name="A", language_code=None)], 0, f"c-{stream}"
        )
    await store.close()


async def test_starting_the_store_again_and_again_keeps_one_counter_row(tmp_path):
    db = tmp_path / "convo.db"
    await start(db, "a")
    for _ in range(4):
        await start(db)
    assert counter_rows(db) == [1]


async def test_extra_counter_rows_left_by_older_versions_are_folded_into_the_highest(tmp_path):
    db = tmp_path / "convo.db"
    await start(db, "a")
    await start(db, "b")
    with sqlite3.connect(db) as connection:
        connection.executemany("INSERT INTO event_positions VALUES (?)", [(1,), (0,)])
    await start(db, "c")
    assert counter_rows(db) == [3]
    with sqlite3.connect(db) as connection:
        positions = [row[0] for row in connection.execute("SELECT position FROM events ORDER BY position")]
    assert positions == [1, 2, 3]
