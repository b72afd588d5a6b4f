"""An event store that times its appends and shows what they wrote to the metrics; otherwise the store it wraps."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager

from adapters.metrics.registry import Metrics
from domain.events import Event, RecordedEvent
from domain.ports import EventStore, Inbox, LedgerStore, Positioned


def wrote_now(events: Sequence[Event], expected_version: int, batch: Sequence[RecordedEvent]) -> bool:
    """Whether `append` wrote `batch` now, rather than answered a repeated causation id with an earlier batch.

    A repeat is told by where its batch lies or by what it holds, so the one repeat taken for a write is the same
    events appended again at the same expected version (two workers that decided the same thing at once)."""
    return bool(batch) and batch[0].version == expected_version + 1 and [r.event for r in batch] == list(events)


class MeteredEventStore:
    """The EventStore port around another store: each append is timed (`convo_store_append_seconds`), and the
    events it writes are counted (`Metrics.observe`) once, not again when a repeated causation id returns them."""

    def __init__(self, store: EventStore, metrics: Metrics, backend: str) -> None:
        self._store = store
        self._metrics = metrics
        self._append_seconds = metrics.store_append.labels(backend)

    async def append(
        self, stream: str, events: Sequence[Event], expected_version: int, causation_id: str
    ) -> tuple[RecordedEvent, ...]:
        """The wrapped store's append, timed; see EventStore.append."""
        started = time.perf_counter()
        try:
            batch = await self._store.append(stream, events, expected_version, causation_id)
        finally:
            self._append_seconds.observe(time.perf_counter() - started)
        if wrote_now(events, expected_version, batch):
            for event in events:
                self._metrics.observe(event)
        return batch

    async def init_schema(self) -> None:
        """See EventStore.init_schema."""
        await self._store.init_schema()

    def read_forwards(
        self, stream: str, from_version: int = 1, limit: int | None = None
    ) -> AsyncIterator[RecordedEvent]:
        """See EventStore.read_forwards."""
        return self._store.read_forwards(stream, from_version, limit)

    def read_backwards(
        self, stream: str, before: int | None = None, limit: int | None = None
    ) -> AsyncIterator[RecordedEvent]:
        """See EventStore.read_backwards."""
        return self._store.read_backwards(stream, before, limit)

    async def current_version(self, stream: str) -> int:
        """See EventStore.current_version."""
        return await self._store.current_version(stream)

    def list_streams(self) -> AsyncIterator[str]:
        """See EventStore.list_streams."""
        return self._store.list_streams()

    def read_all(self, after: str | None = None, limit: int = 100) -> AsyncIterator[Positioned]:
        """See EventStore.read_all."""
        return self._store.read_all(after, limit)

    async def delete_stream(self, stream: str) -> None:
        """See EventStore.delete_stream."""
        await self._store.delete_stream(stream)

    async def import_recorded(self, events: Sequence[RecordedEvent]) -> None:
        """See EventStore.import_recorded."""
        await self._store.import_recorded(events)

    async def close(self) -> None:
        """See EventStore.close."""
        await self._store.close()

    def inbox(self, bot: str) -> Inbox:
        """See EventStore.inbox."""
        return self._store.inbox(bot)

    def ledger(self) -> LedgerStore:
        """See EventStore.ledger."""
        return self._store.ledger()

    def poller_lease(self, bot: str) -> AbstractAsyncContextManager[None]:
        """See EventStore.poller_lease."""
        return self._store.poller_lease(bot)
