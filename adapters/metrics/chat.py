"""A chat model that times its answers: the whole answer and the first words, by the model that answered."""

from __future__ import annotations

import time
from collections.abc import Sequence

from adapters.metrics.registry import Metrics
from domain.ports import ChatModel, Completion, StopSignal, TextSoFar
from domain.prompt import Message


class MeteredChatModel:
    """The ChatModel port around another chat model. An answer's time (`convo_model_latency_seconds`) is observed
    unless it was stopped; the time to its first visible words (`convo_model_first_token_seconds`) when it was
    streamed and had any. Both under the model the server says answered, as the tokens are; failed calls are
    counted by kind from the events recorded instead."""

    def __init__(self, chat: ChatModel, metrics: Metrics) -> None:
        self._chat = chat
        self._metrics = metrics

    @property
    def name(self) -> str:
        """See ChatModel.name."""
        return self._chat.name

    async def answer(
        self,
        prompt: Sequence[Message],
        on_text: TextSoFar | None = None,
        stop: StopSignal | None = None,
        model: str | None = None,
    ) -> Completion:
        """The wrapped model's answer, timed; see ChatModel.answer."""
        started = time.perf_counter()
        watch = _FirstWords(on_text, started) if on_text is not None else None
        completion = await self._chat.answer(prompt, watch, stop, model)
        if watch is not None and watch.seconds is not None:
            self._metrics.first_token.labels(completion.model).observe(watch.seconds)
        if not completion.stopped:
            self._metrics.model_latency.labels(completion.model).observe(time.perf_counter() - started)
        return completion

    async def close(self) -> None:
        """See ChatModel.close."""
        await self._chat.close()


class _FirstWords:
    """Passes the answer so far on, noting when it first held visible text."""

    def __init__(self, on_text: TextSoFar, started: float) -> None:
        self._on_text = on_text
        self._started = started
        self.seconds: float | None = None
        """Seconds from `started` to the first visible text; None until it came."""

    async def __call__(self, text: str) -> None:
        if text and self.seconds is None:
            self.seconds = time.perf_counter() - self._started
        await self._on_text(text)
