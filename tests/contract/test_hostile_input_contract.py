"""Any input, however hostile, gets a port's answer from every store (memory, sqlite, postgres, fauna).

Versions of any size, far beyond 64 bits or below zero, are answered as the memory model answers them: a
conflict, or the events the bound selects. Text is held exactly (or as `domain.text.storable` would make it) or
refused with StoreUnavailable, and a refused write leaves nothing behind; text that `storable` leaves unchanged is
always held exactly.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.events import Event, QuestionAsked, RecordedEvent
from domain.ports import ConcurrencyConflict, EventStore, InboxEntry, StoreUnavailable
from domain.text import storable
from tests.contract.strategies import EXTREME_VERSIONS, any_events, any_keys, any_texts, events, texts

T = TypeVar("T")

QUESTIONS = [QuestionAsked(text="one"), QuestionAsked(text="two"), QuestionAsked(text="three")]
EXAMPLES = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
"""One store serves every example of a test; each example works in streams of its own."""
names = itertools.count()


async def read_all(iterator: AsyncIterator[T]) -> list[T]:
    return [item async for item in iterator]


def held(given: object, found: object) -> bool:
    """Whether `found` is `given` as a store may hold it: exactly, or its text as `storable` makes it."""
    if isinstance(given, str):
        return found in (given, storable(given))
    if attrs.has(type(given)):
        fields = attrs.fields(type(given))
        return type(found) is type(given) and all(held(getattr(given, f.name), getattr(found, f.name)) for f in fields)
    if isinstance(given, list | tuple | frozenset):
        return isinstance(found, type(given)) and len(found) == len(given) and all(map(held, given, found))
    return given == found


async def refused_or(call: Awaitable[T]) -> T | None:
    """What the call returns, or None when the store refuses it with StoreUnavailable."""
    try:
        return await call
    except StoreUnavailable:
        return None


@pytest.mark.parametrize("version", EXTREME_VERSIONS)
async def test_a_version_of_any_size_conflicts_or_bounds_a_read_as_in_the_memory_model(
    store: EventStore, version: int
) -> None:
    recorded = list(await store.append("s", QUESTIONS, 0, "c1"))

    with pytest.raises(ConcurrencyConflict) as raised:
        await store.append("s", QUESTIONS[:1], version, "c2")
    assert (raised.value.expected, raised.value.actual) in ((version, 3), (version, None))
    assert await read_all(store.read_forwards("s", version)) == [e for e in recorded if e.version >= version]
    assert await read_all(store.read_backwards("s", version)) == [e for e in recorded[::-1] if e.version < version]
    assert (
        await read_all(store.read_forwards("s", version, limit=1)) == [e for e in recorded if e.version >= version][:1]
    )
    moment = datetime(2001, 2, 3, tzinfo=UTC)
    with pytest.raises(ConcurrencyConflict):
        await store.import_recorded(
            [RecordedEvent(stream="s", version=version, recorded_at=moment, causation_id="i", event=QUESTIONS[0])]
        )
    assert await read_all(store.read_forwards("s", limit=2**64)) == recorded
    assert await read_all(store.read_backwards("s", limit=2**70)) == recorded[::-1]


@EXAMPLES
@given(stream=texts, causation=texts, batch=st.lists(events, min_size=1, max_size=3))
async def test_text_that_storable_leaves_alone_is_held_exactly(
    store: EventStore, stream: str, causation: str, batch: list[Event]
) -> None:
    name = f"{next(names)}:{stream}"

    recorded = await store.append(name, batch, 0, causation)

    assert [event.event for event in recorded] == batch
    assert await read_all(store.read_forwards(name)) == list(recorded)
    assert await store.append(name, batch[:1], 7, causation) == recorded
    await store.delete_stream(name)


@EXAMPLES
@given(stream=any_keys, causation=any_keys, batch=st.lists(any_events, min_size=1, max_size=3))
async def test_any_text_is_held_exactly_or_refused_with_nothing_written(
    store: EventStore, stream: str, causation: str, batch: list[Event]
) -> None:
    name = f"{next(names)}:{stream}"
    streams = await read_all(store.list_streams())

    recorded = await refused_or(store.append(name, batch, 0, causation))

    if recorded is None:
        assert await read_all(store.list_streams()) == streams
        assert await refused_or(store.current_version(name)) in (0, None)
        return
    assert [event.event for event in recorded] == batch
    forwards = await read_all(store.read_forwards(name))
    assert held(list(recorded), forwards)
    assert await read_all(store.read_backwards(name)) == forwards[::-1]
    assert await store.append(name, [], 0, causation) == tuple(forwards)
    await store.delete_stream(name)


@pytest.mark.parametrize("key", ["stream", "causation"])
async def test_a_huge_stream_name_or_causation_id_is_held_exactly_or_refused(
    request: pytest.FixtureRequest, store: EventStore, key: str
) -> None:
    huge = ("שלום 😀 " * 10_000)[:70_000]
    stream, causation = (huge, "c") if key == "stream" else ("s", huge)

    recorded = await refused_or(store.append(stream, QUESTIONS, 0, causation))

    if recorded is None:
        assert await read_all(store.list_streams()) == []
        return
    assert await read_all(store.read_forwards(stream)) == list(recorded)
    assert await store.append(stream, QUESTIONS[:1], 3, causation) == recorded


@EXAMPLES
@given(stream=any_keys, causation=any_keys, batch=st.lists(any_events, min_size=1, max_size=3))
async def test_any_text_is_imported_exactly_or_refused_with_nothing_written(
    store: EventStore, stream: str, causation: str, batch: list[Event]
) -> None:
    name = f"{next(names)}:{stream}"
    moment = datetime(2001, 2, 3, tzinfo=UTC)
    history = [
        RecordedEvent(stream=name, version=version, recorded_at=moment, causation_id=causation, event=event)
        for version, event in enumerate(batch, start=1)
    ]
    streams = await read_all(store.list_streams())

    try:
        await store.import_recorded(history)
    except StoreUnavailable:
        assert await read_all(store.list_streams()) == streams
        return
    assert held(history, await read_all(store.read_forwards(name)))
    await store.delete_stream(name)


@EXAMPLES
@given(chat=st.none() | any_keys, payload=any_texts, update_id=st.integers(min_value=0) | st.integers())
async def test_the_inbox_holds_any_entry_exactly_or_refuses_it(
    store: EventStore, chat: str | None, payload: str, update_id: int
) -> None:
    inbox = store.inbox(f"bot-{next(names)}")
    entry = InboxEntry(update_id=update_id, chat=chat, payload=payload)

    admitted = await refused_or(inbox.admit([entry]))

    unfinished = [attrs_without_time(e) for e in await inbox.unfinished()]
    if admitted is None:
        assert unfinished == []
    else:
        assert admitted == {update_id}
        assert held([entry], unfinished)
    await refused_or(inbox.note_preview(update_id, update_id))
    await refused_or(inbox.claim(update_id, payload, timedelta(seconds=1)))
    await refused_or(inbox.finish(update_id))
    if chat is not None:
        await refused_or(inbox.erase_chat(chat))
    assert await inbox.unfinished() == []


@pytest.mark.parametrize("update_id", [2**31, 2**63 - 1, 2**63, 2**64, -(2**63) - 1])
async def test_an_update_id_of_any_size_is_handled_or_refused(store: EventStore, update_id: int) -> None:
    inbox = store.inbox("1")
    payload = json.dumps({"update_id": update_id})

    admitted = await refused_or(inbox.admit([InboxEntry(update_id=update_id, chat="100", payload=payload)]))

    assert admitted in ({update_id}, None)
    assert [e.update_id for e in await inbox.unfinished()] == ([update_id] if admitted else [])
    assert await refused_or(inbox.claim(update_id, "a", timedelta(seconds=5))) in (bool(admitted), None)
    await refused_or(inbox.finish(update_id))
    assert await inbox.unfinished() == []


def attrs_without_time(entry: InboxEntry) -> InboxEntry:
    return InboxEntry(update_id=entry.update_id, chat=entry.chat, payload=entry.payload, preview=entry.preview)
