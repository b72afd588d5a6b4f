"""`convo inspect`'s pages: any window of a stream, read around the window only, equals the whole-stream replay."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.memory.store import MemoryEventStore
from domain.commands import Sender
from domain.events import PromptSettingsRecorded, RecordedEvent
from domain.prompt import ModelPrompts, PromptPolicy, estimate_tokens
from service.inspection import timeline_page
from service.replay import Folding, replay_steps
from tests.strategies import run_script, streams

PROMPTS = ModelPrompts(PromptPolicy(budget=300, lookback=40), estimate_tokens)
FOLDING = Folding(PROMPTS, lambda model: estimate_tokens)


class CountingStore(MemoryEventStore):
    """A memory store that counts the events it hands out."""

    def __init__(self) -> None:
        super().__init__()
        self.read = 0

    async def read_forwards(
        self, stream: str, from_version: int = 1, limit: int | None = None
    ) -> AsyncIterator[RecordedEvent]:
        async for recorded in super().read_forwards(stream, from_version, limit):
            self.read += 1
            yield recorded

    async def read_backwards(
        self, stream: str, before: int | None = None, limit: int | None = None
    ) -> AsyncIterator[RecordedEvent]:
        async for recorded in super().read_backwards(stream, before, limit):
            self.read += 1
            yield recorded


def stored(stream: Sequence[RecordedEvent]) -> CountingStore:
    store = CountingStore()
    asyncio.run(store.import_recorded(stream))
    return store


@settings(max_examples=150, deadline=None)
@given(streams(max_steps=40, tagged=True).filter(bool), st.data())
def test_a_page_equals_the_whole_replay_over_its_window(stream: list[RecordedEvent], data: st.DataObject) -> None:
    store = stored(stream)
    at = data.draw(st.integers(1, len(stream)), label="at")
    last = data.draw(st.integers(1, at), label="last")
    size = data.draw(st.integers(1, 12), label="size")
    page = asyncio.run(timeline_page(store, stream[0].stream, FOLDING, at=at, last=last, size=size))
    whole = list(replay_steps(stream[:at], FOLDING))
    first = max(1, last - size + 1)
    assert [step.recorded.version for step in page.steps] == list(range(first, last + 1))
    for mine, theirs in zip(page.steps, whole[first - 1 : last], strict=True):
        assert mine.state == theirs.state
        assert mine.undone == theirs.undone
        assert mine.prompt == theirs.prompt
    assert page.before == (whole[first - 2].state if first > 1 else page.before)


def long_stream(exchanges: int) -> list[RecordedEvent]:
    """A stream of `exchanges` answered and delivered questions (three events each, after the first ones)."""
    from domain.commands import Ask
    from tests.strategies import _NO_SENDER, _Delivery, _Outcome

    shaping = PromptSettingsRecorded(persona="Be brief.", budget=300, lookback=2000, model="gpt-test")
    asked = Ask(sender=_NO_SENDER, text="how far?", shaping=shaping)  # as the service asks: settings recorded
    step = (asked, _Outcome(True, "this far", "timeout"), _Delivery())
    return run_script(step * exchanges, Sender(user_id=42, first_name="Long"))


LONG = long_stream(33_400)


def test_a_page_of_a_100_000_event_stream_reads_only_around_its_window() -> None:
    assert len(LONG) > 100_000
    store = stored(LONG)
    folding = Folding(ModelPrompts(PromptPolicy(budget=300), estimate_tokens), lambda model: estimate_tokens)
    assert folding.fallback.policy.lookback == 2000
    for last in (len(LONG), 50_000, 60):
        store.read = 0
        page = asyncio.run(timeline_page(store, "42", folding, last=last))
        assert len(page.steps) == 50 and page.last == last
        assert store.read < 2_500, (last, store.read)  # the window, the tails behind it, undos' reach ahead
    assert list(page.steps) == list(replay_steps(LONG[:2100], folding))[10:60]
