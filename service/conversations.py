"""The use cases: start, say, ask, draw, reset, select mode, undo, redo, edit, forget — each exactly once per
Telegram update.

Every use case records through `service.recording` (decide with the pure domain, append at the version read,
re-read on a lost race). Within this process one stream is handled by one task at a time. The jobs behind the
use cases live in their own modules: `answering` (a recorded request's outcome), `deliveries` (sending what is
owed and recording it), `takeover` (what another worker left unfinished), `queries` (reading without writing).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from datetime import UTC, datetime
from typing import Any

import attrs

from domain.commands import (
    Ask,
    Command,
    EditQuestion,
    FailTranscription,
    MarkDelivered,
    Redo,
    RequestImage,
    Reset,
    Say,
    SelectLanguage,
    SelectMode,
    SelectModel,
    SelectPersona,
    SelectVoiceReplies,
    Sender,
    SpeakAnswer,
    Start,
    Undo,
)
from domain.conversation import Pending, State
from domain.events import FileText, ImageRequested, Mode, Photo, QuestionAsked, RecordedEvent, TurnUndone
from domain.ports import (
    ChatModel,
    EventStore,
    ImageModel,
    ModelFailure,
    PromptMeter,
    StopSignal,
    TextSoFar,
    Transcriber,
)
from domain.prices import PriceTable
from domain.prompt import (
    MESSAGE_OVERHEAD,
    ModelPrompts,
    PromptPolicy,
    TokenCounter,
    Turn,
    estimate_tokens,
    message_cost,
    with_persona,
)
from domain.tail import AskedQuestion, RecentTurns
from service import queries
from service.answering import Answering, Models
from service.budgets import BudgetGuard, BudgetLimits, UsageSummary, usage_summary
from service.deliveries import Deliveries, request_version
from service.documents import fitted
from service.hearing import Heard, Note, NotHeard, failed_on, heard_before, transcribe
from service.loading import find_event, load_recent
from service.locks import StreamLocks
from service.outcomes import Failed, Outbox, Outcome, Started
from service.recording import record
from service.state_cache import StateCache
from service.takeover import Takeover
from service.usage_projection import UsageProjection
from service.vision import Pictures, Vision


@attrs.frozen
class Request:
    """Who asks, about which stream, because of which update."""

    stream: str
    """The conversation's stream (one per Telegram chat)."""
    causation_id: str
    """The update that caused this (e.g. `tg:<update_id>`); a redelivered update carries the same one."""
    sender: Sender
    """The Telegram user."""
    message_id: int | None = None
    """The front end's id of the user's message, if the request came with one (edits are matched by it)."""
    sender_name: str | None = None
    """The sender's name as a group shows it (so the model can tell speakers apart); None in a private chat."""


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
        counters: Mapping[str, TokenCounter] | None = None,
        budgets: Mapping[str, int] | None = None,
        spending: BudgetLimits | None = None,
        prices: PriceTable | None = None,
        transcriber: Transcriber | None = None,
        vision: Vision | None = None,
        pictures: Pictures | None = None,
        takeover_after: float = 0.0,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.store = store
        prompts = ModelPrompts(policy, count, budgets=dict(budgets or {}), counters=dict(counters or {}))
        self._models = Models(
            chat=chat,
            images=images,
            prompts=prompts,
            meter=meter,
            vision=vision or Vision(),
            pictures=pictures or Pictures(),
        )
        self._transcriber = transcriber
        self._locks = StreamLocks()
        self._states = StateCache(store)
        self.usage = UsageProjection(store, prices or PriceTable())
        self._spending = spending or BudgetLimits()
        self._now = now
        self._guard = BudgetGuard(self.usage, self._spending, now)
        self._answering = Answering(self._states, self._models, self._guard)
        self._deliveries = Deliveries(self._states, outbox)
        self._takeover = Takeover(
            self._states, self._answering, self._deliveries, takeover_after=takeover_after, now=now, sleep=sleep
        )

    @property
    def takeover_after(self) -> float:
        """Seconds a request may stay pending before another worker takes it over."""
        return self._takeover.takeover_after

    @property
    def outbox(self) -> Outbox | None:
        """Where recovered outcomes are sent."""
        return self._deliveries.outbox

    @property
    def meter(self) -> PromptMeter | None:
        """The model server's own prompt count, where it has one."""
        return self._models.meter

    async def close(self) -> None:
        """Release the store's and the models' connections."""
        try:
            await self._models.chat.close()
            await self._models.images.close()
        finally:
            await self.store.close()

    async def start(self, request: Request) -> Started:
        """Register the user if new; say which mode they are in."""
        async with self._locks.hold(request.stream):
            batch, _ = await self._record_request(request, Start(sender=request.sender))
            state = await self._states.load(request.stream)
        return Started(new_user=bool(batch) and batch[0].version == 1, mode=state.mode)

    async def select_mode(self, request: Request, mode: Mode) -> None:
        """Make plain text mean chat questions or image prompts from now on."""
        async with self._locks.hold(request.stream):
            await self._record_request(request, SelectMode(sender=request.sender, mode=mode))

    async def select_persona(self, request: Request, name: str, prompt: str | None) -> None:
        """Make a persona the system message of later prompts (`prompt` None: the operator's default)."""
        async with self._locks.hold(request.stream):
            await self._record_request(request, SelectPersona(sender=request.sender, name=name, prompt=prompt))

    async def select_model(self, request: Request, model: str | None) -> None:
        """Make a model answer later questions (None: the operator's default)."""
        async with self._locks.hold(request.stream):
            await self._record_request(request, SelectModel(sender=request.sender, model=model))

    async def select_language(self, request: Request, language: str | None) -> None:
        """Make the bot's own texts take a language here (None: each user's Telegram language)."""
        async with self._locks.hold(request.stream):
            await self._record_request(request, SelectLanguage(sender=request.sender, language=language))

    async def select_voice_replies(self, request: Request, on: bool) -> None:
        """Send each later answer here as a voice note too (on), or not (off)."""
        async with self._locks.hold(request.stream):
            await self._record_request(request, SelectVoiceReplies(sender=request.sender, on=on))

    async def record_spoken(self, stream: str, spoken: SpeakAnswer, causation_id: str) -> None:
        """Record that an answer was also sent as voice notes (what the speech model billed)."""
        async with self._locks.hold(stream):
            await record(self._states, stream, spoken, causation_id)

    async def fit_file(self, stream: str, question: str, file: FileText) -> tuple[FileText, int]:
        """The document cut to what the chat's prompt budget leaves once the persona and the question are in (the
        cut recorded in `dropped_chars`), and that budget. Raises FileDoesNotFit when too little is left."""
        state = await self._states.load(stream)
        prompts = self._models.prompts
        policy = with_persona(prompts.policy_for(state.model), state.persona_prompt)
        count = prompts.count_for(state.model)
        taken = message_cost(policy.persona, count) + message_cost(question, count) + MESSAGE_OVERHEAD
        return fitted(file, policy.budget - taken, policy.budget, count), policy.budget

    async def usage_summary(self, request: Request) -> UsageSummary:
        """What the asker spent today and this month, and their chat this month, with what is left of the caps."""
        return await usage_summary(self.usage, self._spending, request.sender.user_id, request.stream, self._now())

    async def settings(self, stream: str) -> State:
        """The stream's state, for its settings (mode, persona, model, language), read from the store."""
        return await self._states.load(stream)

    async def reset(self, request: Request) -> None:
        """Start the conversation over: later prompts see nothing before this."""
        async with self._locks.hold(request.stream):
            await self._record_request(request, Reset(sender=request.sender))

    async def forget(self, stream: str) -> None:
        """Erase the stream entirely."""
        async with self._locks.hold(stream):
            await self.store.delete_stream(stream)
            self._states.forget(stream)

    @property
    def chat_model(self) -> str:
        """The operator's default chat model (a chat that picked none is answered by it)."""
        return self._models.chat.name

    @property
    def vision(self) -> Vision:
        """Which chat models are sent pictures."""
        return self._models.vision

    @property
    def pictures(self) -> Pictures:
        """The bytes of the pictures prompts send."""
        return self._models.pictures

    async def say(
        self,
        request: Request,
        text: str,
        on_text: TextSoFar | None = None,
        stop: StopSignal | None = None,
        *,
        heard: Heard | None = None,
        photos: tuple[Photo, ...] = (),
        files: tuple[FileText, ...] = (),
    ) -> Outcome:
        """Plain text: a question in chat mode, an image prompt in image mode (the decider reads the mode); with
        pictures or documents always a question. `heard`: the text is the transcript of a note (recorded with it)."""
        command = Say(
            sender=request.sender,
            text=text,
            message_id=request.message_id,
            sender_name=request.sender_name,
            photos=photos,
            files=files,
            heard=heard.transcript if heard is not None else None,
        )
        return _made(await self._outcome(request, _given(command), on_text, stop))

    async def hear(self, request: Request, note: Note) -> Heard:
        """A note's transcript: from the log when the same file was heard before, else from the transcription
        model, to be recorded with the request it becomes (`say(heard=...)`). Raises NotHeard once the failure is
        recorded: nothing reaches the chat model."""
        lookback = self._models.prompts.policy.lookback
        known = await heard_before(self.store, request.stream, note.file_unique_id, request.causation_id, lookback)
        if known is not None:
            return known
        refusal = await self._guard.refusal(request.sender.user_id, request.stream)
        failure = ModelFailure("over_budget", refusal.message) if refusal is not None else None
        if failure is None:
            try:
                return Heard(await transcribe(self._transcriber, note, request.sender.user_id), None)
            except ModelFailure as error:
                failure = error
        command = FailTranscription(
            sender=request.sender,
            kind=failure.kind,
            message=failure.message,
            model=failed_on(self._transcriber),
            file_unique_id=note.file_unique_id,
        )
        async with self._locks.hold(request.stream):
            await self._record_request(request, command)
        raise NotHeard(failure)

    async def ask(
        self, request: Request, text: str, on_text: TextSoFar | None = None, stop: StopSignal | None = None
    ) -> Outcome:
        """Put a question to the chat model; `on_text` receives the answer as it grows; once `stop` is set the
        answer is what had arrived. Raises EmptyMessage."""
        command = Ask(sender=request.sender, text=text, message_id=request.message_id, sender_name=request.sender_name)
        return _made(await self._outcome(request, _given(command), on_text, stop))

    async def request_image(self, request: Request, prompt: str) -> Outcome:
        """Ask the image model for one picture. Raises EmptyMessage."""
        command = RequestImage(sender=request.sender, prompt=prompt)
        return _made(await self._outcome(request, _given(command), None, None))

    async def undo(self, request: Request) -> AskedQuestion | None:
        """Take the newest turn of the context out of later prompts; the question undone, None if none is left
        since the last reset."""
        async with self._locks.hold(request.stream):
            newest = (await self._recent(request.stream)).newest_turn
            if newest is None:
                return None
            command = Undo(sender=request.sender, question_version=newest.version)
            batch, _ = await self._record_request(request, command)
            undone = next((e.event for e in batch if isinstance(e.event, TurnUndone)), None)
            if undone is None or undone.question_version == newest.version:
                return newest
            # a redelivered /undo: what it undid when it was first handled
            first = await find_event(self.store, request.stream, undone.question_version)
            text = first.event.text if first is not None and isinstance(first.event, QuestionAsked) else ""
            return AskedQuestion(undone.question_version, text, None, answered=False)

    async def redo(
        self, request: Request, on_text: TextSoFar | None = None, stop: StopSignal | None = None
    ) -> Outcome | None:
        """Answer the latest question again with the prompt it had (a failed one too); the new answer replaces the
        old in later prompts. None if there is none since the last reset, or it was undone."""

        async def command() -> Command | None:
            latest = (await self._recent(request.stream)).latest_question
            if latest is None or latest.undone:
                return None
            return Redo(
                sender=request.sender,
                question_version=latest.version,
                answered=latest.answered,
                text=latest.text,
                message_id=latest.message_id,
                sender_name=latest.sender_name,
                photos=latest.photos,
                files=latest.files,
            )

        return await self._outcome(request, command, on_text, stop)

    async def edit(
        self, request: Request, text: str, on_text: TextSoFar | None = None, stop: StopSignal | None = None
    ) -> Outcome | None:
        """The user edited the message `request.message_id` into `text`: if it is the latest question, its turn
        leaves the context and the new text is asked. None if it is not. Raises EmptyMessage."""

        async def command() -> Command | None:
            latest = (await self._recent(request.stream)).latest_question
            if latest is None or latest.message_id is None or latest.message_id != request.message_id:
                return None
            return EditQuestion(
                sender=request.sender,
                question_version=latest.version,
                answered=latest.answered,
                text=text,
                message_id=request.message_id,
                sender_name=request.sender_name,
            )

        return await self._outcome(request, command, on_text, stop)

    async def deliver(self, stream: str, outcome: Outcome, send: Callable[[], Awaitable[None]]) -> None:
        """Send an outcome the log says is owed, then record what became of it; nothing if it is not owed."""
        async with self._locks.hold(stream):
            await self._deliveries.send(stream, outcome, send)

    async def mark_delivered(self, stream: str, outcome: Outcome) -> None:
        """Record that the user was sent this outcome, so neither recovery nor a redelivery sends it again."""
        async with self._locks.hold(stream):
            await self._deliveries.record(stream, MarkDelivered(request_version=request_version(outcome)))

    async def finish_pending(self, stream: str) -> Outcome | None:
        """Finish what a dead process left half done and deliver it through the outbox; None if nothing.

        A request without an outcome gets one (once); an outcome never sent to the user is sent.
        """
        async with self._locks.hold(stream):
            return await self._takeover.finish_when_due(stream)

    async def mode(self, stream: str) -> Mode:
        """The stream's current mode, read from the store."""
        return (await self._states.load(stream)).mode

    def last_known_mode(self, stream: str) -> Mode | None:
        """The mode this process last saw the stream in, without reading the store (a hint, not the truth)."""
        known = self._states.last_known(stream)
        return None if known is None else known.mode

    def last_known_settings(self, stream: str) -> State | None:
        """The state this process last saw the stream in, without reading the store (a hint, not the truth)."""
        return self._states.last_known(stream)

    async def history(self, stream: str, limit: int = 10) -> list[Turn]:
        """The newest answered turns since the last reset, oldest first (for /history)."""
        return await queries.history(self.store, stream, limit)

    async def asked_with_photo(self, stream: str, file_unique_id: str) -> bool:
        """Whether one of the stream's newest questions was asked with this picture."""
        return await queries.asked_with_photo(self.store, stream, file_unique_id)

    async def pending(self, stream: str) -> Pending | None:
        """The request the stream is waiting on (for a result, or for its delivery), if any."""
        return queries.unfinished(await self._states.load(stream))

    async def _own_request(self, request: Request) -> RecordedEvent | None:
        """The request this update recorded, if it is still waiting for its outcome or for its delivery."""
        state = await self._states.load(request.stream)
        for waiting in (state.pending, state.undelivered):
            if waiting is not None and waiting.causation_id == request.causation_id:
                return await find_event(self.store, request.stream, waiting.version)
        return None

    async def _recent(self, stream: str) -> RecentTurns:
        return await load_recent(self.store, stream, self._models.prompts.policy.lookback)

    async def _outcome(
        self,
        request: Request,
        command_for: Callable[[], Awaitable[Command | None]],
        on_text: TextSoFar | None,
        stop: StopSignal | None,
    ) -> Outcome | None:
        """Record a request for a model's outcome (the command is made under the stream's turn; None: nothing to
        ask), then make (or read) that outcome."""
        try:
            async with self._locks.hold(request.stream):
                command = await command_for()
                if command is None:  # nothing to ask now; unless this very update asked it before a crash
                    own = await self._own_request(request)
                    return None if own is None else await self._answering.outcome(own, on_text, None, stop)
                batch, state = await self._record_request(request, command)
                asked = next((e for e in batch if isinstance(e.event, QuestionAsked | ImageRequested)), None)
                if asked is None:
                    # The update was recorded before as something else (say /reset): it asks nothing now.
                    message = "this update was already handled"
                    return Failed(request="question", kind="abandoned", message=message, delivered=True)
                return await self._answering.outcome(asked, on_text, state, stop)
        finally:
            self._takeover.finished_here(request.causation_id)

    async def _record_request(
        self, request: Request, command: Command
    ) -> tuple[tuple[RecordedEvent, ...], State | None]:
        """Record the request once no other update's request is unfinished: the batch this update recorded (now
        or when it was first delivered), and the state right after it when this call wrote it. A command that
        records the prompt settings is given the operator's current ones."""
        if "shaping" in attrs.fields_dict(type(command)) and getattr(command, "shaping", None) is None:
            shaping = self._models.shaping_of(await self._states.load(request.stream))
            command = attrs.evolve(command, shaping=shaping)  # type: ignore[arg-type]
        recorded = await record(
            self._states,
            request.stream,
            command,
            request.causation_id,
            lambda: self._takeover.state_when_free(request.stream, request.causation_id),
        )
        return recorded.batch, recorded.state


def _given(command: Command) -> Callable[[], Coroutine[Any, Any, Command]]:
    async def given() -> Command:
        return command

    return given


def _made(outcome: Outcome | None) -> Outcome:
    """The outcome of a request that always asks something."""
    assert outcome is not None
    return outcome
