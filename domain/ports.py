"""The ports the core owns: what it needs from an event store and from models, and what they may raise.

Adapters implement these; tests hold every implementation to one contract suite per port.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from typing import Protocol

import attrs

from domain.events import Event, FailureKind, RecordedEvent
from domain.prompt import Message
from domain.usage import LedgerKey


class StoreError(Exception):
    """Base of what an event store raises."""


class ConcurrencyConflict(StoreError):
    """The stream's version was not the one expected: someone else appended first. Nothing was written."""

    def __init__(self, stream: str, expected: int, actual: int | None = None) -> None:
        found = "" if actual is None else f", found {actual}"
        super().__init__(f"stream {stream!r}: expected version {expected}{found}")
        self.stream = stream
        self.expected = expected
        self.actual = actual


class StoreUnavailable(StoreError):
    """The store could not be reached or refused the operation (down, locked, read-only). Nothing was written."""


class LeaseTaken(StoreError):
    """Another process holds the lease asked for (say, a second poller of one bot on one store)."""


@attrs.frozen
class Positioned:
    """A recorded event and its place in the store's global order (see EventStore.read_all)."""

    position: str
    """Opaque: only the store that made it compares it, and only `read_all` takes it back."""
    recorded: RecordedEvent
    """The event."""


class EventStore(Protocol):
    """An append-only log of streams of recorded events."""

    async def init_schema(self) -> None:
        """Create tables, collections and indexes if missing; idempotent."""

    async def append(
        self, stream: str, events: Sequence[Event], expected_version: int, causation_id: str
    ) -> tuple[RecordedEvent, ...]:
        """Record a batch at versions expected_version+1, ... all or nothing.

        If the stream already holds events with this causation id, return those and write nothing. Otherwise,
        if the stream's version is not `expected_version`, raise ConcurrencyConflict and write nothing.
        """
        ...

    def read_forwards(
        self, stream: str, from_version: int = 1, limit: int | None = None
    ) -> AsyncIterator[RecordedEvent]:
        """Events from `from_version` up, oldest first, at most `limit` of them."""
        ...

    def read_backwards(
        self, stream: str, before: int | None = None, limit: int | None = None
    ) -> AsyncIterator[RecordedEvent]:
        """Events below version `before` (or from the end), newest first, at most `limit` of them."""
        ...

    async def current_version(self, stream: str) -> int:
        """The newest version of a stream; 0 when it has no events."""
        ...

    def list_streams(self) -> AsyncIterator[str]:
        """Every stream that has events, in a stable order."""
        ...

    def read_all(self, after: str | None = None, limit: int = 100) -> AsyncIterator[Positioned]:
        """At most `limit` events of every stream after the position `after` (None: from the first), in the store's
        global order: a total order consistent with each stream's versions, in which every event is read once (an
        event committed later never takes a place before one already read) and no position is reused, not even
        after a stream is erased. Positions are opaque strings this store made."""
        ...

    async def delete_stream(self, stream: str) -> None:
        """Erase a stream: afterwards nothing of it can be read, and its versions start again at 1."""

    async def import_recorded(self, events: Sequence[RecordedEvent]) -> None:
        """Write already-recorded events of one stream verbatim (versions, times, causation ids), for copies.

        They must continue the stream with no gap, or ConcurrencyConflict is raised and nothing written.
        """

    async def close(self) -> None:
        """Release connections and threads."""

    def inbox(self, bot: str) -> Inbox:
        """The inbox of one bot, kept in this store."""
        ...

    def ledger(self) -> LedgerStore:
        """The usage ledger's projection, kept in this store."""
        ...

    def poller_lease(self, bot: str) -> AbstractAsyncContextManager[None]:
        """Held while one process polls Telegram for `bot`; entering raises LeaseTaken while another holds it.
        A process that dies releases it, at once or (on a store that can only lease for a time) when it expires."""
        ...


@attrs.frozen
class Completion:
    """A chat model's answer."""

    text: str
    """The answer."""
    model: str
    """The model the server says answered."""
    prompt_tokens: int
    """Billed prompt tokens (0 if not reported)."""
    completion_tokens: int
    """Billed completion tokens (0 if not reported)."""
    reasoning: str = ""
    """What a reasoning model thought before answering (never part of `text`)."""
    stopped: bool = False
    """True when the answer was stopped on request: `text` is what had arrived by then."""
    cached_tokens: int = 0
    """Of the prompt tokens, those billed as served from the server's cache (0 if not reported)."""
    reasoning_tokens: int = 0
    """Of the completion tokens, those a reasoning model spent thinking (0 if not reported)."""


@attrs.frozen
class Picture:
    """An image model's result."""

    ref: str
    """An https URL, or `sha256:<hex>` of the bytes in `data`."""
    model: str
    """The model asked for."""
    revised_prompt: str | None
    """The prompt as the model rewrote it, if it did."""
    data: bytes | None = attrs.field(default=None, repr=False)
    """The image bytes when the server sent them inline."""
    size: str = "1024x1024"
    """The size asked for (what is billed)."""
    quality: str = "standard"
    """The quality asked for (what is billed)."""


class ModelFailure(Exception):
    """A model call failed for good (after any retries)."""

    def __init__(
        self, kind: FailureKind, message: str, retry_after: float | None = None, billed: Completion | None = None
    ) -> None:
        super().__init__(message)
        self.kind: FailureKind = kind
        self.message = message
        self.retry_after = retry_after
        self.billed = billed
        """What the server billed for the failed call, when it said (its model and tokens; the text is unused)."""


TextSoFar = Callable[[str], Awaitable[None]]
"""Receives the whole answer so far each time it grows (it may shrink if a cut stream is retried). An empty text
says the model is at work with nothing to show yet (a reasoning model thinking)."""


class StopSignal(Protocol):
    """Set when the user asks to stop an answer (an `asyncio.Event` is one)."""

    def is_set(self) -> bool:
        """Whether the stop was asked for."""
        ...

    async def wait(self) -> object:
        """Return once the stop is asked for."""
        ...


class ChatModel(Protocol):
    """Answers prompts."""

    @property
    def name(self) -> str:
        """The configured model name."""
        ...

    async def answer(
        self,
        prompt: Sequence[Message],
        on_text: TextSoFar | None = None,
        stop: StopSignal | None = None,
        model: str | None = None,
    ) -> Completion:
        """The model's answer; streams through `on_text` when given. Once `stop` is set, the request is dropped at
        once and what had arrived is returned, marked `stopped`. `model` names another model of the same server
        than the configured one. Raises ModelFailure."""
        ...

    async def close(self) -> None:
        """Release connections (again: nothing)."""


class PromptMeter(Protocol):
    """Counts a whole prompt as the model's own tokenizer does, where the model server can say."""

    async def measure(self, prompt: Sequence[Message]) -> int | None:
        """The prompt's tokens; None when the server cannot say (the estimate then stands)."""
        ...


class ImageModel(Protocol):
    """Draws pictures."""

    @property
    def name(self) -> str:
        """The configured model name."""
        ...

    async def draw(self, prompt: str) -> Picture:
        """One picture for the prompt. Raises ModelFailure."""
        ...

    async def close(self) -> None:
        """Release connections (again: nothing)."""


@attrs.frozen
class Sound:
    """A voice, audio or video note to transcribe."""

    data: bytes = attrs.field(repr=False)
    """The file's bytes."""
    filename: str
    """A file name whose extension says the format (`voice.oga`, `note.mp4`), as transcription servers want."""
    mime_type: str
    """Its media type (`audio/ogg`)."""


@attrs.frozen
class Transcript:
    """What a transcription model heard."""

    text: str
    """The words."""
    model: str
    """The model asked."""
    duration_s: float | None = None
    """Seconds of sound, when the server said."""


class Transcriber(Protocol):
    """Makes sound into text."""

    @property
    def model(self) -> str:
        """The transcription model asked."""
        ...

    async def transcribe(self, sound: Sound) -> Transcript:
        """The transcript. Raises ModelFailure (`unsupported` when the server has no transcription endpoint)."""
        ...


class Speaker(Protocol):
    """Makes text into speech."""

    @property
    def model(self) -> str:
        """The speech model asked."""
        ...

    @property
    def voice(self) -> str:
        """The voice it speaks in."""
        ...

    @property
    def limit(self) -> int:
        """Most characters one call may speak."""
        ...

    async def speak(self, text: str) -> bytes:
        """OGG/Opus audio of the text (at most `limit` characters). Raises ModelFailure."""
        ...


class FileGone(Exception):
    """A file the log names can no longer be fetched (Telegram forgot it, or it was never there)."""


class FileSource(Protocol):
    """Fetches the bytes of files the log names by id (Telegram's getFile)."""

    async def read(self, file_id: str) -> bytes:
        """The file's bytes. Raises FileGone."""
        ...


@attrs.frozen(kw_only=True)
class InboxEntry:
    """One inbound update, held durably from before it is confirmed to its sender until it has been handled."""

    update_id: int
    """The sender's id of the update (Telegram's `update_id`); unique per bot."""
    chat: str | None
    """The stream the update belongs to (erased with it), or None when it has no chat."""
    payload: str
    """The update as received (JSON text)."""
    preview: int | None = None
    """The message shown while answering it (a streaming preview), to be finished if this process dies."""
    admitted_at: datetime | None = None
    """When the inbox took it (set by the inbox when read back)."""


class Inbox(Protocol):
    """Updates written before they are confirmed, so that a crash loses none; one inbox per bot."""

    async def admit(self, entries: Sequence[InboxEntry]) -> frozenset[int]:
        """Store the new entries in one transaction (one already there is kept as it was); returns the ids of the
        given entries that are still unhandled, new or not."""
        ...

    async def unfinished(self, chat: str | None = None) -> list[InboxEntry]:
        """Every entry admitted and not yet finished (of one chat, when given), oldest update first."""
        ...

    async def claim(self, update_id: int, worker: str, stale_after: timedelta) -> bool:
        """Take (or renew) the right to handle an unfinished entry; False while another worker holds a claim
        renewed less than `stale_after` ago, or once the entry is finished."""
        ...

    async def note_preview(self, update_id: int, message_id: int) -> None:
        """Remember the message shown while the update is being answered."""

    async def finish(self, update_id: int) -> None:
        """The update is handled: its text is dropped, its id kept for a while so a redelivery is recognised."""

    async def erase_chat(self, chat: str) -> None:
        """Drop the text of every entry of a chat (with its stream, on /forget)."""


class LedgerStore(Protocol):
    """The usage ledger's projection (domain.usage), kept beside the log: quantities by ledger key, and the
    position in the log's global order (`EventStore.read_all`) of the last event they include. Every worker
    brings it up to date; the checkpoint moves only from the position a worker read, so no event counts twice."""

    async def checkpoint(self) -> str | None:
        """The position of the last event included (None: none yet)."""
        ...

    async def advance(self, expected: str | None, to: str, lines: Mapping[LedgerKey, int]) -> bool:
        """Add `lines` and move the checkpoint from `expected` to `to`, all or nothing; False, writing nothing,
        when the checkpoint is no longer `expected` (another worker advanced it first)."""
        ...

    async def quantities(self, scope: str, holder: str, period: str, when: str) -> dict[tuple[str, str], int]:
        """What one holder used in one period: quantity by (model, unit)."""
        ...
