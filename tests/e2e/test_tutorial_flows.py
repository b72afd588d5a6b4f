"""The tutorial's flows, end to end: what Telegram received and what the log holds (convo replay --json)."""

from __future__ import annotations

from tests.e2e.harness import bot_env, replay_json, running_bot


async def test_start_chat_ask_twice_image_reset_ask_again(tg, ai, tmp_path):
    env = bot_env(tg, ai, f"sqlite:///{tmp_path}/convo.db")
    alice = tg.new_user("Alice", username=None)
    async with running_bot(env, tmp_path):
        await tg.wait_for_call("setMyCommands", timeout=20)
        assert {c["command"] for c in tg.commands()} >= {"start", "chat", "image", "reset", "help", "forget"}
        tg.send_command(alice, "start")
        await tg.wait_for_messages(alice.id, 1, timeout=10)
        assert "Hello, Alice" in tg.bot_messages(alice.id)[-1].text
        tg.send_command(alice, "chat")
        await tg.wait_for_messages(alice.id, 2, timeout=10)
        tg.send_text(alice, "What is Fauna?")
        await tg.wait_for(
            lambda: any("echo: What is Fauna?" in (m.text or "") for m in tg.bot_messages(alice.id)), timeout=15
        )
        tg.send_text(alice, "And FQL?")
        await tg.wait_for(
            lambda: any("echo: And FQL?" in (m.text or "") for m in tg.bot_messages(alice.id)), timeout=15
        )
        tg.send_command(alice, "image", "a red fox")
        await tg.wait_for(lambda: len(tg.photos(alice.id)) == 1, timeout=15)
        tg.send_command(alice, "reset")
        await tg.wait_for(lambda: any("starts over" in (m.text or "") for m in tg.bot_messages(alice.id)), timeout=10)
        tg.send_text(alice, "Do you remember?")
        await tg.wait_for(
            lambda: any("echo: Do you remember?" in (m.text or "") for m in tg.bot_messages(alice.id)), timeout=15
        )
    assert ai.chat_requests[1].messages[1:] == [
        {"role": "user", "content": "What is Fauna?"},
        {"role": "assistant", "content": "echo: What is Fauna?"},
        {"role": "user", "content": "And FQL?"},
    ]
    assert ai.chat_requests[-1].messages[1:] == [{"role": "user", "content": "Do you remember?"}]
    log = await replay_json(env, tmp_path, str(alice.id))
    types = [e["type"] for e in log["events"]]
    assert types == [
        "UserRegistered",
        "PromptSettingsRecorded",
        "QuestionAsked",
        "AnswerGiven",
        "ReplyDelivered",
        "QuestionAsked",
        "AnswerGiven",
        "ReplyDelivered",
        "ImageRequested",
        "ImageGenerated",
        "ReplyDelivered",
        "ConversationReset",
        "QuestionAsked",
        "AnswerGiven",
        "ReplyDelivered",
    ]
    assert log["events"][0]["data"]["username"] is None
    assert len(log["prompts"]) == 3
