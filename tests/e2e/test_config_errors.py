"""Start-up errors: one line on stderr naming the problem, a non-zero exit, no traceback, no secret."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp import web

from tests.e2e.harness import API_KEY, bot_env, run_cli, running_bot, secrets_in, wait_for_text

WRONG_TOKEN = "987654321:AAWrongTokenTheFakeRejects_abcdefghij"
MALFORMED_TOKEN = "not-a-token-secret-value-xyz"
PASSWORD = "pg-secret-password-42"


def is_log_record(line: str) -> bool:
    try:
        record = json.loads(line)
    except ValueError:
        return False
    return isinstance(record, dict) and "event" in record and "level" in record


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"TELEGRAM_BOT_TOKEN": None}, "TELEGRAM_BOT_TOKEN"),
        ({"TELEGRAM_BOT_TOKEN": MALFORMED_TOKEN}, "TELEGRAM_BOT_TOKEN"),
        ({"TELEGRAM_BOT_TOKEN": WRONG_TOKEN}, "TELEGRAM_BOT_TOKEN"),
        ({"OPENAI_API_KEY": None}, "OPENAI_API_KEY"),
        ({"CONVO_STORE": "mysql://root@localhost/convo"}, "mysql"),
        ({"CONVO_STORE": f"postgresql://convo:{PASSWORD}@127.0.0.1:1/convo"}, "store"),
        ({"CONVO_PROMPT_BUDGET": "lots"}, "CONVO_PROMPT_BUDGET"),
        ({"CONVO_LOG_LEVEL": "LOUD"}, "CONVO_LOG_LEVEL"),
        ({"CONVO_METRICS_LISTEN": "localhost"}, "CONVO_METRICS_LISTEN"),
    ],
    ids=[
        "no-token",
        "malformed-token",
        "rejected-token",
        "no-openai-key",
        "unknown-store",
        "unreachable-store",
        "bad-number",
        "bad-log-level",
        "bad-metrics-listen",
    ],
)
async def test_bad_configuration_stops_start_up_with_one_line(tg, ai, tmp_path, change, named):
    env = bot_env(tg, ai, f"sqlite:///{tmp_path}/convo.db")
    for name, value in change.items():
        if value is None:
            env.pop(name)
        else:
            env[name] = value
    result = await asyncio.wait_for(run_cli(env, tmp_path, "bot"), 60)
    assert result.returncode != 0
    # Log records (JSON lines, CONVO_LOG_FORMAT=json) may precede it; exactly one other line names the problem.
    lines = [line for line in result.stderr.strip().splitlines() if not is_log_record(line)]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("convo: "), lines[0]
    assert named.lower() in lines[0].lower(), lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    output = result.stdout + result.stderr
    assert secrets_in(output, tg.token, API_KEY, WRONG_TOKEN, MALFORMED_TOKEN, PASSWORD) == []
    assert tg.calls_to("getUpdates") == []


@pytest.mark.parametrize("page", ["<html><body><h1>Welcome to nginx!</h1></body></html>", '{"hello": "world"}'])
async def test_an_api_base_that_is_not_a_bot_api_stops_start_up_with_one_line(tg, ai, tmp_path, page):
    """TELEGRAM_API_BASE answers 200 with a web page (or other JSON) instead of the Bot API."""

    async def anything(request: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html" if page.startswith("<") else "application/json")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", anything)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        env = bot_env(tg, ai, f"sqlite:///{tmp_path}/convo.db", TELEGRAM_API_BASE=f"http://127.0.0.1:{port}")
        result = await asyncio.wait_for(run_cli(env, tmp_path, "bot"), 60)
    finally:
        await runner.cleanup()
    assert result.returncode != 0
    lines = [line for line in result.stderr.strip().splitlines() if not is_log_record(line)]
    assert len(lines) == 1, result.stderr
    assert "TELEGRAM_API_BASE" in lines[0], lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    assert secrets_in(result.stdout + result.stderr, tg.token, API_KEY) == []


async def test_a_failing_set_my_commands_is_a_warning_and_the_bot_still_serves(tg, ai, tmp_path):
    env = bot_env(tg, ai, f"sqlite:///{tmp_path}/convo.db", CONVO_STREAM="false")
    tg.fail_next("setMyCommands", error_code=500, description="Internal Server Error", times=3)
    alice = tg.new_user("Alice")
    async with running_bot(env, tmp_path) as bot:
        tg.send_text(alice, "are you there?")
        await wait_for_text(tg, alice.id, "echo: are you there?", timeout=60)

        def warnings():
            return [line for line in bot.log_lines() if line.get("event") == "set_my_commands_failed"]

        await tg.wait_for(warnings, timeout=30)  # the menu is set beside serving, not before it
        await asyncio.sleep(0.5)
        warned = warnings()
        assert len(warned) == 1 and warned[0]["level"] == "warning"  # one warning, and no other language tried
        assert tg.commands() == []
        assert "Traceback" not in bot.log_path.read_text()
