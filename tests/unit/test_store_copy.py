"""copy_store: every stream verbatim, resumable, idempotent."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from adapters.memory.store import MemoryEventStore
from adapters.sqlite.store import SqliteEventStore
from domain.events import ConversationReset, Event, ModeSelected, QuestionAsked, RecordedEvent, UserRegistered
from domain.ports import EventStore
from service.store_copy import CopyMismatch, CopyReport, copy_store


async def read_all(iterator: AsyncIterator[RecordedEvent]) -> list[RecordedEvent]:
    return [event async for event in iterator]


async def contents(store: EventStore) -> dict[str, list[RecordedEvent]]:
    return {stream: await read_all(store.read_forwards(stream)) async for stream in store.list_streams()}


async def fill(store: EventStore) -> None:
    """Three streams: a long one (1,234 events, batches of 3), a short one, and one emptied by a delete."""
    user = UserRegistered(user_id=1, username=None, first_name="Ann", language_code=None)
    await store.append("tg:1", [user, QuestionAsked(text="hi")], 0, "tg:update:1")
    for number in range(2, 2 + 1_232 // 3 + 1):
        events: list[Event] = [QuestionAsked(text=f"q{number}"), ModeSelected(mode="chat"), ConversationReset()]
        version = await store.current_version("tg:1")
        await store.append("tg:1", events[: min(3, 1_234 - version)], version, f"tg:update:{number}")
    await store.append("tg:2", [user], 0, "tg:update:1")
    await store.append("tg:3", [user], 0, "tg:update:9")
    await store.delete_stream("tg:3")


@pytest.fixture
async def source(tmp_path: Path) -> AsyncIterator[SqliteEventStore]:
    """A SQLite store holding what `fill` makes (made in memory first: a thousand fsyncs would be slow)."""
    made = MemoryEventStore()
    await fill(made)
    store = SqliteEventStore(tmp_path / "source.db")
    for events in (await contents(made)).values():
        await store.import_recorded(events)
    await store.delete_stream("tg:3")
    yield store
    await store.close()


@pytest.fixture
async def sqlite_target(tmp_path: Path) -> AsyncIterator[SqliteEventStore]:
    store = SqliteEventStore(tmp_path / "target" / "copy.db")
    yield store
    await store.close()


async def test_sqlite_to_sqlite_copies_everything_verbatim(
    source: SqliteEventStore, sqlite_target: SqliteEventStore
) -> None:
    told: list[tuple[str, int]] = []

    report = await copy_store(source, sqlite_target, lambda stream, count: told.append((stream, count)))

    assert report == CopyReport(streams_seen=2, streams_copied=2, events_copied=1_235)
    assert await contents(sqlite_target) == await contents(source)
    assert await source.current_version("tg:1") == 1_234
    assert told == [("tg:1", 500), ("tg:1", 500), ("tg:1", 234), ("tg:2", 1)]


async def test_sqlite_to_memory_keeps_causation_batches(source: SqliteEventStore) -> None:
    target = MemoryEventStore()

    await copy_store(source, target)

    assert await contents(target) == await contents(source)
    first = await target.append("tg:1", [QuestionAsked(text="again")], 0, "tg:update:1")
    assert [event.version for event in first] == [1, 2]
    middle = await target.append("tg:1", [QuestionAsked(text="again")], 0, "tg:update:170")
    assert [event.version for event in middle] == [507, 508, 509]


async def test_copying_twice_copies_nothing_new(source: SqliteEventStore, sqlite_target: SqliteEventStore) -> None:
    await copy_store(source, sqlite_target)
    told: list[tuple[str, int]] = []

    again = await copy_store(source, sqlite_target, lambda stream, count: told.append((stream, count)))

    assert again == CopyReport(streams_seen=2, streams_copied=0, events_copied=0)
    assert told == [("tg:1", 0), ("tg:2", 0)]
    assert await contents(sqlite_target) == await contents(source)


class FailingAfter:
    """Wraps a store; its import_recorded fails after `allowed` successful calls (an interrupted copy)."""

    def __init__(self, store: EventStore, allowed: int) -> None:
        self.store = store
        self.allowed = allowed

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)

    async def import_recorded(self, events: Sequence[RecordedEvent]) -> None:
        if self.allowed == 0:
            raise ConnectionError("interrupted")
        self.allowed -= 1
        await self.store.import_recorded(events)


async def test_an_interrupted_copy_resumes_where_it_stopped(
    source: SqliteEventStore, sqlite_target: SqliteEventStore
) -> None:
    with pytest.raises(ConnectionError):
        await copy_store(source, FailingAfter(sqlite_target, allowed=2))  # type: ignore[arg-type]
    assert await sqlite_target.current_version("tg:1") == 1_000

    report = await copy_store(source, sqlite_target, batch_size=100)

    assert report == CopyReport(streams_seen=2, streams_copied=2, events_copied=235)
    assert await contents(sqlite_target) == await contents(source)


async def test_a_partial_copy_made_by_hand_is_completed(
    source: SqliteEventStore, sqlite_target: SqliteEventStore
) -> None:
    await sqlite_target.import_recorded(await read_all(source.read_forwards("tg:1", limit=7)))

    report = await copy_store(source, sqlite_target)

    assert report.events_copied == 1_235 - 7
    assert await contents(sqlite_target) == await contents(source)


async def test_a_destination_with_other_data_is_refused(source: SqliteEventStore) -> None:
    target = MemoryEventStore()
    await target.append("tg:2", [QuestionAsked(text="not the source's")], 0, "other")

    with pytest.raises(CopyMismatch, match="'tg:2'"):
        await copy_store(source, target)


async def test_a_destination_ahead_of_the_source_is_refused(source: SqliteEventStore) -> None:
    target = MemoryEventStore()
    await target.import_recorded(await read_all(source.read_forwards("tg:2")))
    await target.append("tg:2", [QuestionAsked(text="newer")], 1, "later")

    with pytest.raises(CopyMismatch, match="past the source's end"):
        await copy_store(source, target)
