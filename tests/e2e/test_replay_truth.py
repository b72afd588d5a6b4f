"""Replay tells the truth about what the model was sent, whatever the shell that replays sets: the real `convo bot`
answers under one persona and budget, then under another, and `convo replay` run with a third shows the ones that
were sent, each prompt verified against the digest recorded with its answer."""

from __future__ import annotations

import pytest

from tests.e2e.harness import assert_log_clean, bot_env, replay_json, run_cli, running_bot, wait_for_text

pytestmark = pytest.mark.e2e


async def test_replay_shows_the_persona_and_budget_that_were_sent_not_the_shells(tg, ai, tmp_path):
    alice = tg.new_user("Alice")
    store = f"sqlite:///{tmp_path}/convo.db"
    brief = bot_env(tg, ai, store, CONVO_PERSONA="Be brief.", CONVO_PROMPT_BUDGET="3000")
    async with running_bot(brief, tmp_path) as bot:
        tg.send_text(alice, "first question")
        await wait_for_text(tg, alice.id, "echo: first question")
        assert_log_clean(bot)
    french = bot_env(tg, ai, store, CONVO_PERSONA="Answer in French.", CONVO_PROMPT_BUDGET="2000")
    async with running_bot(french, tmp_path) as bot:
        tg.send_text(alice, "second question")
        await wait_for_text(tg, alice.id, "echo: second question")
        assert_log_clean(bot)
    sent = [request.messages[0]["content"] for request in ai.chat_requests]
    assert sent == ["Be brief.", "Answer in French."]
    pirate = bot_env(tg, ai, store, CONVO_PERSONA="You are a pirate.", CONVO_PROMPT_BUDGET="64")
    document = await replay_json(pirate, tmp_path, str(alice.id))
    prompts = document["prompts"]
    assert [p["messages"][0]["content"] for p in prompts] == sent
    assert [p["budget"] for p in prompts] == [3000, 2000]
    assert [p["verification"] for p in prompts] == ["verified", "verified"]
    assert [p["messages"] for p in prompts] == [request.messages for request in ai.chat_requests]
    table = await run_cli(pirate | {"COLUMNS": "80"}, tmp_path, "replay", str(alice.id))
    assert "pirate" not in table.stdout and table.stdout.count("verified against the digest sent") == 2
    assert max(len(line) for line in table.stdout.splitlines()) <= 80
