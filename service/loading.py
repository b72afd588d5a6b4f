"""Reading just enough of a stream's tail to decide and to build a prompt, whatever the stream's length."""

from __future__ import annotations

from typing import Protocol

from domain.conversation import State
from domain.events import RecordedEvent
from domain.ports import EventStore
from domain.prompt import Message, PromptPolicy, TokenCounter
from domain.tail import PromptTail, RecentTurns, StateTail

PAGE = 32
"""Events fetched per backwards read: enough for a typical decision, small enough to stay cheap."""


async def load_state(store: EventStore, stream: str) -> State:
    """The stream's state, folded from its newest events only."""
    state, _ = await load_state_and_head(store, stream)
    return state


async def load_state_and_head(store: EventStore, stream: str) -> tuple[State, RecordedEvent | None]:
    """The stream's state, folded from its newest events only, and its newest event (None if it has none)."""
    reader = StateTail()
    head: RecordedEvent | None = None
    before: int | None = None
    while not reader.done:
        page = [e async for e in store.read_backwards(stream, before=before, limit=PAGE)]
        head = head or (page[0] if page else None)
        for recorded in page:
            reader.feed(recorded)
            if reader.done:
                break
        if len(page) < PAGE or page[-1].version == 1:
            break
        before = page[-1].version
    return reader.state(), head


async def load_prompt(
    store: EventStore, question: RecordedEvent, policy: PromptPolicy, count: TokenCounter
) -> tuple[Message, ...]:
    """The prompt for a recorded question, folded from the events just before it; raises QuestionTooLong."""
    reader = PromptTail(question, policy, count)
    await _feed_backwards(store, question.stream, reader, before=question.version)
    return reader.messages()


async def load_recent(store: EventStore, stream: str, lookback: int) -> RecentTurns:
    """What /undo, /redo and edits act on: the latest question and the newest turn of the context."""
    reader = RecentTurns(lookback)
    await _feed_backwards(store, stream, reader)
    return reader


class _TailReader(Protocol):
    @property
    def done(self) -> bool: ...

    def feed(self, recorded: RecordedEvent) -> None: ...


async def _feed_backwards(store: EventStore, stream: str, reader: _TailReader, before: int | None = None) -> None:
    """Feed the reader the stream's events below `before` (or from the end), newest first, until it is done."""
    while not reader.done:
        page = [e async for e in store.read_backwards(stream, before=before, limit=PAGE)]
        for recorded in page:
            reader.feed(recorded)
            if reader.done:
                return
        if len(page) < PAGE:
            return
        before = page[-1].version


async def find_event(store: EventStore, stream: str, version: int) -> RecordedEvent | None:
    """The event at one version, if the stream has it."""
    async for recorded in store.read_forwards(stream, from_version=version, limit=1):
        return recorded if recorded.version == version else None
    return None
