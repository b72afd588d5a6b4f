"""Random sequences of store operations, applied to a store under test and to the memory model, must agree.

One rule sequence drives two implementations at once and compares every outcome (the pattern of hypothesis's own
database agreement test). The stores are async; the machine owns a private event loop and runs each call on it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    MultipleResults,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)

from adapters.memory.store import MemoryEventStore
from domain.events import Event, RecordedEvent
from domain.ports import ConcurrencyConflict, EventStore
from tests.contract.backends import CONFIGURABLE, open_backend, require
from tests.contract.strategies import any_versions, batches, events

T = TypeVar("T")

STREAM_NAMES = ("tg:1", "tg:-100200", "ü-😀")
limits = st.none() | st.integers(min_value=0, max_value=6)
fresh_causations = st.integers(min_value=0, max_value=10**6).map(lambda number: f"tg:{number}")


class StoreAgreement(RuleBasedStateMachine):
    """A store under test and MemoryEventStore, fed the same operations, agree after every step."""

    streams = Bundle("streams")
    causations = Bundle("causations")

    backend = "sqlite"
    """The kind of store under test; `agreement_for` makes a subclass per kind."""

    def __init__(self) -> None:
        super().__init__()
        backend = self.backend
        self.loop = asyncio.new_event_loop()
        self.exits = contextlib.AsyncExitStack()
        self.moment = datetime(2024, 1, 1, tzinfo=UTC)
        self.exact_times = backend in CONFIGURABLE
        options: dict[str, Any] = {"now": self.clock} if self.exact_times else {}
        self.store: EventStore = self.run(self.exits.enter_async_context(open_backend(backend, **options)))
        self.model = MemoryEventStore(now=self.clock)
        self.imports = 0

    def clock(self) -> datetime:
        return self.moment

    def run(self, work: Awaitable[T]) -> T:
        return self.loop.run_until_complete(work)

    def both(self, call: Callable[[EventStore], Awaitable[T]]) -> tuple[object, object]:
        """The outcome (value, or the conflict's class and expected version) of `call` on the store and the model."""
        self.moment += timedelta(seconds=1, microseconds=7)
        return self.outcome(call, self.store), self.outcome(call, self.model)

    def outcome(self, call: Callable[[EventStore], Awaitable[T]], store: EventStore) -> object:
        try:
            return self.comparable(self.run(call(store)))
        except ConcurrencyConflict as conflict:
            return ("conflict", conflict.stream, conflict.expected)
        except ValueError:
            return ("refused",)

    def comparable(self, value: object) -> object:
        if isinstance(value, RecordedEvent) and not self.exact_times:
            return (value.stream, value.version, value.causation_id, value.event)
        if isinstance(value, tuple | list):
            return [self.comparable(item) for item in value]
        return value

    def teardown(self) -> None:
        try:
            self.run(self.exits.aclose())
        finally:
            self.loop.close()

    @initialize(target=streams)
    def known_streams(self) -> MultipleResults[str]:
        return multiple(*STREAM_NAMES)

    @rule(target=causations, stream=streams, batch=batches, causation=fresh_causations | causations)
    def append_at_the_right_version(self, stream: str, batch: list[Event], causation: str) -> str:
        expected = self.run(self.model.current_version(stream))
        ours, theirs = self.both(lambda store: store.append(stream, batch, expected, causation))
        assert ours == theirs
        return causation

    @rule(
        target=causations,
        stream=streams,
        batch=st.lists(events, max_size=3),
        causation=fresh_causations | causations,
        expected=any_versions,
    )
    def append_at_any_version(self, stream: str, batch: list[Event], causation: str, expected: int) -> str:
        ours, theirs = self.both(lambda store: store.append(stream, batch, expected, causation))
        assert ours == theirs
        return causation

    @rule(
        target=causations,
        stream=streams,
        batch=batches,
        causation=st.none() | causations,
        shift=st.sampled_from([0, 0, -1, 1]),
    )
    def import_a_continuation(self, stream: str, batch: list[Event], causation: str | None, shift: int) -> str:
        """Import recorded events: usually a new causation, sometimes one already used (allowed only to continue
        the stream's last batch, as a copy that split a batch does; anywhere else the store refuses it)."""
        self.imports += 1
        causation = causation or f"import:{self.imports}"
        start = max(1, self.run(self.model.current_version(stream)) + 1 + shift)
        moment = datetime(2001, 1, 1, tzinfo=UTC) + timedelta(minutes=self.imports, microseconds=self.imports)
        history = [
            RecordedEvent(stream=stream, version=version, recorded_at=moment, causation_id=causation, event=event)
            for version, event in enumerate(batch, start=start)
        ]
        ours, theirs = self.both(lambda store: store.import_recorded(history))
        assert ours == theirs
        return causation

    @rule(stream=streams, from_version=any_versions, limit=limits)
    def read_forwards(self, stream: str, from_version: int, limit: int | None) -> None:
        ours, theirs = self.both(lambda store: _all(store.read_forwards(stream, from_version, limit)))
        assert ours == theirs

    @rule(stream=streams, before=st.none() | any_versions, limit=limits)
    def read_backwards(self, stream: str, before: int | None, limit: int | None) -> None:
        ours, theirs = self.both(lambda store: _all(store.read_backwards(stream, before, limit)))
        assert ours == theirs

    @precondition(lambda self: any(self.recorded_streams()))
    @rule(data=st.data())
    def delete_a_recorded_stream(self, data: st.DataObject) -> None:
        stream = data.draw(st.sampled_from(self.recorded_streams()))
        ours, theirs = self.both(lambda store: store.delete_stream(stream))
        assert ours == theirs

    def recorded_streams(self) -> list[str]:
        return self.run(_all(self.model.list_streams()))

    @invariant()
    def versions_agree(self) -> None:
        for stream in STREAM_NAMES:
            assert self.run(self.store.current_version(stream)) == self.run(self.model.current_version(stream))

    @invariant()
    def streams_agree(self) -> None:
        assert sorted(self.run(_all(self.store.list_streams()))) == self.recorded_streams()


async def _all(iterator: AsyncIterator[T]) -> list[T]:
    return [item async for item in iterator]


def agreement_for(backend: str) -> type[StoreAgreement]:
    """The machine for one kind of store."""
    return type(f"{backend.capitalize()}Agreement", (StoreAgreement,), {"backend": backend})


EXAMPLES = {"sqlite": 100, "postgres": 50, "fauna": 25}
"""Examples per backend: each is a fresh store and up to 20 steps; the slower the store, the fewer."""


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres), "fauna"])
def test_store_agrees_with_the_memory_model(backend: str) -> None:
    require(backend)
    run_state_machine_as_test(
        agreement_for(backend),
        settings=settings(
            max_examples=EXAMPLES[backend],
            stateful_step_count=20,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
