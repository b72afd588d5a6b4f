"""The chat model port over the OpenAI Chat Completions API (and any server that speaks it).

Any model name is sent as given: there are no model tables. The answer limit goes out as `max_tokens`, the one
parameter every OpenAI-compatible server (Ollama, vLLM, llama.cpp, LM Studio) and OpenAI's chat models accept;
OpenAI's reasoning models reject it with 400 `unsupported_parameter`, and then the same attempt is repeated at once
with `max_completion_tokens` (and an unsupported `temperature` is dropped the same way), remembered for the next
calls. Streaming sends `stream_options.include_usage` so the final chunk carries the billed tokens (dropped the
same way for servers that reject it: then the usage is 0 unless they send it anyway).

Timeouts: a non-streamed attempt must finish within `timeout`; a streamed one must start within `timeout` and never
go silent for longer: a long answer that keeps coming is not cut, even past the retry budget, which bounds only
the wait for its first words and the attempts after a failure.
A stream that breaks is requested again and `on_text` simply receives the new answer from its start.

Reasoning models: a leading `<think>…</think>` block of the content, and `reasoning_content` or `reasoning` fields
of the deltas (DeepSeek-R1, QwQ on vLLM, Ollama, OpenRouter), are the answer's `reasoning`, never its text; while
the model only reasons, `on_text` is told an empty text. Once `stop` is set, the request is cancelled (the
connection closes, so the server stops generating) and what arrived is returned, marked `stopped`.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress
from typing import Any, TypeVar

import attrs
import openai
import structlog
from openai import AsyncOpenAI, AsyncStream, omit
from openai.types.chat import ChatCompletionContentPartParam, ChatCompletionMessageParam

from adapters.openai.errors import CallerError, IncompleteAnswer, detail
from adapters.openai.retry import RetryPolicy
from adapters.openai.tokenize import ServerTokenizer
from domain.ports import Completion, ModelFailure, StopSignal, TextSoFar
from domain.prompt import Message
from domain.text import storable

log = structlog.get_logger(__name__)
R = TypeVar("R")

_ADAPTABLE = ("max_tokens", "temperature", "stream_options")
"""Parameters sent again differently (or not at all) when a server rejects them."""
_UNSUPPORTED_CODES = frozenset({"unsupported_parameter", "unsupported_value", "unknown_parameter"})
_UNSUPPORTED_WORDS = ("unsupported", "not supported", "unrecognized", "unknown parameter")
_CHAT_PATH = "/chat/completions"
_LATE_ERRORS = (openai.APIConnectionError, openai.APIError, ValueError, TimeoutError)
"""What may break a stream after its finish chunk; the answer is complete by then, so it is kept."""


def wire_message(message: Message) -> ChatCompletionMessageParam:
    """A prompt message as the API takes it."""
    if message.role == "system":
        return {"role": "system", "content": message.content}
    if message.role == "assistant":
        return {"role": "assistant", "content": message.content}
    pictures = [image.data for image in message.images if image.data is not None]
    if not pictures:
        return {"role": "user", "content": message.content}
    parts: list[ChatCompletionContentPartParam] = [{"type": "text", "text": message.content}]
    parts += [{"type": "image_url", "image_url": {"url": data_url(data)}} for data in pictures]
    return {"role": "user", "content": parts}


def data_url(data: bytes) -> str:
    """A picture's bytes as a `data:` URL, typed by their first bytes (Telegram's photos are JPEG)."""
    return f"data:{image_type(data)};base64,{base64.b64encode(data).decode()}"


def image_type(data: bytes) -> str:
    """The media type a picture's bytes begin with; JPEG when unsure."""
    if data.startswith(b"\x89PNG"):
        return "image/png"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "image/jpeg"


_EMPTY_STREAM = "the model server ended the stream without a word, as llama.cpp does for a prompt over its window"
_THINK_OPEN, _THINK_CLOSE = "<think>", "</think>"
_REASONING_FIELDS = ("reasoning_content", "reasoning")


def split_reasoning(content: str) -> tuple[str, str]:
    """(reasoning, text) of a content that may open with a `<think>` block (still open while it streams)."""
    stripped = content.lstrip()
    if _THINK_OPEN.startswith(stripped):
        return "", ""  # nothing yet, or the start of an opening tag
    if not stripped.startswith(_THINK_OPEN):
        return "", content
    inner = stripped[len(_THINK_OPEN) :]
    thought, closed, after = inner.partition(_THINK_CLOSE)
    if not closed:
        return thought.strip(), ""
    return thought.strip(), after.lstrip()


@attrs.define
class _Answer:
    """What an attempt has received so far."""

    model: str
    parts: list[str] = attrs.field(factory=list)
    thoughts: list[str] = attrs.field(factory=list)
    refusal: list[str] = attrs.field(factory=list)
    finish_reason: str | None = None
    usage: tuple[int, int, int, int] | None = None
    """Billed (prompt, completion, cached prompt, reasoning) tokens, once the server reports them."""

    @property
    def text(self) -> str:
        """The visible text so far, as every store and Telegram can hold it (a split surrogate pair is joined)."""
        return storable(split_reasoning("".join(self.parts))[1])

    @property
    def reasoning(self) -> str:
        """What the model thought so far: reasoning fields, then a leading `<think>` block."""
        inline = split_reasoning("".join(self.parts))[0]
        return storable("".join(self.thoughts).strip() + ("\n\n" if self.thoughts and inline else "") + inline)

    def take_chunk(self, chunk: object) -> bool:
        """Fold one stream chunk (the decoded JSON of one event) in; True when the text grew.

        Chunks are read as plain JSON, not as the client's pydantic models: building a model per token was the
        largest cost of a streamed answer. Anything missing or of the wrong type is ignored, as the models would.
        """
        if not isinstance(chunk, dict):
            return False
        self.model = _string(chunk.get("model")) or self.model
        self.usage = _usage(chunk.get("usage")) or self.usage
        grew = False
        for choice in _dicts(chunk.get("choices")):
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta")
            delta = delta if isinstance(delta, dict) else {}
            if content := _string(delta.get("content")):
                self.parts.append(content)
                grew = True
            for field in _REASONING_FIELDS:
                if thought := _string(delta.get(field)):
                    self.thoughts.append(thought)
                    grew = True
            if refusal := _string(delta.get("refusal")):
                self.refusal.append(refusal)
            self.finish_reason = _string(choice.get("finish_reason")) or self.finish_reason
        return grew

    def completion(self) -> Completion:
        """The answer, or the reason it cannot be one."""
        billed = self._as_completion() if self.usage else None
        if self.finish_reason == "content_filter":
            raise ModelFailure("content_refused", "the answer was stopped by the content filter", billed=billed)
        if self.refusal and not self.parts:
            said = detail("".join(self.refusal)) or "no reason given"
            raise ModelFailure("content_refused", f"the model refused to answer: {said}", billed=billed)
        if self.finish_reason is None:
            raise IncompleteAnswer("the answer stream ended before the answer was complete")
        return self._as_completion()

    def stopped(self) -> Completion:
        """What arrived before the user stopped the answer."""
        return attrs.evolve(self._as_completion(), stopped=True)

    def _as_completion(self) -> Completion:
        prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens = self.usage or (0, 0, 0, 0)
        return Completion(
            text=self.text,
            model=self.model,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            reasoning=self.reasoning,
            cached_tokens=cached_tokens,
            reasoning_tokens=reasoning_tokens,
        )


def _string(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _dicts(value: object) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _usage(value: object) -> tuple[int, int, int, int] | None:
    """(prompt, completion, cached prompt, reasoning) tokens from a usage object; None when there is none."""
    if not isinstance(value, dict):
        return None
    prompt_details, completion_details = value.get("prompt_tokens_details"), value.get("completion_tokens_details")
    return (
        _count(value.get("prompt_tokens")),
        _count(value.get("completion_tokens")),
        _count(prompt_details.get("cached_tokens") if isinstance(prompt_details, dict) else None),
        _count(completion_details.get("reasoning_tokens") if isinstance(completion_details, dict) else None),
    )


def _count(value: object) -> int:
    """A token count as reported, 0 for anything that is not a count."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


class OpenAIChatModel:
    """A ChatModel backed by `client.chat.completions` (the client is built with `max_retries=0`)."""

    def __init__(
        self,
        client: AsyncOpenAI,
        model: str,
        max_tokens: int | None,
        timeout: float,
        retry: RetryPolicy,
        stream: bool = True,
        temperature: float | None = None,
    ) -> None:
        self._client = client
        self._model = model
        self._max_tokens = max_tokens
        self._timeout = timeout
        self._retry = retry
        self._stream = stream
        self._temperature = temperature
        self._unsupported: set[str] = set()

    @property
    def name(self) -> str:
        """The configured model name."""
        return self._model

    @property
    def client(self) -> AsyncOpenAI:
        """The OpenAI client this model calls through (other endpoints of the same server share it)."""
        return self._client

    def server_tokenizer(self) -> ServerTokenizer:
        """A meter over this model server's own `/tokenize` (llama.cpp, vLLM), sharing this model's client."""
        return ServerTokenizer(self._client, self._model)

    async def close(self) -> None:
        """Close the HTTP client (shared with the image model, if built together)."""
        await self._client.close()

    async def answer(
        self,
        prompt: Sequence[Message],
        on_text: TextSoFar | None = None,
        stop: StopSignal | None = None,
        model: str | None = None,
    ) -> Completion:
        """The model's answer (of `model`, or the configured one); streamed through `on_text` when streaming is on;
        cut short once `stop` is set. Raises ModelFailure."""
        name = model or self._model
        messages = [wire_message(message) for message in prompt]
        streaming = self._stream and on_text is not None
        latest = _Answer(model=name)

        async def attempt(left: float) -> Completion:
            nonlocal latest
            latest = _Answer(model=name)
            if streaming and on_text is not None:
                return await self._streamed(name, messages, on_text, left, latest)
            async with asyncio.timeout(min(self._timeout, left)):
                return await self._whole(name, messages)

        call = self._retry.call(attempt, operation="chat", secrets=self._secrets())
        if stop is None:
            return await call
        if stop.is_set():
            call.close()
            return latest.stopped()
        return await _unless_stopped(call, stop, lambda: latest.stopped())

    def _secrets(self) -> tuple[str, ...]:
        key = getattr(self._client, "api_key", None)
        return (key,) if isinstance(key, str) else ()

    async def _whole(self, name: str, messages: list[ChatCompletionMessageParam]) -> Completion:
        response = await self._adapting(lambda: self._create_whole(name, messages))
        choices = _dicts(response.get("choices")) if isinstance(response, dict) else []
        if not isinstance(response, dict) or not choices:
            raise IncompleteAnswer("the model server sent no answer")
        answer = _Answer(model=_string(response.get("model")) or name, usage=_usage(response.get("usage")))
        message = choices[0].get("message")
        if isinstance(message, dict):
            if content := _string(message.get("content")):
                answer.parts.append(content)
            if refusal := _string(message.get("refusal")):
                answer.refusal.append(refusal)
            answer.thoughts += [thought for field in _REASONING_FIELDS if (thought := _string(message.get(field)))]
        answer.finish_reason = _string(choices[0].get("finish_reason")) or "stop"
        return answer.completion()

    async def _streamed(
        self, name: str, messages: list[ChatCompletionMessageParam], on_text: TextSoFar, left: float, answer: _Answer
    ) -> Completion:
        loop = asyncio.get_running_loop()
        end = loop.time() + left

        def quiet_until() -> float:
            """Slow is not dead: once the answer flows, only a pause of `timeout` without a chunk ends it; before
            its first words, the call's whole budget bounds the wait too."""
            quiet = loop.time() + self._timeout
            return quiet if answer.parts else min(quiet, end)

        try:
            async with asyncio.timeout_at(quiet_until()) as limit:
                stream = await self._adapting(lambda: self._create_stream(name, messages))
                async with stream:
                    async for chunk in stream:
                        if answer.take_chunk(chunk):  # reasoning too: an empty text while it only thinks
                            limit.reschedule(None)
                            await _tell(on_text, answer.text)
                        limit.reschedule(quiet_until())
        except _LATE_ERRORS:
            if answer.finish_reason is None:
                raise
            log.info("chat_stream_ended_late", model=answer.model, finish_reason=answer.finish_reason)
        if answer.finish_reason is None and not answer.parts and not answer.refusal:
            raise ModelFailure("context_too_long", _EMPTY_STREAM)
        return answer.completion()

    async def _adapting(self, send: Callable[[], Awaitable[R]]) -> R:
        """`send()`, sent again without a parameter the server says it does not support (each one only once)."""
        while True:
            try:
                return await send()
            except openai.BadRequestError as error:
                param = self._unsupported_param(error)
                if param is None:
                    raise
                self._unsupported.add(param)
                log.info("chat_param_adapted", model=self._model, unsupported=param)

    def _unsupported_param(self, error: openai.BadRequestError) -> str | None:
        message = str(error.body.get("message", "")) if isinstance(error.body, dict) else ""
        for param in _ADAPTABLE:
            if param in self._unsupported or self._value(param) is omit:
                continue
            named = error.param == param or f"'{param}'" in message
            refused = error.code in _UNSUPPORTED_CODES or any(word in message.lower() for word in _UNSUPPORTED_WORDS)
            if named and refused:
                return param
        return None

    def _value(self, param: str) -> Any:
        """What to send for an optional parameter: its value, or `omit`."""
        if param == "stream_options":
            return omit if param in self._unsupported else {"include_usage": True}
        if param == "max_completion_tokens":
            value: float | None = self._max_tokens if "max_tokens" in self._unsupported else None
        elif param in self._unsupported:
            value = None
        else:
            value = self._max_tokens if param == "max_tokens" else self._temperature
        return omit if value is None else value

    def _body(self, name: str, messages: list[ChatCompletionMessageParam], stream: bool) -> dict[str, Any]:
        """The request body, with the optional parameters that are sent (and that this server takes)."""
        body: dict[str, Any] = {"model": name, "messages": messages}
        for param in ("max_tokens", "max_completion_tokens", "temperature") + (("stream_options",) if stream else ()):
            value = self._value(param)
            if value is not omit:
                body[param] = value
        if stream:
            body["stream"] = True
        return body

    async def _create_whole(self, name: str, messages: list[ChatCompletionMessageParam]) -> object:
        # `client.post` is the client's own request path (auth, errors, timeouts) without the per-call rewriting
        # of typed parameters, which costs more than the rest of a call for a long prompt of plain strings.
        return await self._client.post(
            _CHAT_PATH,
            cast_to=object,
            body=self._body(name, messages, stream=False),
            options={"timeout": self._timeout},
        )

    async def _create_stream(self, name: str, messages: list[ChatCompletionMessageParam]) -> AsyncStream[object]:
        return await self._client.post(
            _CHAT_PATH,
            cast_to=object,
            body=self._body(name, messages, stream=True),
            options={"timeout": self._timeout},
            stream=True,
            stream_cls=AsyncStream[object],
        )


async def _unless_stopped(
    call: Awaitable[Completion], stop: StopSignal, partial: Callable[[], Completion]
) -> Completion:
    """The call's result, or, once `stop` is set first, the partial answer (the call is cancelled at once)."""
    calling = asyncio.ensure_future(call)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({calling, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        if not calling.done():
            calling.cancel()
            with suppress(asyncio.CancelledError, Exception):
                await calling
    if calling.cancelled():  # the stop came first
        log.info("chat_stopped", model=partial().model)
        return partial()
    return calling.result()


async def _tell(on_text: TextSoFar, text: str) -> None:
    """Hand the text to the caller; what the caller raises is not a model failure."""
    try:
        await on_text(text)
    except Exception as error:
        raise CallerError(error) from error
