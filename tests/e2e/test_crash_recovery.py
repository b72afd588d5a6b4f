"""A bot killed while the model is answering: the next start answers once, and the log holds one of each event."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Iterator

import pytest

from tests.contract.backends import scratch_database
from tests.e2e.harness import (
    assert_log_clean,
    before_question,
    bot_env,
    conversation,
    later_message_answered,
    replay_json,
    run_cli,
    running_bot,
    wait_for_text,
)


async def questions_recorded(env, workdir, stream: str) -> int:
    result = await run_cli(env, workdir, "replay", stream, "--json")
    if result.returncode != 0:
        return 0
    return sum(1 for event in json.loads(result.stdout)["events"] if event["type"] == "QuestionAsked")


async def crash_while_answering_then_restart(tg, ai, tmp_path, store: str, **extra: str) -> None:
    env = bot_env(tg, ai, store, **extra)
    alice = tg.new_user("Alice")
    ai.delay = 30  # the first attempt hangs long after the kill
    async with running_bot(env, tmp_path) as bot:
        question = tg.send_text(alice, "Will you survive?")
        await ai.wait_for_in_flight(1, within=20)
        for _ in range(60):
            if await questions_recorded(env, tmp_path, str(alice.id)) == 1:
                break
            await asyncio.sleep(0.2)
        else:
            pytest.fail("the question was never recorded")
        assert await bot.stop(signal.SIGKILL, timeout=10) == -signal.SIGKILL
    ai.delay = 0
    assert not any("echo: Will you survive?" in (m.text or "") for m in tg.bot_messages(alice.id))
    async with running_bot(env, tmp_path) as bot:
        await wait_for_text(tg, alice.id, "echo: Will you survive?", timeout=20)
        await tg.wait_until_consumed(timeout=15)
        await later_message_answered(tg, alice)  # a duplicate answer would have come before this one
        assert_log_clean(bot)
    events = (await replay_json(env, tmp_path, str(alice.id)))["events"]
    mine = [e for e in events if e["causation_id"] == f"tg:{question.update_id}"]
    assert [e["type"] for e in mine].count("QuestionAsked") == 1
    before = before_question(events)
    assert [e["type"] for e in before] == [
        "UserRegistered",
        "PromptSettingsRecorded",
        "QuestionAsked",
        "AnswerGiven",
        "ReplyDelivered",
    ]
    assert conversation(events[len(before) :]) == ["QuestionAsked", "AnswerGiven"]
    answers = [m for m in tg.bot_messages(alice.id) if "echo: Will you survive?" in (m.text or "")]
    assert len(answers) == 1, [m.text for m in tg.bot_messages(alice.id)]


async def test_crash_recovery_on_sqlite(tg, ai, tmp_path):
    await crash_while_answering_then_restart(tg, ai, tmp_path, f"sqlite:///{tmp_path}/convo.db")


@pytest.fixture
def fresh_postgres() -> Iterator[str]:
    with scratch_database("convo_e2e") as url:
        yield url


@pytest.mark.postgres
async def test_crash_recovery_on_postgres(tg, ai, tmp_path, fresh_postgres):
    await crash_while_answering_then_restart(tg, ai, tmp_path, fresh_postgres, CONVO_RECOVERY_GRACE="1")
