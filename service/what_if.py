"""What-if replay: every recorded prompt folded again under other settings (a persona, a model, a budget), beside
the prompt replay rebuilds for it, with the turns that would drop out. Reads the store; never writes it."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from decimal import Decimal

import attrs

from domain.conversation import INITIAL, evolve
from domain.errors import DomainError
from domain.events import AnswerFailed, AnswerGiven, QuestionAsked, RecordedEvent
from domain.ports import ChatModel, EventStore, ModelFailure
from domain.prices import PriceTable
from domain.prompt import Message, ModelPrompts, PromptPolicy, TokenCounter, prompt_cost
from domain.usage import Billed, billed_by, cost
from service.replay import Asked, Folding, PromptRecord, StreamNotFound, rebuild_prompt, replay_steps


@attrs.frozen
class WhatIf:
    """Other settings to fold recorded prompts under (None: as recorded)."""

    persona: str | None = None
    """A system prompt in place of every prompt's persona."""
    model: str | None = None
    """Another model: its prompts are counted with its tokenizer (and asked of it, with `--ask`)."""
    budget: int | None = None
    """Another prompt budget."""


@attrs.frozen
class Alternative:
    """A recorded question's prompt as it was folded, and as it would be under other settings."""

    question_version: int
    """Stream version of the question."""
    outcome: RecordedEvent
    """Its answer (or failure), as recorded."""
    model: str | None
    """The model that answered it (as recorded), or the one to ask instead."""
    old: PromptRecord
    """The prompt as replay rebuilds it (verified against its digest where it can be)."""
    new_messages: tuple[Message, ...]
    """The prompt under the other settings; empty when it cannot be built (see `new_error`)."""
    new_tokens: int
    """Tokens of the new prompt, counted as its budget counts them."""
    new_budget: int
    """The budget it was folded to."""
    dropped_turns: tuple[int, ...]
    """Question versions of the turns the old prompt kept and the new one drops."""
    added_turns: tuple[int, ...]
    """Question versions of the turns the new prompt keeps and the old one did not."""
    new_error: str | None = None
    """Why no prompt could be built under the other settings."""


async def what_if(
    store: EventStore,
    stream: str,
    prompts: ModelPrompts,
    change: WhatIf,
    question: int | None = None,
    counter_for: Callable[[str], TokenCounter] | None = None,
) -> list[Alternative]:
    """Every recorded question's prompt (or only the one at version `question`) folded again under `change`,
    beside the prompt replay rebuilds for it. Reads the store; never writes it. Raises StreamNotFound."""
    events = [recorded async for recorded in store.read_forwards(stream)]
    if not events:
        raise StreamNotFound(stream)
    count_of = counter_for or prompts.count_for
    folding = Folding(prompts, count_of)
    replayed = {record.answer_version: record for record in await _records(events, folding)}
    state = INITIAL
    asked_of: dict[int, Asked] = {}
    alternatives: list[Alternative] = []
    for recorded in events:
        state = evolve(state, recorded)
        event = recorded.event
        if isinstance(event, QuestionAsked):
            asked_of[recorded.version] = Asked(state.model, state.shaping)
        outcome_of_question = isinstance(event, AnswerGiven | AnswerFailed) and event.question_version in asked_of
        if not outcome_of_question or recorded.version not in replayed:
            continue
        assert isinstance(event, AnswerGiven | AnswerFailed)
        if question is not None and event.question_version != question:
            continue
        asked = asked_of[event.question_version]
        alternatives.append(alternative_of(events, recorded, asked, replayed[recorded.version], folding, change))
    return alternatives


async def _records(events: Sequence[RecordedEvent], folding: Folding) -> list[PromptRecord]:
    return [step.prompt for step in replay_steps(events, folding) if step.prompt is not None]


def alternative_of(
    events: Sequence[RecordedEvent],
    outcome: RecordedEvent,
    asked: Asked,
    old: PromptRecord,
    folding: Folding,
    change: WhatIf,
) -> Alternative:
    event = outcome.event
    assert isinstance(event, AnswerGiven | AnswerFailed)
    policy, count = folding.policy(asked, event.prompt_budget)
    model = change.model or (asked.shaping.model if asked.shaping is not None else asked.model)
    if change.model is not None:
        count = folding.counter_for(change.model)
    if change.budget is not None:
        policy = attrs.evolve(policy, budget=change.budget)
    kept_before = _kept(events, outcome.version, event.question_version, *folding.policy(asked, event.prompt_budget))
    try:
        messages, turns = rebuild_prompt(events, outcome.version, event.question_version, policy, count, change.persona)
    except DomainError as error:
        dropped = tuple(sorted(kept_before))
        return Alternative(event.question_version, outcome, model, old, (), 0, policy.budget, dropped, (), str(error))
    kept_after = {turn.question_version for turn in turns}
    return Alternative(
        event.question_version,
        outcome,
        model,
        old,
        messages,
        prompt_cost(messages, count),
        policy.budget,
        tuple(sorted(kept_before - kept_after)),
        tuple(sorted(kept_after - kept_before)),
    )


def _kept(
    events: Sequence[RecordedEvent], answered: int, asked: int, policy: PromptPolicy, count: TokenCounter
) -> set[int]:
    """The question versions of the turns the prompt as recorded kept (none when it could not be built)."""
    try:
        return {turn.question_version for turn in rebuild_prompt(events, answered, asked, policy, count)[1]}
    except DomainError:
        return set()


@attrs.frozen
class Answer:
    """An answer to a question, as recorded or as asked again, with what it cost."""

    text: str
    """The answer; empty when there was none (see `failure`)."""
    model: str
    """The model that gave it (or was asked)."""
    prompt_tokens: int
    """Prompt tokens billed (0: unknown)."""
    completion_tokens: int
    """Completion tokens billed."""
    latency_ms: int
    """Milliseconds the model took."""
    cost: Decimal
    """USD by the price table (0 for a model it has no price for)."""
    failure: str | None = None
    """Why there was no answer (a failure kind and message)."""


def recorded_answer(alternative: Alternative, prices: PriceTable) -> Answer:
    """The answer (or failure) the log holds for the question."""
    event = alternative.outcome.event
    spent = cost(billed_by(event), prices)
    if isinstance(event, AnswerGiven):
        return Answer(
            event.text, event.model, event.prompt_tokens, event.completion_tokens, event.latency_ms, spent, None
        )
    assert isinstance(event, AnswerFailed)
    failure = f"{event.kind}: {event.message}"
    return Answer("", event.model, event.prompt_tokens, event.completion_tokens, 0, spent, failure)


async def ask_again(
    alternative: Alternative, chat: ChatModel, prices: PriceTable, clock: Callable[[], float] = time.monotonic
) -> Answer:
    """The question put to the model again with the other prompt (never recorded)."""
    model = alternative.model or chat.name
    if not alternative.new_messages:
        return Answer("", model, 0, 0, 0, Decimal(0), f"not asked: {alternative.new_error}")
    started = clock()
    try:
        completion = await chat.answer(alternative.new_messages, model=alternative.model)
    except ModelFailure as failure:
        return Answer("", model, 0, 0, round((clock() - started) * 1000), Decimal(0), f"{failure.kind}: {failure}")
    latency = round((clock() - started) * 1000)
    cached = min(completion.cached_tokens, completion.prompt_tokens)
    billed = [
        Billed(completion.model, "input", completion.prompt_tokens - cached),
        Billed(completion.model, "cached_input", cached),
        Billed(completion.model, "output", completion.completion_tokens),
    ]
    return Answer(
        completion.text,
        completion.model,
        completion.prompt_tokens,
        completion.completion_tokens,
        latency,
        cost(billed, prices),
    )
