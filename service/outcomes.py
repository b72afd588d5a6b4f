"""What a use case hands back to the adapter that called it, and the port for replies nobody is waiting for."""

from __future__ import annotations

from typing import Literal, Protocol, TypeAlias

import attrs

from domain.events import FailureKind, Mode


@attrs.frozen(kw_only=True)
class Answered:
    """The chat model answered a question."""

    question_version: int
    """Version of the question in its stream."""
    text: str
    """The answer (Markdown, as the model wrote it)."""
    model: str
    """Which model answered."""
    prompt_tokens: int
    """Billed prompt tokens."""
    completion_tokens: int
    """Billed completion tokens."""
    latency_ms: int
    """How long the model took."""
    reasoning: str = ""
    """What a reasoning model thought first (shown apart, never part of `text`)."""
    stopped: bool = False
    """True when the user stopped the answer: `text` is what had arrived by then."""
    cached_tokens: int = 0
    """Of the prompt tokens, those billed as cached."""
    reasoning_tokens: int = 0
    """Of the completion tokens, those spent thinking."""
    replayed: bool = False
    """True when the answer was already recorded (a redelivered update) and the model was not called."""
    delivered: bool = False
    """True when the log says the user was already sent this outcome: sending it again would duplicate it."""


@attrs.frozen(kw_only=True)
class Drawn:
    """The image model drew a picture."""

    request_version: int
    """Version of the image request in its stream."""
    prompt: str
    """What the user asked for (the caption)."""
    image_ref: str
    """URL or `sha256:` reference of the picture."""
    data: bytes | None = attrs.field(default=None, repr=False)
    """The picture's bytes; None when replayed from the log and only the reference is known."""
    revised_prompt: str | None = None
    """The prompt as the model rewrote it, if it did."""
    replayed: bool = False
    """True when the picture was already recorded (a redelivered update)."""
    delivered: bool = False
    """True when the log says the user was already sent this outcome."""


@attrs.frozen(kw_only=True)
class Failed:
    """A request got no result; the adapter turns this into a short human reply."""

    request: Literal["question", "image"]
    """What failed."""
    kind: FailureKind
    """Why."""
    message: str
    """Secret-free detail."""
    retry_after: float | None = None
    """Seconds to wait before trying again, when the model said."""
    request_version: int = 0
    """Version of the failed request."""
    reasoning: str = ""
    """What a reasoning model had thought before the request was stopped."""
    replayed: bool = False
    """True when the failure was already recorded (a redelivered update)."""
    delivered: bool = False
    """True when the log says the user was already sent this outcome."""


Outcome: TypeAlias = Answered | Drawn | Failed


@attrs.frozen(kw_only=True)
class Started:
    """What /start found."""

    new_user: bool
    """True when this /start registered the user."""
    mode: Mode
    """The user's current mode."""


class Undeliverable(Exception):
    """The front end refused an outcome for good (the user blocked the bot, the chat is gone)."""


class Outbox(Protocol):
    """Delivers results that finish after their update's handler is gone (crash recovery)."""

    async def deliver(self, stream: str, outcome: Outcome, language: str | None = None) -> None:
        """Send the outcome to the chat behind the stream, any text of the front end's own in the chat's `language`
        (None: the front end's default); Undeliverable if it never can be."""
