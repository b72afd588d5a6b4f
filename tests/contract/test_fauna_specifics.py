"""What only the Fauna store promises, checked on the FQL v4 double."""

from __future__ import annotations

import asyncio
from functools import partial

from adapters.fauna import queries
from adapters.fauna.store import FaunaEventStore
from domain.events import QuestionAsked
from tests.doubles.fauna import FaunaDouble


async def test_the_events_collection_keeps_no_document_history() -> None:
    """Fauna keeps 30 days of every document's history unless told otherwise: an erased stream would stay
    readable there. The store makes its collection with `history_days: 0`."""
    double = FaunaDouble()
    await asyncio.to_thread(double.start)
    try:
        store = FaunaEventStore(double.secret, double.endpoint)
        try:
            await store.init_schema()
        finally:
            await store.close()
        assert double.database.collections["events"]["history_days"] == 0
    finally:
        await asyncio.to_thread(double.stop)


async def test_an_erase_that_fails_midway_is_finished_at_the_next_start() -> None:
    """A long stream is erased a page per transaction: after the first page the erase is recorded as in
    progress, and a store started later finishes it before anything else."""
    double = FaunaDouble()
    await asyncio.to_thread(double.start)
    try:
        store = FaunaEventStore(double.secret, double.endpoint, page_size=2)
        try:
            await store.init_schema()
            await store.append("long", [QuestionAsked(text=f"q{n}") for n in range(5)], 0, "c")
            await store.append("other", [QuestionAsked(text="stays")], 0, "c")
            assert await store.query(partial(queries.delete_page, "long", 2)) is not None  # then the process died
            assert await store.current_version("long") == 5
            assert await store.query(queries.erases_in_progress) == ["long"]
        finally:
            await store.close()
        restarted = FaunaEventStore(double.secret, double.endpoint, page_size=2)
        try:
            await restarted.init_schema()
            assert await restarted.current_version("long") == 0
            assert [e async for e in restarted.read_forwards("long")] == []
            assert await restarted.query(queries.erases_in_progress) == []
            assert [s async for s in restarted.list_streams()] == ["other"]
        finally:
            await restarted.close()
    finally:
        await asyncio.to_thread(double.stop)
