"""The use cases wired to the real OpenAI adapters and the local OpenAI server, on purpose: what model servers
do that only the adapter sees on the wire (a `/tokenize` endpoint, or none; llama.cpp's empty stream for a prompt
over its window) must still reach the use case as the right decision. Everything else: test_conversations.py."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from openai import AsyncOpenAI

from adapters.openai.chat import OpenAIChatModel
from adapters.openai.images import OpenAIImageModel
from adapters.openai.retry import RetryPolicy
from adapters.openai.tokenize import ServerTokenizer
from domain.commands import Sender
from domain.prompt import PromptPolicy
from service.conversations import ConversationService, Request
from service.outcomes import Answered, Failed
from tests.doubles.openai_server import FakeOpenAI, prompt_tokens

ADA = Sender(user_id=7, username=None, first_name="Ada", language_code="en")
POLICY = PromptPolicy(persona="You are terse.", budget=400, lookback=500)


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI(api_key="test-key") as server:
        yield server


@pytest.fixture
async def client(fake: FakeOpenAI) -> AsyncIterator[AsyncOpenAI]:
    api = AsyncOpenAI(base_url=fake.base_url, api_key="test-key", max_retries=0)
    yield api
    await api.close()


def build(store, client: AsyncOpenAI, **kwargs) -> ConversationService:
    retry = RetryPolicy(attempts=2, total_seconds=10.0, base_delay=0.01, max_delay=0.05)
    chat = OpenAIChatModel(client, model="gpt-test", max_tokens=200, timeout=5.0, retry=retry)
    images = OpenAIImageModel(client, model="dall-e-2", size="256x256", timeout=5.0, retry=retry)
    return ConversationService(store, chat, images, POLICY, **kwargs)


def req(update: int) -> Request:
    return Request("7", f"tg:{update}", ADA)


def quarter_count(text: str) -> int:
    """A counter that sees a quarter of the tokens there are, as the estimate can for an unknown tokenizer."""
    return len(text.split()) // 4


@pytest.mark.parametrize("flavour", ["llama.cpp", "vllm"])
async def test_a_prompt_the_servers_tokenizer_counts_over_the_budget_is_refitted_before_it_is_sent(
    store, fake, client, flavour
):
    """The estimate puts six long turns under the 400-token budget; the server's /tokenize counts about four times
    more. The prompt is refolded with a scaled budget, so the one request sent fits, oldest turns dropped."""
    fake.tokenize = flavour
    service = build(store, client, count=quarter_count, meter=ServerTokenizer(client, "gpt-test"))
    for update in range(1, 7):
        await service.ask(req(update), f"question number {update} " + "filler words " * 16)
    fake.clear()
    outcome = await service.ask(req(7), "and the last one?")
    assert isinstance(outcome, Answered)
    (sent,) = fake.chat_requests
    assert prompt_tokens(sent.messages) <= POLICY.budget
    assert 3 <= len(sent.messages) < 2 + 2 * 6
    assert sent.messages[-1] == {"role": "user", "content": "and the last one?"}


async def test_a_server_without_a_tokenizer_is_asked_once(store, fake, client):
    service = build(store, client, meter=ServerTokenizer(client, "gpt-test"))
    for update in range(1, 4):
        assert isinstance(await service.ask(req(update), f"question {update}"), Answered)
    assert fake.tokenize_calls == 1


async def test_an_empty_stream_for_a_prompt_over_the_window_is_retried_once_with_half_the_budget(store, fake, client):
    """llama.cpp's server has answered an over-window prompt 200 with a stream that ends without a word: that is
    read as a too-long prompt, not an outage, and the question is asked once more with the oldest turns dropped."""
    service = build(store, client)
    for update in range(1, 7):
        await service.ask(req(update), f"question number {update} " + "filler words " * 8)
    fake.context_window, fake.overflow = 370, "empty_stream"
    fake.clear()
    shown: list[str] = []

    async def on_text(text: str) -> None:
        shown.append(text)

    outcome = await service.ask(req(7), "and the last one?", on_text)
    assert isinstance(outcome, Answered) and outcome.text == "echo: and the last one?"
    assert [bool(request.body.get("stream")) for request in fake.chat_requests] == [True, True]
    first, second = (len(request.messages) for request in fake.chat_requests)
    assert second < first


async def test_an_empty_stream_even_for_the_question_alone_fails_as_too_long(store, fake, client):
    service = build(store, client)
    fake.context_window, fake.overflow = 20, "empty_stream"

    async def on_text(text: str) -> None:
        pass

    outcome = await service.ask(req(1), "a question " * 15, on_text)
    assert isinstance(outcome, Failed) and outcome.kind == "context_too_long", outcome
    assert len(fake.chat_requests) == 2
