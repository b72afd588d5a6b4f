"""States this process saw recently, brought up to date by reading only what was appended since.

A stream's log only grows, so a state folded up to version v stays true of versions 1..v for as long as the event
at v is the one that was there: bringing it up to date is one forward read from v, folding whatever follows. The
event at v is read back and compared (version, causation id, recording time), so a stream erased and written again
(by `/forget`, here or in another worker) is never mistaken for the one remembered. Whatever does not check out,
or lies more than a page ahead, is read from the tail as if nothing were remembered.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime

from domain.conversation import State, fold
from domain.events import RecordedEvent
from domain.ports import EventStore
from service.loading import PAGE, load_state_and_head

STREAMS_REMEMBERED = 2048
"""Streams whose state is kept (least recently used dropped first): a bounded cache, never the truth."""

Identity = tuple[int, str, datetime]
"""What tells one recorded event from any other at the same place: version, causation id, recording time."""


def identity(recorded: RecordedEvent) -> Identity:
    """The event's identity within its stream."""
    return recorded.version, recorded.causation_id, recorded.recorded_at


class StateCache:
    """The newest known state of recently used streams, re-validated against the store on every load."""

    def __init__(self, store: EventStore, size: int = STREAMS_REMEMBERED) -> None:
        self.store = store
        self._size = size
        self._known: OrderedDict[str, tuple[State, Identity | None]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._known)

    async def load(self, stream: str) -> State:
        """The stream's current state: the remembered one plus what was appended since, else a tail read."""
        known = self._known.get(stream)
        if known is not None:
            state, head = known
            newer = [e async for e in self.store.read_forwards(stream, from_version=max(state.version, 1), limit=PAGE)]
            if _continues(head, newer) and len(newer) < PAGE:
                caught_up = fold(newer[1:] if head is not None else newer, state)
                self._keep(stream, caught_up, identity(newer[-1]) if newer else head)
                return caught_up
        state, newest = await load_state_and_head(self.store, stream)
        self._keep(stream, state, None if newest is None else identity(newest))
        return state

    def recorded(self, stream: str, before: State, batch: Sequence[RecordedEvent]) -> State | None:
        """The state after a batch appended onto `before`, remembered; None for a batch recorded earlier."""
        if not batch or batch[0].version != before.version + 1:
            return None
        after = fold(batch, before)
        self._keep(stream, after, identity(batch[-1]))
        return after

    def last_known(self, stream: str) -> State | None:
        """The state last seen, unchecked: it may be behind the store (for hints only)."""
        known = self._known.get(stream)
        return None if known is None else known[0]

    def forget(self, stream: str) -> None:
        """Drop what is remembered of a stream (it was erased)."""
        self._known.pop(stream, None)

    def _keep(self, stream: str, state: State, head: Identity | None) -> None:
        self._known[stream] = (state, head)
        self._known.move_to_end(stream)
        while len(self._known) > self._size:
            self._known.popitem(last=False)


def _continues(head: Identity | None, newer: Sequence[RecordedEvent]) -> bool:
    """Whether `newer` (read forwards from the remembered head's version) starts at that very event."""
    if head is None:
        return not newer or newer[0].version == 1
    return bool(newer) and identity(newer[0]) == head
