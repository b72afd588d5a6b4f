"""A local fake of the OpenAI HTTP API for tests and benchmarks.

The fake is an aiohttp server that speaks the wire format of ``api.openai.com`` closely enough
for the real ``openai`` Python client to talk to it:

* ``POST /v1/chat/completions`` -- JSON answers, or Server-Sent Events with ``stream: true``
  (a first chunk with ``role: assistant``, content deltas, a chunk carrying ``finish_reason``,
  a usage-only chunk with ``choices: []`` when ``stream_options.include_usage`` is set, then
  ``data: [DONE]``);
* ``POST /v1/images/generations`` -- ``url`` (default) or ``b64_json`` images (real PNG bytes),
  ``revised_prompt`` for ``dall-e-3``; the bytes behind each URL are served at
  ``GET /images/<id>.png`` (no auth, like the real pre-signed blob URLs);
* ``GET /v1/models`` and ``GET /v1/models/<id>``;
* ``POST /v1/audio/transcriptions`` and ``POST /v1/audio/speech`` -- see :mod:`tests.doubles.openai_audio`
  (``fake.set_transcript``, ``fake.transcriptions``, ``fake.speeches``).

Chat messages may carry content parts (``text``, ``image_url`` with ``https`` or ``data:`` URLs), checked
and billed as :mod:`tests.doubles.openai_vision` describes; ``fake.refuse_images(model)`` makes a model
refuse them like a text-only one, ``fake.chat_requests[-1].images`` lists them decoded, and the default
echo answer ends with `` [N image(s)]`` when the request held images.

Any model name is accepted.  Requests are checked like the real API does it: ``Authorization:
Bearer <key>`` first (401 ``invalid_api_key``), then the JSON body, then the request shape
(400 ``invalid_request_error`` naming the offending ``param``).  Error bodies always have the
shape ``{"error": {"message", "type", "param", "code"}}``.

Usage in a test::

    async with FakeOpenAI(api_key="test-key") as fake:
        client = openai.AsyncOpenAI(base_url=fake.base_url, api_key="test-key", max_retries=0)
        await client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
        assert fake.chat_requests[-1].messages[-1]["content"] == "hi"

Answers
    By default the answer is ``"echo: " + <text of the last user message>``.  Usage counts are
    deterministic (:func:`count_tokens` counts words and punctuation marks).  Replace the answer
    with ``fake.set_answer(x)`` (persistent) or ``fake.queue_answers(x, y, ...)`` (one per chat
    request, used before the persistent answer).  An answer is a ``str`` or a callable taking the
    :class:`RecordedRequest` and returning a ``str`` (or an awaitable of one).  ``max_tokens`` /
    ``max_completion_tokens`` truncate the answer and yield ``finish_reason: "length"``.  Streams
    send one token per chunk (``stream_chunk_tokens`` changes that).

Reasoning
    Reasoning models as vLLM, Ollama and OpenRouter serve them (DeepSeek-R1, QwQ) send their
    thinking in a separate field.  ``FakeOpenAI(reasoning="...")`` or ``fake.set_reasoning("...")``
    adds it to every chat answer; ``reasoning_field`` picks the spelling, ``"reasoning_content"``
    (vLLM, DeepSeek; the default) or ``"reasoning"`` (Ollama, OpenRouter).  One answer can carry
    its own: ``fake.queue_answers(ReasonedAnswer("42", reasoning="Let me think..."))`` (a
    :class:`ReasonedAnswer` goes wherever a ``str`` answer does, callables may return one; its
    ``reasoning=None`` falls back to the fake's, ``""`` means none).  A stream sends the reasoning
    first, as deltas ``{"role": "assistant", "content": null, "<field>": "piece"}`` (instead of the
    opening role chunk), then the content deltas; a JSON answer carries it in
    ``choices[i].message.<field>``.  Reasoning is billed as completion tokens (and
    ``completion_tokens_details.reasoning_tokens``) and counts against ``max_tokens`` before the
    content does.  A ``<think>...</think>`` block inline is just part of the answer text.

Faults
    ``fake.fail_next(kind, times=1, endpoint="chat", **options)`` queues ``times`` faults; each
    request to that endpoint (``"chat"``, ``"images"``, ``"models"``, ``"transcriptions"`` or ``"speech"``)
    consumes one.
    ``fake.fail_always(kind, endpoint="chat", **options)`` sets a persistent fault used whenever
    the queue is empty, until ``fake.clear_faults()``.  Every kind accepts ``delay`` (seconds to
    wait before acting).  Kinds and their options:

    ======================  ====================================================================
    ``slow``                answer normally after ``delay`` (default 1.0) seconds; ``chunk_delay``
                            seconds between stream chunks.
    ``rate_limit``          429 ``rate_limit_exceeded``; ``retry_after`` seconds (default 1.0, sent
                            as ``retry-after`` rounded up and ``retry-after-ms``; ``None`` sends
                            neither), ``limit_type`` ``"requests"`` or ``"tokens"``, ``message``.
    ``quota``               429 ``insufficient_quota`` (the one a client must not retry).
    ``server_error``        500 ``server_error``; ``status`` overrides the status, ``message``.
    ``bad_gateway``         502 ``cf_bad_gateway`` JSON; ``html=True`` sends Cloudflare-style HTML.
    ``overloaded``          503 ``server_error`` "overloaded".
    ``hang``                never answer; the handler returns once the client goes away.
    ``malformed``           200 with a broken JSON body; in a stream, ``after_chunks`` (default 1)
                            good chunks then a broken ``data:`` line.
    ``invalid_api_key``     401 ``invalid_api_key`` whatever key was sent.
    ``not_found``           404 ``Invalid URL (POST /v1/...)``: a server without the endpoint.
    ``error``               any error: ``status`` (required), ``message``, ``type``, ``code``,
                            ``param``, ``headers``, or a raw ``body`` (dict or str).
    ``content_policy``      400; images: ``content_policy_violation`` ("Your request was rejected as
                            a result of our safety system..."); chat: ``code`` selects the shape,
                            ``"content_policy_violation"`` (default), ``"content_filter"`` (Azure
                            OpenAI) or ``"invalid_prompt"`` (OpenAI reasoning models).
    ``context_length``      400 ``context_length_exceeded``; ``limit`` (default 128000) tokens.
    ``content_filter``      200 with ``finish_reason: "content_filter"``; ``partial`` is the text
                            sent before the cut (default: the first half of the answer).
    ``refusal``             200 with ``content: null`` and ``refusal`` set (option ``refusal``).
    ``cut``                 send ``after_chunks`` (default 2) stream chunks then drop the TCP
                            connection (no ``[DONE]``); ``clean=True`` ends the HTTP body properly
                            but still without a finish chunk or ``[DONE]``.  Without ``stream`` it
                            sends half of the JSON body and drops the connection.
    ``stall``               send ``after_chunks`` (default 2) stream chunks then go silent until the
                            client gives up (non-streaming: half the body, then silence).
    ``stream_error``        ``after_chunks`` (default 2) chunks then ``data: {"error": {...}}``, as
                            the API does for mid-stream failures (non-streaming: a 500).
    ======================  ====================================================================

    ``content_policy`` is valid for chat and images; ``context_length``, ``content_filter``,
    ``refusal``, ``cut``, ``stall`` and ``stream_error`` for chat only; the rest everywhere.

Recording and load
    Every request is recorded in order as a :class:`RecordedRequest` (method, path, headers with
    the ``Authorization`` value redacted, parsed JSON ``body``, wall and monotonic times, response
    ``status`` and the ``fault`` applied): ``fake.requests``, ``fake.chat_requests``,
    ``fake.image_requests``; ``fake.clear()`` forgets them (``fake.reset()`` also drops faults and
    answers).  A streamed answer records ``chunks_sent`` (``chat.completion.chunk`` events written)
    and ``disconnected``: the client closed the connection before the end of the answer was
    written (a failed write, or the transport found closing before a chunk, so a client that
    cancels is seen within one chunk delay; also a client leaving a ``hang`` or ``stall``).
    ``fake.in_flight`` / ``fake.max_in_flight`` count concurrent ``/v1`` requests;
    ``await fake.wait_for_requests(n, endpoint=None)``, ``await fake.wait_for_in_flight(n)``,
    ``await fake.wait_for_disconnect(n)`` (``n`` chat requests disconnected) and
    ``await fake.wait_until_idle()`` help synchronise (``within=`` seconds, then ``TimeoutError``).
    ``fake.delay`` / ``fake.chunk_delay`` add latency to every chat and image answer.

Standalone
    ``python -m tests.doubles.openai_server --port 8082 [--delay 1.0] [--chunk-delay 0.05]
    [--api-key KEY] [--answer TEXT] [--reasoning TEXT] [--reasoning-field reasoning]`` prints the
    base URL (``http://127.0.0.1:8082/v1``) on one line of stdout once it is listening, then serves
    until interrupted.  Without ``--api-key`` any non-empty bearer key is accepted.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import functools
import hashlib
import inspect
import json
import math
import re
import signal
import socket
import struct
import sys
import time
import uuid
import zlib
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TypeAlias

from aiohttp import web

from tests.doubles.openai_audio import SPEECH_PATH, TRANSCRIPTIONS_PATH, AudioMixin, parse_form
from tests.doubles.openai_vision import ImagePart, VisionMixin, check_content_parts, image_parts, image_tokens
from tests.doubles.openai_wire import (
    TOKEN_RE,
    ApiError,
    JSONDict,
    below_minimum,
    count_tokens,
    dumps,
    go_duration,
    invalid_json_error,
    invalid_key_error,
    invalid_type,
    invalid_value,
    missing_key_error,
    missing_param,
)

__all__ = [
    "FAULT_KINDS",
    "Answer",
    "FakeOpenAI",
    "Fault",
    "ReasonedAnswer",
    "ReasoningField",
    "RecordedRequest",
    "count_tokens",
    "render_png",
]

Endpoint: TypeAlias = Literal["chat", "images", "models", "transcriptions", "speech"]
ReasoningField: TypeAlias = Literal["reasoning_content", "reasoning"]

ENDPOINTS: Final = ("chat", "images", "models", "transcriptions", "speech")
CHAT_PATH: Final = "/v1/chat/completions"
IMAGES_PATH: Final = "/v1/images/generations"
DEFAULT_MODELS: Final = (
    "gpt-4o",
    "gpt-4o-mini",
    "gpt-4.1",
    "gpt-4.1-mini",
    "o3-mini",
    "dall-e-2",
    "dall-e-3",
    "gpt-image-1",
)
REASONING_FIELDS: Final[tuple[ReasoningField, ...]] = ("reasoning_content", "reasoning")
MESSAGE_ROLES: Final = ("system", "assistant", "user", "function", "tool", "developer")
SYSTEM_FINGERPRINT: Final = "fp_fake0openai"
ORGANIZATION: Final = "user-fakeopenai"
RATE_LIMIT_REQUESTS: Final = 10_000
RATE_LIMIT_TOKENS: Final = 30_000_000
_STREAM_FAULTS: Final = frozenset({"cut", "stall", "stream_error", "malformed"})
_ALL: Final = frozenset(ENDPOINTS)
_CHAT: Final = frozenset({"chat"})

# kind -> (endpoints it applies to, options it accepts besides ``delay``)
FAULT_KINDS: Final[Mapping[str, tuple[frozenset[str], frozenset[str]]]] = {
    "slow": (_ALL, frozenset({"chunk_delay"})),
    "rate_limit": (_ALL, frozenset({"retry_after", "limit_type", "message"})),
    "quota": (_ALL, frozenset({"message"})),
    "server_error": (_ALL, frozenset({"status", "message"})),
    "bad_gateway": (_ALL, frozenset({"html"})),
    "overloaded": (_ALL, frozenset({"message"})),
    "hang": (_ALL, frozenset()),
    "malformed": (_ALL, frozenset({"after_chunks"})),
    "invalid_api_key": (_ALL, frozenset()),
    "not_found": (_ALL, frozenset()),
    "error": (_ALL, frozenset({"status", "message", "type", "code", "param", "headers", "body"})),
    "content_policy": (frozenset({"chat", "images"}), frozenset({"code", "message"})),
    "context_length": (_CHAT, frozenset({"limit"})),
    "content_filter": (_CHAT, frozenset({"partial"})),
    "refusal": (_CHAT, frozenset({"refusal"})),
    "cut": (_CHAT, frozenset({"after_chunks", "clean"})),
    "stall": (_CHAT, frozenset({"after_chunks"})),
    "stream_error": (_CHAT, frozenset({"after_chunks", "message"})),
}

_PIECE_RE: Final = re.compile(r"\s*(?:\w+|[^\w\s])")
_SIZE_RE: Final = re.compile(r"^(\d{1,5})x(\d{1,5})$")
_IMAGE_SIZES: Final[Mapping[str, tuple[str, ...]]] = {
    "dall-e-2": ("256x256", "512x512", "1024x1024"),
    "dall-e-3": ("1024x1024", "1792x1024", "1024x1792"),
    "gpt-image": ("1024x1024", "1536x1024", "1024x1536", "auto"),
}
_SAFETY_MESSAGE: Final = (
    "Your request was rejected as a result of our safety system. "
    "Your prompt may contain text that is not allowed by our safety system."
)
_SERVER_ERROR_MESSAGE: Final = "The server had an error while processing your request. Sorry about that!"
_BAD_GATEWAY_HTML: Final = (
    "<!DOCTYPE html>\n<html><head><title>api.openai.com | 502: Bad gateway</title></head>\n"
    "<body><h1>Bad gateway</h1><p>The web server reported a bad gateway error.</p>"
    "<p>Error reference number: 502</p></body></html>\n"
)


# --------------------------------------------------------------------------------------------
# Small pure helpers
# --------------------------------------------------------------------------------------------


def truncate_tokens(text: str, limit: int) -> str:
    """Return the prefix of ``text`` holding its first ``limit`` tokens."""
    for index, match in enumerate(TOKEN_RE.finditer(text)):
        if index == limit - 1:
            return text[: match.end()]
    return text


def fit_tokens(reasoning: str, text: str, limit: int) -> tuple[str, str]:
    """Cut ``reasoning`` then ``text`` so that together they hold at most ``limit`` tokens."""
    reasoning_budget = min(count_tokens(reasoning), limit)
    text_budget = limit - reasoning_budget
    return (
        truncate_tokens(reasoning, reasoning_budget) if reasoning_budget else "",
        truncate_tokens(text, text_budget) if text_budget else "",
    )


def split_pieces(text: str, tokens_per_piece: int = 1) -> list[str]:
    """Split ``text`` into stream deltas of ``tokens_per_piece`` tokens, keeping all whitespace."""
    tokens = _PIECE_RE.findall(text)
    consumed = sum(len(token) for token in tokens)
    if consumed < len(text):  # trailing whitespace
        tokens.append(text[consumed:])
    step = max(1, tokens_per_piece)
    return ["".join(tokens[start : start + step]) for start in range(0, len(tokens), step)]


def _check_reasoning_field(name: str) -> ReasoningField:
    for known in REASONING_FIELDS:
        if name == known:
            return known
    raise ValueError(f"unknown reasoning field {name!r}; expected one of {REASONING_FIELDS}")


def _first_half(text: str) -> str:
    """The first half (in tokens) of ``text``."""
    half = count_tokens(text) // 2
    return truncate_tokens(text, half) if half else ""


def content_text(content: object) -> str:
    """Return the text of a message ``content`` (a string, a list of parts, or null)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [part.get("text") for part in content if isinstance(part, dict) and part.get("type", "text") == "text"]
        return "\n".join(text for text in texts if isinstance(text, str))
    return ""


def prompt_tokens(messages: Iterable[object]) -> int:
    """Count prompt tokens like OpenAI's cookbook does: 3 per message, 3 to prime the reply; images cost what
    :mod:`tests.doubles.openai_vision` says."""
    total = 3
    for message in messages:
        if isinstance(message, dict):
            total += 3 + count_tokens(content_text(message.get("content"))) + image_tokens(message.get("content"))
            total += count_tokens(str(message.get("name", "")))
    return total


def sse(payload: object) -> bytes:
    """Frame one Server-Sent Event ``data:`` line."""
    data = payload if isinstance(payload, str) else dumps(payload)
    return f"data: {data}\n\n".encode()


@functools.lru_cache(maxsize=64)
def render_png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """Return a valid PNG of ``width`` x ``height`` pixels filled with one colour."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        checksum = zlib.crc32(tag + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", checksum)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = (b"\x00" + bytes(rgb) * width) * height
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def colour_for(text: str) -> tuple[int, int, int]:
    """Pick a deterministic colour for a prompt."""
    digest = hashlib.sha256(text.encode()).digest()
    return digest[0], digest[1], digest[2]


def new_id(prefix: str) -> str:
    """Make an id shaped like the API's (``chatcmpl-`` + 29 characters)."""
    return prefix + uuid.uuid4().hex[:29]


# --------------------------------------------------------------------------------------------
# Public records
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    """One scripted fault: its ``kind`` and its options."""

    kind: str
    options: Mapping[str, Any] = field(default_factory=dict)

    def get(self, name: str, default: Any = None) -> Any:
        """Return option ``name`` or ``default``."""
        return self.options.get(name, default)


@dataclass
class RecordedRequest:
    """One request as the fake received it.

    ``chunks_sent`` counts the ``chat.completion.chunk`` events written to a stream (not ``[DONE]``);
    ``disconnected`` is set when the client closed the connection before the end of the answer was
    written.
    """

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    text: str
    time: float
    monotonic: float
    endpoint: str | None = None
    status: int | None = None
    fault: str | None = None
    disconnected: bool = False
    chunks_sent: int = 0

    @property
    def messages(self) -> list[JSONDict]:
        """The ``messages`` of a chat request (``[]`` otherwise)."""
        messages = self.body.get("messages") if isinstance(self.body, dict) else None
        return messages if isinstance(messages, list) else []

    @property
    def model(self) -> str | None:
        """The requested ``model``, if any."""
        model = self.body.get("model") if isinstance(self.body, dict) else None
        return model if isinstance(model, str) else None

    @property
    def images(self) -> list[ImagePart]:
        """The ``image_url`` parts of a chat request, data URLs decoded (``[]`` otherwise)."""
        return image_parts(self.messages)

    @property
    def last_user_text(self) -> str:
        """Text of the last ``user`` message (``""`` when there is none)."""
        for message in reversed(self.messages):
            if isinstance(message, dict) and message.get("role") == "user":
                return content_text(message.get("content"))
        return ""


_RECORD_KEY: Final = web.RequestKey("fake_openai_record", RecordedRequest)


@dataclass(frozen=True)
class ReasonedAnswer:
    """An answer ``text`` with the reasoning a reasoning model sends before it.

    ``reasoning=None`` uses the fake's reasoning (:meth:`FakeOpenAI.set_reasoning`); ``""`` sends none.
    """

    text: str
    reasoning: str | None = None


AnswerValue: TypeAlias = str | ReasonedAnswer
Answer: TypeAlias = AnswerValue | Callable[[RecordedRequest], AnswerValue | Awaitable[AnswerValue]]
"""A fixed answer, or a callable computing it from the request (sync or async)."""


@dataclass(frozen=True)
class ChatPlan:
    """Everything needed to write one chat completion, streamed or not."""

    completion_id: str
    created: int
    model: str
    n: int
    text: str
    finish_reason: str
    prompt_tokens: int
    include_usage: bool
    refusal: bool = False
    reasoning: str = ""
    reasoning_field: ReasoningField = "reasoning_content"
    billed_completion: int | None = None
    """Completion tokens to report instead of counting them."""

    @property
    def reasoning_tokens(self) -> int:
        """Reasoning tokens of all choices."""
        return count_tokens(self.reasoning) * self.n

    @property
    def completion_tokens(self) -> int:
        """Tokens of all choices, reasoning included."""
        if self.billed_completion is not None:
            return self.billed_completion
        return count_tokens(self.text) * self.n + self.reasoning_tokens

    def usage(self) -> JSONDict:
        """The ``usage`` object."""
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": self.reasoning_tokens,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }


@dataclass
class _Call:
    """A request being handled."""

    request: web.Request
    record: RecordedRequest
    body: JSONDict
    fault: Fault | None

    @property
    def kind(self) -> str | None:
        return self.fault.kind if self.fault else None


# --------------------------------------------------------------------------------------------
# Request validation
# --------------------------------------------------------------------------------------------


def validate_chat(body: JSONDict) -> ApiError | None:
    """Check a chat completion request the way the API does; return the first error."""
    return (
        _check_model(body)
        or _check_messages(body.get("messages"))
        or _check_positive_int(body, "max_tokens", 1)
        or _check_positive_int(body, "max_completion_tokens", 1)
        or _check_positive_int(body, "n", 1)
        or _check_stream(body)
    )


def _check_model(body: JSONDict) -> ApiError | None:
    if "model" not in body or body["model"] is None:
        return missing_param("model")
    if not isinstance(body["model"], str):
        return invalid_type("model", "a string", body["model"])
    return None


def _check_messages(messages: object) -> ApiError | None:
    if messages is None:
        return missing_param("messages")
    if not isinstance(messages, list):
        return invalid_type("messages", "an array of objects", messages)
    if not messages:
        message = (
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead."
        )
        return ApiError(400, message, param="messages", code="empty_array")
    for index, message in enumerate(messages):
        error = _check_message(f"messages[{index}]", message)
        if error:
            return error
    return None


def _check_message(param: str, message: object) -> ApiError | None:
    if not isinstance(message, dict):
        return invalid_type(param, "an object", message)
    role = message.get("role")
    if role is None:
        return missing_param(f"{param}.role")
    if role not in MESSAGE_ROLES:
        return invalid_value(f"{param}.role", role, MESSAGE_ROLES)
    content = message.get("content")
    if content is None and role != "assistant":
        return missing_param(f"{param}.content")
    if content is not None and not isinstance(content, str | list):
        return invalid_type(f"{param}.content", "one of a string or array of objects", content)
    return check_content_parts(param, role, content) if isinstance(content, list) else None


def _check_positive_int(body: JSONDict, param: str, minimum: int) -> ApiError | None:
    value = body.get(param)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        return invalid_type(param, "an integer", value)
    if value < minimum:
        return below_minimum(param, value, minimum)
    return None


def _check_stream(body: JSONDict) -> ApiError | None:
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        return invalid_type("stream", "a boolean", stream)
    if body.get("stream_options") is not None and not stream:
        message = "The 'stream_options' parameter is only allowed when 'stream' is enabled."
        return ApiError(400, message, param="stream_options", code="invalid_value")
    return None


def image_size_options(model: str) -> tuple[str, ...] | None:
    """Allowed ``size`` values for known image models (``None``: anything ``WxH`` goes)."""
    if model.startswith("gpt-image"):
        return _IMAGE_SIZES["gpt-image"]
    return _IMAGE_SIZES.get(model)


def validate_images(body: JSONDict) -> ApiError | None:
    """Check an image generation request the way the API does; return the first error."""
    prompt = body.get("prompt")
    if prompt is None:
        return missing_param("prompt")
    if not isinstance(prompt, str):
        return invalid_type("prompt", "a string", prompt)
    model = body.get("model") or "dall-e-2"
    if not isinstance(model, str):
        return invalid_type("model", "a string", model)
    return (
        _check_positive_int(body, "n", 1)
        or _check_image_n(model, body)
        or _check_image_format(model, body)
        or _check_image_size(model, body.get("size"))
    )


def _check_image_n(model: str, body: JSONDict) -> ApiError | None:
    n = body.get("n") or 1
    if model == "dall-e-3" and n != 1:
        return ApiError(400, "You must provide n=1 for this model.", param="n")
    if n > 10:
        message = f"Invalid 'n': integer above maximum value. Expected a value <= 10, but got {n} instead."
        return ApiError(400, message, param="n", code="integer_above_max_value")
    return None


def _check_image_format(model: str, body: JSONDict) -> ApiError | None:
    response_format = body.get("response_format")
    if response_format is None:
        return None
    if model.startswith("gpt-image"):
        return ApiError(400, "Unknown parameter: 'response_format'.", param="response_format", code="unknown_parameter")
    if response_format not in ("url", "b64_json"):
        return invalid_value("response_format", response_format, ("url", "b64_json"))
    return None


def _check_image_size(model: str, size: object) -> ApiError | None:
    if size is None:
        return None
    if not isinstance(size, str):
        return invalid_type("size", "a string", size)
    allowed = image_size_options(model)
    if allowed is not None and size not in allowed:
        return invalid_value("size", size, allowed)
    if allowed is None and size != "auto" and not _SIZE_RE.match(size):
        return invalid_value("size", size, ("auto", "<width>x<height>"))
    return None


def image_dimensions(size: str | None) -> tuple[int, int]:
    """Pixel dimensions for a ``size`` parameter (``auto`` and unknown -> 1024x1024)."""
    match = _SIZE_RE.match(size or "")
    if not match:
        return 1024, 1024
    width, height = (min(4096, max(1, int(group))) for group in match.groups())
    return width, height


# --------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------


class FakeOpenAI(AudioMixin, VisionMixin):
    """A scriptable fake of the OpenAI HTTP API served by aiohttp on ``host:port``.

    ``api_key=None`` accepts any non-empty bearer key.  ``port=0`` picks a free port.
    ``context_window`` (tokens), when set, makes over-long prompts fail with
    ``context_length_exceeded`` as the real API does; with ``overflow="empty_stream"`` an over-long streamed
    prompt is answered 200 with a stream that ends without a word instead, as llama.cpp's server has done; with
    ``overflow="llama.cpp"`` the window is llama-server's ``-c``: a prompt that fills it is refused with
    llama.cpp's own 400 body (``exceed_context_size_error`` with ``n_prompt_tokens`` and ``n_ctx``), and an answer
    stops with ``finish_reason: "length"`` where prompt and answer together fill it.
    ``tokenize="llama.cpp"`` serves llama.cpp's ``POST /tokenize`` (``{"content"}`` -> ``{"tokens"}``), and
    ``tokenize="vllm"`` vLLM's (``{"messages"}`` -> ``{"count", "max_model_len"}``), counting with
    :func:`count_tokens`; otherwise ``/tokenize`` is a 404.
    ``reasoning`` (with ``reasoning_field``) is reasoning text sent with every chat answer, as reasoning models do.
    """

    def __init__(
        self,
        api_key: str | None = "test-key",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        answer: Answer | None = None,
        reasoning: str | None = None,
        reasoning_field: ReasoningField = "reasoning_content",
        delay: float = 0.0,
        chunk_delay: float = 0.0,
        stream_chunk_tokens: int = 1,
        context_window: int | None = None,
        overflow: Literal["error", "empty_stream", "llama.cpp"] = "error",
        tokenize: Literal["llama.cpp", "vllm"] | None = None,
        models: Iterable[str] = DEFAULT_MODELS,
    ) -> None:
        self.api_key = api_key
        self.host = host
        self.delay = delay
        self.chunk_delay = chunk_delay
        self.stream_chunk_tokens = stream_chunk_tokens
        self.context_window = context_window
        self.overflow = overflow
        self.tokenize = tokenize
        self.tokenize_calls = 0
        self.models = tuple(models)
        self._requested_port = port
        self._port: int | None = None
        self._default_answer = answer
        self._answer = answer
        self.reasoning = reasoning
        self.reasoning_field = _check_reasoning_field(reasoning_field)
        self._default_reasoning = (reasoning, self.reasoning_field)
        self._queued_answers: deque[Answer] = deque()
        self._queued_faults: dict[str, deque[Fault]] = {endpoint: deque() for endpoint in ENDPOINTS}
        self.billing: tuple[int, int] | None = None
        """Fixed (prompt, completion) tokens every answer reports as billed; None counts them."""
        self._persistent_faults: dict[str, Fault] = {}
        self._requests: list[RecordedRequest] = []
        self._images: dict[str, bytes] = {}
        self._in_flight = 0
        self._max_in_flight = 0
        self._stopping = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._init_audio()
        self._init_vision()

    # ---------------------------------------------------------------- lifecycle

    async def __aenter__(self) -> FakeOpenAI:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> FakeOpenAI:
        """Bind the socket and start serving; return ``self``."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._requested_port))
        self._port = sock.getsockname()[1]
        self._stopping = asyncio.Event()
        self._runner = web.AppRunner(self._build_app(), access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()
        return self

    async def stop(self) -> None:
        """Release hung requests and stop serving."""
        self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def _build_app(self) -> web.Application:
        @web.middleware
        async def observe(request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
            return await self._observe(request, handler)

        app = web.Application(middlewares=[observe], client_max_size=64 * 1024 * 1024)
        app.router.add_post(CHAT_PATH, self._handle_chat)
        app.router.add_post(IMAGES_PATH, self._handle_images)
        app.router.add_post(TRANSCRIPTIONS_PATH, self._handle_transcription)
        app.router.add_post(SPEECH_PATH, self._handle_speech)
        app.router.add_get("/v1/models", self._handle_models)
        app.router.add_get("/v1/models/{model}", self._handle_model)
        app.router.add_get("/images/{name}", self._handle_image_file)
        app.router.add_post("/tokenize", self._handle_tokenize)
        app.router.add_route("*", "/v1/{tail:.*}", self._handle_unknown)
        app.on_response_prepare.append(self._add_api_headers)
        return app

    # ---------------------------------------------------------------- addresses and records

    @property
    def port(self) -> int:
        """The port the server listens on."""
        if self._port is None:
            raise RuntimeError("FakeOpenAI is not started")
        return self._port

    @property
    def origin(self) -> str:
        """``http://host:port`` (where image files are served)."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The ``base_url`` for ``openai.AsyncOpenAI`` (``http://host:port/v1``)."""
        return f"{self.origin}/v1"

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, in arrival order."""
        return list(self._requests)

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        """The ``POST /v1/chat/completions`` requests."""
        return [r for r in self._requests if r.endpoint == "chat"]

    @property
    def image_requests(self) -> list[RecordedRequest]:
        """The ``POST /v1/images/generations`` requests."""
        return [r for r in self._requests if r.endpoint == "images"]

    @property
    def images(self) -> dict[str, bytes]:
        """PNG bytes of the generated images by id (served at ``/images/<id>.png``)."""
        return dict(self._images)

    @property
    def in_flight(self) -> int:
        """``/v1`` requests being handled right now."""
        return self._in_flight

    @property
    def max_in_flight(self) -> int:
        """Highest ``in_flight`` seen since start or the last :meth:`clear`."""
        return self._max_in_flight

    def clear(self) -> None:
        """Forget recorded requests (transcriptions and speeches too) and reset ``max_in_flight``."""
        self._requests.clear()
        self._clear_audio_records()
        self._max_in_flight = self._in_flight

    def reset(self) -> None:
        """:meth:`clear`, drop all faults and return to the constructor's answer and reasoning."""
        self.clear()
        self.clear_faults()
        self._queued_answers.clear()
        self._answer = self._default_answer
        self.reasoning, self.reasoning_field = self._default_reasoning
        self.billing = None
        self._reset_audio()
        self._init_vision()

    async def wait_for_requests(self, count: int, *, endpoint: str | None = None, within: float = 5.0) -> None:
        """Wait until ``count`` requests (to ``endpoint``, if given) have arrived; ``TimeoutError`` after
        ``within`` seconds."""

        def reached() -> bool:
            return sum(1 for r in self._requests if endpoint is None or r.endpoint == endpoint) >= count

        await self._wait_until(reached, within, f"{count} requests")

    async def wait_for_in_flight(self, count: int, *, within: float = 5.0) -> None:
        """Wait until at least ``count`` requests are in flight at once."""
        await self._wait_until(lambda: self._in_flight >= count, within, f"{count} requests in flight")

    async def wait_for_disconnect(self, count: int = 1, *, within: float = 5.0) -> None:
        """Wait until ``count`` chat requests are marked ``disconnected`` (the client went away mid-answer)."""

        def reached() -> bool:
            return sum(1 for r in self._requests if r.endpoint == "chat" and r.disconnected) >= count

        await self._wait_until(reached, within, f"{count} disconnected chat requests")

    async def wait_until_idle(self, *, within: float = 5.0) -> None:
        """Wait until no request is in flight (hung handlers notice a gone client within ~20 ms)."""
        await self._wait_until(lambda: self._in_flight == 0, within, "no request in flight")

    @staticmethod
    async def _wait_until(predicate: Callable[[], bool], within: float, what: str) -> None:
        deadline = time.monotonic() + within
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out waiting for {what}")
            await asyncio.sleep(0.005)

    # ---------------------------------------------------------------- scripting

    def set_answer(self, answer: Answer | None) -> None:
        """Answer every chat request with ``answer`` (``None`` restores the echo)."""
        self._answer = answer

    def queue_answers(self, *answers: Answer) -> None:
        """Use these answers, one per chat request, before the persistent answer."""
        self._queued_answers.extend(answers)

    def set_billing(self, prompt_tokens: int, completion_tokens: int) -> None:
        """Report these tokens as billed for every answer, as a server with its own tokenizer would."""
        self.billing = (prompt_tokens, completion_tokens)

    def set_reasoning(self, reasoning: str | None, *, reasoning_field: ReasoningField | None = None) -> None:
        """Send ``reasoning`` with every chat answer (``None`` stops), in ``reasoning_field`` if given."""
        self.reasoning = reasoning
        if reasoning_field is not None:
            self.reasoning_field = _check_reasoning_field(reasoning_field)

    def fail_next(self, kind: str, *, times: int = 1, endpoint: Endpoint = "chat", **options: Any) -> None:
        """Queue ``times`` faults of ``kind`` for the next requests to ``endpoint``."""
        fault = self._make_fault(kind, endpoint, options)
        self._queued_faults[endpoint].extend([fault] * times)

    def fail_always(self, kind: str, *, endpoint: Endpoint = "chat", **options: Any) -> None:
        """Apply a fault of ``kind`` to every request to ``endpoint`` until :meth:`clear_faults`."""
        self._persistent_faults[endpoint] = self._make_fault(kind, endpoint, options)

    def clear_faults(self, endpoint: Endpoint | None = None) -> None:
        """Drop queued and persistent faults (of one endpoint, or all)."""
        for name in ENDPOINTS if endpoint is None else (endpoint,):
            self._queued_faults[name].clear()
            self._persistent_faults.pop(name, None)

    @staticmethod
    def _make_fault(kind: str, endpoint: str, options: Mapping[str, Any]) -> Fault:
        if endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {endpoint!r}; expected one of {ENDPOINTS}")
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {sorted(FAULT_KINDS)}")
        endpoints, allowed = FAULT_KINDS[kind]
        if endpoint not in endpoints:
            raise ValueError(f"fault {kind!r} does not apply to endpoint {endpoint!r}")
        unknown = set(options) - allowed - {"delay"}
        if unknown:
            raise ValueError(f"fault {kind!r} does not take options {sorted(unknown)}")
        if kind == "error" and "status" not in options:
            raise ValueError("fault 'error' needs a status")
        return Fault(kind, dict(options))

    def _take_fault(self, endpoint: str) -> Fault | None:
        queue = self._queued_faults[endpoint]
        return queue.popleft() if queue else self._persistent_faults.get(endpoint)

    # ---------------------------------------------------------------- middleware

    async def _observe(self, request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
        record = await self._record(request)
        is_api = request.path.startswith("/v1/")
        if is_api:
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
        try:
            auth_error = self._check_auth(request) if is_api else None
            response: web.StreamResponse = auth_error.response() if auth_error else await handler(request)
            record.status = response.status
            return response
        finally:
            if is_api:
                self._in_flight -= 1

    async def _record(self, request: web.Request) -> RecordedRequest:
        raw = await request.read()
        body: Any = None
        if request.content_type == "multipart/form-data":  # an upload: its text fields and file sizes
            text, body = "", parse_form(raw, request.headers.get("Content-Type", "")).summary()
        else:
            text = raw.decode("utf-8", "replace")
            with contextlib.suppress(ValueError):
                body = json.loads(text) if text else None
        headers = dict(request.headers)
        for name in list(headers):
            if name.lower() == "authorization":
                headers[name] = "<redacted>"
        endpoint = {
            CHAT_PATH: "chat",
            IMAGES_PATH: "images",
            TRANSCRIPTIONS_PATH: "transcriptions",
            SPEECH_PATH: "speech",
        }.get(request.path)
        if request.path.startswith("/v1/models"):
            endpoint = "models"
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            headers=headers,
            body=body,
            text=text,
            time=time.time(),
            monotonic=time.monotonic(),
            endpoint=endpoint,
        )
        self._requests.append(record)
        request[_RECORD_KEY] = record
        return record

    def _check_auth(self, request: web.Request) -> ApiError | None:
        scheme, _, key = request.headers.get("Authorization", "").partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            return missing_key_error()
        if self.api_key is not None and key != self.api_key:
            return invalid_key_error(key)
        return None

    async def _add_api_headers(self, request: web.Request, response: web.StreamResponse) -> None:
        if not request.path.startswith("/v1/"):
            return
        record = request.get(_RECORD_KEY)
        elapsed_ms = round((time.monotonic() - record.monotonic) * 1000) if record else 0
        defaults = {
            "x-request-id": "req_" + uuid.uuid4().hex,
            "openai-version": "2020-10-01",
            "openai-organization": ORGANIZATION,
            "openai-processing-ms": str(elapsed_ms),
            "x-ratelimit-limit-requests": str(RATE_LIMIT_REQUESTS),
            "x-ratelimit-limit-tokens": str(RATE_LIMIT_TOKENS),
            "x-ratelimit-remaining-requests": str(RATE_LIMIT_REQUESTS - 1),
            "x-ratelimit-remaining-tokens": str(RATE_LIMIT_TOKENS - 1000),
            "x-ratelimit-reset-requests": "6ms",
            "x-ratelimit-reset-tokens": "2ms",
        }
        for name, value in defaults.items():
            response.headers.setdefault(name, value)

    # ---------------------------------------------------------------- shared request steps

    async def _begin(self, request: web.Request, endpoint: str) -> _Call | web.StreamResponse:
        """Parse the body, take the fault, wait the delays and answer generic faults."""
        record = request[_RECORD_KEY]
        fault = self._take_fault(endpoint)
        record.fault = fault.kind if fault else None
        fault_delay = float(fault.get("delay", 1.0 if fault.kind == "slow" else 0.0)) if fault else 0.0
        if fault_delay:
            await asyncio.sleep(fault_delay)
        if self.delay and endpoint != "models":
            await asyncio.sleep(self.delay)
        if fault:
            early = await self._generic_fault(request, record, fault)
            if early is not None:
                return early
        if record.text and not isinstance(record.body, dict):
            return invalid_json_error().response()
        return _Call(request, record, record.body if isinstance(record.body, dict) else {}, fault)

    async def _generic_fault(
        self, request: web.Request, record: RecordedRequest, fault: Fault
    ) -> web.StreamResponse | None:
        """Answer the faults that look the same on every endpoint; ``None`` for the others."""
        if fault.kind == "hang":
            await self._wait_until_client_gone(request)
            return _client_closed_response()
        if fault.kind == "bad_gateway" and fault.get("html"):
            return web.Response(status=502, text=_BAD_GATEWAY_HTML, content_type="text/html")
        error = self._generic_error(record, fault)
        return error.response() if error else None

    def _generic_error(self, record: RecordedRequest, fault: Fault) -> ApiError | None:
        kind = fault.kind
        if kind == "rate_limit":
            return rate_limit_error(record.model or "gpt-4o", fault)
        if kind == "quota":
            return quota_error(fault)
        if kind in ("server_error", "overloaded", "bad_gateway"):
            return server_error(kind, fault)
        if kind == "invalid_api_key":
            return invalid_key_error(self.api_key or "sk-fake-key")
        if kind == "not_found":
            return unknown_route_error(record.method, record.path)
        if kind == "error":
            return custom_error(fault)
        return None

    async def _wait_until_client_gone(self, request: web.Request) -> None:
        """Block until the client closes the connection (marking it ``disconnected``) or the server stops."""
        while not self._stopping.is_set():
            if client_gone(request):
                request[_RECORD_KEY].disconnected = True
                return
            await asyncio.sleep(0.02)

    # ---------------------------------------------------------------- chat completions

    async def _handle_chat(self, request: web.Request) -> web.StreamResponse:
        begun = await self._begin(request, "chat")
        if not isinstance(begun, _Call):
            return begun
        call = begun
        error = validate_chat(call.body) or self._image_refusal(call.body) or self._context_error(call)
        if error and error.code == "context_length_exceeded" and self._overflows_quietly(call):
            return await self._empty_stream(call)
        if error:
            return error.response()
        if call.kind == "content_policy":
            return chat_policy_error(call.fault or Fault("content_policy")).response()
        plan = await self._plan_chat(call)
        if call.body.get("stream"):
            return await self._stream_chat(call, plan)
        return await self._chat_json(call, plan)

    def _overflows_quietly(self, call: _Call) -> bool:
        return self.overflow == "empty_stream" and bool(call.body.get("stream")) and call.kind != "context_length"

    async def _empty_stream(self, call: _Call) -> web.StreamResponse:
        if client_gone(call.request):
            call.record.disconnected = True
            return _client_closed_response()
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8"})
        await response.prepare(call.request)
        await self._send(call, response, sse("[DONE]"))
        return response

    async def _handle_tokenize(self, request: web.Request) -> web.Response:
        self.tokenize_calls += 1
        if not self.tokenize:
            return web.Response(status=404, text="File Not Found")
        body = await request.json()
        if self.tokenize == "vllm":
            return web.json_response({"count": prompt_tokens(body["messages"]), "max_model_len": self.context_window})
        return web.json_response({"tokens": list(range(count_tokens(str(body.get("content", "")))))})

    def _context_error(self, call: _Call) -> ApiError | None:
        tokens = prompt_tokens(call.record.messages)
        requested = call.body.get("max_completion_tokens") or call.body.get("max_tokens")
        if call.kind == "context_length":
            limit = int((call.fault or Fault("")).get("limit", 128_000))
            return context_length_error(limit, max(tokens, limit + 1), requested)
        window = self.context_window
        if window is not None and self.overflow == "llama.cpp":
            return llama_cpp_context_error(window, tokens) if tokens >= window else None
        if window is not None and tokens + (requested or 0) > window:
            return context_length_error(window, tokens, requested)
        return None

    def _room_left(self, body: JSONDict) -> int | None:
        """Tokens an answer may have before it fills llama-server's window with its prompt; None without one."""
        if self.context_window is None or self.overflow != "llama.cpp":
            return None
        return self.context_window - prompt_tokens(body["messages"])

    async def _plan_chat(self, call: _Call) -> ChatPlan:
        body = call.body
        answer = await self._resolve_answer(call.record)
        text = answer.text
        reasoning = self.reasoning if answer.reasoning is None else answer.reasoning
        reasoning = reasoning or ""
        finish_reason = "stop"
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        room = self._room_left(body)
        limit = min(limit, room) if limit and room is not None else limit or room
        if limit and count_tokens(reasoning) + count_tokens(text) > limit:
            reasoning, text = fit_tokens(reasoning, text, limit)
            finish_reason = "length"
        fault = call.fault or Fault("")
        if fault.kind == "content_filter":
            partial = fault.get("partial")
            text = partial if partial is not None else _first_half(text)
            finish_reason = "content_filter"
        if fault.kind == "refusal":
            text = fault.get("refusal", "I'm sorry, but I can't help with that request.")
        stream_options = body.get("stream_options") or {}
        return ChatPlan(
            completion_id=new_id("chatcmpl-"),
            created=int(time.time()),
            model=body["model"],
            n=int(body.get("n") or 1),
            text=text,
            finish_reason=finish_reason,
            prompt_tokens=self.billing[0] if self.billing else prompt_tokens(body["messages"]),
            include_usage=bool(isinstance(stream_options, dict) and stream_options.get("include_usage")),
            refusal=fault.kind == "refusal",
            reasoning=reasoning,
            reasoning_field=self.reasoning_field,
            billed_completion=self.billing[1] if self.billing else None,
        )

    async def _resolve_answer(self, record: RecordedRequest) -> ReasonedAnswer:
        answer = self._queued_answers.popleft() if self._queued_answers else self._answer
        if answer is None:
            seen = len(record.images)
            return ReasonedAnswer("echo: " + record.last_user_text + (f" [{seen} image(s)]" if seen else ""))
        result = answer if isinstance(answer, str | ReasonedAnswer) else answer(record)
        if inspect.isawaitable(result):
            result = await result
        return result if isinstance(result, ReasonedAnswer) else ReasonedAnswer(str(result))

    async def _chat_json(self, call: _Call, plan: ChatPlan) -> web.StreamResponse:
        if client_gone(call.request):
            call.record.disconnected = True
            return _client_closed_response()
        payload = chat_completion_payload(plan)
        kind = call.kind
        if kind == "stream_error":
            return server_error("server_error", call.fault or Fault("")).response()
        if kind in ("malformed", "cut", "stall"):
            return await self._broken_json(call, dumps(payload), kind)
        return web.Response(text=dumps(payload), content_type="application/json")

    async def _broken_json(self, call: _Call, text: str, kind: str) -> web.StreamResponse:
        """Send half of a JSON body: as a complete (malformed) body, then cut, or then stall."""
        half = text[: len(text) // 2].encode()
        if kind == "malformed":
            return web.Response(body=half, content_type="application/json")
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.content_length = len(text.encode())
        await response.prepare(call.request)
        if await write_quietly(response, half):
            if kind == "cut":
                close_transport(call.request)
            else:
                await self._wait_until_client_gone(call.request)
        return response

    async def _stream_chat(self, call: _Call, plan: ChatPlan) -> web.StreamResponse:
        if client_gone(call.request):
            call.record.disconnected = True
            return _client_closed_response()
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
        )
        await response.prepare(call.request)
        fault = call.fault or Fault("")
        events = chunk_events(plan, self.stream_chunk_tokens)
        if fault.kind in _STREAM_FAULTS:
            events = events[: int(fault.get("after_chunks", 1 if fault.kind == "malformed" else 2))]
        chunk_delay = float(fault.get("chunk_delay", self.chunk_delay))
        for index, event in enumerate(events):
            if index and chunk_delay:
                await asyncio.sleep(chunk_delay)
            if not await self._send(call, response, sse(event)):
                return response
            call.record.chunks_sent += 1
        await self._end_stream(call, response, fault)
        return response

    @staticmethod
    async def _send(call: _Call, response: web.StreamResponse, data: bytes) -> bool:
        """Write part of a stream; if the client has gone, mark the request ``disconnected`` and return ``False``."""
        if client_gone(call.request) or not await write_quietly(response, data):
            call.record.disconnected = True
            return False
        return True

    async def _end_stream(self, call: _Call, response: web.StreamResponse, fault: Fault) -> None:
        """Finish a stream the normal way, or the way the fault wants."""
        if fault.kind == "cut":
            if not fault.get("clean"):
                close_transport(call.request)
            return
        if fault.kind == "stall":
            await self._wait_until_client_gone(call.request)
            return
        if fault.kind == "stream_error":
            message = fault.get("message", _SERVER_ERROR_MESSAGE)
            error = {"error": {"message": message, "type": "server_error", "param": None, "code": None}}
            await self._send(call, response, sse(error))
            return
        if fault.kind == "malformed" and not await self._send(
            call, response, b'data: {"id":"chatcmpl-broken","object":"chat.completion.chu\n\n'
        ):
            return
        await self._send(call, response, sse("[DONE]"))

    # ---------------------------------------------------------------- images

    async def _handle_images(self, request: web.Request) -> web.StreamResponse:
        begun = await self._begin(request, "images")
        if not isinstance(begun, _Call):
            return begun
        call = begun
        error = validate_images(call.body)
        if error:
            return error.response()
        if call.kind == "content_policy":
            message = (call.fault or Fault("")).get("message", _SAFETY_MESSAGE)
            return ApiError(400, message, code="content_policy_violation").response()
        payload = self._image_payload(call.body)
        if call.kind == "malformed":
            return web.Response(body=dumps(payload)[:40].encode(), content_type="application/json")
        return web.Response(text=dumps(payload), content_type="application/json")

    def _image_payload(self, body: JSONDict) -> JSONDict:
        model = body.get("model") or "dall-e-2"
        prompt: str = body["prompt"]
        gpt_image = model.startswith("gpt-image")
        as_b64 = gpt_image or body.get("response_format") == "b64_json"
        width, height = image_dimensions(body.get("size"))
        items = []
        for index in range(int(body.get("n") or 1)):
            png = render_png(width, height, colour_for(f"{prompt}#{index}"))
            items.append(self._image_item(png, as_b64, prompt if model == "dall-e-3" else None))
        payload: JSONDict = {"created": int(time.time()), "data": items}
        if gpt_image:
            payload.update(gpt_image_extras(body, width, height, len(items)))
        return payload

    def _image_item(self, png: bytes, as_b64: bool, dalle3_prompt: str | None) -> JSONDict:
        item: JSONDict
        if as_b64:
            item = {"b64_json": base64.b64encode(png).decode("ascii")}
        else:
            image_id = "img-" + uuid.uuid4().hex
            self._images[image_id] = png
            item = {"url": f"{self.origin}/images/{image_id}.png"}
        if dalle3_prompt is not None:
            item["revised_prompt"] = revise_prompt(dalle3_prompt)
        return item

    async def _handle_image_file(self, request: web.Request) -> web.StreamResponse:
        image_id = request.match_info["name"].removesuffix(".png")
        png = self._images.get(image_id)
        if png is None:
            return web.Response(status=404, text="BlobNotFound: The specified blob does not exist.")
        return web.Response(body=png, content_type="image/png")

    # ---------------------------------------------------------------- models and unknown routes

    async def _handle_models(self, request: web.Request) -> web.StreamResponse:
        begun = await self._begin(request, "models")
        if not isinstance(begun, _Call):
            return begun
        if begun.kind == "malformed":
            return web.Response(body=b'{"object":"list","data":[{"id":', content_type="application/json")
        payload = {"object": "list", "data": [model_object(model) for model in self.models]}
        return web.Response(text=dumps(payload), content_type="application/json")

    async def _handle_model(self, request: web.Request) -> web.StreamResponse:
        begun = await self._begin(request, "models")
        if not isinstance(begun, _Call):
            return begun
        if begun.kind == "malformed":
            return web.Response(body=b'{"id":', content_type="application/json")
        return web.Response(text=dumps(model_object(request.match_info["model"])), content_type="application/json")

    async def _handle_unknown(self, request: web.Request) -> web.StreamResponse:
        return unknown_route_error(request.method, request.path).response()


# --------------------------------------------------------------------------------------------
# Payload builders
# --------------------------------------------------------------------------------------------


def chat_completion_payload(plan: ChatPlan) -> JSONDict:
    """The JSON body of a non-streaming chat completion."""
    message: JSONDict = {"role": "assistant", "content": plan.text, "refusal": None, "annotations": []}
    if plan.refusal:
        message.update(content=None, refusal=plan.text)
    if plan.reasoning:
        message[plan.reasoning_field] = plan.reasoning
    choices = [
        {"index": index, "message": dict(message), "logprobs": None, "finish_reason": plan.finish_reason}
        for index in range(plan.n)
    ]
    return {
        "id": plan.completion_id,
        "object": "chat.completion",
        "created": plan.created,
        "model": plan.model,
        "choices": choices,
        "usage": plan.usage(),
        "service_tier": "default",
        "system_fingerprint": SYSTEM_FINGERPRINT,
    }


def chunk_events(plan: ChatPlan, tokens_per_chunk: int = 1) -> list[JSONDict]:
    """The ``chat.completion.chunk`` objects of a stream, without the final ``[DONE]``.

    Reasoning deltas (which carry the role) come first; without reasoning an empty role delta opens the stream.
    """
    field_name = "refusal" if plan.refusal else "content"
    chunks: list[JSONDict] = []
    for piece in split_pieces(plan.reasoning, tokens_per_chunk):
        delta = {"role": "assistant", "content": None, plan.reasoning_field: piece}
        chunks.extend(_chunk(plan, index, dict(delta)) for index in range(plan.n))
    if not chunks:
        chunks = [_chunk(plan, index, {"role": "assistant", "content": "", "refusal": None}) for index in range(plan.n)]
    for piece in split_pieces(plan.text, tokens_per_chunk):
        chunks.extend(_chunk(plan, index, {field_name: piece}) for index in range(plan.n))
    chunks.extend(_chunk(plan, index, {}, plan.finish_reason) for index in range(plan.n))
    if plan.include_usage:
        usage_chunk = _chunk(plan, 0, {})
        usage_chunk.update(choices=[], usage=plan.usage())
        chunks.append(usage_chunk)
    return chunks


def _chunk(plan: ChatPlan, index: int, delta: JSONDict, finish_reason: str | None = None) -> JSONDict:
    chunk: JSONDict = {
        "id": plan.completion_id,
        "object": "chat.completion.chunk",
        "created": plan.created,
        "model": plan.model,
        "service_tier": "default",
        "system_fingerprint": SYSTEM_FINGERPRINT,
        "choices": [{"index": index, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
    }
    if plan.include_usage:
        chunk["usage"] = None
    return chunk


def model_object(model: str) -> JSONDict:
    """One entry of ``GET /v1/models``."""
    owner = "openai" if model.startswith(("dall-e", "gpt-image")) else "system"
    return {"id": model, "object": "model", "created": 1_700_000_000, "owned_by": owner}


def revise_prompt(prompt: str) -> str:
    """A deterministic stand-in for dall-e-3's prompt rewriting."""
    return f"A detailed, high-quality image of the following: {prompt.strip()}"


def gpt_image_extras(body: JSONDict, width: int, height: int, count: int) -> JSONDict:
    """The extra fields GPT image models add to an images response."""
    text_tokens = count_tokens(str(body.get("prompt", "")))
    output_tokens = 272 * count
    return {
        "background": "opaque",
        "output_format": "png",
        "quality": body.get("quality") or "medium",
        "size": f"{width}x{height}",
        "usage": {
            "input_tokens": text_tokens,
            "input_tokens_details": {"text_tokens": text_tokens, "image_tokens": 0},
            "output_tokens": output_tokens,
            "total_tokens": text_tokens + output_tokens,
        },
    }


# --------------------------------------------------------------------------------------------
# Fault bodies
# --------------------------------------------------------------------------------------------


def unknown_route_error(method: str, path: str) -> ApiError:
    """404 for a route the API does not have (also the ``not_found`` fault: a server without the endpoint)."""
    return ApiError(404, f"Invalid URL ({method} {path})")


def rate_limit_error(model: str, fault: Fault) -> ApiError:
    """429 ``rate_limit_exceeded`` with ``retry-after`` and ``x-ratelimit-*`` headers."""
    retry_after = fault.get("retry_after", 1.0)
    limit_type = fault.get("limit_type", "requests")
    wait = go_duration(float(retry_after or 1.0))
    if limit_type == "tokens":
        detail = f"tokens per min (TPM): Limit {RATE_LIMIT_TOKENS}, Used {RATE_LIMIT_TOKENS - 500}, Requested 1000"
    else:
        detail = f"requests per min (RPM): Limit {RATE_LIMIT_REQUESTS}, Used {RATE_LIMIT_REQUESTS}, Requested 1"
    message = fault.get(
        "message",
        f"Rate limit reached for {model} in organization {ORGANIZATION} on {detail}. "
        f"Please try again in {wait}. Visit https://platform.openai.com/account/rate-limits to learn more.",
    )
    headers = {
        f"x-ratelimit-remaining-{limit_type}": "0",
        f"x-ratelimit-reset-{limit_type}": wait,
    }
    if retry_after is not None:
        headers["retry-after"] = str(max(1, math.ceil(float(retry_after))))
        headers["retry-after-ms"] = str(round(float(retry_after) * 1000))
    return ApiError(429, message, type=limit_type, code="rate_limit_exceeded", headers=headers)


def quota_error(fault: Fault) -> ApiError:
    """429 ``insufficient_quota``."""
    message = fault.get(
        "message",
        "You exceeded your current quota, please check your plan and billing details. For more information "
        "on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.",
    )
    return ApiError(429, message, type="insufficient_quota", code="insufficient_quota")


def server_error(kind: str, fault: Fault) -> ApiError:
    """500 / 502 / 503 bodies."""
    if kind == "bad_gateway":
        return ApiError(502, "Bad gateway.", type="cf_bad_gateway", code=502)
    if kind == "overloaded":
        message = fault.get("message", "The server is overloaded or not ready yet.")
        return ApiError(503, message, type="server_error")
    return ApiError(int(fault.get("status", 500)), fault.get("message", _SERVER_ERROR_MESSAGE), type="server_error")


def custom_error(fault: Fault) -> ApiError:
    """The free-form ``error`` fault."""
    body = fault.get("body")
    status = int(fault.get("status"))
    headers = dict(fault.get("headers") or {})
    if body is not None:
        return _RawError(status, "", headers=headers, raw=body)
    return ApiError(
        status,
        fault.get("message", f"Error {status}"),
        type=fault.get("type", "invalid_request_error" if status < 500 else "server_error"),
        param=fault.get("param"),
        code=fault.get("code"),
        headers=headers,
    )


@dataclass(frozen=True)
class _RawError(ApiError):
    """An error whose body is given verbatim."""

    raw: Any = None

    def response(self) -> web.Response:
        text = self.raw if isinstance(self.raw, str) else dumps(self.raw)
        content_type = "text/plain" if isinstance(self.raw, str) else "application/json"
        return web.Response(status=self.status, text=text, content_type=content_type, headers=dict(self.headers))


def chat_policy_error(fault: Fault) -> ApiError:
    """400 for a prompt rejected by moderation, in the shape ``code`` selects."""
    code = fault.get("code", "content_policy_violation")
    if code == "content_filter":
        message = fault.get(
            "message",
            "The response was filtered due to the prompt triggering Azure OpenAI's content management "
            "policy. Please modify your prompt and retry. To learn more about our content filtering "
            "policies please read our documentation: https://go.microsoft.com/fwlink/?linkid=2198766",
        )
        inner = {
            "code": "ResponsibleAIPolicyViolation",
            "content_filter_result": {
                "hate": {"filtered": False, "severity": "safe"},
                "jailbreak": {"filtered": False, "detected": False},
                "self_harm": {"filtered": False, "severity": "safe"},
                "sexual": {"filtered": True, "severity": "medium"},
                "violence": {"filtered": False, "severity": "safe"},
            },
        }
        return ApiError(400, message, type=None, param="prompt", code=code, extra={"status": 400, "innererror": inner})
    if code == "invalid_prompt":
        message = fault.get(
            "message",
            "Invalid prompt: your prompt was flagged as potentially violating our usage policy. "
            "Please try again with a different prompt: https://platform.openai.com/docs/guides/reasoning#advice-on-prompting",
        )
        return ApiError(400, message, code=code)
    return ApiError(400, fault.get("message", _SAFETY_MESSAGE), code=code)


def llama_cpp_context_error(window: int, tokens: int) -> ApiError:
    """llama-server's 400 for a prompt that fills its context (``-c``): its own body, not OpenAI's shape."""
    message = f"request ({tokens} tokens) exceeds the available context size ({window} tokens), try increasing it"
    body = {
        "error": {
            "code": 400,
            "message": message,
            "type": "exceed_context_size_error",
            "n_prompt_tokens": tokens,
            "n_ctx": window,
        }
    }
    return _RawError(400, message, raw=body)


def context_length_error(limit: int, tokens: int, requested: int | None) -> ApiError:
    """400 ``context_length_exceeded`` with the API's message."""
    if requested:
        message = (
            f"This model's maximum context length is {limit} tokens. However, you requested "
            f"{tokens + requested} tokens ({tokens} in the messages, {requested} in the completion). "
            "Please reduce the length of the messages or completion."
        )
    else:
        message = (
            f"This model's maximum context length is {limit} tokens. However, your messages resulted in "
            f"{tokens} tokens. Please reduce the length of the messages."
        )
    return ApiError(400, message, param="messages", code="context_length_exceeded")


# --------------------------------------------------------------------------------------------
# Transport helpers
# --------------------------------------------------------------------------------------------


async def write_quietly(response: web.StreamResponse, data: bytes) -> bool:
    """Write ``data``; return ``False`` if the client has gone away."""
    try:
        await response.write(data)
    except (ConnectionError, RuntimeError):
        return False
    return True


def client_gone(request: web.Request) -> bool:
    """Whether the client has closed the connection under ``request``."""
    transport = request.transport
    return transport is None or transport.is_closing()


def _client_closed_response() -> web.Response:
    """What a handler returns once the client has gone (nobody reads it; nginx logs such requests as 499)."""
    return web.Response(status=499, text="client closed request")


def close_transport(request: web.Request) -> None:
    """Drop the TCP connection under a request (whatever was written is flushed first)."""
    transport = request.transport
    if transport is not None:
        transport.close()


# --------------------------------------------------------------------------------------------
# Standalone entry point
# --------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options of the standalone server."""
    parser = argparse.ArgumentParser(description="Local fake of the OpenAI HTTP API")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8082, help="0 picks a free port")
    parser.add_argument("--api-key", default=None, help="accepted key (default: any non-empty key)")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before every answer")
    parser.add_argument("--chunk-delay", type=float, default=0.0, help="seconds between stream chunks")
    parser.add_argument("--answer", default=None, help="fixed answer instead of the echo")
    parser.add_argument("--reasoning", default=None, help="reasoning text sent before every chat answer")
    parser.add_argument("--reasoning-field", default="reasoning_content", choices=REASONING_FIELDS)
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    """Run the fake until SIGINT/SIGTERM, announcing the base URL on stdout."""
    fake = FakeOpenAI(
        api_key=args.api_key,
        host=args.host,
        port=args.port,
        answer=args.answer,
        reasoning=args.reasoning,
        reasoning_field=args.reasoning_field,
        delay=args.delay,
        chunk_delay=args.chunk_delay,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    async with fake:
        print(fake.base_url, flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``python -m tests.doubles.openai_server``."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(parse_args(argv)))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
