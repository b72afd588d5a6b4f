"""The one way anything is written to a stream: decide, append at the version decided on, re-read on a lost race.

Every use case records through `record`. It loads the state, asks the decider for events, and appends them expecting
the version it read. When another writer got there first (`ConcurrencyConflict`), it reads again and decides again:
the decider may now say there is nothing to do. After `CONFLICT_RETRIES` lost races in a row it gives up with
`StoreUnavailable`, the same error as an unreachable store, so every caller has one failure to handle.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import attrs

from domain.commands import Command
from domain.conversation import State, decide
from domain.events import Event, RecordedEvent
from domain.ports import ConcurrencyConflict, StoreUnavailable
from service.state_cache import StateCache

CONFLICT_RETRIES = 10
"""Lost races in a row before a write gives up."""


@attrs.frozen(kw_only=True)
class Recorded:
    """What one `record` call left in the stream."""

    decided: tuple[Event, ...]
    """The events the decider asked for in the state last read (empty: nothing was to be done)."""
    batch: tuple[RecordedEvent, ...]
    """What the store holds for this causation id: the decided events as written now, or the batch an earlier
    attempt with the same causation id wrote (the store answers a repeat with it); empty when nothing was decided."""
    state: State | None
    """The stream's state right after `batch` when this call wrote it; None otherwise."""

    @property
    def wrote_decision(self) -> bool:
        """Whether the stream now holds exactly what was decided, written under this causation id."""
        return bool(self.decided) and tuple(recorded.event for recorded in self.batch) == self.decided


async def record(
    states: StateCache,
    stream: str,
    command: Command,
    causation_id: str,
    load: Callable[[], Awaitable[State]] | None = None,
) -> Recorded:
    """Decide `command` against the stream and append the result; see the module docstring.

    `load` reads the state to decide on (default: the cache's current state of the stream).
    """
    for _ in range(CONFLICT_RETRIES):
        state = await (load() if load is not None else states.load(stream))
        decided = decide(state, command)
        if not decided:
            return Recorded(decided=decided, batch=(), state=None)
        try:
            batch = await states.store.append(stream, decided, state.version, causation_id)
        except ConcurrencyConflict:
            continue
        return Recorded(decided=decided, batch=batch, state=states.recorded(stream, state, batch))
    raise StoreUnavailable(f"stream {stream!r} kept changing under {CONFLICT_RETRIES} attempts")
