"""Start-up errors: one line on stderr naming the problem, a non-zero exit, no traceback, no secret."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.e2e.harness import API_KEY, bot_env, run_cli, secrets_in

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
    ],
    ids=["no-token", "malformed-token", "rejected-token", "no-openai-key", "unknown-store", "unreachable-store"],
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
