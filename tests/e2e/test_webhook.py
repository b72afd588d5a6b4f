"""Webhook mode: Telegram's secret header is required, updates are answered, /healthz answers."""

from __future__ import annotations

import socket
import time

import aiohttp

from tests.e2e.harness import assert_log_clean, bot_env, replay_list, running_bot, wait_for_text

SECRET = "e2e-webhook-secret_0123"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def raw_text_update(user_id: int, text: str) -> dict:
    return {
        "message": {
            "message_id": 9001,
            "date": int(time.time()),
            "chat": {"id": user_id, "type": "private", "first_name": "Mallory"},
            "from": {"id": user_id, "is_bot": False, "first_name": "Mallory"},
            "text": text,
        }
    }


async def test_webhook_requires_the_secret_and_serves_updates_and_health(tg, ai, tmp_path):
    port = free_port()
    env = bot_env(
        tg, ai, f"sqlite:///{tmp_path}/convo.db", CONVO_WEBHOOK_LISTEN=f"127.0.0.1:{port}", CONVO_WEBHOOK_SECRET=SECRET
    )
    alice = tg.new_user("Alice")
    mallory = tg.new_user("Mallory")
    async with running_bot(env, tmp_path, "--webhook-url", f"http://127.0.0.1:{port}/hook") as bot:
        await tg.wait_for(lambda: tg.webhook.active, timeout=20)
        assert tg.webhook.url == f"http://127.0.0.1:{port}/hook"
        assert tg.webhook.secret_token == SECRET
        assert tg.calls_to("getUpdates") == []

        assert await tg.deliver_webhook(raw_text_update(mallory.id, "no secret"), secret=None) == 401
        assert await tg.deliver_webhook(raw_text_update(mallory.id, "wrong secret"), secret="not-the-secret") == 401
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/healthz") as response:
            assert response.status == 200
            assert (await response.json())["status"] == "ok"

        tg.send_command(alice, "start")
        await wait_for_text(tg, alice.id, "Hello, Alice")
        tg.send_text(alice, "over the hook")
        await wait_for_text(tg, alice.id, "echo: over the hook")
        await tg.wait_until_consumed(timeout=10)
        assert_log_clean(bot, SECRET)
        assert sum(1 for line in bot.log_lines() if line.get("event") == "webhook_unauthorized") == 2
    assert tg.bot_messages(mallory.id) == []
    assert [r.messages[-1]["content"] for r in ai.chat_requests] == ["over the hook"]
    assert await replay_list(env, tmp_path) == [str(alice.id)]
