"""What only the Fauna store promises, checked on the FQL v4 double."""

from __future__ import annotations

import asyncio

from adapters.fauna.store import FaunaEventStore
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
