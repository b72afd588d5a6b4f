"""The use cases over real stores (memory, SQLite) and the real OpenAI client against the local OpenAI server."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from openai import AsyncOpenAI

from adapters.memory.store import MemoryEventStore
from adapters.openai.chat import OpenAIChatModel
from adapters.openai.images import OpenAIImageModel
from adapters.openai.retry import RetryPolicy
from adapters.openai.tokenize import ServerTokenizer
from adapters.sqlite.store import SqliteEventStore
from domain.commands import Sender
from domain.events import AnswerFailed, AnswerGiven, ImageGenerated, QuestionAsked, ReplyDelivered
from domain.prompt import PromptPolicy, prompt_for
from service.conversations import ConversationService, Request
from service.outcomes import Answered, Drawn, Failed, Outcome
from service.recovery import recover_pending
from tests.doubles.openai_server import FakeOpenAI, prompt_tokens

ADA = Sender(user_id=7, username=None, first_name="Ada", language_code="en")
POLICY = PromptPolicy(persona="You are terse.", budget=400, lookback=500)


class RecordingOutbox:
    def __init__(self) -> None:
        self.delivered: list[tuple[str, Outcome]] = []

    async def deliver(self, stream: str, outcome: Outcome) -> None:
        self.delivered.append((stream, outcome))


CLIENTS: list[AsyncOpenAI] = []


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI(api_key="test-key") as server:
        yield server
        while CLIENTS:
            await CLIENTS.pop().close()


@pytest.fixture(params=["memory", "sqlite"])
async def store(request, tmp_path):
    if request.param == "memory":
        yield MemoryEventStore()
        return
    sqlite = SqliteEventStore.from_url(f"sqlite:///{tmp_path}/convo.db")
    await sqlite.init_schema()
    yield sqlite
    await sqlite.close()


def build(store, fake: FakeOpenAI, *, attempts: int = 2, timeout: float = 5.0, **kwargs) -> ConversationService:
    client = AsyncOpenAI(base_url=fake.base_url, api_key="test-key", max_retries=0)
    CLIENTS.append(client)
    retry = RetryPolicy(attempts=attempts, total_seconds=10.0, base_delay=0.01, max_delay=0.05)
    chat = OpenAIChatModel(client, model="gpt-test", max_tokens=200, timeout=timeout, retry=retry)
    images = OpenAIImageModel(client, model="dall-e-2", size="256x256", timeout=timeout, retry=retry)
    return ConversationService(store, chat, images, POLICY, **kwargs)


def req(update: int, stream: str = "7") -> Request:
    return Request(stream, f"tg:{update}", ADA)


async def events_of(store, stream: str = "7"):
    return [e async for e in store.read_forwards(stream)]


async def test_the_prompt_sent_is_the_folds_prompt(store, fake):
    service = build(store, fake)
    for update, text in enumerate(["Hi", "What is 2+2?", "And 3+3?"], start=1):
        outcome = await service.ask(req(update), text)
        assert isinstance(outcome, Answered)
        assert outcome.text == f"echo: {text}"
    events = await events_of(store)
    asked = [e for e in events if isinstance(e.event, QuestionAsked)]
    for question, sent in zip(asked, fake.chat_requests, strict=True):
        expected = [{"role": m.role, "content": m.content} for m in prompt_for(events, question.version, POLICY)]
        assert sent.messages == expected
    assert fake.chat_requests[-1].messages[1:3] == [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "echo: Hi"},
    ]


async def test_streaming_delivers_the_answer_as_it_grows(store, fake):
    fake.set_answer("one two three four five six")
    seen: list[str] = []

    async def grow(text: str) -> None:
        seen.append(text)

    outcome = await build(store, fake).ask(req(1), "count", grow)
    assert isinstance(outcome, Answered)
    assert len(seen) > 2
    assert seen[-1] == outcome.text == "one two three four five six"
    assert all(a == b[: len(a)] for a, b in itertools.pairwise(seen))


async def test_reset_empties_the_next_prompts_history(store, fake):
    service = build(store, fake)
    await service.ask(req(1), "remember the word banana")
    await service.reset(req(2))
    await service.ask(req(3), "what was the word?")
    last = fake.chat_requests[-1].messages
    assert last == [{"role": "system", "content": POLICY.persona}, {"role": "user", "content": "what was the word?"}]


async def test_a_failed_answer_is_recorded_and_left_out_of_the_next_prompt(store, fake):
    service = build(store, fake, attempts=1)
    fake.fail_next("content_policy")
    failed = await service.ask(req(1), "something refused")
    assert isinstance(failed, Failed)
    assert failed.kind == "content_refused"
    await service.ask(req(2), "something fine")
    assert [m["content"] for m in fake.chat_requests[-1].messages] == [POLICY.persona, "something fine"]
    assert any(isinstance(e.event, AnswerFailed) and e.event.kind == "content_refused" for e in await events_of(store))


async def test_rate_limits_are_retried_then_reported_with_the_wait(store, fake):
    service = build(store, fake, attempts=2)
    fake.fail_always("rate_limit", retry_after=30)
    outcome = await service.ask(req(1), "hello")
    assert isinstance(outcome, Failed)
    assert outcome.kind == "rate_limited"
    assert outcome.retry_after == pytest.approx(30, abs=1)


async def test_a_redelivered_update_makes_no_second_model_call(store, fake):
    service = build(store, fake)
    first = await service.ask(req(1), "hello")
    again = await service.ask(req(1), "hello")
    assert isinstance(first, Answered)
    assert isinstance(again, Answered)
    assert again.replayed
    assert again.text == first.text
    assert len(fake.chat_requests) == 1
    events = await events_of(store)
    assert sum(isinstance(e.event, QuestionAsked) for e in events) == 1
    assert sum(isinstance(e.event, AnswerGiven) for e in events) == 1


async def test_a_question_recorded_without_an_answer_is_answered_once_on_redelivery(store, fake):
    service = build(store, fake)
    batch = await store.append("7", [_registered(), QuestionAsked(text="lost answer")], 0, "tg:1")
    assert batch
    outcome = await service.ask(req(1), "lost answer")
    assert isinstance(outcome, Answered)
    assert not outcome.replayed
    assert len(fake.chat_requests) == 1
    again = await service.ask(req(1), "lost answer")
    assert isinstance(again, Answered)
    assert again.replayed
    assert len(fake.chat_requests) == 1


async def test_recovery_finishes_pending_requests_once_and_delivers_them(store, fake):
    outbox = RecordingOutbox()
    await store.append("7", [_registered(), QuestionAsked(text="crashed mid-call")], 0, "tg:1")
    await store.append("8", [_registered(8)], 0, "tg:2")
    service = build(store, fake, outbox=outbox)
    assert await recover_pending(service) == 1
    assert await recover_pending(service) == 0
    assert [stream for stream, _ in outbox.delivered] == ["7"]
    assert isinstance(outbox.delivered[0][1], Answered)
    assert len(fake.chat_requests) == 1


async def test_a_young_pending_request_of_another_worker_is_waited_for(store, fake):
    now = [datetime.now(UTC)]
    service = build(store, fake, takeover_after=30.0, now=lambda: now[0])
    await store.append("7", [_registered(), QuestionAsked(text="someone else's")], 0, "tg:1")

    async def other_worker_answers() -> None:
        await asyncio.sleep(0.3)
        await store.append(
            "7",
            [
                AnswerGiven(
                    text="theirs", model="m", prompt_tokens=1, completion_tokens=1, latency_ms=1, question_version=2
                )
            ],
            2,
            "tg:1/outcome",
        )
        await asyncio.sleep(0.3)
        await store.append("7", [ReplyDelivered(request_version=2)], 3, "delivered/2")

    answering = asyncio.create_task(other_worker_answers())
    outcome = await service.ask(req(2), "mine")
    await answering
    assert isinstance(outcome, Answered)
    assert [m["content"] for m in fake.chat_requests[0].messages][-3:] == ["someone else's", "theirs", "mine"]


async def test_an_image_request_draws_once(store, fake):
    service = build(store, fake)
    outcome = await service.request_image(req(1), "a red fox")
    assert isinstance(outcome, Drawn)
    assert outcome.data
    again = await service.request_image(req(1), "a red fox")
    assert isinstance(again, Drawn)
    assert again.replayed
    assert len(fake.image_requests) == 1
    assert sum(isinstance(e.event, ImageGenerated) for e in await events_of(store)) == 1


async def test_image_mode_turns_text_into_pictures(store, fake):
    service = build(store, fake)
    await service.select_mode(req(1), "image")
    assert isinstance(await service.say(req(2), "a cat"), Drawn)
    assert fake.chat_requests == []


async def test_a_refused_image_is_a_clear_failure(store, fake):
    fake.fail_next("content_policy", endpoint="images")
    outcome = await build(store, fake).request_image(req(1), "forbidden")
    assert isinstance(outcome, Failed)
    assert (outcome.request, outcome.kind) == ("image", "content_refused")


async def test_a_question_over_the_budget_fails_clearly_without_a_model_call(store, fake):
    outcome = await build(store, fake).ask(req(1), "word " * 2000)
    assert isinstance(outcome, Failed)
    assert outcome.kind == "context_too_long"
    assert fake.chat_requests == []


async def test_forget_erases_the_stream(store, fake):
    service = build(store, fake)
    await service.ask(req(1), "hello")
    await service.forget("7")
    assert await events_of(store) == []
    started = await service.start(req(2))
    assert started.new_user


async def test_many_users_run_concurrently_while_each_users_messages_keep_their_order(store, fake):
    fake.delay = 1.0
    service = build(store, fake)
    users = [str(1000 + n) for n in range(100)]

    async def user_session(stream: str) -> None:
        await asyncio.gather(*(service.ask(Request(stream, f"{stream}:{i}", ADA), f"m{i}") for i in range(2)))

    await asyncio.gather(*(user_session(stream) for stream in users))
    assert fake.max_in_flight >= 50, "users should wait on the model together, not one after another"
    for stream in users[:10]:
        questions = [e.event.text for e in await events_of(store, stream) if isinstance(e.event, QuestionAsked)]
        assert questions == ["m0", "m1"]


def _registered(user_id: int = 7):
    from domain.events import UserRegistered

    return UserRegistered(user_id=user_id, username=None, first_name="Ada", language_code="en")


async def test_nul_characters_are_dropped_so_every_store_can_hold_the_text(store, fake):
    fake.set_answer("an\x00swer")
    outcome = await build(store, fake).ask(req(1), "que\x00stion")
    assert isinstance(outcome, Answered)
    assert outcome.text == "answer"
    texts = [e.event.text for e in await events_of(store) if isinstance(e.event, QuestionAsked | AnswerGiven)]
    assert texts == ["question", "answer"]


async def test_an_update_recorded_as_something_else_asks_nothing(store, fake):
    service = build(store, fake)
    await service.reset(req(1))
    outcome = await service.ask(req(1), "same update id, different meaning")
    assert isinstance(outcome, Failed)
    assert outcome.kind == "abandoned"
    assert fake.chat_requests == []


async def test_an_answer_recorded_but_never_sent_is_sent_once_by_recovery(store, fake):
    outbox = RecordingOutbox()
    await store.append("7", [_registered(), QuestionAsked(text="q")], 0, "tg:1")
    await store.append(
        "7",
        [
            AnswerGiven(
                text="recorded answer",
                model="m",
                prompt_tokens=1,
                completion_tokens=1,
                latency_ms=1,
                question_version=2,
            )
        ],
        2,
        "tg:1/outcome",
    )
    service = build(store, fake, outbox=outbox)
    assert await recover_pending(service) == 1
    assert await recover_pending(service) == 0
    assert [(stream, outcome.text) for stream, outcome in outbox.delivered] == [("7", "recorded answer")]
    assert fake.chat_requests == []
    assert isinstance((await events_of(store))[-1].event, ReplyDelivered)


async def test_a_redelivered_update_knows_whether_its_reply_was_sent(store, fake):
    service = build(store, fake)
    first = await service.ask(req(1), "hello")
    assert not first.delivered
    assert not (await service.ask(req(1), "hello")).delivered
    await service.mark_delivered("7", first)
    again = await service.ask(req(1), "hello")
    assert again.replayed
    assert again.delivered
    assert await service.pending("7") is None


async def test_a_reply_this_process_failed_to_send_is_sent_before_the_next_answer_without_waiting(store, fake):
    outbox = RecordingOutbox()
    service = build(store, fake, outbox=outbox, takeover_after=3600.0)
    first = await service.ask(req(1), "first")
    second = await service.ask(req(2), "second")
    assert isinstance(second, Answered)
    assert [(stream, outcome.text) for stream, outcome in outbox.delivered] == [("7", first.text)]


async def test_the_mode_hint_is_what_this_process_saw_and_mode_reads_the_store(store, fake):
    here, elsewhere = build(store, fake), build(store, fake)
    assert here.last_known_mode("7") is None  # never seen: no guess
    await here.start(req(1))
    assert here.last_known_mode("7") == "chat"
    await elsewhere.select_mode(req(2), "image")  # another worker
    assert here.last_known_mode("7") == "chat"  # a hint may be behind...
    assert await here.mode("7") == "image"  # ...the store is not
    assert here.last_known_mode("7") == "image"


async def test_a_model_window_smaller_than_the_budget_is_retried_once_with_half_the_budget(store, fake):
    """The estimate put the prompt under the 400-token budget but the model's window is 370 real tokens: the
    question is asked once more with the oldest turns dropped (budget 200), and answered.
    (The server counts the 200 tokens of max_tokens against its window too.)"""
    service = build(store, fake)
    for update in range(1, 7):
        await service.ask(req(update), f"question number {update} " + "filler words " * 8)
    fake.context_window = 370
    fake.clear()
    outcome = await service.ask(req(7), "and the last one?")
    assert isinstance(outcome, Answered)
    assert len(fake.chat_requests) == 2
    first, second = (len(request.messages) for request in fake.chat_requests)
    assert second < first
    assert fake.chat_requests[1].messages[-1] == {"role": "user", "content": "and the last one?"}


def quarter_count(text: str) -> int:
    """A counter that sees a quarter of the tokens there are, as the estimate can for an unknown tokenizer."""
    return len(text.split()) // 4


@pytest.mark.parametrize("flavour", ["llama.cpp", "vllm"])
async def test_a_prompt_the_servers_tokenizer_counts_over_the_budget_is_refitted_before_it_is_sent(
    store, fake, flavour
):
    """The estimate puts six long turns under the 400-token budget; the server's /tokenize counts about four times
    more. The prompt is refolded with a scaled budget, so the one request sent fits, oldest turns dropped."""
    fake.tokenize = flavour
    client = AsyncOpenAI(base_url=fake.base_url, api_key="test-key", max_retries=0)
    CLIENTS.append(client)
    service = build(store, fake, count=quarter_count, meter=ServerTokenizer(client, "gpt-test"))
    for update in range(1, 7):
        await service.ask(req(update), f"question number {update} " + "filler words " * 16)
    fake.clear()
    outcome = await service.ask(req(7), "and the last one?")
    assert isinstance(outcome, Answered)
    (sent,) = fake.chat_requests
    assert prompt_tokens(sent.messages) <= POLICY.budget
    assert 3 <= len(sent.messages) < 2 + 2 * 6
    assert sent.messages[-1] == {"role": "user", "content": "and the last one?"}


async def test_a_server_without_a_tokenizer_is_asked_once(store, fake):
    client = AsyncOpenAI(base_url=fake.base_url, api_key="test-key", max_retries=0)
    CLIENTS.append(client)
    service = build(store, fake, meter=ServerTokenizer(client, "gpt-test"))
    for update in range(1, 4):
        assert isinstance(await service.ask(req(update), f"question {update}"), Answered)
    assert fake.tokenize_calls == 1


async def test_an_empty_stream_for_a_prompt_over_the_window_is_retried_once_with_half_the_budget(store, fake):
    """llama.cpp's server has answered an over-window prompt 200 with a stream that ends without a word: that is
    read as a too-long prompt, not an outage, and the question is asked once more with the oldest turns dropped."""
    service = build(store, fake)
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


async def test_an_empty_stream_even_for_the_question_alone_fails_as_too_long(store, fake):
    service = build(store, fake)
    fake.context_window, fake.overflow = 20, "empty_stream"

    async def on_text(text: str) -> None:
        pass

    outcome = await service.ask(req(1), "a question " * 15, on_text)
    assert isinstance(outcome, Failed) and outcome.kind == "context_too_long", outcome
    assert len(fake.chat_requests) == 2


async def test_a_question_too_long_for_the_model_even_alone_still_fails_clearly(store, fake):
    service = build(store, fake)
    fake.context_window = 20
    outcome = await service.ask(req(1), "a question " * 30)
    assert isinstance(outcome, Failed) and outcome.kind == "context_too_long"
