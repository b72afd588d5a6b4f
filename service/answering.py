"""A recorded request's outcome: the one the log already holds, else one fresh model call, recorded once.

A question is answered from the prompt folded out of the log (refitted when the model server's own tokenizer
counts it over the budget, asked once more with half the budget when the model finds it too long); an image
request is drawn. If another worker recorded an outcome first, that one is the outcome: a request is never
answered twice in the log.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Literal

import attrs
import structlog

from domain.commands import Command, FailAnswer, FailImage, GiveAnswer, GiveImage
from domain.conversation import State, has_visible_text
from domain.errors import QuestionTooLong
from domain.events import (
    AnswerFailed,
    AnswerGiven,
    Event,
    ImageFailed,
    ImageGenerated,
    ImageRequested,
    PromptSettingsRecorded,
    QuestionAsked,
    RecordedEvent,
)
from domain.ports import ChatModel, Completion, ImageModel, ModelFailure, PromptMeter, StopSignal, TextSoFar
from domain.prompt import Message, ModelPrompts, PromptPolicy, prompt_cost, prompt_digest, shaped_policy
from service.budgets import BudgetGuard
from service.loading import load_prompt
from service.outcomes import Answered, Drawn, Failed, Outcome
from service.recording import record
from service.state_cache import StateCache
from service.vision import Pictures, Vision

log = structlog.get_logger(__name__)


@attrs.frozen(kw_only=True)
class Models:
    """What answers and draws, and how prompts are folded for it."""

    chat: ChatModel
    """Answers questions."""
    images: ImageModel
    """Draws pictures."""
    prompts: ModelPrompts
    """Persona, budget, lookback and token count of prompts to each chat model."""
    meter: PromptMeter | None = None
    """The model server's own count of a whole prompt, where it has one."""
    vision: Vision = attrs.field(factory=Vision)
    """Which chat models are sent pictures."""
    pictures: Pictures = attrs.field(factory=Pictures)
    """The bytes of the pictures prompts send."""

    def shaping_of(self, state: State) -> PromptSettingsRecorded:
        """What shapes the chat's prompts now, as the operator set it: recorded before its next question."""
        policy = self.prompts.policy_for(state.model)
        model = state.model or self.chat.name
        return PromptSettingsRecorded(
            persona=policy.persona,
            budget=policy.budget,
            lookback=policy.lookback,
            model=model,
            vision_history=self.vision.history_for(model),
        )

    def policy_of(self, state: State) -> PromptPolicy:
        """The policy of the chat's next prompt: the shaping the log recorded (else the operator's now), with the
        chat's persona."""
        return shaped_policy(state.shaping or self.shaping_of(state), state.persona_prompt)


class Answering:
    """Outcomes of recorded requests, over one stream cache and one pair of models."""

    def __init__(self, states: StateCache, models: Models, guard: BudgetGuard | None = None) -> None:
        self._states = states
        self._models = models
        self._guard = guard

    async def outcome(
        self,
        asked: RecordedEvent,
        on_text: TextSoFar | None,
        known: State | None = None,
        stop: StopSignal | None = None,
    ) -> Outcome:
        """The request's outcome: the recorded one if it has one, else a fresh model call, recorded once.

        `known` is the stream's state when the caller has just written it (so it need not be read again). Once
        `stop` is set, the answer is what had arrived, recorded as stopped (a failure of kind `stopped` if
        nothing had).
        """
        state = known or await self._states.load(asked.stream)
        if state.pending is None or state.pending.version != asked.version:
            undelivered = state.undelivered is not None and state.undelivered.version == asked.version
            return attrs.evolve(await self.recorded_outcome(asked), delivered=not undelivered)
        refusal = await self._guard.refusal(state.pending.asker_id, asked.stream) if self._guard else None
        if isinstance(asked.event, QuestionAsked):
            if refusal is not None:
                return await self._question_failed(asked, ModelFailure("over_budget", refusal.message))
            chat = _ChatCall(self._models.policy_of(state), state.model, on_text, stop, _Sent())
            return await self._answer(asked, chat)
        if refusal is not None:
            return await self._image_failed(asked, ModelFailure("over_budget", refusal.message))
        return await self._draw(asked)

    async def recorded_outcome(self, asked: RecordedEvent) -> Outcome:
        """The outcome the log holds for a request (a redelivered update gets the same reply, no model call)."""
        async for recorded in self._states.store.read_forwards(asked.stream, from_version=asked.version + 1):
            outcome = _outcome_of(recorded.event, asked)
            if outcome is not None:
                return outcome
        kind: Literal["question", "image"] = "question" if isinstance(asked.event, QuestionAsked) else "image"
        message = "the request was closed without a result"
        return Failed(request=kind, kind="abandoned", message=message, request_version=asked.version)

    async def _answer(self, asked: RecordedEvent, call: _ChatCall) -> Outcome:
        started = time.monotonic()
        try:
            completion = await self._complete(asked, call)
        except QuestionTooLong as error:
            return await self._question_failed(asked, ModelFailure("context_too_long", str(error)))
        except ModelFailure as failure:
            return await self._question_failed(asked, failure, sent=call.sent)
        if completion.stopped and not has_visible_text(completion.text):
            stopped = ModelFailure("stopped", "stopped before the answer began")
            return await self._question_failed(asked, stopped, completion.reasoning, call.sent)
        answer = GiveAnswer(
            question_version=asked.version,
            text=completion.text,
            model=completion.model,
            prompt_tokens=completion.prompt_tokens,
            completion_tokens=completion.completion_tokens,
            latency_ms=round((time.monotonic() - started) * 1000),
            reasoning=completion.reasoning,
            stopped=completion.stopped,
            cached_tokens=completion.cached_tokens,
            reasoning_tokens=completion.reasoning_tokens,
            prompt_digest=call.sent.digest,
            prompt_budget=call.sent.budget,
        )
        shown = attrs.fields_dict(Answered)
        fields = {name: value for name, value in attrs.asdict(answer).items() if name in shown}
        return await self._record_outcome(asked, answer, Answered(**fields))

    async def _question_failed(
        self, asked: RecordedEvent, failure: ModelFailure, reasoning: str = "", sent: _Sent | None = None
    ) -> Outcome:
        billed = failure.billed
        command = FailAnswer(
            question_version=asked.version,
            kind=failure.kind,
            message=failure.message,
            reasoning=reasoning,
            model=billed.model if billed is not None else "",
            prompt_tokens=billed.prompt_tokens if billed is not None else 0,
            completion_tokens=billed.completion_tokens if billed is not None else 0,
            cached_tokens=billed.cached_tokens if billed is not None else 0,
            prompt_digest=sent.digest if sent is not None else "",
            prompt_budget=sent.budget if sent is not None else 0,
        )
        failed = attrs.evolve(_failed("question", asked, failure), reasoning=reasoning)
        return await self._record_outcome(asked, command, failed)

    async def _complete(self, asked: RecordedEvent, call: _ChatCall) -> Completion:
        """The model's answer to the folded prompt. A model whose window is smaller than the budget assumes
        (`context_too_long`: a token count the estimate got wrong) is asked once more with half the budget,
        dropping the oldest turns, before the question fails."""
        models = self._models
        prompt = await models.pictures.filled(await self._fitted_prompt(asked, call))
        try:
            return await models.chat.answer(call.sent.sending(prompt), call.on_text, call.stop, call.model)
        except ModelFailure as failure:
            if failure.kind == "no_vision":
                models.vision.refused(call.model or models.chat.name)
            if failure.kind != "context_too_long":
                raise
            smaller = attrs.evolve(call.policy, budget=call.policy.budget // 2)
            try:
                prompt = await load_prompt(self._states.store, asked, smaller, models.prompts.count_for(call.model))
            except QuestionTooLong:
                raise failure from None
            log.info("prompt_window_halved", budget=smaller.budget, messages=len(prompt))
            call.sent.budget = smaller.budget
            sent = call.sent.sending(await models.pictures.filled(prompt))
            return await models.chat.answer(sent, call.on_text, call.stop, call.model)

    async def _fitted_prompt(self, asked: RecordedEvent, call: _ChatCall) -> Sequence[Message]:
        """The folded prompt, refolded once with a budget scaled down if the model server's own tokenizer counts
        it over the budget the estimate thought it fit."""
        models, store = self._models, self._states.store
        policy, count = call.policy, models.prompts.count_for(call.model)
        prompt = await load_prompt(store, asked, policy, count)
        call.sent.budget = policy.budget
        measured = await models.meter.measure(prompt) if models.meter is not None else None
        if measured is None or measured <= policy.budget:
            return prompt
        estimated = prompt_cost(prompt, count)
        budget = policy.budget * estimated * 95 // (measured * 100)
        log.info("prompt_refit", measured=measured, budget=policy.budget, estimate_budget=budget)
        call.sent.budget = budget
        return await load_prompt(store, asked, attrs.evolve(policy, budget=budget), count)

    async def _draw(self, asked: RecordedEvent) -> Outcome:
        assert isinstance(asked.event, ImageRequested)
        prompt = asked.event.prompt
        try:
            picture = await self._models.images.draw(prompt)
        except ModelFailure as failure:
            return await self._image_failed(asked, failure)
        drawn = Drawn(
            request_version=asked.version,
            prompt=prompt,
            image_ref=picture.ref,
            data=picture.data,
            revised_prompt=picture.revised_prompt,
        )
        given = GiveImage(
            request_version=asked.version,
            image_ref=picture.ref,
            model=picture.model,
            revised_prompt=picture.revised_prompt,
            size=picture.size,
            quality=picture.quality,
        )
        return await self._record_outcome(asked, given, drawn)

    async def _image_failed(self, asked: RecordedEvent, failure: ModelFailure) -> Outcome:
        command = FailImage(request_version=asked.version, kind=failure.kind, message=failure.message)
        return await self._record_outcome(asked, command, _failed("image", asked, failure))

    async def _record_outcome(self, asked: RecordedEvent, command: Command, mine: Outcome) -> Outcome:
        """Record an outcome once; if another worker recorded one first, that one is the outcome."""
        recorded = await record(self._states, asked.stream, command, f"{asked.causation_id}/outcome")
        return mine if recorded.wrote_decision else await self.recorded_outcome(asked)


@attrs.frozen
class _ChatCall:
    """How one question is put to the chat model: the chat's policy (with its persona), its model, where the
    growing answer goes, and the stop."""

    policy: PromptPolicy
    model: str | None
    on_text: TextSoFar | None
    stop: StopSignal | None
    sent: _Sent


class _Sent:
    """The prompt last sent to the model for a question (its digest) and the budget it was folded to."""

    def __init__(self) -> None:
        self.digest = ""
        self.budget = 0

    def sending(self, prompt: Sequence[Message]) -> Sequence[Message]:
        """Note the prompt as the one sent; it, unchanged."""
        self.digest = prompt_digest(prompt)
        return prompt


def _failed(request: Literal["question", "image"], asked: RecordedEvent, failure: ModelFailure) -> Failed:
    return Failed(
        request=request,
        kind=failure.kind,
        message=failure.message,
        retry_after=failure.retry_after,
        request_version=asked.version,
    )


def _outcome_of(event: Event, asked: RecordedEvent) -> Outcome | None:
    """The outcome an event records for the request `asked`, if it is one."""
    match event:
        case AnswerGiven(question_version=version) if version == asked.version:
            shown = attrs.fields_dict(Answered)
            return Answered(**{k: v for k, v in attrs.asdict(event).items() if k in shown}, replayed=True)
        case AnswerFailed(question_version=version) if version == asked.version:
            return Failed(
                request="question",
                kind=event.kind,
                message=event.message,
                request_version=version,
                reasoning=event.reasoning,
                replayed=True,
            )
        case ImageGenerated(request_version=version) if version == asked.version:
            prompt = asked.event.prompt if isinstance(asked.event, ImageRequested) else ""
            return Drawn(
                request_version=version,
                prompt=prompt,
                image_ref=event.image_ref,
                revised_prompt=event.revised_prompt,
                replayed=True,
            )
        case ImageFailed(request_version=version) if version == asked.version:
            return Failed(
                request="image", kind=event.kind, message=event.message, request_version=version, replayed=True
            )
    return None
