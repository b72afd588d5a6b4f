"""What only the SQLite store promises: its URL forms, WAL, its own thread, clear errors when locked or read-only."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.sqlite.store import SqliteEventStore
from domain.events import QuestionAsked, RecordedEvent, UserRegistered
from domain.ports import ConcurrencyConflict, InboxEntry, StoreUnavailable

QUESTIONS = [QuestionAsked(text="one"), QuestionAsked(text="two"), QuestionAsked(text="three")]


async def read_all(iterator: AsyncIterator[RecordedEvent]) -> list[RecordedEvent]:
    return [event async for event in iterator]


@pytest.fixture
async def file_store(tmp_path: Path) -> AsyncIterator[SqliteEventStore]:
    store = SqliteEventStore(tmp_path / "events.db", busy_timeout=0.2)
    yield store
    await store.close()


async def test_a_relative_url_creates_the_file_and_its_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = SqliteEventStore.from_url("sqlite:///data/nested/convo.db")
    try:
        await store.append("s", QUESTIONS, 0, "c")
    finally:
        await store.close()

    assert (tmp_path / "data" / "nested" / "convo.db").is_file()
    with sqlite3.connect(tmp_path / "data" / "nested" / "convo.db") as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert raw.execute("SELECT count(*) FROM events").fetchone() == (3,)


async def test_an_absolute_url_and_memory(tmp_path: Path) -> None:
    absolute = SqliteEventStore.from_url(f"sqlite:///{tmp_path}/abs.db")
    memory = SqliteEventStore.from_url("sqlite://:memory:")
    try:
        for store in (absolute, memory):
            await store.append("s", QUESTIONS, 0, "c")
            assert await store.current_version("s") == 3
    finally:
        await absolute.close()
        await memory.close()
    assert absolute.path == f"{tmp_path}/abs.db"
    assert (tmp_path / "abs.db").is_file()


async def test_a_locked_database_is_unavailable_and_gets_no_partial_batch(
    file_store: SqliteEventStore, tmp_path: Path
) -> None:
    await file_store.append("s", QUESTIONS[:1], 0, "c1")
    holder = sqlite3.connect(tmp_path / "events.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreUnavailable, match="is locked"):
            await file_store.append("s", QUESTIONS, 1, "c2")
    finally:
        holder.execute("ROLLBACK")
        holder.close()

    assert [event.version for event in await read_all(file_store.read_forwards("s"))] == [1]
    assert [event.version for event in await file_store.append("s", QUESTIONS, 1, "c2")] == [2, 3, 4]


async def test_waiting_for_a_lock_does_not_block_the_event_loop(tmp_path: Path) -> None:
    store = SqliteEventStore(tmp_path / "events.db", busy_timeout=0.5)
    await store.init_schema()
    holder = sqlite3.connect(tmp_path / "events.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    counting = asyncio.create_task(ticker())
    started = time.monotonic()
    try:
        with pytest.raises(StoreUnavailable):
            await store.append("s", QUESTIONS, 0, "c")
    finally:
        counting.cancel()
        holder.execute("ROLLBACK")
        holder.close()
        await store.close()
    assert time.monotonic() - started >= 0.4
    assert ticks >= 20


async def test_a_read_only_database_refuses_writes_clearly(tmp_path: Path) -> None:
    writer = SqliteEventStore(tmp_path / "events.db")
    await writer.append("s", QUESTIONS, 0, "c")
    await writer.close()
    reader = SqliteEventStore.from_url(f"sqlite:///{tmp_path}/events.db?mode=ro")
    try:
        assert reader.read_only
        with pytest.raises(StoreUnavailable, match="read-only"):
            await reader.append("s", QUESTIONS, 3, "c2")
        with pytest.raises(StoreUnavailable, match="read-only"):
            await reader.delete_stream("s")
        assert [event.version for event in await read_all(reader.read_forwards("s"))] == [1, 2, 3]
    finally:
        await reader.close()


async def test_a_path_that_cannot_be_created_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    store = SqliteEventStore(tmp_path / "a-file" / "events.db")
    try:
        with pytest.raises(StoreUnavailable, match="cannot be created"):
            await store.current_version("s")
    finally:
        await store.close()


async def test_a_missing_read_only_file_is_unavailable(tmp_path: Path) -> None:
    store = SqliteEventStore(tmp_path / "missing.db", read_only=True)
    try:
        with pytest.raises(StoreUnavailable, match="cannot be opened"):
            await store.current_version("s")
    finally:
        await store.close()
    assert not (tmp_path / "missing.db").exists()


async def test_a_closed_store_is_unavailable(file_store: SqliteEventStore) -> None:
    await file_store.close()
    await file_store.close()
    with pytest.raises(StoreUnavailable, match="closed"):
        await file_store.current_version("s")


async def test_two_stores_on_one_file_race_like_two_processes(tmp_path: Path) -> None:
    stores = [SqliteEventStore(tmp_path / "shared.db"), SqliteEventStore(tmp_path / "shared.db")]
    await stores[0].init_schema()

    async def appender(number: int) -> int:
        store, expected, conflicts = stores[number % 2], 0, 0
        while True:
            try:
                await store.append("race", [QuestionAsked(text=str(number))], expected, f"c{number}")
                return conflicts
            except ConcurrencyConflict:
                conflicts += 1
                expected = await store.current_version("race")

    try:
        conflicts = await asyncio.gather(*(appender(number) for number in range(40)))
        same = await asyncio.gather(*(stores[n % 2].append("one", QUESTIONS, 0, "same") for n in range(20)))
        recorded = await read_all(stores[1].read_forwards("race"))
    finally:
        for store in stores:
            await store.close()
    assert [event.version for event in recorded] == list(range(1, 41))
    assert sum(1 for count in conflicts if count) == 39
    assert len(set(same)) == 1


async def test_old_schema_rows_are_upcast_on_read(file_store: SqliteEventStore, tmp_path: Path) -> None:
    await file_store.init_schema()
    with sqlite3.connect(tmp_path / "events.db") as raw:
        raw.execute(
            "INSERT INTO events (stream, version, recorded_at, causation_id, causation_key, type, schema, data) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                "s",
                1,
                "2020-01-01T00:00:00+00:00",
                "c",
                "c",
                "UserRegistered",
                1,
                '{"user_id":7,"username":null,"first_name":"Old"}',
            ),
        )
    (event,) = await read_all(file_store.read_forwards("s"))
    assert event.event == UserRegistered(user_id=7, username=None, first_name="Old", language_code=None)


async def test_a_database_file_deleted_while_open_refuses_writes_instead_of_losing_them(tmp_path: Path) -> None:
    store = SqliteEventStore(tmp_path / "events.db")
    try:
        await store.append("s", QUESTIONS, 0, "c")
        for suffix in ("", "-wal", "-shm"):
            (tmp_path / f"events.db{suffix}").unlink(missing_ok=True)
        with pytest.raises(StoreUnavailable, match="deleted or replaced"):
            await store.append("s", QUESTIONS, 2, "c2")
        with pytest.raises(StoreUnavailable, match="deleted or replaced"):
            await store.current_version("s")
    finally:
        await store.close()


async def test_an_erased_stream_leaves_no_trace_in_the_database_file_or_its_wal(tmp_path: Path) -> None:
    """secure_delete zeroes the erased rows and the WAL is checkpointed and truncated after an erase."""
    marker = "erase-me-7f3a9c"
    store = SqliteEventStore(tmp_path / "events.db")
    try:
        await store.append("gone", [QuestionAsked(text=f"{marker} " * 50)], 0, "c1")
        await store.inbox("1").admit([InboxEntry(update_id=1, chat="gone", payload=f'{{"text": "{marker}"}}')])
        await store.append("kept", [QuestionAsked(text="keep this")], 0, "c2")
        await store.delete_stream("gone")
        files = sorted(tmp_path.glob("events.db*"))
        assert files, "no database file"
        assert all(marker.encode() not in file.read_bytes() for file in files), [f.name for f in files]
        assert [e.version for e in await read_all(store.read_forwards("kept"))] == [1]
        # this machine's SQLite zeroes deleted content by default; the store asks for it on any build
        assert await store.read(lambda connection: connection.execute("PRAGMA secure_delete").fetchone()) == (1,)
    finally:
        await store.close()


async def test_a_file_made_before_positions_gets_them_in_insertion_order_and_new_events_follow(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    old.execute(
        "CREATE TABLE events (stream TEXT NOT NULL, version INTEGER NOT NULL, recorded_at TEXT NOT NULL, "
        "causation_id TEXT NOT NULL, causation_key TEXT, type TEXT NOT NULL, schema INTEGER NOT NULL, "
        "data TEXT NOT NULL, PRIMARY KEY (stream, version))"
    )
    for stream, version, text in (("b", 1, "first"), ("a", 1, "second"), ("b", 2, "third")):
        old.execute(
            "INSERT INTO events VALUES (?, ?, '2026-01-01T00:00:00+00:00', ?, ?, 'QuestionAsked', 1, ?)",
            (stream, version, f"c{text}", f"c{text}", f'{{"text": "{text}"}}'),
        )
    old.commit()
    old.close()
    store = SqliteEventStore(path)
    try:
        await store.init_schema()
        await store.delete_stream("b")  # the newest positions go: they are not given again
        await store.append("c", [QuestionAsked(text="fourth")], 0, "c4")
        seen = [item async for item in store.read_all(None, 10)]
    finally:
        await store.close()
    assert [item.recorded.event.text for item in seen] == ["second", "fourth"]
    assert [int(item.position) for item in seen] == [2, 4]
