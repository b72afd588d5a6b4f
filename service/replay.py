"""Replaying a stream for debugging: the state after each event, and every prompt that was sent, diffed.

`replay` reads a stream forwards and, for each answered question, rebuilds its prompt with the tail fold the bot
uses to build prompts (`domain.tail.PromptTail`, which the property tests hold equal to `domain.prompt.prompt_for`),
together with what changed since the previous prompt: turns that fell out of the budget or lookback window or were
cleared by a reset, turns that came in, a changed persona. `list_streams` summarises every stream. The renderers
(`entrypoints.replay`) turn these into a table for people or JSON for scripts. Nothing here reads the environment.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Literal, TypeAlias

import attrs

from domain.conversation import INITIAL, State, evolve
from domain.errors import DomainError
from domain.events import (
    AnswerFailed,
    AnswerGiven,
    FailureKind,
    PromptSettingsRecorded,
    QuestionAsked,
    RecordedEvent,
    TurnUndone,
    UndoReason,
    UserRegistered,
)
from domain.ports import EventStore
from domain.prompt import (
    Message,
    ModelPrompts,
    PromptPolicy,
    TokenCounter,
    Turn,
    persona_before,
    prompt_cost,
    prompt_digest,
    shaped_policy,
    with_persona,
)
from domain.tail import PromptTail


class StreamNotFound(LookupError):
    """The store has no events for the stream asked for."""

    def __init__(self, stream: str) -> None:
        super().__init__(f"no events for stream {stream!r} (convo replay --list shows the streams)")
        self.stream = stream


@attrs.frozen
class PromptRecord:
    """The prompt an answered question was sent, and how it differs from the previous prompt of the stream."""

    question_version: int
    """Stream version of the question."""
    answer_version: int
    """Stream version of the AnswerGiven."""
    messages: tuple[Message, ...]
    """The prompt exactly as `prompt_for` folds it; empty when it could not be built (see `error`)."""
    added: tuple[Message, ...]
    """Messages of this prompt that the previous prompt did not hold, in prompt order."""
    dropped: tuple[Message, ...]
    """Messages of the previous prompt that this one no longer holds, in their old order."""
    tokens: int
    """Tokens the prompt takes, counted as the budget counts them."""
    budget: int = 0
    """The budget it was folded to: that of the model the chat had picked when the question was asked."""
    error: str | None = None
    """Why no prompt could be built (the question alone overflows the budget, or the stream is malformed)."""
    verification: Verification = "unrecorded"
    """`verified`: the rebuilt prompt is the one whose digest was recorded when it was sent; `differs`: it is not
    (the fold changed since, or a picture could not be sent); `unrecorded`: the log holds no digest to check (the
    question got no prompt sent, or was recorded before digests), or no prompt settings (folded with the current
    ones)."""
    failed: FailureKind | None = None
    """For a question that got no answer: why (the prompt shown is the one sent, or that would have been)."""

    @property
    def persona_changed(self) -> bool:
        """True when the system message differs from the previous prompt's."""
        roles = {message.role for message in self.added} & {message.role for message in self.dropped}
        return "system" in roles


@attrs.frozen
class Step:
    """One event of the replay with the state folded after it."""

    recorded: RecordedEvent
    """The event as the store recorded it."""
    state: State
    """The conversation state after this event."""
    prompt: PromptRecord | None = None
    """For an AnswerGiven: the prompt its question was sent."""
    undone: UndoReason | None = None
    """For a question or its answer whose turn was later undone (in the events replayed): how."""


@attrs.frozen
class Replay:
    """A stream read forwards, event by event."""

    stream: str
    """The stream replayed."""
    steps: tuple[Step, ...]
    """Every event read, oldest first."""
    newest_version: int
    """The stream's current version (more than the last step's when the replay stopped at `at`)."""
    folding: ModelPrompts
    """How the prompts were folded, for each model."""

    @property
    def prompts(self) -> tuple[PromptRecord, ...]:
        """The prompt records, in stream order."""
        return tuple(step.prompt for step in self.steps if step.prompt is not None)


@attrs.frozen
class StreamSummary:
    """One line of `convo replay --list`."""

    stream: str
    """The stream id (the Telegram chat id)."""
    events: int
    """Number of events, which is the stream's current version."""
    user_id: int | None
    """Telegram user id from the stream's UserRegistered, if it starts with one."""
    username: str | None
    """The @username (without @) registered, if any."""
    first_name: str | None
    """The first name registered, if the stream starts with a registration."""
    last_event_at: datetime
    """When the newest event was recorded (UTC)."""


async def replay_stream(
    store: EventStore,
    stream: str,
    prompts: ModelPrompts,
    at: int | None = None,
    counter_for: Callable[[str], TokenCounter] | None = None,
) -> Replay:
    """The stream up to version `at` (all of it when None or beyond the end); raises StreamNotFound, ValueError.

    Each prompt is folded with the settings the log recorded before its question and counted by `counter_for`
    (model name -> counter; default: `prompts`'); `prompts` folds only questions recorded before the settings
    were."""
    if at is not None and at < 1:
        raise ValueError(f"--at must be a version of 1 or more, got {at}")
    events = [recorded async for recorded in store.read_forwards(stream, 1, limit=at)]
    if not events:
        raise StreamNotFound(stream)
    newest = await store.current_version(stream)
    folding = Folding(prompts, counter_for or prompts.count_for)
    return Replay(stream, tuple(replay_steps(events, folding)), max(newest, events[-1].version), prompts)


@attrs.frozen
class Folding:
    """How replay folds prompts: with the settings the log recorded, counted by model name; `fallback` for
    questions asked before settings were recorded."""

    fallback: ModelPrompts
    counter_for: Callable[[str], TokenCounter]

    def policy(self, asked: Asked, budget: int) -> tuple[PromptPolicy, TokenCounter]:
        """The policy (persona aside) and the counter of the prompt of a question asked in this state."""
        if asked.shaping is None:
            return self.fallback.policy_for(asked.model), self.fallback.count_for(asked.model)
        return shaped_policy(asked.shaping, None, budget), self.counter_for(asked.shaping.model)


@attrs.frozen
class Asked:
    """What shaped a question's prompt, as the log held it when it was asked."""

    model: str | None
    shaping: PromptSettingsRecorded | None


def replay_steps(events: Sequence[RecordedEvent], folding: Folding) -> Iterable[Step]:
    """Each event with the state after it and, for answers and failed questions, the prompt diffed against the
    previous one."""
    state = INITIAL
    previous: KeyedPrompt = ()
    undone = {e.event.question_version: e.event.reason for e in events if isinstance(e.event, TurnUndone)}
    asked_of: dict[int, Asked] = {}
    for recorded in events:
        state = evolve(state, recorded)
        record = None
        event = recorded.event
        if isinstance(event, QuestionAsked):
            asked_of[recorded.version] = Asked(state.model, state.shaping)
        if isinstance(event, AnswerGiven | AnswerFailed) and event.question_version in asked_of:
            asked = asked_of[event.question_version]
            record, keyed = prompt_record(events, recorded.version, event, folding, asked, previous)
            if isinstance(event, AnswerGiven):  # diffs run from answer to answer; a failure's is shown alone
                previous = keyed
        yield Step(recorded, state, record, undone.get(question_version_of(recorded)))


def question_version_of(recorded: RecordedEvent) -> int:
    """The question version of the turn a question or an answer belongs to (0 for other events)."""
    if isinstance(recorded.event, QuestionAsked):
        return recorded.version
    if isinstance(recorded.event, AnswerGiven | AnswerFailed):
        return recorded.event.question_version
    return 0


Verification: TypeAlias = Literal["verified", "differs", "unrecorded"]
_Key: TypeAlias = tuple[object, ...]


KeyedPrompt: TypeAlias = tuple[tuple[_Key, Message], ...]


def prompt_record(
    events: Sequence[RecordedEvent],
    outcome_version: int,
    outcome: AnswerGiven | AnswerFailed,
    folding: Folding,
    asked: Asked,
    previous: KeyedPrompt,
) -> tuple[PromptRecord, KeyedPrompt]:
    """The prompt a question was sent (or would have been, for one that failed), diffed against the previous built
    prompt and checked against the digest recorded with the outcome; with the prompt the next one is diffed
    against (still the previous one when this prompt cannot be built). It is folded as the bot folded it: with the
    settings recorded before the question and the budget recorded with the outcome."""
    question = outcome.question_version
    policy, count = folding.policy(asked, outcome.prompt_budget)
    failed = outcome.kind if isinstance(outcome, AnswerFailed) else None
    try:
        messages, turns = rebuild_prompt(events, outcome_version, question, policy, count)
    except DomainError as error:
        empty = PromptRecord(question, outcome_version, (), (), (), 0, policy.budget, str(error), failed=failed)
        return empty, previous
    keyed = _keyed(messages, turns, question)
    added, dropped = _diff(previous, keyed)
    tokens = prompt_cost(messages, count)
    verification = _verification(messages, outcome.prompt_digest, asked)
    record = PromptRecord(
        question, outcome_version, messages, added, dropped, tokens, policy.budget, None, verification, failed
    )
    return record, keyed


def _verification(messages: Sequence[Message], digest: str, asked: Asked) -> Verification:
    if not digest or asked.shaping is None:
        return "unrecorded"
    return "verified" if prompt_digest(messages) == digest else "differs"


def rebuild_prompt(
    events: Sequence[RecordedEvent],
    answered: int,
    asked: int,
    policy: PromptPolicy,
    count: TokenCounter,
    persona: str | None = None,
) -> tuple[tuple[Message, ...], tuple[Turn, ...]]:
    """The prompt of the question at version `asked` (answered at `answered`) and the turns it kept, by the tail
    fold the bot itself uses (`domain.tail.PromptTail`): the events before the question, newest first, until older
    ones cannot matter; with the chat's persona, or `persona` in its place. Raises DomainError when the log before
    the answer holds no question at `asked`."""
    at = bisect.bisect_left(events, asked, key=_version)
    if asked > answered or at == len(events) or events[at].version != asked:
        raise DomainError(f"version {asked} is not a question")
    chosen = persona if persona is not None else persona_before(events[:at], asked)
    tail = PromptTail(events[at], with_persona(policy, chosen), count)
    for recorded in reversed(events[:at]):
        if tail.done:
            break
        tail.feed(recorded)
    return tail.messages(), tail.turns


def _version(recorded: RecordedEvent) -> int:
    """The sort key of a stream's events."""
    return recorded.version


def _keyed(messages: Sequence[Message], turns: Sequence[Turn], asked: int) -> KeyedPrompt:
    """Each message named by where it came from, so the diff follows turns rather than equal texts.

    The prompt is the persona, the newest turns (a suffix of `turns`) and the question; should it ever not line up
    with the turns, messages are named by role, content and occurrence instead.
    """
    pairs = (len(messages) - 2) // 2
    kept = turns[len(turns) - pairs :] if pairs > 0 else []
    persona = messages[0].content
    answers = tuple(message.content for message in messages[2:-1:2])
    if len(messages) != 2 * len(kept) + 2 or answers != tuple(turn.answer for turn in kept):
        return _keyed_by_content(messages)
    turn_keys = [(role, turn.question_version) for turn in kept for role in ("user", "assistant")]
    keys: list[_Key] = [("system", persona), *turn_keys, ("user", asked)]
    return tuple(zip(keys, messages, strict=True))


def _keyed_by_content(messages: Sequence[Message]) -> KeyedPrompt:
    """Messages named by role, content and how many equal messages came before (the persona as `_keyed` names it)."""
    seen: Counter[Message] = Counter()
    keyed: list[tuple[_Key, Message]] = []
    for message in messages:
        seen[message] += 1
        key = (message.role, message.content, seen[message])
        keyed.append((key[:2] if message.role == "system" else key, message))
    return tuple(keyed)


def _diff(old: KeyedPrompt, new: KeyedPrompt) -> tuple[tuple[Message, ...], tuple[Message, ...]]:
    """(added, dropped): messages only in the new prompt, in its order; only in the old one, in its order. A message
    that changed in place (a turn's picture become a mark as it aged) is dropped as it was and added as it is."""
    old_keys = set(old)
    new_keys = set(new)
    added = tuple(message for key, message in new if (key, message) not in old_keys)
    dropped = tuple(message for key, message in old if (key, message) not in new_keys)
    return added, dropped


async def list_streams(store: EventStore) -> list[StreamSummary]:
    """Every stream with its size, registered user and last activity, reading two events of each.

    The ids are listed first and summarised after, so no store is asked to read while it pages through its list;
    a stream deleted in between is left out.
    """
    names = [stream async for stream in store.list_streams()]
    summaries = [await _stream_summary(store, stream) for stream in names]
    return [summary for summary in summaries if summary is not None]


async def _stream_summary(store: EventStore, stream: str) -> StreamSummary | None:
    """A stream's first event (the registration) and newest event (its version and time); None if it is gone."""
    first = [recorded async for recorded in store.read_forwards(stream, 1, limit=1)]
    newest = [recorded async for recorded in store.read_backwards(stream, limit=1)]
    if not first or not newest:
        return None
    user = first[0].event
    registered = user if isinstance(user, UserRegistered) else None
    return StreamSummary(
        stream=stream,
        events=newest[0].version,
        user_id=None if registered is None else registered.user_id,
        username=None if registered is None else registered.username,
        first_name=None if registered is None else registered.first_name,
        last_event_at=newest[0].recorded_at.astimezone(UTC),
    )
