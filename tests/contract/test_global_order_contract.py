"""The global order every store gives its events, for projections that read all streams (the usage ledger).

Each recorded event has a position; `read_all` pages through the events after a position. Every event is seen
once, in a total order consistent with each stream's versions, including while writers append concurrently, and a
position is never reused (not after a stream is erased either).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from domain.events import ModeSelected, QuestionAsked, RecordedEvent, UserRegistered
from domain.ports import ConcurrencyConflict, EventStore, Positioned

PAGE = 3


async def add(store: EventStore, stream: str, events: list, version: int) -> None:
    """Append at `version`, caused by this stream's append at that version."""
    await store.append(stream, events, version, f"{stream}@{version}")


def registered(user: int) -> UserRegistered:
    return UserRegistered(user_id=user, username=None, first_name="U", language_code=None)


async def read_everything(store: EventStore, after: str | None = None, limit: int = PAGE) -> list[Positioned]:
    """Every event after `after`, page by page, as a projection catching up reads them."""
    seen: list[Positioned] = []
    while True:
        page = [item async for item in store.read_all(after, limit)]
        seen += page
        if len(page) < limit:
            return seen
        after = page[-1].position


def keys(items: list[Positioned]) -> list[tuple[str, int]]:
    return [(item.recorded.stream, item.recorded.version) for item in items]


def assert_consistent(items: list[Positioned]) -> None:
    """No event twice, and each stream's events in version order."""
    assert len(set(keys(items))) == len(items)
    last: dict[str, int] = {}
    for stream, version in keys(items):
        assert version > last.get(stream, 0), (stream, version)
        last[stream] = version


async def test_every_event_is_read_once_in_an_order_consistent_with_each_stream(store: EventStore) -> None:
    for round_ in range(3):
        for stream in ("a", "b", "c"):
            events = [registered(1)] if round_ == 0 else [QuestionAsked(text=f"{stream}{round_}")]
            await add(store, stream, events, round_)
    items = await read_everything(store)
    assert sorted(keys(items)) == sorted((s, v) for s in "abc" for v in (1, 2, 3))
    assert_consistent(items)
    assert [item async for item in store.read_all(items[-1].position, PAGE)] == []
    assert isinstance(items[0].recorded, RecordedEvent)


async def test_a_position_gives_exactly_what_came_after_it(store: EventStore) -> None:
    await add(store, "a", [registered(1), ModeSelected(mode="image")], 0)
    first = await read_everything(store)
    await add(store, "b", [registered(2)], 0)
    await add(store, "a", [QuestionAsked(text="later")], 2)
    later = await read_everything(store, first[-1].position)
    assert sorted(keys(later)) == [("a", 3), ("b", 1)]
    assert keys(await read_everything(store)) == keys(first) + keys(later)


async def test_an_erased_streams_events_vanish_and_positions_are_never_reused(store: EventStore) -> None:
    await add(store, "a", [registered(1), QuestionAsked(text="one")], 0)
    await add(store, "b", [registered(2)], 0)
    checkpoint = (await read_everything(store))[-1].position
    await store.delete_stream("a")
    await store.delete_stream("b")
    await add(store, "a", [registered(1)], 0)
    assert keys(await read_everything(store, checkpoint)) == [("a", 1)]
    assert keys(await read_everything(store)) == [("a", 1)]


async def test_imported_events_take_positions_too(store: EventStore) -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    copied = [
        RecordedEvent(stream="x", version=v, recorded_at=at, causation_id=f"c{v}", event=e)
        for v, e in ((1, registered(5)), (2, QuestionAsked(text="copied")))
    ]
    await store.import_recorded(copied)
    assert [item.recorded for item in await read_everything(store)] == copied


async def test_concurrent_writers_and_a_catching_up_reader_see_every_event_exactly_once(store: EventStore) -> None:
    """Writers race on their own streams and on a shared one while a reader keeps catching up from its last
    position: once they stop, the reader has seen every recorded event, once, in stream order."""
    seen: list[Positioned] = []
    done = asyncio.Event()

    async def reader() -> None:
        position: str | None = None
        while True:
            finished = done.is_set()
            page = await read_everything(store, position)
            seen.extend(page)
            position = page[-1].position if page else position
            if finished:
                return
            await asyncio.sleep(0)

    async def writer(stream: str, count: int) -> None:
        for version in range(count):
            events = [registered(1)] if version == 0 else [QuestionAsked(text=f"{stream}-{version}")]
            await add(store, stream, events, version)

    async def contender(name: str, count: int) -> None:
        for index in range(count):
            while True:
                version = await store.current_version("shared")
                try:
                    await store.append("shared", [QuestionAsked(text=f"{name}-{index}")], version, f"{name}-{index}")
                    break
                except ConcurrencyConflict:
                    await asyncio.sleep(0)

    reading = asyncio.create_task(reader())
    await asyncio.gather(
        *(writer(f"w{n}", 8) for n in range(6)),
        *(contender(f"c{n}", 5) for n in range(3)),
    )
    done.set()
    await reading
    assert_consistent(seen)
    everything = await read_everything(store)
    assert sorted(keys(seen)) == sorted(keys(everything))
    assert len(everything) == 6 * 8 + 3 * 5
