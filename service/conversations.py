"""The use cases: start, say, ask, draw, reset, select mode, forget — each exactly once per Telegram update.

Every use case records through `service.recording` (decide with the pure domain, append at the version read,
re-read on a lost race). Within this process one stream is handled by one task at a time. The jobs behind the
use cases live in their own modules: `answering` (a recorded request's outcome), `deliveries` (sending what is
owed and recording it), `takeover` (what another worker left unfinished), `queries` (reading without writing).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import attrs

from domain.commands import Ask, Command, MarkDelivered, RequestImage, Reset, Say, SelectMode, Sender, Start
from domain.conversation import Pending, State
from domain.events import ImageRequested, Mode, QuestionAsked, RecordedEvent
from domain.ports import ChatModel, EventStore, ImageModel, PromptMeter, TextSoFar
from domain.prompt import PromptPolicy, TokenCounter, Turn, estimate_tokens
from service import queries
from service.answering import Answering, Models
from service.deliveries import Deliveries, request_version
from service.locks import StreamLocks
from service.outcomes import Failed, Outbox, Outcome, Started
from service.recording import record
from service.state_cache import StateCache
from service.takeover import Takeover


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
        self._models = Models(chat=chat, images=images, policy=policy, count=count, meter=meter)
        self._locks = StreamLocks()
        self._states = StateCache(store)
        self._answering = Answering(self._states, self._models)
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

    async def reset(self, request: Request) -> None:
        """Start the conversation over: later prompts see nothing before this."""
        async with self._locks.hold(request.stream):
            await self._record_request(request, Reset(sender=request.sender))

    async def forget(self, stream: str) -> None:
        """Erase the stream entirely."""
        async with self._locks.hold(stream):
            await self.store.delete_stream(stream)
            self._states.forget(stream)

    async def say(self, request: Request, text: str, on_text: TextSoFar | None = None) -> Outcome:
        """Plain text: a question in chat mode, an image prompt in image mode (the decider reads the mode)."""
        return await self._ask_for_outcome(request, Say(sender=request.sender, text=text), on_text)

    async def ask(self, request: Request, text: str, on_text: TextSoFar | None = None) -> Outcome:
        """Put a question to the chat model; `on_text` receives the answer as it grows. Raises EmptyMessage."""
        return await self._ask_for_outcome(request, Ask(sender=request.sender, text=text), on_text)

    async def request_image(self, request: Request, prompt: str) -> Outcome:
        """Ask the image model for one picture. Raises EmptyMessage."""
        return await self._ask_for_outcome(request, RequestImage(sender=request.sender, prompt=prompt), None)

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

    async def history(self, stream: str, limit: int = 10) -> list[Turn]:
        """The newest answered turns since the last reset, oldest first (for /history)."""
        return await queries.history(self.store, stream, limit)

    async def pending(self, stream: str) -> Pending | None:
        """The request the stream is waiting on (for a result, or for its delivery), if any."""
        return queries.unfinished(await self._states.load(stream))

    async def _ask_for_outcome(self, request: Request, command: Command, on_text: TextSoFar | None) -> Outcome:
        """Record a request for a model's outcome, then make (or read) that outcome."""
        try:
            async with self._locks.hold(request.stream):
                batch, state = await self._record_request(request, command)
                asked = next((e for e in batch if isinstance(e.event, QuestionAsked | ImageRequested)), None)
                if asked is None:
                    # The update was recorded before as something else (say /reset): it asks nothing now.
                    message = "this update was already handled"
                    return Failed(request="question", kind="abandoned", message=message, delivered=True)
                return await self._answering.outcome(asked, on_text, state)
        finally:
            self._takeover.finished_here(request.causation_id)

    async def _record_request(
        self, request: Request, command: Command
    ) -> tuple[tuple[RecordedEvent, ...], State | None]:
        """Record the request once no other update's request is unfinished: the batch this update recorded (now
        or when it was first delivered), and the state right after it when this call wrote it."""
        recorded = await record(
            self._states,
            request.stream,
            command,
            request.causation_id,
            lambda: self._takeover.state_when_free(request.stream, request.causation_id),
        )
        return recorded.batch, recorded.state
