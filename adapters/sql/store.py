"""The event store every SQL dialect shares: `SqlEventStore`, its operations written once as scripts of statements.

A dialect subclass provides `run` (execute a script's steps on one of its connections, in the transaction its
`Mode` asks for), `violation` (its driver's constraint violation), `reclaim` (what follows an erase) and
`init_schema`; the tables are in `schema`, the statements in `statements`, the rows in `rows` and every choice
between returning, refusing and inserting in `decisions`.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from typing import ClassVar, TypeVar

from adapters.sql import decisions
from adapters.sql.inbox import SqlInbox
from adapters.sql.ledger import SqlLedger
from adapters.sql.rows import event_rows, recorded
from adapters.sql.schema import Dialect
from adapters.sql.statements import Change, Insert, Mode, Rows, Script, Statements
from adapters.store_rules import (
    batch_starts,
    check_import,
    check_limit,
    check_page_size,
    keyset_pages,
    new_batch,
    recording_time,
)
from domain.events import Event, RecordedEvent
from domain.ports import Positioned

T = TypeVar("T")


class SqlEventStore(abc.ABC):
    """An EventStore over the tables of `schema`; subclasses connect to one engine."""

    violation: ClassVar[type[Exception]]
    """What the driver raises when a statement breaks a constraint."""

    def __init__(self, dialect: Dialect, statements: Statements, now: Callable[[], datetime], page_size: int) -> None:
        self.dialect = dialect
        self.statements = statements
        self._now = now
        self._page_size = check_page_size(page_size)

    @property
    def clock(self) -> Callable[[], datetime]:
        """The store's clock."""
        return self._now

    @abc.abstractmethod
    async def run(self, script: Callable[[], Script[T]], mode: Mode) -> T:
        """What `script()` returns, its steps executed on one connection as `mode` says; the driver's errors but
        `violation` become StoreUnavailable. `script` may be called twice (a retry on a fresh connection)."""

    @abc.abstractmethod
    async def reclaim(self) -> None:
        """After an erase: make the space of deleted rows unreadable where the engine keeps it."""

    def inbox(self, bot: str) -> SqlInbox:
        """The inbox of one bot, in this store's `inbox` table."""
        return SqlInbox(self, bot)

    def ledger(self) -> SqlLedger:
        """The usage ledger's projection, in this store's `ledger` and `ledger_checkpoint` tables."""
        return SqlLedger(self, *self.ledger_names)

    @property
    def ledger_names(self) -> tuple[str, str]:
        """The quoted names of the ledger's tables (a dialect may qualify them with a schema)."""
        return "ledger", "ledger_checkpoint"

    async def append(
        self, stream: str, events: Sequence[Event], expected_version: int, causation_id: str
    ) -> tuple[RecordedEvent, ...]:
        """Record a batch, or return the batch this causation already recorded (see EventStore.append)."""
        q = self.statements

        def found(start: int) -> Script[tuple[RecordedEvent, ...]]:
            parameters = {"stream": stream, "start": start, "no_end": decisions.NO_END}
            rows = yield Rows(q.batch, parameters)
            return tuple(recorded(self.dialect, stream, row) for row in rows)

        def probe() -> Script[decisions.Probe]:
            ((start, current),) = yield Rows(q.probe, {"stream": stream, "causation": causation_id})
            return decisions.Probe(start=start, current=current)

        def lookup() -> Script[tuple[RecordedEvent, ...]]:
            start = (yield from probe()).start
            return () if start is None else (yield from found(start))

        if not events:
            return await self.run(lookup, Mode.READ)
        batch = new_batch(stream, events, expected_version, recording_time(self._now), causation_id)
        rows = event_rows(self.dialect, batch, [True] + [False] * (len(batch) - 1))

        def write() -> Script[tuple[RecordedEvent, ...]]:
            start = decisions.append(stream, expected_version, (yield from probe()))
            if start is not None:
                return (yield from found(start))
            yield Insert(q.insert, rows)
            return batch

        def recheck() -> Script[tuple[RecordedEvent, ...]]:
            start = decisions.append_violated(stream, expected_version, (yield from probe()))
            return (yield from found(start))

        try:
            return await self.run(write, Mode.ATOMIC)
        except self.violation:
            return await self.run(recheck, Mode.READ)

    def read_forwards(
        self, stream: str, from_version: int = 1, limit: int | None = None
    ) -> AsyncIterator[RecordedEvent]:
        """Events from `from_version` up, oldest first, at most `limit` of them, a page per query."""

        async def page(after: int | None, size: int) -> list[RecordedEvent]:
            start = decisions.bound(from_version) if after is None else after + 1
            return await self._events(stream, self.statements.forwards, {"start": start, "size": size})

        return keyset_pages(page, _version_of, limit, self._page_size)

    def read_backwards(
        self, stream: str, before: int | None = None, limit: int | None = None
    ) -> AsyncIterator[RecordedEvent]:
        """Events below version `before` (or from the end), newest first, at most `limit` of them."""

        async def page(after: int | None, size: int) -> list[RecordedEvent]:
            below = decisions.bound(decisions.NO_END if before is None else before) if after is None else after
            return await self._events(stream, self.statements.backwards, {"below": below, "size": size})

        return keyset_pages(page, _version_of, limit, self._page_size)

    async def current_version(self, stream: str) -> int:
        """The newest version of a stream; 0 when it has no events."""

        def version() -> Script[int]:
            ((found,),) = yield Rows(self.statements.version, {"stream": stream})
            return int(found)

        return await self.run(version, Mode.READ)

    def list_streams(self) -> AsyncIterator[str]:
        """Every stream that has events, in code point order; each page is one loose index scan."""

        async def page(after: str | None, size: int) -> list[str]:
            query = self.statements.first_streams if after is None else self.statements.next_streams

            def names() -> Script[list[str]]:
                rows = yield Rows(query, {"after": after or "", "size": size})
                return [name for (name,) in rows]

            return await self.run(names, Mode.READ)

        return keyset_pages(page, str, None, self._page_size)

    async def read_all(self, after: str | None = None, limit: int = 100) -> AsyncIterator[Positioned]:
        """Events of every stream after position `after`, in the global order (see `schema.global_order`)."""
        check_limit(limit)
        xact, _, position = (after or "0").rpartition(":")
        bounds = {"xact": xact or "0", "position": int(position), "size": limit}

        def page() -> Script[list[Positioned]]:
            rows = yield Rows(self.statements.read_all, bounds)
            return [Positioned(row[0], recorded(self.dialect, row[1], row[2:])) for row in rows]

        for item in await self.run(page, Mode.READ):
            yield item

    async def delete_stream(self, stream: str) -> None:
        """Erase every event of the stream and the text of its inbox entries in one transaction, then `reclaim`."""

        def delete() -> Script[None]:
            yield Change(self.statements.delete, {"stream": stream})
            yield Change(self.statements.erase_inbox, {"chat": stream})

        await self.run(delete, Mode.ALONE)
        await self.reclaim()

    async def import_recorded(self, events: Sequence[RecordedEvent]) -> None:
        """Write recorded events verbatim; they must continue their stream (else ConcurrencyConflict)."""
        if not events:
            return
        stream = check_import(events)
        expected = events[0].version - 1

        def write() -> Script[None]:
            ((current, last),) = yield Rows(self.statements.import_probe, {"stream": stream})
            decisions.continues(stream, expected, current)
            starts = batch_starts(last, (event.causation_id for event in events))
            yield Insert(self.statements.insert, event_rows(self.dialect, events, starts))

        def version() -> Script[int]:
            ((current, _),) = yield Rows(self.statements.import_probe, {"stream": stream})
            return int(current)

        try:
            await self.run(write, Mode.ALONE)
        except self.violation:
            raise decisions.import_violated(stream, expected, await self.run(version, Mode.READ)) from None

    async def _events(self, stream: str, query: str, bounds: dict[str, int]) -> list[RecordedEvent]:
        def events() -> Script[list[RecordedEvent]]:
            rows = yield Rows(query, {"stream": stream, **bounds})
            return [recorded(self.dialect, stream, row) for row in rows]

        return await self.run(events, Mode.READ)


def _version_of(event: RecordedEvent) -> int:
    return event.version
