"""One page of a stream for `convo inspect`: a window of events, each with the state after it, the prompt of each
answer diffed against the previous answer's, and the turns later undone.

Read from the store around the window only, never the whole stream (a stream may hold 100,000 events): the state
before the window and the prompts come from the tail readers (`domain.tail`) fed backwards, undos from the events
just after. Step for step it equals `service.replay` over the whole stream; the tests hold it to that.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from domain.conversation import State, evolve
from domain.errors import DomainError
from domain.events import (
    AnswerFailed,
    AnswerGiven,
    PromptSettingsRecorded,
    QuestionAsked,
    RecordedEvent,
    TurnUndone,
    UndoReason,
)
from domain.ports import EventStore
from domain.prompt import PromptPolicy, TokenCounter, with_persona
from domain.tail import PromptTail, StateTail
from service.loading import PAGE
from service.replay import (
    Asked,
    Folding,
    KeyedPrompt,
    PromptRecord,
    Step,
    StreamNotFound,
    prompt_record,
    question_version_of,
)
from service.what_if import Alternative, WhatIf, alternative_of

PAGE_SIZE = 50
"""Events shown per page."""
FORWARD_PAGE = 500
"""Events read per query while looking ahead for undos."""
DIFF_REACH = 10_000
"""How far back the previous answer is looked for, to diff a page's first prompt against (`convo replay`, which
reads the whole stream, has no such limit)."""


@attrs.frozen
class TimelinePage:
    """A window of a stream as it stood at version `at`."""

    stream: str
    """The stream."""
    steps: tuple[Step, ...]
    """The events of the window, oldest first, each with the state after it (and its prompt, for an outcome)."""
    at: int
    """The version the stream is viewed at: later events are left out, undos included."""
    newest_version: int
    """The stream's current version."""
    before: State
    """The state before the window's first event."""

    @property
    def first(self) -> int:
        """Version of the window's oldest event."""
        return self.steps[0].recorded.version

    @property
    def last(self) -> int:
        """Version of the window's newest event."""
        return self.steps[-1].recorded.version


async def timeline_page(
    store: EventStore,
    stream: str,
    folding: Folding,
    at: int | None = None,
    last: int | None = None,
    size: int = PAGE_SIZE,
) -> TimelinePage:
    """The `size` events up to version `last` (default: `at`) of the stream viewed at version `at` (default: its
    newest); raises StreamNotFound, ValueError for a version below 1."""
    if (at is not None and at < 1) or (last is not None and last < 1) or size < 1:
        raise ValueError("versions and the page size start at 1")
    newest = await store.current_version(stream)
    if newest == 0:
        raise StreamNotFound(stream)
    at = min(at or newest, newest)
    last = min(last or at, at)
    first = max(1, last - size + 1)
    events = [recorded async for recorded in store.read_forwards(stream, first, limit=last - first + 1)]
    if not events:
        raise StreamNotFound(stream)
    reader = _Reader(store, stream)
    reader.remember(events)
    before = await reader.state_below(first)
    undone = await _undone(store, stream, events, before, folding, at)
    steps = await _steps(reader, events, before, folding, undone)
    return TimelinePage(stream, tuple(steps), at, newest, before)


async def _steps(
    reader: _Reader, events: Sequence[RecordedEvent], before: State, folding: Folding, undone: dict[int, UndoReason]
) -> list[Step]:
    """Each event with the state after it; each outcome with its prompt diffed against the previous answer's."""
    steps: list[Step] = []
    state = before
    previous: KeyedPrompt | None = None
    for recorded in events:
        state = evolve(state, recorded)
        event = recorded.event
        record = None
        if isinstance(event, AnswerGiven | AnswerFailed):
            if previous is None:
                previous = await reader.previous_prompt(recorded.version, folding)
            built = await reader.prompt(recorded, folding, previous)
            if built is not None:
                record, keyed = built
                if isinstance(event, AnswerGiven):
                    previous = keyed
        steps.append(Step(recorded, state, record, undone.get(question_version_of(recorded))))
    return steps


async def _undone(
    store: EventStore,
    stream: str,
    events: Sequence[RecordedEvent],
    before: State,
    folding: Folding,
    at: int,
) -> dict[int, UndoReason]:
    """How each turn of the window was undone, up to version `at`.

    An undo acts only on turns within the lookback of the newest event, so it comes at most `lookback` versions
    after its question: that is how far past the window this reads."""
    turns = {question_version_of(recorded) for recorded in events} - {0}
    if not turns:
        return {}
    settings = [before.shaping, *(e.event for e in events if isinstance(e.event, PromptSettingsRecorded))]
    lookbacks = [folding.fallback.policy.lookback, *(shaping.lookback for shaping in settings if shaping is not None)]
    end = min(at, max(turns) + max(lookbacks))
    undone: dict[int, UndoReason] = {}
    version = min(turns) + 1
    while version <= end:
        page = [e async for e in store.read_forwards(stream, version, limit=min(FORWARD_PAGE, end - version + 1))]
        for recorded in page:
            if isinstance(recorded.event, TurnUndone) and recorded.event.question_version in turns:
                undone[recorded.event.question_version] = recorded.event.reason
        if not page:
            break
        version = page[-1].version + 1
    return undone


class _Reader:
    """Reads one stream backwards in pages for the tail readers, keeping what it read."""

    def __init__(self, store: EventStore, stream: str) -> None:
        self._store = store
        self._stream = stream
        self._events: dict[int, RecordedEvent] = {}

    def remember(self, events: Sequence[RecordedEvent]) -> None:
        """Keep events read elsewhere."""
        self._events.update((recorded.version, recorded) for recorded in events)

    async def event(self, version: int) -> RecordedEvent | None:
        """The event at a version (None below 1 or past the end)."""
        if version < 1:
            return None
        if version not in self._events:
            page = [e async for e in self._store.read_backwards(self._stream, before=version + 1, limit=PAGE)]
            self.remember(page)
        return self._events.get(version)

    async def state_below(self, below: int) -> State:
        """The state after the events below version `below`."""
        tail = StateTail()
        version = below - 1
        while not tail.done and (recorded := await self.event(version)) is not None:
            tail.feed(recorded)
            version -= 1
        return tail.state()

    def run(self, below: int) -> list[RecordedEvent]:
        """The events from just below `below` down to the oldest one read contiguously, oldest first."""
        version = below - 1
        while version - 1 in self._events:
            version -= 1
        return [self._events[v] for v in range(version, below)]

    async def prompt(
        self, outcome: RecordedEvent, folding: Folding, previous: KeyedPrompt
    ) -> tuple[PromptRecord, KeyedPrompt] | None:
        """The prompt of an outcome's question, as `service.replay` rebuilds it, diffed against `previous`; None
        when the question is not in the stream (below its first version)."""
        event = outcome.event
        assert isinstance(event, AnswerGiven | AnswerFailed)
        question = await self.event(event.question_version)
        if question is None or not isinstance(question.event, QuestionAsked) or question.version > outcome.version:
            return None
        state = await self.state_below(question.version + 1)
        asked = Asked(state.model, state.shaping)
        policy, count = folding.policy(asked, event.prompt_budget)
        await self._feed_prompt_tail(question, policy, count, state)
        window = self.run(question.version + 1)
        return prompt_record(window, outcome.version, event, folding, asked, previous)

    async def _feed_prompt_tail(
        self, question: RecordedEvent, policy: PromptPolicy, count: TokenCounter, state: State
    ) -> None:
        """Read far enough back for the question's prompt (the persona's event was read for the state)."""
        try:
            tail = PromptTail(question, with_persona(policy, state.persona_prompt), count)
        except DomainError:  # the question alone does not fit: the record says so, and needs no more events
            return
        version = question.version - 1
        while not tail.done and (recorded := await self.event(version)) is not None:
            tail.feed(recorded)
            version -= 1

    async def previous_prompt(self, below: int, folding: Folding) -> KeyedPrompt:
        """The prompt of the newest answer below version `below` whose question is in the stream, looking at most
        DIFF_REACH versions back (none: empty, and every message of the next prompt shows as new)."""
        version = below - 1
        while version >= below - DIFF_REACH and (recorded := await self.event(version)) is not None:
            if isinstance(recorded.event, AnswerGiven):
                built = await self.prompt(recorded, folding, ())
                if built is not None and built[0].error is None:  # replay diffs against built prompts only
                    return built[1]
            version -= 1
        return ()


class TurnNotFound(LookupError):
    """The version asked for is not a question with a recorded outcome."""


async def turn_alternative(
    store: EventStore, stream: str, folding: Folding, question: int, change: WhatIf
) -> Alternative:
    """What-if for one question (`convo replay --what-if --at`), read around it only; raises TurnNotFound.

    The question's outcome is looked for within the lookback after it; the events before it are read as far back
    as any prompt of it could reach (the lookback, and the state's settings)."""
    reader = _Reader(store, stream)
    asked = await reader.event(question)
    if asked is None or not isinstance(asked.event, QuestionAsked):
        raise TurnNotFound(f"version {question} of stream {stream!r} is not a question")
    state = await reader.state_below(question + 1)
    reach = max(folding.fallback.policy.lookback, *_recorded_lookbacks(state))
    outcome = await _outcome_of(store, stream, question, reach)
    if outcome is None:
        raise TurnNotFound(f"the question at version {question} has no recorded answer or failure")
    for version in range(question - 1, max(0, question - reach - 1), -1):
        await reader.event(version)
    window = reader.run(question + 1)
    built = await reader.prompt(outcome, folding, ())
    assert built is not None  # the question is in the stream, below its outcome
    return alternative_of(window, outcome, Asked(state.model, state.shaping), built[0], folding, change)


def _recorded_lookbacks(state: State) -> tuple[int, ...]:
    return () if state.shaping is None else (state.shaping.lookback,)


async def _outcome_of(store: EventStore, stream: str, question: int, reach: int) -> RecordedEvent | None:
    """The answer or failure recorded for the question at `question`, within `reach` versions after it."""
    version = question + 1
    while version <= question + reach:
        page = [e async for e in store.read_forwards(stream, version, limit=FORWARD_PAGE)]
        for recorded in page:
            if isinstance(recorded.event, AnswerGiven | AnswerFailed) and recorded.event.question_version == question:
                return recorded
        if not page:
            return None
        version = page[-1].version + 1
    return None
