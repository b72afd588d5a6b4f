"""Opt-in: a short round trip against a real, self-hosted Fauna node (the double stands in for it everywhere else).

Enable with FAUNA_LIVE_ENDPOINT (e.g. http://localhost:8443) and FAUNA_LIVE_SECRET (the secret of a key for a
scratch database: the test creates the schema there and deletes only the stream it wrote), then run
`pytest -m live_fauna tests/contract/test_fauna_live.py`.
"""

from __future__ import annotations

import os
import uuid

import pytest

from adapters.fauna.store import FaunaEventStore
from domain.events import ConversationReset, Event, QuestionAsked, UserRegistered
from domain.ports import ConcurrencyConflict

ENDPOINT = os.environ.get("FAUNA_LIVE_ENDPOINT", "")
SECRET = os.environ.get("FAUNA_LIVE_SECRET", "")

pytestmark = [
    pytest.mark.live_fauna,
    pytest.mark.skipif(
        not (ENDPOINT and SECRET),
        reason="live Fauna test: set FAUNA_LIVE_ENDPOINT (e.g. http://localhost:8443) and FAUNA_LIVE_SECRET "
        "(a key's secret for a scratch database on a self-hosted Fauna node) to run it",
    ),
]


async def test_append_read_and_delete_on_a_real_node() -> None:
    store = FaunaEventStore(SECRET, ENDPOINT, timeout=30)
    stream = f"live-test:{uuid.uuid4()}"
    try:
        await store.init_schema()
        try:
            await _round_trip(store, stream)
        finally:
            await store.delete_stream(stream)
        assert await store.current_version(stream) == 0
        assert [event async for event in store.read_forwards(stream)] == []
    finally:
        await store.close()


async def _round_trip(store: FaunaEventStore, stream: str) -> None:
    batch: list[Event] = [
        UserRegistered(user_id=1, username=None, first_name="Ann", language_code="en"),
        QuestionAsked(text="hi ü😀"),
    ]

    recorded = await store.append(stream, batch, 0, "live:1")
    assert [event.version for event in recorded] == [1, 2]
    assert await store.append(stream, [ConversationReset()], 0, "live:1") == recorded
    with pytest.raises(ConcurrencyConflict):
        await store.append(stream, [ConversationReset()], 0, "live:2")
    await store.append(stream, [ConversationReset()], 2, "live:2")

    forwards = [event async for event in store.read_forwards(stream)]
    assert [event.event for event in forwards] == [*batch, ConversationReset()]
    assert [event async for event in store.read_backwards(stream)] == forwards[::-1]
    assert await store.current_version(stream) == 3
    assert stream in [name async for name in store.list_streams()]
