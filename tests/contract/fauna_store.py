"""`fauna_store()`: a ready `FaunaEventStore` on a fresh Fauna double, for the contract suite."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from adapters.fauna.store import FaunaEventStore
from tests.doubles.fauna import FaunaDouble


@asynccontextmanager
async def fauna_store(**options: Any) -> AsyncIterator[FaunaEventStore]:
    """A FaunaEventStore with its schema initialised, on its own new double; both are closed at exit.

    `options` go to FaunaEventStore (e.g. `now=` for a fixed clock, `page_size=` for small pages).
    """
    double = FaunaDouble()
    await asyncio.to_thread(double.start)
    try:
        store = FaunaEventStore(double.secret, double.endpoint, **options)
        try:
            await store.init_schema()
            yield store
        finally:
            await store.close()
    finally:
        await asyncio.to_thread(double.stop)
