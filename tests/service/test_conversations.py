"""The use cases over real stores (memory, SQLite) and in-process fakes of the model ports (tests/fakes.py).

Where a model server's wire behaviour must reach a use case, the real adapter and the local OpenAI server are
used instead: test_conversations_over_http.py.
"""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime

import pytest

from domain.commands import Sender
from domain.events import (
    AnswerFailed,
    AnswerGiven,
    ImageGenerated,
    QuestionAsked,
    ReplyDelivered,
    UserRegistered,
)
from domain.prompt import Message, PromptPolicy, prompt_for
from service.conversations import ConversationService, Request
from service.outcomes import Answered, Drawn, Failed, Outcome
from service.recovery import recover_pending
from service.takeover import POLL_SECONDS
from tests.fakes import FakeChatModel, FakeImageModel, count_tokens

ADA = Sender(user_id=7, username=None, first_name="Ada", language_code="en")
POLICY = PromptPolicy(persona="You are terse.", budget=400, lookback=500)
PERSONA = Message("system", POLICY.persona)


class RecordingOutbox:
    def __init__(self) -> None:
        self.delivered: list[tuple[str, Outcome]] = []

    async def deliver(self, stream: str, outcome: Outcome, language: str | None = None) -> None:
        self.delivered.append((stream, outcome))


@pytest.fixture
def chat() -> FakeChatModel:
    return FakeChatModel()


@pytest.fixture
def images() -> FakeImageModel:
    return FakeImageModel()


def build(store, chat: FakeChatModel, images: FakeImageModel, **kwargs) -> ConversationService:
    return ConversationService(store, chat, images, POLICY, **kwargs)


def req(update: int, stream: str = "7") -> Request:
    return Request(stream, f"tg:{update}", ADA)


async def events_of(store, stream: str = "7"):
    return [e async for e in store.read_forwards(stream)]


def _registered(user_id: int = 7) -> UserRegistered:
    return UserRegistered(user_id=user_id, username=None, first_name="Ada", language_code="en")


def _answer_to(question_version: int, text: str) -> AnswerGiven:
    return AnswerGiven(
        text=text, model="m", prompt_tokens=1, completion_tokens=1, latency_ms=1, question_version=question_version
    )


async def test_the_prompt_sent_is_the_folds_prompt(store, chat, images):
    service = build(store, chat, images)
    for update, text in enumerate(["Hi", "What is 2+2?", "And 3+3?"], start=1):
        outcome = await service.ask(req(update), text)
        assert isinstance(outcome, Answered)
        assert outcome.text == f"echo: {text}"
    events = await events_of(store)
    asked = [e for e in events if isinstance(e.event, QuestionAsked)]
    for question, sent in zip(asked, chat.prompts, strict=True):
        assert sent == prompt_for(events, question.version, POLICY)
    assert chat.prompts[-1][1:3] == (Message("user", "Hi"), Message("assistant", "echo: Hi"))


async def test_streaming_delivers_the_answer_as_it_grows(store, chat, images):
    chat.answer_with("one two three four five six")
    seen: list[str] = []

    async def grow(text: str) -> None:
        seen.append(text)

    outcome = await build(store, chat, images).ask(req(1), "count", grow)
    assert isinstance(outcome, Answered)
    assert len(seen) > 2
    assert seen[-1] == outcome.text == "one two three four five six"
    assert all(a == b[: len(a)] for a, b in itertools.pairwise(seen))


async def test_reset_empties_the_next_prompts_history(store, chat, images):
    service = build(store, chat, images)
    await service.ask(req(1), "remember the word banana")
    await service.reset(req(2))
    await service.ask(req(3), "what was the word?")
    assert chat.prompts[-1] == (PERSONA, Message("user", "what was the word?"))


async def test_a_failed_answer_is_recorded_and_left_out_of_the_next_prompt(store, chat, images):
    service = build(store, chat, images)
    chat.fail_next("content_refused")
    failed = await service.ask(req(1), "something refused")
    assert isinstance(failed, Failed)
    assert failed.kind == "content_refused"
    await service.ask(req(2), "something fine")
    assert chat.prompts[-1] == (PERSONA, Message("user", "something fine"))
    assert any(isinstance(e.event, AnswerFailed) and e.event.kind == "content_refused" for e in await events_of(store))


async def test_a_rate_limit_is_reported_with_the_wait_the_model_named(store, chat, images):
    """(Retrying within the wait is the adapter's: tests/unit/test_openai_adapter.py.)"""
    chat.fail_next("rate_limited", retry_after=30)
    outcome = await build(store, chat, images).ask(req(1), "hello")
    assert isinstance(outcome, Failed)
    assert outcome.kind == "rate_limited"
    assert outcome.retry_after == 30


async def test_a_redelivered_update_makes_no_second_model_call(store, chat, images):
    service = build(store, chat, images)
    first = await service.ask(req(1), "hello")
    again = await service.ask(req(1), "hello")
    assert isinstance(first, Answered)
    assert isinstance(again, Answered)
    assert again.replayed
    assert again.text == first.text
    assert len(chat.prompts) == 1
    events = await events_of(store)
    assert sum(isinstance(e.event, QuestionAsked) for e in events) == 1
    assert sum(isinstance(e.event, AnswerGiven) for e in events) == 1


async def test_a_question_recorded_without_an_answer_is_answered_once_on_redelivery(store, chat, images):
    service = build(store, chat, images)
    batch = await store.append("7", [_registered(), QuestionAsked(text="lost answer")], 0, "tg:1")
    assert batch
    outcome = await service.ask(req(1), "lost answer")
    assert isinstance(outcome, Answered)
    assert not outcome.replayed
    assert len(chat.prompts) == 1
    again = await service.ask(req(1), "lost answer")
    assert isinstance(again, Answered)
    assert again.replayed
    assert len(chat.prompts) == 1


async def test_recovery_finishes_pending_requests_once_and_delivers_them(store, chat, images):
    outbox = RecordingOutbox()
    await store.append("7", [_registered(), QuestionAsked(text="crashed mid-call")], 0, "tg:1")
    await store.append("8", [_registered(8)], 0, "tg:2")
    service = build(store, chat, images, outbox=outbox)
    assert await recover_pending(service) == 1
    assert await recover_pending(service) == 0
    assert [stream for stream, _ in outbox.delivered] == ["7"]
    assert isinstance(outbox.delivered[0][1], Answered)
    assert len(chat.prompts) == 1


async def test_a_young_pending_request_of_another_worker_is_waited_for(store, chat, images):
    """Each time this worker waits, the other worker takes its next step: records its answer, then its delivery.
    This worker waits through both, asks nothing for the other's question, and then asks its own."""
    now = datetime.now(UTC)
    await store.append("7", [_registered(), QuestionAsked(text="someone else's")], 0, "tg:1")
    steps = [
        lambda: store.append("7", [_answer_to(2, "theirs")], 2, "tg:1/outcome"),
        lambda: store.append("7", [ReplyDelivered(request_version=2)], 3, "delivered/2"),
    ]
    waits: list[float] = []

    async def other_worker_steps_while_we_wait(seconds: float) -> None:
        waits.append(seconds)
        assert steps, "waited on after the other worker had finished"
        await steps.pop(0)()

    service = build(store, chat, images, takeover_after=30.0, now=lambda: now, sleep=other_worker_steps_while_we_wait)
    outcome = await service.ask(req(2), "mine")
    assert isinstance(outcome, Answered)
    assert waits == [POLL_SECONDS, POLL_SECONDS]
    (sent,) = chat.prompts
    assert [m.content for m in sent][-3:] == ["someone else's", "theirs", "mine"]


async def test_an_image_request_draws_once(store, chat, images):
    service = build(store, chat, images)
    outcome = await service.request_image(req(1), "a red fox")
    assert isinstance(outcome, Drawn)
    assert outcome.data
    again = await service.request_image(req(1), "a red fox")
    assert isinstance(again, Drawn)
    assert again.replayed
    assert images.prompts == ["a red fox"]
    assert sum(isinstance(e.event, ImageGenerated) for e in await events_of(store)) == 1


async def test_image_mode_turns_text_into_pictures(store, chat, images):
    service = build(store, chat, images)
    await service.select_mode(req(1), "image")
    assert isinstance(await service.say(req(2), "a cat"), Drawn)
    assert images.prompts == ["a cat"]
    assert chat.prompts == []


async def test_a_refused_image_is_a_clear_failure(store, chat, images):
    images.fail_next("content_refused")
    outcome = await build(store, chat, images).request_image(req(1), "forbidden")
    assert isinstance(outcome, Failed)
    assert (outcome.request, outcome.kind) == ("image", "content_refused")


async def test_a_question_over_the_budget_fails_clearly_without_a_model_call(store, chat, images):
    outcome = await build(store, chat, images).ask(req(1), "word " * 2000)
    assert isinstance(outcome, Failed)
    assert outcome.kind == "context_too_long"
    assert chat.prompts == []


async def test_forget_erases_the_stream(store, chat, images):
    service = build(store, chat, images)
    await service.ask(req(1), "hello")
    await service.forget("7")
    assert await events_of(store) == []
    started = await service.start(req(2))
    assert started.new_user


async def test_many_users_wait_on_the_model_together_while_each_users_messages_keep_their_order(store, chat, images):
    """The model holds every answer until the first question of each of 100 users is at it at once; no user ever
    has two questions at the model, and each user's two are recorded in the order sent."""
    chat.hold()
    service = build(store, chat, images)
    users = [str(1000 + n) for n in range(100)]

    async def user_session(stream: str) -> None:
        await asyncio.gather(*(service.ask(Request(stream, f"{stream}:{i}", ADA), f"m{i}") for i in range(2)))

    sessions = asyncio.gather(*(user_session(stream) for stream in users))
    try:
        await chat.wait_for_in_flight(len(users), within=30)
    finally:
        chat.release()
    await sessions
    assert chat.max_in_flight == len(users)
    for stream in users:
        questions = [e.event.text for e in await events_of(store, stream) if isinstance(e.event, QuestionAsked)]
        assert questions == ["m0", "m1"]


async def test_nul_characters_are_dropped_so_every_store_can_hold_the_text(store, chat, images):
    chat.answer_with("an\x00swer")
    outcome = await build(store, chat, images).ask(req(1), "que\x00stion")
    assert isinstance(outcome, Answered)
    texts = [e.event.text for e in await events_of(store) if isinstance(e.event, QuestionAsked | AnswerGiven)]
    assert texts == ["question", "answer"]


async def test_the_first_reply_is_the_text_the_log_holds(store, chat, images):
    chat.answer_with("an\x00swer")
    service = build(store, chat, images)
    first = await service.ask(req(1), "question")
    replayed = await service.ask(req(1), "question")
    assert isinstance(first, Answered) and isinstance(replayed, Answered) and replayed.replayed
    assert first.text == replayed.text == "answer"


async def test_an_update_recorded_as_something_else_asks_nothing(store, chat, images):
    service = build(store, chat, images)
    await service.reset(req(1))
    outcome = await service.ask(req(1), "same update id, different meaning")
    assert isinstance(outcome, Failed)
    assert outcome.kind == "abandoned"
    assert chat.prompts == []


async def test_an_answer_recorded_but_never_sent_is_sent_once_by_recovery(store, chat, images):
    outbox = RecordingOutbox()
    await store.append("7", [_registered(), QuestionAsked(text="q")], 0, "tg:1")
    await store.append("7", [_answer_to(2, "recorded answer")], 2, "tg:1/outcome")
    service = build(store, chat, images, outbox=outbox)
    assert await recover_pending(service) == 1
    assert await recover_pending(service) == 0
    assert [(stream, outcome.text) for stream, outcome in outbox.delivered] == [("7", "recorded answer")]
    assert chat.prompts == []
    assert isinstance((await events_of(store))[-1].event, ReplyDelivered)


async def test_a_redelivered_update_knows_whether_its_reply_was_sent(store, chat, images):
    service = build(store, chat, images)
    first = await service.ask(req(1), "hello")
    assert not first.delivered
    assert not (await service.ask(req(1), "hello")).delivered
    await service.mark_delivered("7", first)
    again = await service.ask(req(1), "hello")
    assert again.replayed
    assert again.delivered
    assert await service.pending("7") is None


async def test_a_reply_this_process_failed_to_send_is_sent_before_the_next_answer_without_waiting(store, chat, images):
    outbox = RecordingOutbox()
    service = build(store, chat, images, outbox=outbox, takeover_after=3600.0)
    first = await service.ask(req(1), "first")
    second = await service.ask(req(2), "second")
    assert isinstance(second, Answered)
    assert [(stream, outcome.text) for stream, outcome in outbox.delivered] == [("7", first.text)]


async def test_the_mode_hint_is_what_this_process_saw_and_mode_reads_the_store(store, chat, images):
    here, elsewhere = build(store, chat, images), build(store, chat, images)
    assert here.last_known_mode("7") is None  # never seen: no guess
    await here.start(req(1))
    assert here.last_known_mode("7") == "chat"
    await elsewhere.select_mode(req(2), "image")  # another worker
    assert here.last_known_mode("7") == "chat"  # a hint may be behind...
    assert await here.mode("7") == "image"  # ...the store is not
    assert here.last_known_mode("7") == "image"


async def test_a_model_window_smaller_than_the_budget_is_retried_once_with_half_the_budget(store, chat, images):
    """The estimate put the prompt under the 400-token budget but the model's window is smaller: the question
    is asked once more with the oldest turns dropped (budget 200), and answered."""
    service = build(store, chat, images)
    for update in range(1, 7):
        await service.ask(req(update), f"question number {update} " + "filler words " * 8)
    chat.window = 200
    chat.prompts.clear()
    outcome = await service.ask(req(7), "and the last one?")
    assert isinstance(outcome, Answered)
    first, second = chat.prompts
    assert count_tokens(first) > chat.window >= count_tokens(second)
    assert len(second) < len(first)
    assert second[0] == PERSONA
    assert second[-1] == Message("user", "and the last one?")


async def test_a_question_too_long_for_the_model_even_alone_still_fails_clearly(store, chat, images):
    service = build(store, chat, images)
    chat.window = 20
    outcome = await service.ask(req(1), "a question " * 30)
    assert isinstance(outcome, Failed) and outcome.kind == "context_too_long"
    assert len(chat.prompts) == 2  # asked once more with half the budget, then given up
