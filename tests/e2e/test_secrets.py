"""Secrets never reach the logs: a session-like run at DEBUG level, every bot log file grepped afterwards."""

from __future__ import annotations

from tests.e2e.harness import (
    API_KEY,
    bot_env,
    greet_ask_and_reject_the_key,
    run_cli,
    running_bot,
    secrets_in,
    wait_for_text,
    webhook_secret_of,
)


async def test_no_bot_log_holds_the_token_or_the_api_key(tg, ai, tmp_path):
    env = bot_env(tg, ai, f"sqlite:///{tmp_path}/convo.db", CONVO_LOG_LEVEL="DEBUG", CONVO_LOG_FORMAT="json")
    derived_webhook_secret = webhook_secret_of(env)
    alice = tg.new_user("Alice", username="alice")
    async with running_bot(env, tmp_path):
        await greet_ask_and_reject_the_key(tg, ai, alice)
        tg.fail_next("sendMessage", error_code=500)
        tg.send_command(alice, "help")
        tg.send_command(alice, "image", "a red fox")
        await tg.wait_for(lambda: len(tg.photos(alice.id)) == 1, timeout=15)
        tg.send_command(alice, "forget")
        await wait_for_text(tg, alice.id, "Erase everything")
        await tg.wait_until_consumed(timeout=10)
    async with running_bot(env, tmp_path):  # a second run on the same store, as after a deploy
        tg.send_text(alice, "after the restart")
        await wait_for_text(tg, alice.id, "echo: after the restart")
        await tg.wait_until_consumed(timeout=10)
    replay = await run_cli(env, tmp_path, "replay", str(alice.id), "--full")
    logs = sorted(tmp_path.glob("bot-*.log"))
    assert len(logs) == 2
    for path in logs:
        text = path.read_text(encoding="utf-8", errors="replace")
        assert "update_handled" in text  # the log is really there, at DEBUG level
        assert secrets_in(text, tg.token, API_KEY, derived_webhook_secret) == [], path.name
    assert secrets_in(replay.stdout + replay.stderr, tg.token, API_KEY) == []
