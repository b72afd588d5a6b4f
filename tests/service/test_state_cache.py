"""The state cache never answers anything but the stream's true state, whoever wrote or erased the stream."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.memory.store import MemoryEventStore
from domain.commands import Ask, Command, GiveAnswer, MarkDelivered, Reset, SelectMode, Sender, Start
from domain.conversation import State, decide, fold
from domain.errors import DomainError
from domain.ports import EventStore
from service.loading import PAGE, load_state
from service.state_cache import StateCache
from tests.contract.backends import BACKENDS, open_backend

ADA = Sender(user_id=7, username=None, first_name="Ada", language_code="en")
STREAM = "7"
CAUSES = itertools.count()


def command_for(state: State, kind: str) -> Command:
    match kind:
        case "start":
            return Start(sender=ADA)
        case "ask":
            return Ask(sender=ADA, text=f"question at {state.version}")
        case "answer":
            return GiveAnswer(
                question_version=state.pending.version if state.pending else 1,
                text="answer",
                model="m",
                prompt_tokens=1,
                completion_tokens=1,
                latency_ms=1,
            )
        case "deliver":
            return MarkDelivered(request_version=state.undelivered.version if state.undelivered else 1)
        case "image mode":
            return SelectMode(sender=ADA, mode="image")
        case _:
            return Reset(sender=ADA)


async def write(store: EventStore, cache: StateCache | None, kind: str, causation: str | None = None) -> None:
    """One use case's write: through the cache (this process) or around it (another worker)."""
    state = await cache.load(STREAM) if cache is not None else await load_state(store, STREAM)
    try:
        events = decide(state, command_for(state, kind))
    except DomainError:
        return
    if not events:
        return
    batch = await store.append(STREAM, events, state.version, causation or f"c{next(CAUSES)}")
    if cache is not None:
        cache.recorded(STREAM, state, batch)


async def truth(store: EventStore) -> State:
    return fold([e async for e in store.read_forwards(STREAM)])


KINDS = ("start", "ask", "answer", "deliver", "image mode", "reset")
STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("mine"), st.sampled_from(KINDS)),
        st.tuples(st.just("theirs"), st.sampled_from(KINDS)),
        st.tuples(st.just("theirs, many"), st.integers(1, PAGE + 5)),
        st.tuples(st.just("erase"), st.booleans()),
        st.tuples(st.just("repeat"), st.sampled_from(KINDS)),
    ),
    max_size=30,
)


@given(STEPS)
@settings(deadline=None)
async def test_a_cached_load_is_the_full_fold_after_any_mix_of_writers(steps) -> None:
    store = MemoryEventStore()
    cache = StateCache(store)
    for who, what in steps:
        if who == "mine":
            await write(store, cache, what)
        elif who == "theirs":
            await write(store, None, what)
        elif who == "theirs, many":
            for _ in range(what):
                await write(store, None, "ask")
                await write(store, None, "answer")
        elif who == "erase":
            await store.delete_stream(STREAM)
            if what:
                cache.forget(STREAM)
        else:
            await write(store, cache, what, causation="c-repeated")
        assert await cache.load(STREAM) == await truth(store)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_stream_erased_and_written_again_to_the_same_length_is_read_afresh(backend) -> None:
    async with open_backend(backend) as store:
        cache = StateCache(store)
        for kind in ("start", "ask", "answer"):
            await write(store, cache, kind)
        remembered = await cache.load(STREAM)
        await store.delete_stream(STREAM)  # another worker's /forget: this cache is not told
        for kind in ("start", "image mode", "ask"):
            await write(store, None, kind)
        now = await cache.load(STREAM)
        assert now.version == remembered.version
        assert now == await truth(store)
        assert now.mode == "image" and now.pending is not None


@pytest.mark.parametrize("backend", BACKENDS)
async def test_what_another_worker_appended_is_folded_in(backend) -> None:
    async with open_backend(backend) as store:
        cache = StateCache(store)
        await write(store, cache, "start")
        await cache.load(STREAM)
        await write(store, None, "ask")
        assert (await cache.load(STREAM)).pending is not None
        for _ in range(PAGE):  # more than one page ahead of what the cache remembers
            await write(store, None, "answer")
            await write(store, None, "ask")
        assert await cache.load(STREAM) == await truth(store)


async def test_the_cache_is_bounded() -> None:
    store = MemoryEventStore()
    cache = StateCache(store, size=3)
    for stream in "abcde":
        await cache.load(stream)
    assert len(cache) == 3


class CountingReads:
    """The store, counting the tail reads made through it."""

    def __init__(self, store: EventStore) -> None:
        self._store = store
        self.tail_reads = 0

    def __getattr__(self, name: str):
        return getattr(self._store, name)

    def read_backwards(self, stream: str, before: int | None = None, limit: int | None = None):
        self.tail_reads += 1
        return self._store.read_backwards(stream, before=before, limit=limit)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_after_its_own_appends_the_cache_reads_no_tail(backend) -> None:
    """The recorded event read back has the identity the append returned (times survive each store's round trip)."""
    async with open_backend(backend) as real:
        store = CountingReads(real)
        cache = StateCache(store)  # type: ignore[arg-type]
        await write(store, cache, "start")  # type: ignore[arg-type]
        first_reads = store.tail_reads
        for kind in ("ask", "answer", "deliver", "ask", "answer"):
            await write(store, cache, kind)  # type: ignore[arg-type]
        assert store.tail_reads == first_reads == 1
        assert await cache.load(STREAM) == await truth(real)
