"""The one write primitive: decide, append at the version read, re-read and re-decide on a lost race."""

from __future__ import annotations

import itertools

import pytest

from adapters.memory.store import MemoryEventStore
from domain.commands import Ask, Reset, Sender, Start
from domain.conversation import decide
from domain.ports import ConcurrencyConflict, StoreUnavailable
from service.recording import CONFLICT_RETRIES, record
from service.state_cache import StateCache

ADA = Sender(user_id=7, username=None, first_name="Ada", language_code="en")


class LosingStore(MemoryEventStore):
    """A store where another writer wins each of the next `losses` appends (it lands a /reset first)."""

    def __init__(self, losses: int) -> None:
        super().__init__()
        self.losses = losses
        self.rival = itertools.count(1)

    async def append(self, stream, events, expected_version, causation_id):
        if self.losses:
            self.losses -= 1
            rival = await self.current_version(stream)
            events_of_rival = decide(await StateCache(self).load(stream), Reset(sender=ADA))
            await super().append(stream, events_of_rival, rival, f"rival/{next(self.rival)}")
            raise ConcurrencyConflict(stream, expected_version, rival + len(events_of_rival))
        return await super().append(stream, events, expected_version, causation_id)


async def test_a_lost_race_is_decided_again_on_the_new_state():
    store = LosingStore(losses=2)
    states = StateCache(store)
    seen: list[int] = []

    async def load():
        state = await states.load("7")
        seen.append(state.version)
        return state

    recorded = await record(states, "7", Ask(sender=ADA, text="hello"), "tg:1", load)
    assert recorded.wrote_decision
    assert seen[0] < seen[1] < seen[2]  # each attempt decided on what the rival had written
    assert recorded.state is not None and recorded.state.version == recorded.batch[-1].version


async def test_too_many_lost_races_are_store_unavailable_and_write_nothing_of_ours():
    store = LosingStore(losses=CONFLICT_RETRIES)
    with pytest.raises(StoreUnavailable):
        await record(StateCache(store), "7", Ask(sender=ADA, text="hello"), "tg:1")
    assert [e.causation_id async for e in store.read_forwards("7") if e.causation_id == "tg:1"] == []


async def test_a_decision_of_nothing_writes_nothing():
    store = MemoryEventStore()
    states = StateCache(store)
    await record(states, "7", Start(sender=ADA), "tg:1")
    again = await record(states, "7", Start(sender=ADA), "tg:2")  # registered already
    assert (again.decided, again.batch, again.wrote_decision) == ((), (), False)
