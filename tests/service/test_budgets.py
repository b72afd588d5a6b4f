"""Spending caps in the use cases: a request is refused, with no model call and a recorded `over_budget` failure,
once what was already spent in the period has reached the cap; operators escape the user caps only."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import structlog

from adapters.memory.store import MemoryEventStore
from domain.commands import Sender
from domain.prices import ChatPrice, ImagePrice, PriceTable
from domain.prompt import PromptPolicy
from service.budgets import BudgetLimits, parse_refusal
from service.conversations import ConversationService, Request
from service.outcomes import Answered, Failed
from tests.fakes import FakeChatModel, FakeImageModel

ANN, BOB = Sender(user_id=1, first_name="Ann"), Sender(user_id=2, first_name="Bob")
NOW = datetime(2026, 12, 31, 23, 0, tzinfo=UTC)
PRICES = PriceTable(
    chat={"fake-chat": ChatPrice(Decimal(0), Decimal(1_000_000))},  # 1 USD per completion token
    images={"fake-image": ImagePrice({"1024x1024": Decimal(3)})},
)


def service_with(chat: FakeChatModel, images: FakeImageModel | None = None, **caps) -> ConversationService:
    """A service whose store records, and whose caps count, on the last hour of a year (UTC)."""
    limits = BudgetLimits(**caps)
    store = MemoryEventStore(now=lambda: NOW)
    return ConversationService(
        store, chat, images or FakeImageModel(), PromptPolicy(), spending=limits, prices=PRICES, now=lambda: NOW
    )


def ask(stream: str, sender: Sender, n: int) -> Request:
    return Request(stream, f"tg:{stream}:{n}", sender)


async def test_the_request_after_the_cap_is_reached_is_refused_without_a_model_call():
    chat = FakeChatModel()
    chat.answer_with(*["two words"] * 10)  # 2 USD an answer
    service = service_with(chat, user_day=Decimal(5))
    outcomes = [await service.ask(ask("1", ANN, n), f"question {n}") for n in range(4)]
    assert [type(outcome) for outcome in outcomes] == [Answered, Answered, Answered, Failed]
    refused = outcomes[3]
    assert isinstance(refused, Failed) and refused.kind == "over_budget"
    assert parse_refusal(refused.message) == ("user_day", "5", "2027-01-01 00:00 UTC")
    assert len(chat.prompts) == 3
    again = await service.ask(ask("1", ANN, 4), "still?")
    assert isinstance(again, Failed) and len(chat.prompts) == 3


async def test_a_chats_cap_counts_every_member_and_operators_escape_only_the_user_caps():
    chat = FakeChatModel()
    chat.answer_with(*["two words"] * 10)
    service = service_with(chat, user_day=Decimal(1), chat_month=Decimal(5), exempt=frozenset({2}))
    first = await service.ask(ask("-100", ANN, 1), "hi")  # spends 2: Ann is over her own cap now
    assert isinstance(first, Answered)
    assert isinstance(await service.ask(ask("-100", ANN, 2), "again"), Failed)
    assert isinstance(await service.ask(ask("-100", BOB, 3), "me"), Answered)  # exempt from user caps: 4 spent
    assert isinstance(await service.ask(ask("-100", BOB, 4), "more"), Answered)  # 4 < 5: may pass it, 6 spent
    last = await service.ask(ask("-100", BOB, 5), "and more")
    assert isinstance(last, Failed)
    assert parse_refusal(last.message) == ("chat_month", "5", "2027-01-01 00:00 UTC")
    assert isinstance(await service.ask(ask("-200", BOB, 6), "elsewhere"), Answered)  # another chat


async def test_pictures_count_and_are_refused_too():
    service = service_with(FakeChatModel(), total_month=Decimal(5))
    await service.request_image(ask("1", ANN, 1), "a fox")
    await service.request_image(ask("1", ANN, 2), "a fox")  # 6 spent
    refused = await service.request_image(ask("1", ANN, 3), "a fox")
    assert isinstance(refused, Failed) and refused.kind == "over_budget"
    assert parse_refusal(refused.message) == ("total_month", "5", "2027-01-01 00:00 UTC")


async def test_without_caps_nothing_is_refused():
    chat = FakeChatModel()
    chat.answer_with(*["two words"] * 5)
    service = service_with(chat)
    outcomes = [await service.ask(ask("1", ANN, n), f"q{n}") for n in range(5)]
    assert all(isinstance(outcome, Answered) for outcome in outcomes)


async def test_a_refused_call_the_server_billed_counts_toward_the_cap():
    chat = FakeChatModel()
    chat.refuse_billed(0, 6)  # 6 USD billed, no answer
    service = service_with(chat, user_day=Decimal(5))
    refused = await service.ask(ask("1", ANN, 1), "something it will not answer")
    assert isinstance(refused, Failed) and refused.kind == "content_refused"
    over = await service.ask(ask("1", ANN, 2), "and now?")
    assert isinstance(over, Failed) and over.kind == "over_budget"
    assert len(chat.prompts) == 1


async def test_a_model_without_a_price_costs_nothing_and_is_warned_of_once():
    chat = FakeChatModel("local-llama")
    chat.answer_with(*["two words"] * 3)
    service = service_with(chat, user_day=Decimal("0.000001"))
    with structlog.testing.capture_logs() as logs:
        outcomes = [await service.ask(ask("1", ANN, n), f"q{n}") for n in range(3)]
    assert all(isinstance(outcome, Answered) for outcome in outcomes)
    assert [entry["model"] for entry in logs if entry["event"] == "model_unpriced"] == ["local-llama"]
