"""Replay that cannot lie: each prompt is rebuilt from the log alone (the settings recorded before its question, the
budget recorded with its outcome) and checked against the digest recorded when it was sent.

The conversations here are had by the service itself, under operator settings that change between questions (a
new persona, a smaller budget, another default model), and replayed under yet other settings: every prompt is
`verified`, and shows what the model was sent, not what the replaying shell would send today."""

from __future__ import annotations

import pytest

from adapters.memory.store import MemoryEventStore
from domain.commands import Sender
from domain.events import AnswerFailed, PromptSettingsRecorded
from domain.prompt import ModelPrompts, PromptPolicy, estimate_tokens
from domain.tail import PromptTail
from service import replay as replay_module
from service.conversations import ConversationService, Request
from service.replay import replay_stream
from tests.fakes import FakeChatModel, FakeImageModel

ANN = Sender(user_id=7, first_name="Ann")
PIRATE = ModelPrompts(PromptPolicy(persona="You are a pirate.", budget=9000, lookback=3))
"""What the replaying shell would set: none of it may reach a replayed prompt."""


def service(
    store: MemoryEventStore, persona: str, budget: int, chat: FakeChatModel | None = None
) -> ConversationService:
    policy = PromptPolicy(persona=persona, budget=budget)
    return ConversationService(store, chat or FakeChatModel(), FakeImageModel(), policy, estimate_tokens)


def request(update: int) -> Request:
    return Request("7", f"tg:{update}", ANN)


async def conversation_under_changing_settings(store: MemoryEventStore) -> None:
    """Three questions under one persona and a roomy budget, two under another persona, a tight budget and another
    default model."""
    first = service(store, "Be brief.", 3000)
    for n in range(3):
        await first.ask(request(n), f"question {n} " + "word " * 20)
    second = service(store, "Answer in French.", 100, FakeChatModel("another-model"))
    for n in range(3, 5):
        await second.ask(request(n), f"question {n} " + "word " * 20)


async def test_every_prompt_is_rebuilt_from_the_log_and_verified_whatever_the_shell_sets() -> None:
    store = MemoryEventStore()
    await conversation_under_changing_settings(store)
    replayed = await replay_stream(store, "7", PIRATE)
    prompts = replayed.prompts
    assert len(prompts) == 5
    assert [record.verification for record in prompts] == ["verified"] * 5
    assert [record.messages[0].content for record in prompts] == ["Be brief."] * 3 + ["Answer in French."] * 2
    assert [record.budget for record in prompts] == [3000] * 3 + [100] * 2
    assert all("pirate" not in message.content for record in prompts for message in record.messages)
    assert len(prompts[2].messages) == 6 and len(prompts[4].messages) < 6  # the tight budget dropped turns
    recorded = [e.event for e in await _events(store) if isinstance(e.event, PromptSettingsRecorded)]
    assert [(shaping.persona, shaping.budget, shaping.model) for shaping in recorded] == [
        ("Be brief.", 3000, "fake-chat"),
        ("Answer in French.", 100, "another-model"),
    ]


async def test_the_settings_are_recorded_only_when_they_change() -> None:
    store = MemoryEventStore()
    same = service(store, "Be brief.", 3000)
    for n in range(4):
        await same.ask(request(n), f"q{n}")
    again = service(store, "Be brief.", 3000)  # a restart with the same settings
    await again.ask(request(9), "q9")
    events = [e.event for e in await _events(store)]
    assert sum(isinstance(event, PromptSettingsRecorded) for event in events) == 1


async def test_a_fold_that_changed_since_the_prompt_was_sent_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    store = MemoryEventStore()
    await conversation_under_changing_settings(store)

    class ForgetfulTail(PromptTail):
        """A fold that lost the oldest turn it keeps: what a careless change to the prompt fold would do."""

        @property
        def turns(self):  # type: ignore[no-untyped-def]
            return super().turns[1:]

        def messages(self):  # type: ignore[no-untyped-def]
            built = super().messages()
            return (built[0], *built[3:]) if len(built) > 2 else built

    monkeypatch.setattr(replay_module, "PromptTail", ForgetfulTail)
    verdicts = [record.verification for record in (await replay_stream(store, "7", PIRATE)).prompts]
    assert verdicts[0] == "verified" and "differs" in verdicts


async def test_a_failed_question_shows_the_prompt_that_was_sent_and_its_check() -> None:
    store = MemoryEventStore()
    chat = FakeChatModel()
    talk = service(store, "Be brief.", 3000, chat)
    await talk.ask(request(1), "first")
    chat.fail_next("upstream")
    await talk.ask(request(2), "second")
    records = (await replay_stream(store, "7", PIRATE)).prompts
    assert [(record.failed, record.verification) for record in records] == [
        (None, "verified"),
        ("upstream", "verified"),
    ]
    assert records[1].messages[-1].content == "second" and chat.prompts[-1] == records[1].messages
    failure = next(e.event for e in await _events(store) if isinstance(e.event, AnswerFailed))
    assert failure.prompt_digest and failure.prompt_budget == 3000


async def test_a_question_refused_before_any_prompt_was_sent_is_shown_unverified() -> None:
    store = MemoryEventStore()
    chat = FakeChatModel()
    talk = service(store, "Be brief.", 3000, chat)
    await talk.ask(request(1), "word " * 4000)  # alone over the budget: no prompt is sent
    [record] = (await replay_stream(store, "7", PIRATE)).prompts
    assert record.failed == "context_too_long" and record.verification == "unrecorded" and chat.prompts == []


async def _events(store: MemoryEventStore) -> list:
    return [recorded async for recorded in store.read_forwards("7")]
