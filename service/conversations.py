"""The use cases: start, ask, draw, reset, select mode, forget — each exactly once per Telegram update.

Every use case reads the stream's tail, decides with the pure domain, and appends with the version it read. A
concurrency conflict (another worker wrote first) means: read again, decide again (`service.recording`). Within
this process one stream is handled by one task at a time; a request some other process left unanswered is waited
for while that process may still be working on it, and finished here once it has been pending longer than
`takeover_after`.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Literal

import attrs
import structlog

from domain.commands import (
    Ask,
    Command,
    FailAnswer,
    FailDelivery,
    FailImage,
    GiveAnswer,
    GiveImage,
    MarkDelivered,
    RequestImage,
    Reset,
    Say,
    SelectMode,
    Sender,
    Start,
)
from domain.conversation import Pending, State
from domain.errors import QuestionTooLong
from domain.events import (
    AnswerFailed,
    AnswerGiven,
    Event,
    ImageFailed,
    ImageGenerated,
    ImageRequested,
    Mode,
    QuestionAsked,
    RecordedEvent,
)
from domain.ports import (
    ChatModel,
    Completion,
    EventStore,
    ImageModel,
    ModelFailure,
    PromptMeter,
    TextSoFar,
)
from domain.prompt import Message, PromptPolicy, TokenCounter, Turn, conversation_turns, estimate_tokens, message_cost
from service.loading import find_event, load_prompt
from service.locks import StreamLocks
from service.outcomes import Answered, Drawn, Failed, Outbox, Outcome, Started, Undeliverable
from service.recording import record
from service.state_cache import StateCache

log = structlog.get_logger(__name__)

FINISHED_MEMORY = 10_000
"""Updates this process remembers having finished (a bounded cache, not state)."""

POLL_SECONDS = 0.25
"""How often to look again at a request another worker may still be answering."""


@attrs.frozen
class Request:
    """Who asks, about which stream, because of which update."""

    stream: str
    """The conversation's stream (one per Telegram chat)."""
    causation_id: str
    """The update that caused this (e.g. `tg:<update_id>`); a redelivered update carries the same one."""
    sender: Sender
    """The Telegram user."""


class ConversationService:
    """The conversation use cases over one event store and one pair of models."""

    def __init__(
        self,
        store: EventStore,
        chat: ChatModel,
        images: ImageModel,
        policy: PromptPolicy,
        count: TokenCounter = estimate_tokens,
        *,
        outbox: Outbox | None = None,
        meter: PromptMeter | None = None,
        takeover_after: float = 0.0,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.store = store
        self._chat = chat
        self._images = images
        self._policy = policy
        self._count = count
        self.outbox = outbox
        self._meter = meter
        self._takeover_after = takeover_after
        self._now = now
        self._sleep = sleep
        self._locks = StreamLocks()
        self._states = StateCache(store)
        self._finished_here: OrderedDict[str, None] = OrderedDict()

    @property
    def takeover_after(self) -> float:
        """Seconds a request may stay pending before another worker takes it over."""
        return self._takeover_after

    async def close(self) -> None:
        """Release the store's and the models' connections."""
        try:
            await self._chat.close()
            await self._images.close()
        finally:
            await self.store.close()

    async def start(self, request: Request) -> Started:
        """Register the user if new; say which mode they are in."""
        async with self._locks.hold(request.stream):
            batch, _ = await self._record(request, lambda state: Start(sender=request.sender))
            state = await self._states.load(request.stream)
        return Started(new_user=bool(batch) and batch[0].version == 1, mode=state.mode)

    async def select_mode(self, request: Request, mode: Mode) -> None:
        """Make plain text mean chat questions or image prompts from now on."""
        async with self._locks.hold(request.stream):
            await self._record(request, lambda state: SelectMode(sender=request.sender, mode=mode))

    async def reset(self, request: Request) -> None:
        """Start the conversation over: later prompts see nothing before this."""
        async with self._locks.hold(request.stream):
            await self._record(request, lambda state: Reset(sender=request.sender))

    async def forget(self, stream: str) -> None:
        """Erase the stream entirely."""
        async with self._locks.hold(stream):
            await self.store.delete_stream(stream)
            self._states.forget(stream)

    async def mode(self, stream: str) -> Mode:
        """The stream's current mode, read from the store."""
        return (await self._states.load(stream)).mode

    def last_known_mode(self, stream: str) -> Mode | None:
        """The mode this process last saw the stream in, without reading the store (a hint, not the truth)."""
        known = self._states.last_known(stream)
        return None if known is None else known.mode

    async def say(self, request: Request, text: str, on_text: TextSoFar | None = None) -> Outcome:
        """Plain text: a question in chat mode, an image prompt in image mode."""

        return await self._request(request, lambda state: Say(sender=request.sender, text=text), on_text)

    async def ask(self, request: Request, text: str, on_text: TextSoFar | None = None) -> Outcome:
        """Put a question to the chat model; `on_text` receives the answer as it grows. Raises EmptyMessage."""
        return await self._request(request, lambda state: Ask(sender=request.sender, text=text), on_text)

    async def request_image(self, request: Request, prompt: str) -> Outcome:
        """Ask the image model for one picture. Raises EmptyMessage."""
        return await self._request(request, lambda state: RequestImage(sender=request.sender, prompt=prompt), None)

    async def mark_delivered(self, stream: str, outcome: Outcome) -> None:
        """Record that the user was sent this outcome, so neither recovery nor a redelivery sends it again."""
        async with self._locks.hold(stream):
            await self._record_delivery(stream, MarkDelivered(request_version=_request_version(outcome)))

    async def deliver(self, stream: str, outcome: Outcome, send: Callable[[], Awaitable[None]]) -> None:
        """Send an outcome the log says is owed, then record what became of it; nothing if it is not owed."""
        record = await _sent(outcome, send)
        if record is not None:
            async with self._locks.hold(stream):
                await self._record_delivery(stream, record)

    async def _record_delivery(self, stream: str, command: MarkDelivered | FailDelivery) -> None:
        await record(self._states, stream, lambda _: command, f"delivered/{command.request_version}")

    async def history(self, stream: str, limit: int = 10) -> list[Turn]:
        """The newest answered turns since the last reset, oldest first (for /history)."""
        window = [e async for e in self.store.read_backwards(stream, limit=limit * 4 + 8)]
        return conversation_turns(reversed(window))[-limit:]

    async def pending(self, stream: str) -> Pending | None:
        """The request the stream is waiting on (for a result, or for its delivery), if any."""
        return _unfinished(await self._states.load(stream))

    async def finish_pending(self, stream: str) -> Outcome | None:
        """Finish what a dead process left half done and deliver it through the outbox; None if nothing.

        A request without an outcome gets one (once); an outcome never sent to the user is sent.
        """
        async with self._locks.hold(stream):
            state = await self._states.load(stream)
            while (unfinished := _unfinished(state)) is not None and self._wait_for(unfinished) > 0:
                await self._sleep(min(self._wait_for(unfinished), POLL_SECONDS * 4))
                state = await self._states.load(stream)
            unfinished = _unfinished(state)
            if unfinished is None:
                return None
            return await self._finish(stream, unfinished)

    async def _request(
        self, request: Request, command: Callable[[State], Command], on_text: TextSoFar | None
    ) -> Outcome:
        try:
            return await self._handle_request(request, command, on_text)
        finally:
            self._finished(request.causation_id)

    async def _handle_request(
        self, request: Request, command: Callable[[State], Command], on_text: TextSoFar | None
    ) -> Outcome:
        async with self._locks.hold(request.stream):
            batch, state = await self._record(request, command)
            asked = next((e for e in batch if isinstance(e.event, QuestionAsked | ImageRequested)), None)
            if asked is None:
                # The update was recorded before as something else (say /reset): it asks nothing now.
                return Failed(
                    request="question", kind="abandoned", message="this update was already handled", delivered=True
                )
            return await self._resolve(asked, on_text, state)

    async def _record(
        self, request: Request, command: Callable[[State], Command]
    ) -> tuple[tuple[RecordedEvent, ...], State | None]:
        """Record the request once no other update's request is pending.

        Returns the batch this update recorded, and the state right after it when this call wrote it.
        """
        recorded = await record(
            self._states, request.stream, command, request.causation_id, lambda: self._settled_state(request)
        )
        return recorded.batch, recorded.state

    async def _settled_state(self, request: Request) -> State:
        """The state once no other update's request is pending: waits for a live worker, finishes a dead one's."""
        while True:
            state = await self._states.load(request.stream)
            pending = _unfinished(state)
            if pending is None or pending.causation_id == request.causation_id:
                return state
            wait = self._wait_for(pending)
            if wait > 0:
                await self._sleep(min(wait, POLL_SECONDS))
            else:
                await self._finish(request.stream, pending)

    def _wait_for(self, pending: Pending) -> float:
        """Seconds to leave a request to the worker that may still be on it; none if this process gave it up."""
        if pending.causation_id in self._finished_here:
            return 0.0
        age = (self._now() - pending.recorded_at).total_seconds()
        return self._takeover_after - age

    def _finished(self, causation_id: str) -> None:
        """Remember (boundedly) that this process is done with an update, so its leftovers need no grace."""
        self._finished_here[causation_id] = None
        self._finished_here.move_to_end(causation_id)
        while len(self._finished_here) > FINISHED_MEMORY:
            self._finished_here.popitem(last=False)

    async def _finish(self, stream: str, pending: Pending) -> Outcome | None:
        asked = await find_event(self.store, stream, pending.version)
        if asked is None:
            return None
        outcome = await self._resolve(asked, None)
        outbox = self.outbox
        record = await _sent(outcome, lambda: outbox.deliver(stream, outcome) if outbox is not None else _nothing())
        if record is not None:
            await self._record_delivery(stream, record)
        return outcome

    async def _resolve(self, asked: RecordedEvent, on_text: TextSoFar | None, known: State | None = None) -> Outcome:
        """The request's outcome: the recorded one if it has one, else a fresh model call, recorded once.

        `known` is the stream's state when the caller has just written it (so it need not be read again).
        """
        state = known or await self._states.load(asked.stream)
        if state.pending is None or state.pending.version != asked.version:
            undelivered = state.undelivered is not None and state.undelivered.version == asked.version
            return attrs.evolve(await self._recorded_outcome(asked), delivered=not undelivered)
        if isinstance(asked.event, QuestionAsked):
            return await self._answer(asked, on_text)
        return await self._draw(asked)

    async def _answer(self, asked: RecordedEvent, on_text: TextSoFar | None) -> Outcome:
        started = time.monotonic()
        try:
            completion = await self._complete(asked, on_text)
        except QuestionTooLong as error:
            failed = Failed(
                request="question", kind="context_too_long", message=str(error), request_version=asked.version
            )
            return await self._settle(
                asked, FailAnswer(question_version=asked.version, kind="context_too_long", message=str(error)), failed
            )
        except ModelFailure as failure:
            failed = Failed(
                request="question",
                kind=failure.kind,
                message=failure.message,
                retry_after=failure.retry_after,
                request_version=asked.version,
            )
            return await self._settle(
                asked, FailAnswer(question_version=asked.version, kind=failure.kind, message=failure.message), failed
            )
        latency_ms = round((time.monotonic() - started) * 1000)
        answer = GiveAnswer(
            question_version=asked.version,
            text=completion.text,
            model=completion.model,
            prompt_tokens=completion.prompt_tokens,
            completion_tokens=completion.completion_tokens,
            latency_ms=latency_ms,
        )
        answered = Answered(
            question_version=asked.version,
            text=completion.text,
            model=completion.model,
            prompt_tokens=completion.prompt_tokens,
            completion_tokens=completion.completion_tokens,
            latency_ms=latency_ms,
        )
        return await self._settle(asked, answer, answered)

    async def _complete(self, asked: RecordedEvent, on_text: TextSoFar | None) -> Completion:
        """The model's answer to the folded prompt. A model whose window is smaller than the budget assumes
        (`context_too_long`: a token count the estimate got wrong) is asked once more with half the budget,
        dropping the oldest turns, before the question fails."""
        prompt = await self._fitted_prompt(asked)
        try:
            return await self._chat.answer(prompt, on_text)
        except ModelFailure as failure:
            if failure.kind != "context_too_long":
                raise
            smaller = attrs.evolve(self._policy, budget=self._policy.budget // 2)
            try:
                prompt = await load_prompt(self.store, asked, smaller, self._count)
            except QuestionTooLong:
                raise failure from None
            log.info("prompt_window_halved", budget=smaller.budget, messages=len(prompt))
            return await self._chat.answer(prompt, on_text)

    async def _fitted_prompt(self, asked: RecordedEvent) -> Sequence[Message]:
        """The folded prompt, refolded once with a budget scaled down if the model server's own tokenizer counts
        it over the budget the estimate thought it fit."""
        prompt = await load_prompt(self.store, asked, self._policy, self._count)
        measured = await self._meter.measure(prompt) if self._meter is not None else None
        if measured is None or measured <= self._policy.budget:
            return prompt
        estimated = sum(message_cost(message.content, self._count) for message in prompt)
        budget = self._policy.budget * estimated * 95 // (measured * 100)
        log.info("prompt_refit", measured=measured, budget=self._policy.budget, estimate_budget=budget)
        return await load_prompt(self.store, asked, attrs.evolve(self._policy, budget=budget), self._count)

    async def _draw(self, asked: RecordedEvent) -> Outcome:
        assert isinstance(asked.event, ImageRequested)
        prompt = asked.event.prompt
        try:
            picture = await self._images.draw(prompt)
        except ModelFailure as failure:
            failed = Failed(
                request="image",
                kind=failure.kind,
                message=failure.message,
                retry_after=failure.retry_after,
                request_version=asked.version,
            )
            return await self._settle(
                asked, FailImage(request_version=asked.version, kind=failure.kind, message=failure.message), failed
            )
        drawn = Drawn(
            request_version=asked.version,
            prompt=prompt,
            image_ref=picture.ref,
            data=picture.data,
            revised_prompt=picture.revised_prompt,
        )
        command = GiveImage(
            request_version=asked.version,
            image_ref=picture.ref,
            model=picture.model,
            revised_prompt=picture.revised_prompt,
        )
        return await self._settle(asked, command, drawn)

    async def _settle(self, asked: RecordedEvent, command: Command, mine: Outcome) -> Outcome:
        """Record an outcome once; if another worker recorded one first, that one is the outcome."""
        recorded = await record(self._states, asked.stream, lambda _: command, f"{asked.causation_id}/outcome")
        return mine if recorded.wrote_decision else await self._recorded_outcome(asked)

    async def _recorded_outcome(self, asked: RecordedEvent) -> Outcome:
        """The outcome the log holds for a request (a redelivered update gets the same reply, no model call)."""
        async for recorded in self.store.read_forwards(asked.stream, from_version=asked.version + 1):
            outcome = _outcome_of(recorded.event, asked)
            if outcome is not None:
                return outcome
        kind: Literal["question", "image"] = "question" if isinstance(asked.event, QuestionAsked) else "image"
        return Failed(
            request=kind,
            kind="abandoned",
            message="the request was closed without a result",
            request_version=asked.version,
        )


def _outcome_of(event: Event, asked: RecordedEvent) -> Outcome | None:
    match event:
        case AnswerGiven(question_version=version) if version == asked.version:
            return Answered(
                question_version=version,
                text=event.text,
                model=event.model,
                prompt_tokens=event.prompt_tokens,
                completion_tokens=event.completion_tokens,
                latency_ms=event.latency_ms,
                replayed=True,
            )
        case AnswerFailed(question_version=version) if version == asked.version:
            return Failed(
                request="question", kind=event.kind, message=event.message, request_version=version, replayed=True
            )
        case ImageGenerated(request_version=version) if version == asked.version:
            prompt = asked.event.prompt if isinstance(asked.event, ImageRequested) else ""
            return Drawn(
                request_version=version,
                prompt=prompt,
                image_ref=event.image_ref,
                data=None,
                revised_prompt=event.revised_prompt,
                replayed=True,
            )
        case ImageFailed(request_version=version) if version == asked.version:
            return Failed(
                request="image", kind=event.kind, message=event.message, request_version=version, replayed=True
            )
    return None


async def _sent(outcome: Outcome, send: Callable[[], Awaitable[None]]) -> MarkDelivered | FailDelivery | None:
    """Send an outcome the log says is owed; the command that records what became of it (None: nothing owed)."""
    if outcome.delivered:
        return None
    try:
        await send()
    except Undeliverable as refusal:
        return FailDelivery(request_version=_request_version(outcome), reason=str(refusal))
    return MarkDelivered(request_version=_request_version(outcome))


async def _nothing() -> None:
    """A front end without an outbox (the terminal chat) shows recovered outcomes itself."""


def _unfinished(state: State) -> Pending | None:
    """The request still owed to the user: waiting for a result, or for its result to be sent."""
    return state.pending or state.undelivered


def _request_version(outcome: Outcome) -> int:
    return outcome.question_version if isinstance(outcome, Answered) else outcome.request_version
