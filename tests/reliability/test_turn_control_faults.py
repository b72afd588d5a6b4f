"""Crash safety of turn control: SIGKILL during a /redo, or just as the user stops an answer, ends with exactly one
outcome recorded and sent, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

from adapters.telegram import replies
from tests.e2e.harness import assert_log_clean, bot_env, later_message_answered, running_bot, wait_for_text
from tests.reliability.test_faults import answers_in, events_of, long_poll_waiting, scratch_postgres, until


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/convo.db"
        return
    with scratch_postgres() as url:
        yield url


def outcomes_of(events: list[dict[str, Any]], question_version: int) -> list[dict[str, Any]]:
    return [
        e
        for e in events
        if e["type"] in ("AnswerGiven", "AnswerFailed") and e["data"]["question_version"] == question_version
    ]


async def test_sigkill_during_a_redo_answers_it_once_after_the_restart(tg, ai, tmp_path, store_url):
    env = bot_env(tg, ai, store_url, CONVO_RECOVERY_GRACE="0")
    alice = tg.new_user("Alice")
    async with running_bot(env, tmp_path) as bot:
        await long_poll_waiting(tg)
        ai.queue_answers("the first answer")
        tg.send_text(alice, "tell me")
        await wait_for_text(tg, alice.id, "the first answer")
        ai.delay = 30  # the redo's call hangs long past the kill
        tg.send_command(alice, "redo")
        await ai.wait_for_in_flight(1, within=20)

        async def redo_recorded() -> bool:
            return any(e["type"] == "TurnUndone" for e in await events_of(env, tmp_path, str(alice.id)))

        await until(redo_recorded, "the redo to be recorded")
        assert await bot.stop(signal.SIGKILL, timeout=10) == -signal.SIGKILL
    ai.delay = 0
    ai.queue_answers("the second answer")
    async with running_bot(env, tmp_path) as bot:
        await wait_for_text(tg, alice.id, "the second answer", timeout=30)
        await later_message_answered(tg, alice)
        assert_log_clean(bot)
    events = await events_of(env, tmp_path, str(alice.id))
    asked = [e for e in events if e["type"] == "QuestionAsked" and e["data"]["text"] == "tell me"]
    assert len(asked) == 2  # the question, and its redo: once each
    assert [e["data"]["text"] for e in outcomes_of(events, asked[1]["version"])] == ["the second answer"]
    assert answers_in(tg, alice.id, "the second answer") == ["the second answer"]


async def test_sigkill_as_an_answer_is_stopped_leaves_one_outcome_recorded_and_sent(tg, ai, tmp_path, store_url):
    words = " ".join(f"w{n:03d}" for n in range(400))
    ai.set_answer(lambda request: words if request.last_user_text == "count" else f"echo: {request.last_user_text}")
    ai.chunk_delay = 0.05
    env = bot_env(tg, ai, store_url, CONVO_RECOVERY_GRACE="0")
    alice = tg.new_user("Alice")
    async with running_bot(env, tmp_path) as bot:
        await long_poll_waiting(tg)
        tg.send_text(alice, "count")
        draft = await tg.wait_for(lambda: next((d for d in tg.drafts(alice.id) if d.text.startswith("w")), None))
        tg.stop_generation(alice, draft.draft_id)
        await ai.wait_for_disconnect(1, within=5)
        assert await bot.stop(signal.SIGKILL, timeout=10) == -signal.SIGKILL
    ai.chunk_delay = 0
    async with running_bot(env, tmp_path) as bot:
        await later_message_answered(tg, alice)
        assert_log_clean(bot)
    events = await events_of(env, tmp_path, str(alice.id))
    [question] = [e for e in events if e["type"] == "QuestionAsked" and e["data"]["text"] == "count"]
    [outcome] = outcomes_of(events, question["version"])
    shown = answers_in(tg, alice.id, "w000")
    assert len(shown) == 1  # sent once, whether the stopped answer was recorded before the kill or not
    if outcome["data"]["stopped"]:
        assert shown[0] == f"{outcome['data']['text']}\n\n{replies.STOPPED_MARK}"
    else:
        assert shown[0] == outcome["data"]["text"]
