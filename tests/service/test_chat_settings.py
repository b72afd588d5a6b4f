"""The chat's persona and model, used by the use cases: the persona opens the prompt (a reset keeps it), the
model answers, and prompts are counted with that model's counter."""

from __future__ import annotations

from domain.commands import Sender
from domain.prompt import PromptPolicy, estimate_tokens
from service.conversations import ConversationService, Request
from service.outcomes import Answered
from tests.fakes import FakeChatModel, FakeImageModel

ADA = Sender(user_id=7, first_name="Ada")
POLICY = PromptPolicy(persona="Default persona.", budget=120, lookback=500)


def req(update: int) -> Request:
    return Request("7", f"tg:{update}", ADA)


def heavy(text: str) -> int:
    """A counter for a model whose tokenizer splits text four times finer."""
    return 4 * estimate_tokens(text)


async def test_the_chats_persona_and_model_reach_the_model_and_its_counter_fits_the_prompt(store):
    chat = FakeChatModel()
    service = ConversationService(store, chat, FakeImageModel(), POLICY, counters={"fine-grained": heavy})
    for update in range(1, 4):
        await service.ask(req(update), f"question number {update} about foxes and wolves")
    await service.select_persona(req(10), "custom", "Answer like a pirate.")
    await service.reset(req(11))  # keeps the persona
    for update in range(12, 15):
        await service.ask(req(update), f"question number {update} about foxes and wolves")
    roomy = await service.ask(req(15), "how many turns fit?")
    await service.select_model(req(16), "fine-grained")
    tight = await service.ask(req(17), "and now?")
    assert isinstance(roomy, Answered) and isinstance(tight, Answered)
    assert chat.prompts[-2][0].content == chat.prompts[-1][0].content == "Answer like a pirate."
    assert (roomy.model, tight.model) == ("fake-chat", "fine-grained")
    assert len(chat.prompts[-1]) < len(chat.prompts[-2])  # the finer counter leaves room for fewer turns
    assert sum(heavy(m.content) + 4 for m in chat.prompts[-1]) <= POLICY.budget
    settings = await service.settings("7")
    assert (settings.persona_name, settings.model) == ("custom", "fine-grained")


async def test_the_chats_model_brings_its_own_prompt_budget(store):
    chat = FakeChatModel()
    service = ConversationService(store, chat, FakeImageModel(), POLICY, budgets={"small": 40, "large": 400})
    for update in range(1, 8):
        await service.ask(req(update), f"question number {update} about foxes and wolves")
    defaults = await service.ask(req(8), "how many turns fit by default?")
    await service.select_model(req(9), "large")
    large = await service.ask(req(10), "and with the large model?")
    await service.select_model(req(11), "small")
    small = await service.ask(req(12), "and with the small one?")
    assert all(isinstance(outcome, Answered) for outcome in (defaults, large, small))
    by_default, with_large, with_small = (len(prompt) for prompt in chat.prompts[-3:])
    assert with_small < by_default < with_large
    assert sum(estimate_tokens(m.content) + 4 for m in chat.prompts[-1]) <= 40
    assert sum(estimate_tokens(m.content) + 4 for m in chat.prompts[-2]) <= 400
