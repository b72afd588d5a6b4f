"""Tests of the fake OpenAI server, driven through the real ``openai.AsyncOpenAI`` client."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import struct
import sys
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest

from tests.doubles.openai_server import (
    FakeOpenAI,
    ReasonedAnswer,
    ReasoningField,
    RecordedRequest,
    count_tokens,
    render_png,
)

API_KEY = "test-key"
USER = [{"role": "user", "content": "Hello there, world!"}]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI(api_key=API_KEY) as server:
        yield server


@pytest.fixture
async def client(fake: FakeOpenAI) -> AsyncIterator[openai.AsyncOpenAI]:
    api = openai.AsyncOpenAI(base_url=fake.base_url, api_key=API_KEY, max_retries=0, timeout=5.0)
    yield api
    await api.close()


async def chat(client: openai.AsyncOpenAI, **kwargs: Any) -> Any:
    """One non-streaming chat completion with sensible defaults."""
    kwargs.setdefault("model", "gpt-4o")
    kwargs.setdefault("messages", USER)
    return await client.chat.completions.create(**kwargs)


async def stream_into(client: openai.AsyncOpenAI, received: list[Any], **kwargs: Any) -> None:
    """Stream one chat completion, appending its chunks to ``received`` as they arrive."""
    kwargs.setdefault("model", "gpt-4o")
    kwargs.setdefault("messages", USER)
    stream = await client.chat.completions.create(stream=True, **kwargs)
    async for chunk in stream:
        received.append(chunk)


async def stream_chunks(client: openai.AsyncOpenAI, **kwargs: Any) -> list[Any]:
    """Every chunk of one streamed chat completion."""
    received: list[Any] = []
    await stream_into(client, received, **kwargs)
    return received


def streamed_text(chunks: list[Any]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def extra(model: Any, name: str) -> Any:
    """A field the ``openai`` types do not declare (``reasoning_content``, ``reasoning``)."""
    return (model.model_extra or {}).get(name)


def streamed_reasoning(chunks: list[Any], field: str = "reasoning_content") -> str:
    return "".join(extra(c.choices[0].delta, field) or "" for c in chunks if c.choices)


async def raw(
    fake: FakeOpenAI, method: str, path: str, *, data: bytes | None = None, key: str | None = API_KEY
) -> tuple[int, Mapping[str, str], bytes]:
    """A plain HTTP request, bypassing the openai client."""
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, fake.origin + path, data=data, headers=headers) as response,
    ):
        return response.status, response.headers.copy(), await response.read()


def png_size(png: bytes) -> tuple[int, int]:
    assert png.startswith(PNG_SIGNATURE)
    width, height = struct.unpack(">II", png[16:24])
    return width, height


# ------------------------------------------------------------------------------------------ answers


async def test_chat_echoes_last_user_message_with_usage_and_records_prompt(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "Hello there, world!"},
    ]
    completion = await chat(client, messages=messages)

    assert completion.object == "chat.completion"
    assert completion.id.startswith("chatcmpl-")
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content == "echo: Hello there, world!"
    assert completion.choices[0].finish_reason == "stop"
    usage = completion.usage
    assert usage is not None
    assert usage.completion_tokens == count_tokens("echo: Hello there, world!")
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens > 0
    [request] = fake.chat_requests
    assert request.method == "POST"
    assert request.path == "/v1/chat/completions"
    assert request.messages == messages
    assert request.model == "gpt-4o"
    assert request.status == 200


async def test_unknown_model_names_work(client: openai.AsyncOpenAI) -> None:
    completion = await chat(client, model="totally-made-up-model-9000")
    assert completion.model == "totally-made-up-model-9000"

    chunks = await stream_chunks(client, model="another/unknown:model")
    assert {chunk.model for chunk in chunks} == {"another/unknown:model"}


async def test_models_list_and_retrieve(client: openai.AsyncOpenAI) -> None:
    models = await client.models.list()
    assert "gpt-4o" in [model.id for model in models.data]
    model = await client.models.retrieve("whatever-model")
    assert model.id == "whatever-model"
    assert model.object == "model"


async def test_stream_sends_role_deltas_finish_and_usage_chunk(client: openai.AsyncOpenAI) -> None:
    chunks = await stream_chunks(client, stream_options={"include_usage": True})

    assert all(chunk.object == "chat.completion.chunk" for chunk in chunks)
    assert len({chunk.id for chunk in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    assert streamed_text(chunks) == "echo: Hello there, world!"
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 3
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == count_tokens("echo: Hello there, world!")
    assert all(chunk.usage is None for chunk in chunks[:-1])


async def test_stream_without_include_usage_has_no_usage_chunk(client: openai.AsyncOpenAI) -> None:
    chunks = await stream_chunks(client)
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(chunk.usage is None for chunk in chunks)


async def test_stream_wire_format_is_sse_with_done(fake: FakeOpenAI) -> None:
    body = {"model": "gpt-4o", "messages": USER, "stream": True, "stream_options": {"include_usage": True}}
    status, headers, payload = await raw(fake, "POST", "/v1/chat/completions", data=json.dumps(body).encode())

    assert status == 200
    assert headers["Content-Type"].startswith("text/event-stream")
    assert "x-request-id" in headers
    events = payload.decode().split("\n\n")
    assert events[-1] == ""
    assert events[-2] == "data: [DONE]"
    chunks = [json.loads(event.removeprefix("data: ")) for event in events[:-2]]
    assert all(event.startswith("data: {") for event in events[:-2])
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "", "refusal": None}
    assert all("usage" in chunk and chunk["usage"] is None for chunk in chunks[:-1])
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["total_tokens"] > 0


async def test_answers_can_be_replaced(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    async def shout(request: RecordedRequest) -> str:
        return request.last_user_text.upper()

    fake.set_answer("fixed")
    assert (await chat(client)).choices[0].message.content == "fixed"
    fake.set_answer(lambda request: f"{len(request.messages)} messages")
    assert (await chat(client)).choices[0].message.content == "1 messages"
    fake.set_answer(shout)
    assert (await chat(client)).choices[0].message.content == "HELLO THERE, WORLD!"
    fake.queue_answers("one", "two")
    assert [(await chat(client)).choices[0].message.content for _ in range(3)] == [
        "one",
        "two",
        "HELLO THERE, WORLD!",
    ]
    fake.set_answer(None)
    assert (await chat(client)).choices[0].message.content == "echo: Hello there, world!"


async def test_long_markdown_answer_streams_intact(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    line = "## Title\n\n* **bold** item with `code` and [a link](https://example.com/x_y).\n\n"
    answer = (line * 80)[:5000]
    fake.set_answer(answer)

    chunks = await stream_chunks(client)
    assert streamed_text(chunks) == answer
    assert (await chat(client)).choices[0].message.content == answer


async def test_max_tokens_truncate_with_finish_reason_length(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    fake.set_answer("one two three four five six seven eight")

    completion = await chat(client, max_tokens=3)
    assert completion.choices[0].message.content == "one two three"
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 3

    chunks = await stream_chunks(client, max_completion_tokens=2)
    assert streamed_text(chunks) == "one two"
    assert chunks[-1].choices[0].finish_reason == "length"


async def test_n_returns_several_choices(client: openai.AsyncOpenAI) -> None:
    completion = await chat(client, n=2)
    assert [choice.index for choice in completion.choices] == [0, 1]


# ------------------------------------------------------------------------------------------ reasoning

REASONING = "Okay, the user greets me. I should greet back."


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
async def test_stream_sends_reasoning_deltas_before_content(
    fake: FakeOpenAI, client: openai.AsyncOpenAI, field: ReasoningField
) -> None:
    fake.set_reasoning(REASONING, reasoning_field=field)
    fake.set_answer("Hi there!")
    fake.chunk_delay = 0.01
    started = time.monotonic()
    chunks = await stream_chunks(client, stream_options={"include_usage": True})

    assert time.monotonic() - started >= 0.01 * (len(chunks) - 1)
    deltas = [chunk.choices[0].delta for chunk in chunks if chunk.choices]
    thinking = [i for i, delta in enumerate(deltas) if extra(delta, field)]
    speaking = [i for i, delta in enumerate(deltas) if delta.content]
    assert thinking == list(range(count_tokens(REASONING)))
    assert min(speaking) > max(thinking)
    assert all(deltas[i].role == "assistant" and deltas[i].content is None for i in thinking)
    assert streamed_reasoning(chunks, field) == REASONING
    assert streamed_text(chunks) == "Hi there!"
    other = "reasoning" if field == "reasoning_content" else "reasoning_content"
    assert streamed_reasoning(chunks, other) == ""
    usage = chunks[-1].usage
    assert usage is not None
    assert usage.completion_tokens == count_tokens(REASONING) + count_tokens("Hi there!")
    assert usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == count_tokens(REASONING)


async def test_reasoning_wire_format(fake: FakeOpenAI) -> None:
    fake.set_reasoning("Hmm, ok.")
    fake.set_answer("Yes.")
    body = {"model": "deepseek-r1", "messages": USER, "stream": True}
    _, _, payload = await raw(fake, "POST", "/v1/chat/completions", data=json.dumps(body).encode())

    events = payload.decode().split("\n\n")
    assert events[-2] == "data: [DONE]"
    deltas = [json.loads(event.removeprefix("data: "))["choices"][0]["delta"] for event in events[:-2]]
    assert deltas == [
        {"role": "assistant", "content": None, "reasoning_content": "Hmm"},
        {"role": "assistant", "content": None, "reasoning_content": ","},
        {"role": "assistant", "content": None, "reasoning_content": " ok"},
        {"role": "assistant", "content": None, "reasoning_content": "."},
        {"content": "Yes"},
        {"content": "."},
        {},
    ]


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
async def test_json_answer_carries_reasoning_in_the_message(field: ReasoningField) -> None:
    async with FakeOpenAI(api_key=API_KEY, reasoning=REASONING, reasoning_field=field) as server:
        api = openai.AsyncOpenAI(base_url=server.base_url, api_key=API_KEY, max_retries=0)
        completion = await chat(api, model="qwq-32b")
        await api.close()

    message = completion.choices[0].message
    assert extra(message, field) == REASONING
    assert message.content == "echo: Hello there, world!"
    assert set(message.model_extra or {}) == {field}
    assert completion.usage is not None
    assert completion.usage.completion_tokens == count_tokens(REASONING) + count_tokens(message.content)
    assert completion.usage.completion_tokens_details is not None
    assert completion.usage.completion_tokens_details.reasoning_tokens == count_tokens(REASONING)


async def test_answers_carry_their_own_reasoning(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    async def think(request: RecordedRequest) -> ReasonedAnswer:
        return ReasonedAnswer(request.last_user_text.upper(), reasoning="Shout it.")

    fake.set_reasoning("default thoughts")
    fake.queue_answers(
        ReasonedAnswer("42", reasoning="Let me compute."),
        ReasonedAnswer("plain", reasoning=""),
        ReasonedAnswer("falls back"),
        "a str",
        think,
    )
    messages = [(await chat(client)).choices[0].message for _ in range(5)]
    assert [(m.content, extra(m, "reasoning_content")) for m in messages] == [
        ("42", "Let me compute."),
        ("plain", None),
        ("falls back", "default thoughts"),
        ("a str", "default thoughts"),
        ("HELLO THERE, WORLD!", "Shout it."),
    ]

    fake.set_reasoning(None)
    fake.queue_answers(ReasonedAnswer("<think>inline</think>Done."))
    chunks = await stream_chunks(client)
    assert streamed_reasoning(chunks) == ""
    assert streamed_text(chunks) == "<think>inline</think>Done."
    assert chunks[0].choices[0].delta.content == ""


async def test_reasoning_counts_against_max_tokens(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    fake.queue_answers(ReasonedAnswer("d e f", reasoning="a b c"), ReasonedAnswer("d e f", reasoning="a b c"))

    completion = await chat(client, max_tokens=4)
    message = completion.choices[0].message
    assert (extra(message, "reasoning_content"), message.content) == ("a b c", "d")
    assert completion.choices[0].finish_reason == "length"

    chunks = await stream_chunks(client, max_completion_tokens=2)
    assert (streamed_reasoning(chunks), streamed_text(chunks)) == ("a b", "")
    assert chunks[-1].choices[0].finish_reason == "length"


def test_unknown_reasoning_field_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown reasoning field"):
        FakeOpenAI(reasoning="x", reasoning_field="thoughts")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------ disconnects

LONG_ANSWER = " ".join(f"word{i}" for i in range(400))


@pytest.mark.parametrize("how", ["close", "async_with"])
async def test_client_closing_a_slow_stream_is_recorded_as_disconnected(
    fake: FakeOpenAI, client: openai.AsyncOpenAI, how: str
) -> None:
    fake.set_answer(LONG_ANSWER)
    fake.chunk_delay = 0.05
    received: list[Any] = []
    stream = await client.chat.completions.create(model="gpt-4o", messages=USER, stream=True)
    if how == "close":
        async for chunk in stream:
            received.append(chunk)
            if len(received) == 3:
                break
        await stream.close()
    else:
        async with stream:
            async for chunk in stream:
                received.append(chunk)
                if len(received) == 3:
                    break
    closed = time.monotonic()

    await fake.wait_for_disconnect(within=1.0)
    assert time.monotonic() - closed < 0.5
    [request] = fake.chat_requests
    assert request.disconnected
    assert 3 <= request.chunks_sent < 10 < count_tokens(LONG_ANSWER)
    await fake.wait_until_idle(within=1.0)
    assert request.chunks_sent < 10


async def test_complete_stream_is_not_disconnected(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    fake.chunk_delay = 0.01
    chunks = await stream_chunks(client, stream_options={"include_usage": True})
    await fake.wait_until_idle()

    [request] = fake.chat_requests
    assert not request.disconnected
    assert request.chunks_sent == len(chunks)
    with pytest.raises(TimeoutError):
        await fake.wait_for_disconnect(within=0.1)


async def test_client_leaving_a_stall_is_recorded_as_disconnected(fake: FakeOpenAI) -> None:
    fake.fail_next("stall", after_chunks=2)
    impatient = openai.AsyncOpenAI(base_url=fake.base_url, api_key=API_KEY, max_retries=0, timeout=0.3)
    with pytest.raises(openai.APITimeoutError):
        await stream_chunks(impatient)
    await impatient.close()

    await fake.wait_for_disconnect(within=1.0)
    assert fake.chat_requests[-1].chunks_sent == 2


# ------------------------------------------------------------------------------------------ images


async def test_image_url_points_at_served_png(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    result = await client.images.generate(prompt="a red cat", size="256x256")

    [image] = result.data or []
    assert image.url is not None
    assert image.url.startswith(fake.origin + "/images/")
    assert image.b64_json is None
    assert image.revised_prompt is None
    async with aiohttp.ClientSession() as session, session.get(image.url) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "image/png"
        assert png_size(await response.read()) == (256, 256)
    [request] = fake.image_requests
    assert request.body == {"prompt": "a red cat", "size": "256x256"}


async def test_image_b64_json_with_dalle3_revised_prompt(client: openai.AsyncOpenAI) -> None:
    result = await client.images.generate(
        model="dall-e-3", prompt="a lighthouse", size="1792x1024", response_format="b64_json"
    )

    [image] = result.data or []
    assert image.url is None
    assert image.b64_json is not None
    assert png_size(base64.b64decode(image.b64_json)) == (1792, 1024)
    assert image.revised_prompt is not None
    assert "a lighthouse" in image.revised_prompt


async def test_gpt_image_models_always_answer_base64(client: openai.AsyncOpenAI) -> None:
    result = await client.images.generate(model="gpt-image-1", prompt="a boat", n=2)
    assert [bool(image.b64_json) for image in result.data or []] == [True, True]
    assert result.usage is not None


async def test_image_request_validation(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as n_error:
        await client.images.generate(model="dall-e-3", prompt="x", n=2)
    assert n_error.value.param == "n"
    with pytest.raises(openai.BadRequestError) as size_error:
        await client.images.generate(model="dall-e-2", prompt="x", size="1792x1024")
    assert size_error.value.param == "size"
    assert size_error.value.code == "invalid_value"


def test_render_png_is_valid() -> None:
    png = render_png(3, 2, (1, 2, 3))
    assert png_size(png) == (3, 2)
    assert png.endswith(b"IEND\xaeB`\x82")


# ------------------------------------------------------------------------------------------ validation, auth


async def test_missing_messages_and_model_are_rejected_with_param(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as no_messages:
        await client.post("/chat/completions", body={"model": "gpt-4o"}, cast_to=object)
    assert no_messages.value.param == "messages"
    assert no_messages.value.type == "invalid_request_error"
    with pytest.raises(openai.BadRequestError) as no_model:
        await client.post("/chat/completions", body={"messages": USER}, cast_to=object)
    assert no_model.value.param == "model"


async def test_bad_message_shapes_are_rejected(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as empty:
        await chat(client, messages=[])
    assert empty.value.param == "messages"
    with pytest.raises(openai.BadRequestError) as bad_role:
        await chat(client, messages=[{"role": "robot", "content": "x"}])
    assert bad_role.value.param == "messages[0].role"
    with pytest.raises(openai.BadRequestError) as bad_options:
        await chat(client, stream_options={"include_usage": True})
    assert bad_options.value.param == "stream_options"


async def test_wrong_api_key_is_401_invalid_api_key(fake: FakeOpenAI) -> None:
    wrong = openai.AsyncOpenAI(base_url=fake.base_url, api_key="sk-wrong-key-1234", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as error:
        await wrong.chat.completions.create(model="gpt-4o", messages=USER)
    await wrong.close()
    assert error.value.code == "invalid_api_key"
    assert "sk-wrong-key-1234" not in error.value.message
    assert error.value.message.endswith("https://platform.openai.com/account/api-keys.")


async def test_missing_key_bad_json_and_unknown_route(fake: FakeOpenAI) -> None:
    status, _, body = await raw(fake, "POST", "/v1/chat/completions", data=b"{}", key=None)
    assert status == 401
    assert json.loads(body)["error"]["type"] == "invalid_request_error"

    status, _, body = await raw(fake, "POST", "/v1/chat/completions", data=b"{not json")
    assert status == 400
    assert "could not parse the JSON body" in json.loads(body)["error"]["message"]

    status, _, body = await raw(fake, "GET", "/v1/nope")
    assert status == 404
    assert json.loads(body)["error"] == {
        "message": "Invalid URL (GET /v1/nope)",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }


async def test_authorization_value_is_not_recorded(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    await chat(client)
    [request] = fake.requests
    assert request.headers["Authorization"] == "<redacted>"
    assert API_KEY not in json.dumps(request.headers)


# ------------------------------------------------------------------------------------------ faults


async def test_rate_limit_surfaces_with_retry_after(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    fake.fail_next("rate_limit", retry_after=1.5, limit_type="tokens")

    with pytest.raises(openai.RateLimitError) as error:
        await chat(client)
    assert error.value.status_code == 429
    assert error.value.code == "rate_limit_exceeded"
    assert error.value.type == "tokens"
    headers = error.value.response.headers
    assert headers["retry-after"] == "2"
    assert headers["retry-after-ms"] == "1500"
    assert headers["x-ratelimit-remaining-tokens"] == "0"
    assert "x-ratelimit-limit-requests" in headers
    assert (await chat(client)).choices[0].message.content.startswith("echo:")


async def test_client_retries_honour_retry_after(fake: FakeOpenAI) -> None:
    fake.fail_next("rate_limit", times=2, retry_after=0.01)
    retrying = openai.AsyncOpenAI(base_url=fake.base_url, api_key=API_KEY, max_retries=2)
    started = time.monotonic()
    completion = await retrying.chat.completions.create(model="gpt-4o", messages=USER)
    await retrying.close()

    assert completion.choices[0].message.content == "echo: Hello there, world!"
    assert time.monotonic() - started < 1.0
    assert [request.status for request in fake.chat_requests] == [429, 429, 200]


async def test_insufficient_quota(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    fake.fail_next("quota")
    with pytest.raises(openai.RateLimitError) as error:
        await chat(client)
    assert error.value.code == "insufficient_quota"


@pytest.mark.parametrize(
    ("kind", "options", "status"),
    [
        ("server_error", {}, 500),
        ("bad_gateway", {}, 502),
        ("bad_gateway", {"html": True}, 502),
        ("overloaded", {}, 503),
        ("server_error", {"status": 504}, 504),
    ],
)
async def test_server_errors(
    fake: FakeOpenAI, client: openai.AsyncOpenAI, kind: str, options: dict[str, Any], status: int
) -> None:
    fake.fail_next(kind, **options)
    with pytest.raises(openai.InternalServerError) as error:
        await chat(client)
    assert error.value.status_code == status


async def test_hang_times_out_in_the_client(fake: FakeOpenAI) -> None:
    fake.fail_next("hang")
    impatient = openai.AsyncOpenAI(base_url=fake.base_url, api_key=API_KEY, max_retries=0, timeout=0.3)
    with pytest.raises(openai.APITimeoutError):
        await impatient.chat.completions.create(model="gpt-4o", messages=USER)
    await impatient.close()
    await fake.wait_until_idle(within=2.0)
    assert fake.chat_requests[-1].fault == "hang"


async def test_stall_mid_stream_times_out(fake: FakeOpenAI) -> None:
    fake.fail_next("stall", after_chunks=2)
    impatient = openai.AsyncOpenAI(base_url=fake.base_url, api_key=API_KEY, max_retries=0, timeout=0.3)
    received: list[Any] = []
    with pytest.raises(openai.APITimeoutError):
        await stream_into(impatient, received)
    await impatient.close()
    assert len(received) == 2


async def test_cut_stream_raises_connection_error(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    fake.fail_next("cut", after_chunks=3)
    received: list[Any] = []
    with pytest.raises(openai.APIConnectionError):
        await stream_into(client, received)
    assert len(received) == 3


async def test_clean_cut_stream_ends_without_finish_or_done(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    fake.fail_next("cut", after_chunks=3, clean=True)
    chunks = await stream_chunks(client)
    assert len(chunks) == 3
    assert all(chunk.choices[0].finish_reason is None for chunk in chunks)

    fake.fail_next("cut", after_chunks=2, clean=True)
    body = {"model": "gpt-4o", "messages": USER, "stream": True}
    _, _, payload = await raw(fake, "POST", "/v1/chat/completions", data=json.dumps(body).encode())
    assert b"[DONE]" not in payload
    assert payload.count(b"data: ") == 2


async def test_cut_non_stream_raises_connection_error(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    fake.fail_next("cut")
    with pytest.raises(openai.APIConnectionError):
        await chat(client)


async def test_malformed_json(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    fake.fail_next("malformed")
    with pytest.raises((json.JSONDecodeError, openai.APIResponseValidationError)):
        await chat(client)

    fake.fail_next("malformed", after_chunks=2)
    received: list[Any] = []
    with pytest.raises((json.JSONDecodeError, openai.APIResponseValidationError)):
        await stream_into(client, received)
    assert len(received) == 2

    fake.fail_next("malformed", endpoint="images")
    with pytest.raises((json.JSONDecodeError, openai.APIResponseValidationError)):
        await client.images.generate(prompt="x")


async def test_error_event_mid_stream(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    fake.fail_next("stream_error", after_chunks=2, message="boom")
    with pytest.raises(openai.APIError, match="boom"):
        await stream_chunks(client)


@pytest.mark.parametrize("code", ["content_policy_violation", "content_filter", "invalid_prompt"])
async def test_chat_prompt_rejected_by_moderation(fake: FakeOpenAI, client: openai.AsyncOpenAI, code: str) -> None:
    fake.fail_next("content_policy", code=code)
    with pytest.raises(openai.BadRequestError) as error:
        await chat(client)
    assert error.value.code == code


async def test_image_prompt_rejected_by_safety_system(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    fake.fail_next("content_policy", endpoint="images")
    with pytest.raises(openai.BadRequestError) as error:
        await client.images.generate(model="dall-e-3", prompt="something bad")
    assert error.value.code == "content_policy_violation"
    assert error.value.type == "invalid_request_error"
    assert error.value.message.endswith(
        "Your request was rejected as a result of our safety system. "
        "Your prompt may contain text that is not allowed by our safety system."
    )


async def test_context_length_exceeded(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    fake.fail_next("context_length", limit=8192)
    with pytest.raises(openai.BadRequestError) as error:
        await chat(client)
    assert error.value.code == "context_length_exceeded"
    assert error.value.param == "messages"
    assert re.search(
        r"This model's maximum context length is 8192 tokens\. "
        r"However, your messages resulted in \d+ tokens\. Please reduce the length of the messages\.",
        error.value.message,
    )


async def test_context_window_rejects_long_prompts() -> None:
    async with FakeOpenAI(api_key=API_KEY, context_window=50) as small:
        api = openai.AsyncOpenAI(base_url=small.base_url, api_key=API_KEY, max_retries=0)
        await chat(api)
        with pytest.raises(openai.BadRequestError) as error:
            await chat(api, messages=[{"role": "user", "content": "word " * 100}])
        await api.close()
    assert error.value.code == "context_length_exceeded"


async def test_finish_reason_content_filter(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    fake.set_answer("one two three four")
    fake.fail_next("content_filter")
    completion = await chat(client)
    assert completion.choices[0].finish_reason == "content_filter"
    assert completion.choices[0].message.content == "one two"

    fake.fail_next("content_filter", partial="")
    chunks = await stream_chunks(client)
    assert streamed_text(chunks) == ""
    assert chunks[-1].choices[0].finish_reason == "content_filter"


async def test_refusal(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    fake.fail_next("refusal", refusal="No.")
    message = (await chat(client)).choices[0].message
    assert message.content is None
    assert message.refusal == "No."


async def test_invalid_api_key_fault_and_custom_error(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    fake.fail_next("invalid_api_key", endpoint="models")
    with pytest.raises(openai.AuthenticationError) as auth:
        await client.models.list()
    assert auth.value.code == "invalid_api_key"

    fake.fail_next("error", status=403, message="Country not supported", code="unsupported_country_region_territory")
    with pytest.raises(openai.PermissionDeniedError) as denied:
        await chat(client)
    assert denied.value.code == "unsupported_country_region_territory"


async def test_persistent_faults_until_cleared(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    fake.fail_always("server_error")
    fake.fail_next("rate_limit")
    with pytest.raises(openai.RateLimitError):
        await chat(client)
    for _ in range(2):
        with pytest.raises(openai.InternalServerError):
            await chat(client)
    assert (await client.models.list()).data
    fake.clear_faults()
    assert (await chat(client)).choices[0].message.content.startswith("echo:")
    assert [request.fault for request in fake.chat_requests] == [
        "rate_limit",
        "server_error",
        "server_error",
        None,
    ]


def test_fault_scripting_is_checked(fake: FakeOpenAI) -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        fake.fail_next("explode")
    with pytest.raises(ValueError, match="does not apply"):
        fake.fail_next("cut", endpoint="images")
    with pytest.raises(ValueError, match="does not take options"):
        fake.fail_next("rate_limit", retry_afterr=1)
    with pytest.raises(ValueError, match="needs a status"):
        fake.fail_next("error")


async def test_slow_answers_and_chunk_delay(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    fake.fail_next("slow", delay=0.2)
    started = time.monotonic()
    await chat(client)
    assert time.monotonic() - started >= 0.2

    fake.set_answer("a b c d e")
    fake.fail_next("slow", delay=0, chunk_delay=0.03)
    started = time.monotonic()
    chunks = await stream_chunks(client)
    assert time.monotonic() - started >= 0.03 * (len(chunks) - 1)


async def test_concurrency_is_tracked(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    fake.fail_always("slow", delay=0.2)
    results = await asyncio.gather(*(chat(client) for _ in range(5)))
    assert len(results) == 5
    assert fake.max_in_flight == 5
    assert fake.in_flight == 0


async def test_clear_and_reset(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    fake.set_answer("custom")
    await chat(client)
    fake.clear()
    assert fake.requests == []
    assert fake.max_in_flight == 0
    fake.fail_always("server_error")
    fake.reset()
    assert (await chat(client)).choices[0].message.content == "echo: Hello there, world!"


# ------------------------------------------------------------------------------------------ standalone


async def test_runs_standalone_and_prints_base_url() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.doubles.openai_server",
        "--port",
        "0",
        "--delay",
        "0.01",
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 10)).decode().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v1", line)
        api = openai.AsyncOpenAI(base_url=line, api_key="any-key", max_retries=0)
        completion = await api.chat.completions.create(model="m", messages=USER)
        await api.close()
        assert completion.choices[0].message.content == "echo: Hello there, world!"
    finally:
        process.terminate()
        await process.wait()
