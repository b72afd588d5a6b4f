"""Chat messages with content parts (text and images) in the fake OpenAI server, via the real client."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest

from tests.doubles import media_samples
from tests.doubles.openai_server import FakeOpenAI, prompt_tokens, render_png
from tests.doubles.openai_vision import image_parts, image_tokens_for

API_KEY = "test-key"
PNG = render_png(64, 32, (10, 20, 30))


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


def with_image(url: str, text: str = "what is this?", **image: Any) -> list[dict[str, Any]]:
    return [
        {
            "role": "user",
            "content": [{"type": "text", "text": text}, {"type": "image_url", "image_url": {"url": url, **image}}],
        }
    ]


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI(api_key=API_KEY) as server:
        yield server


@pytest.fixture
async def client(fake: FakeOpenAI) -> AsyncIterator[openai.AsyncOpenAI]:
    api = openai.AsyncOpenAI(base_url=fake.base_url, api_key=API_KEY, max_retries=0, timeout=5.0)
    yield api
    await api.close()


async def chat(client: openai.AsyncOpenAI, messages: list[dict[str, Any]], model: str = "gpt-4o") -> Any:
    return await client.chat.completions.create(model=model, messages=messages)  # type: ignore[arg-type]


async def error_of(client: openai.AsyncOpenAI, messages: list[dict[str, Any]], model: str = "gpt-4o") -> Any:
    with pytest.raises(openai.BadRequestError) as raised:
        await chat(client, messages, model)
    return raised.value.body


async def test_images_arrive_decoded_and_are_billed(client: openai.AsyncOpenAI, fake: FakeOpenAI) -> None:
    messages = with_image(data_url(PNG), detail="high")
    answer = await chat(client, messages)
    assert answer.choices[0].message.content == "echo: what is this? [1 image(s)]"
    [image] = fake.chat_requests[-1].images
    assert (image.data, image.media_type, image.detail, image.size) == (PNG, "image/png", "high", (64, 32))
    assert (image.message_index, image.part_index) == (0, 1)
    assert image_parts(fake.chat_requests[-1]) == [image]
    text_only = prompt_tokens([{"role": "user", "content": "what is this?"}])
    assert answer.usage.prompt_tokens == text_only + 85 + 170 == prompt_tokens(messages)


async def test_url_images_and_low_detail(client: openai.AsyncOpenAI, fake: FakeOpenAI) -> None:
    url = "https://example.com/cat.jpg"
    messages = with_image(url)
    messages[0]["content"].append({"type": "image_url", "image_url": {"url": data_url(PNG), "detail": "low"}})
    answer = await chat(client, messages)
    assert answer.choices[0].message.content == "echo: what is this? [2 image(s)]"
    first, second = fake.chat_requests[-1].images
    assert (first.url, first.data, first.tokens) == (url, None, 765)
    assert second.tokens == 85
    assert answer.usage.prompt_tokens == prompt_tokens([{"role": "user", "content": "what is this?"}]) + 765 + 85


def test_image_cost_follows_openais_tiling() -> None:
    assert image_tokens_for(1024, 1024) == 765
    assert image_tokens_for(2048, 4096, detail="high") == 1105
    assert image_tokens_for(4096, 8192, detail="low") == 85
    assert image_tokens_for(100, 100) == 255


@pytest.mark.parametrize(
    ("part", "expected"),
    [
        (
            {"type": "image", "image": "x"},
            {
                "message": "Invalid value: 'image'. Supported values are: 'text', 'image_url', 'input_audio', and "
                "'file'.",
                "param": "messages[0].content[1].type",
                "code": "invalid_value",
            },
        ),
        (
            {"type": "image_url", "image_url": "https://example.com/a.png"},
            {
                "message": "Invalid type for 'messages[0].content[1].image_url': expected an object, but got a string "
                "instead.",
                "param": "messages[0].content[1].image_url",
                "code": "invalid_type",
            },
        ),
        (
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@"}},
            {"message": "Invalid base64 image_url.", "param": None, "code": "invalid_base64"},
        ),
        (
            {"type": "image_url", "image_url": {"url": data_url(b"plain text, not a picture")}},
            {
                "message": "You uploaded an unsupported image. Please make sure your image has of one the following "
                "formats: ['png', 'jpeg', 'gif', 'webp'].",
                "param": None,
                "code": "invalid_image_format",
            },
        ),
        (
            {"type": "image_url", "image_url": {"url": data_url(PNG, "text/plain")}},
            {
                "message": "Invalid 'messages[0].content[1].image_url.url'. Expected a base64-encoded data URL with an "
                "image MIME type (e.g. 'data:image/png;base64,aW1nIGJ5dGVzIGhlcmU='), but got unsupported MIME type "
                "'text/plain'.",
                "param": "messages[0].content[1].image_url.url",
                "code": "invalid_value",
            },
        ),
        (
            {"type": "image_url", "image_url": {"url": "cat.png"}},
            {
                "message": "Invalid 'messages[0].content[1].image_url.url'. Expected a valid URL, but got a value with "
                "an invalid format.",
                "param": "messages[0].content[1].image_url.url",
                "code": "invalid_value",
            },
        ),
        (
            {"type": "image_url", "image_url": {"url": data_url(PNG), "detail": "ultra"}},
            {
                "message": "Invalid value: 'ultra'. Supported values are: 'auto', 'low', and 'high'.",
                "param": "messages[0].content[1].image_url.detail",
                "code": "invalid_value",
            },
        ),
        (
            {"type": "text"},
            {
                "message": "Missing required parameter: 'messages[0].content[1].text'.",
                "param": "messages[0].content[1].text",
                "code": "missing_required_parameter",
            },
        ),
    ],
)
async def test_bad_parts_get_the_apis_400(client: openai.AsyncOpenAI, part: Any, expected: dict[str, Any]) -> None:
    messages = [{"role": "user", "content": [{"type": "text", "text": "look"}, part]}]
    assert await error_of(client, messages) == {"type": "invalid_request_error", **expected}


async def test_images_only_in_user_messages(client: openai.AsyncOpenAI) -> None:
    image = {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}
    messages = [{"role": "user", "content": "draw"}, {"role": "assistant", "content": [image]}]
    assert await error_of(client, messages) == {
        "message": "Invalid 'messages[1]'. Image URLs are only allowed for messages with role 'user', but this "
        "message with role 'assistant' contains an image URL.",
        "type": "invalid_request_error",
        "param": "messages[1]",
        "code": "invalid_value",
    }
    system = [{"role": "system", "content": [{"type": "refusal", "refusal": "no"}]}]
    assert (await error_of(client, system))["message"] == "Invalid value: 'refusal'. Supported values are: 'text'."


async def test_a_text_only_model_refuses_images(client: openai.AsyncOpenAI, fake: FakeOpenAI) -> None:
    fake.refuse_images("gpt-3.5-turbo")
    messages = [{"role": "user", "content": "hi"}, *with_image(data_url(media_samples.jpeg(16, 16)))]
    assert await error_of(client, messages, "gpt-3.5-turbo") == {
        "message": "Invalid content type. image_url is only supported by certain models.",
        "type": "invalid_request_error",
        "param": "messages.[1].content.[1].type",
        "code": None,
    }
    assert (await chat(client, messages, "gpt-4o")).choices[0].message.content.endswith("[1 image(s)]")
    assert (await chat(client, [{"role": "user", "content": "hi"}], "gpt-3.5-turbo")).choices[0].message.content
    fake.accept_images("gpt-3.5-turbo")
    assert await chat(client, messages, "gpt-3.5-turbo")
    fake.refuse_images("gpt-3.5-turbo")
    fake.reset()
    assert await chat(client, messages, "gpt-3.5-turbo")
