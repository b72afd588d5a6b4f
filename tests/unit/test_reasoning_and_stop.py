"""The chat adapter against the local OpenAI server: reasoning kept apart from the answer, and a stop that drops
the request at once. And the pure pieces around it: `<think>` splitting, draft refusals, interrupting updates."""

from __future__ import annotations

import asyncio
import time

import openai
import pytest
from aiogram.exceptions import TelegramBadRequest, TelegramNotFound
from aiogram.methods import SendMessageDraft
from aiogram.types import Update

from adapters.openai.chat import OpenAIChatModel, split_reasoning
from adapters.openai.retry import RetryPolicy
from adapters.telegram.generations import Generations, interrupts
from adapters.telegram.streaming import DraftSupport, draft_id_for
from domain.prompt import Message
from tests.doubles.openai_server import FakeOpenAI, ReasonedAnswer

PROMPT = (Message("system", "Be brief."), Message("user", "Why?"))
FAST = RetryPolicy(attempts=2, total_seconds=5.0, base_delay=0.01, max_delay=0.05)


@pytest.fixture
async def fake():
    async with FakeOpenAI(api_key=None) as server:
        yield server


@pytest.fixture
async def model(fake):
    client = openai.AsyncOpenAI(base_url=fake.base_url, api_key="k", max_retries=0)
    yield OpenAIChatModel(client, "deepseek-r1", max_tokens=2048, timeout=5.0, retry=FAST)
    await client.close()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("plain", ("", "plain")),
        ("<think>a b</think>\n\nanswer", ("a b", "answer")),
        ("  <think>still thinking", ("still thinking", "")),
        ("<thi", ("", "")),
        ("", ("", "")),
        ("answer <think>not leading</think>", ("", "answer <think>not leading</think>")),
    ],
)
def test_only_a_leading_think_block_is_reasoning(content, expected):
    assert split_reasoning(content) == expected


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
@pytest.mark.parametrize("stream", [True, False])
async def test_reasoning_fields_are_kept_apart_from_the_answer(fake, model, field, stream):
    fake.set_reasoning("First I think.", reasoning_field=field)
    fake.set_answer("Because.")
    seen: list[str] = []

    async def on_text(text: str) -> None:
        seen.append(text)

    completion = await model.answer(PROMPT, on_text if stream else None)
    assert (completion.text, completion.reasoning) == ("Because.", "First I think.")
    if stream:
        assert seen[0] == "" and seen[-1] == "Because."  # "thinking…" first: nothing to show yet
        assert not any("think" in text.lower() for text in seen)


async def test_a_think_block_streams_as_reasoning_and_never_as_text(fake, model):
    fake.set_answer("<think>Let me see.</think>The answer.")
    seen: list[str] = []

    async def on_text(text: str) -> None:
        seen.append(text)

    completion = await model.answer(PROMPT, on_text)
    assert (completion.text, completion.reasoning) == ("The answer.", "Let me see.")
    assert all("<" not in text and "Let me" not in text for text in seen)


async def test_a_stop_drops_the_request_at_once_and_returns_what_arrived(fake, model):
    fake.queue_answers(ReasonedAnswer(" ".join(f"w{n}" for n in range(400)), reasoning=""))
    fake.chunk_delay = 0.05
    stop = asyncio.Event()
    seen: list[str] = []

    async def on_text(text: str) -> None:
        seen.append(text)
        if text.count(" ") >= 5:
            stop.set()

    started = time.monotonic()
    completion = await model.answer(PROMPT, on_text, stop)
    assert time.monotonic() - started < 2
    assert completion.stopped and completion.text == seen[-1] and completion.text.startswith("w0 w1 w2")
    await fake.wait_for_disconnect(1, within=2)  # the server saw the connection close


async def test_a_stop_set_before_the_call_asks_nothing(fake, model):
    stop = asyncio.Event()
    stop.set()
    completion = await model.answer(PROMPT, None, stop)
    assert completion.stopped and completion.text == ""
    assert fake.chat_requests == []


def test_a_404_or_a_method_refusal_stops_drafts_everywhere_a_chat_refusal_only_there():
    method = SendMessageDraft(chat_id=1, draft_id=1)
    support = DraftSupport()
    support.refused(5, TelegramBadRequest(method, "Bad Request: TEXTDRAFT_PEER_INVALID"))
    assert not support.allowed(5) and support.allowed(6)
    support.refused(6, TelegramNotFound(method, "Not Found"))
    assert not support.allowed(7)
    other = DraftSupport()
    other.refused(1, TelegramBadRequest(method, "Bad Request: method not found"))
    assert not other.allowed(2)


def test_draft_ids_are_never_zero_and_stable_per_update():
    assert all(draft_id_for(n) > 0 for n in (0, 1, 2**31 - 2, 2**31 - 1, 2**62))
    assert draft_id_for(700000001) == draft_id_for(700000001)


def test_stop_and_cancel_interrupt_other_updates_wait_their_turn():
    chat = {"id": 5, "type": "private", "first_name": "A"}
    user = {"id": 5, "is_bot": False, "first_name": "A"}

    def message(text: str) -> Update:
        return Update.model_validate(
            {"update_id": 1, "message": {"message_id": 1, "date": 0, "chat": chat, "from": user, "text": text}}
        )

    stopped = Update.model_validate({"update_id": 2, "stopped_message_generation": {"chat": chat, "draft_id": 3}})
    assert interrupts(stopped)
    assert interrupts(message("/cancel")) and interrupts(message("/cancel@convo_bot now"))
    assert (
        not interrupts(message("/cancelled")) and not interrupts(message("cancel")) and not interrupts(message("/redo"))
    )


async def test_a_stop_reaches_only_the_answer_with_that_draft_in_that_topic():
    generations = Generations()
    with generations.running((5, None), draft_id=9, asker=5) as stop, generations.running((5, 7), 9, 5) as topic:
        assert not generations.stop_draft((5, None), 8) and not stop.is_set()
        assert generations.stop_draft((5, None), 9) and stop.is_set() and not topic.is_set()
    assert generations.current((5, None)) is None and not generations.stop_draft((5, None), 9)
