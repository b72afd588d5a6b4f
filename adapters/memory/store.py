"""The reference event store: a dict of lists, simple enough to be obviously right.

Every other store is held to agree with this one (tests/contract). Service tests use it as their store. It keeps
nothing across processes; `memory://` selects it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime

from adapters.memory.inbox import MemoryInbox
from adapters.memory.ledger import MemoryLedger
from adapters.store_rules import batch_starts, check_import, check_limit, new_batch, recording_time, utc_now
from domain.events import Event, RecordedEvent
from domain.ports import ConcurrencyConflict, Positioned


class MemoryEventStore:
    """An EventStore held in a dict: stream -> its recorded events, oldest first (version n at index n-1)."""

    def __init__(self, now: Callable[[], datetime] = utc_now) -> None:
        self._now = now
        self._streams: dict[str, list[RecordedEvent]] = {}
        self._inboxes: dict[str, MemoryInbox] = {}
        self._ledger = MemoryLedger()
        self._positions: dict[tuple[str, int], int] = {}
        """The global position of each (stream, version) held: one counter, never reused."""
        self._last_position = 0

    @asynccontextmanager
    async def poller_lease(self, bot: str) -> AsyncIterator[None]:
        """Always granted: a memory store lives in one process."""
        yield

    def inbox(self, bot: str) -> MemoryInbox:
        """The inbox of one bot, kept with this store."""
        return self._inboxes.setdefault(bot, MemoryInbox(self._now))

    def ledger(self) -> MemoryLedger:
        """The usage ledger's projection, kept with this store."""
        return self._ledger

    async def init_schema(self) -> None:
        """Nothing to create."""

    async def append(
        self, stream: str, events: Sequence[Event], expected_version: int, causation_id: str
    ) -> tuple[RecordedEvent, ...]:
        """Record a batch, or return the batch this causation already recorded (see EventStore.append)."""
        recorded = self._events(stream)
        earlier = tuple(event for event in recorded if event.causation_id == causation_id)
        if earlier or not events:
            return earlier
        if len(recorded) != expected_version:
            raise ConcurrencyConflict(stream, expected_version, len(recorded))
        moment = recording_time(self._now)
        batch = new_batch(stream, events, expected_version, moment, causation_id)
        self._keep(batch)
        return batch

    async def read_forwards(
        self, stream: str, from_version: int = 1, limit: int | None = None
    ) -> AsyncIterator[RecordedEvent]:
        """Events from `from_version` up, oldest first, at most `limit` of them."""
        check_limit(limit)
        chosen = [event for event in self._events(stream) if event.version >= from_version][:limit]
        for event in chosen:
            yield event

    async def read_backwards(
        self, stream: str, before: int | None = None, limit: int | None = None
    ) -> AsyncIterator[RecordedEvent]:
        """Events below version `before` (or from the end), newest first, at most `limit` of them."""
        check_limit(limit)
        newest_first = reversed(self._events(stream))
        chosen = [event for event in newest_first if before is None or event.version < before][:limit]
        for event in chosen:
            yield event

    async def current_version(self, stream: str) -> int:
        """The newest version of a stream; 0 when it has no events."""
        return len(self._events(stream))

    async def list_streams(self) -> AsyncIterator[str]:
        """Every stream that has events, in code point order (as the SQL stores order them)."""
        for stream in sorted(name for name, events in self._streams.items() if events):
            yield stream

    async def delete_stream(self, stream: str) -> None:
        """Forget the stream entirely, and the text of its inbox entries."""
        for event in self._streams.pop(stream, ()):
            del self._positions[(stream, event.version)]
        for inbox in self._inboxes.values():
            await inbox.erase_chat(stream)

    async def import_recorded(self, events: Sequence[RecordedEvent]) -> None:
        """Write recorded events verbatim; they must continue their stream, each causation batch only once."""
        if not events:
            return
        stream = check_import(events)
        recorded = self._events(stream)
        current = len(recorded)
        if events[0].version != current + 1:
            raise ConcurrencyConflict(stream, events[0].version - 1, current)
        before = recorded[-1].causation_id if recorded else None
        seen = {event.causation_id for event in recorded}
        for event, starts in zip(events, batch_starts(before, (e.causation_id for e in events)), strict=True):
            if starts and event.causation_id in seen:
                raise ValueError(f"import into {stream!r} repeats causation id {event.causation_id!r} in a new batch")
            seen.add(event.causation_id)
        self._keep(events)

    async def read_all(self, after: str | None = None, limit: int = 100) -> AsyncIterator[Positioned]:
        """Events of every stream after position `after`, in the order they were recorded (see EventStore)."""
        check_limit(limit)
        start = 0 if after is None else int(after)
        held = sorted((position, key) for key, position in self._positions.items() if position > start)
        for position, (stream, version) in held[:limit]:
            yield Positioned(str(position), self._streams[stream][version - 1])

    def _keep(self, events: Sequence[RecordedEvent]) -> None:
        for event in events:
            self._last_position += 1
            self._positions[(event.stream, event.version)] = self._last_position
            self._streams.setdefault(event.stream, []).append(event)

    async def close(self) -> None:
        """Nothing to release."""

    def _events(self, stream: str) -> list[RecordedEvent]:
        return list(self._streams.get(stream, ()))
