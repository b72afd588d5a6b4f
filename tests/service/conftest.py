"""The stores the use-case tests run on: in memory, and SQLite in a temporary file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.memory.store import MemoryEventStore
from adapters.sqlite.store import SqliteEventStore
from domain.ports import EventStore


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[EventStore]:
    if request.param == "memory":
        yield MemoryEventStore()
        return
    sqlite = SqliteEventStore.from_url(f"sqlite:///{tmp_path}/convo.db")
    await sqlite.init_schema()
    yield sqlite
    await sqlite.close()
