"""Runs `convo bot` as a real subprocess against the local Telegram and OpenAI servers."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs

from adapters.telegram.settings import TelegramSettings
from tests.doubles.openai_server import FakeOpenAI
from tests.doubles.telegram import FakeTelegram, User

API_KEY = "sk-test-e2e-secret-key-0123456789"
START_UP_LIMIT = 90.0
"""Longest wait for a bot to start serving; a loaded 2-core machine has needed 20 s."""


@attrs.define
class BotProcess:
    """A running `convo bot` and where its logs go."""

    process: asyncio.subprocess.Process
    log_path: Path
    env: dict[str, str]

    def log_lines(self) -> list[dict[str, Any]]:
        lines = []
        for raw in self.log_path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                lines.append(json.loads(raw))
            except json.JSONDecodeError:
                lines.append({"raw": raw})
        return lines

    async def started(self, timeout: float = START_UP_LIMIT) -> None:
        """Wait until the bot says it serves (or has exited): start-up takes 5-8 s on a busy machine, so every
        later wait in a test measures only what the test is about."""
        deadline = asyncio.get_running_loop().time() + timeout
        while self.process.returncode is None and asyncio.get_running_loop().time() < deadline:
            if any(line.get("event") == "bot_started" for line in self.log_lines()):
                return
            await asyncio.sleep(0.1)

    async def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        if self.process.returncode is None:
            self.process.send_signal(sig)
        return await asyncio.wait_for(self.process.wait(), timeout)


def bot_env(tg: FakeTelegram, ai: FakeOpenAI, store: str, **extra: str) -> dict[str, str]:
    """The environment of a bot pointed at the local servers."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONVO_", "OPENAI_", "TELEGRAM_", "FAUNA_"))}
    env |= {
        "TELEGRAM_BOT_TOKEN": tg.token,
        "TELEGRAM_API_BASE": tg.api_base,
        "OPENAI_API_KEY": API_KEY,
        "OPENAI_BASE_URL": ai.base_url,
        "CONVO_STORE": store,
        "CONVO_LOG_FORMAT": "json",
        "CONVO_STREAM_EDIT_INTERVAL": "0.3",
        "CONVO_MODEL_RETRIES": "2",
        "CONVO_MODEL_TIMEOUT": "5",
    }
    return env | extra


@asynccontextmanager
async def running_bot(env: Mapping[str, str], workdir: Path, *args: str) -> AsyncIterator[BotProcess]:
    """`convo bot` in a subprocess; stopped (SIGTERM, then SIGKILL) on exit."""
    log_path = workdir / f"bot-{len(list(workdir.glob('bot-*.log')))}.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "entrypoints.cli",
            "bot",
            *args,
            env=dict(env),
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    bot = BotProcess(process, log_path, dict(env))
    try:
        await bot.started()
        yield bot
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 25)
            except TimeoutError:
                process.kill()
                await process.wait()


async def run_cli(env: Mapping[str, str], workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run a `convo` command to completion."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "entrypoints.cli",
        *args,
        env=dict(env),
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await process.communicate()
    return subprocess.CompletedProcess(args, process.returncode or 0, out.decode(), err.decode())


def store_env(workdir: Path) -> dict[str, str]:
    """The environment of a `convo` command over `workdir`'s SQLite store, and nothing else (PYTHONPATH passed on)."""
    env = {"PATH": "/usr/bin:/bin", "CONVO_STORE": f"sqlite:///{workdir}/convo.db"}
    return env | {name: os.environ[name] for name in ("PYTHONPATH",) if name in os.environ}


async def replay_json(env: Mapping[str, str], workdir: Path, stream: str) -> dict[str, Any]:
    result = await run_cli(env, workdir, "replay", stream, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


# ---------------------------------------------------------------------------------------------- shared helpers


async def replay_list(env: Mapping[str, str], workdir: Path) -> list[str]:
    """The stream ids `convo replay --list --json` shows."""
    result = await run_cli(env, workdir, "replay", "--list", "--json")
    assert result.returncode == 0, result.stderr
    return [item["stream"] for item in json.loads(result.stdout)["streams"]]


BOOKKEEPING = frozenset({"ReplyDelivered", "PromptSettingsRecorded"})
"""Event types that record delivery and the prompt settings, not conversation: most tests compare the conversation
alone."""


def conversation(events: list[dict[str, Any]]) -> list[str]:
    """The types of the conversation's events (replay JSON), leaving out delivery bookkeeping."""
    return [event["type"] for event in events if event["type"] not in BOOKKEEPING]


async def event_types(env: Mapping[str, str], workdir: Path, stream: str) -> list[str]:
    """The types of a stream's events, oldest first."""
    return conversation((await replay_json(env, workdir, stream))["events"])


def texts(tg: FakeTelegram, chat_id: int) -> list[str]:
    """The current texts of the bot's live messages in a chat."""
    return [m.text or "" for m in tg.bot_messages(chat_id)]


async def wait_for_text(tg: FakeTelegram, chat_id: int, needle: str, timeout: float = 15.0) -> str:  # noqa: ASYNC109
    """Wait until one of the bot's messages in the chat contains `needle`; return that text."""

    def found() -> str | None:
        return next((text for text in texts(tg, chat_id) if needle in text), None)

    return await tg.wait_for(found, timeout=timeout)


LATER = "a later message"
"""What a test sends after the exchange it checks (see `later_message_answered`)."""


async def later_message_answered(tg: FakeTelegram, user: User, timeout: float = 30.0) -> None:  # noqa: ASYNC109
    """Send one more message in the user's private chat and wait for its answer.

    The bot handles a chat's updates in order, and recovery and redelivered updates take the same per-chat turn, so
    whatever else the chat was still owed (a late duplicate, say) was sent before this answer: the positive signal
    to wait for before asserting that nothing more arrived. Leave its question out with `before_question(LATER)`.
    """
    tg.send_text(user, LATER)
    await wait_for_text(tg, user.id, f"echo: {LATER}", timeout=timeout)


def before_question(events: list[dict[str, Any]], text: str = LATER) -> list[dict[str, Any]]:
    """The events (replay JSON) before the question with this text; all of them if there is none."""
    for index, event in enumerate(events):
        if event["type"] == "QuestionAsked" and event["data"].get("text") == text:
            return events[:index]
    return events


FINISHED = frozenset({"update_handled", "update_failed", "update_poison", "update_crashed"})
"""Log events that end the handling of an update (its canonical line, or a poison or crash line)."""


def updates_finished(bot: BotProcess) -> set[int]:
    """The ids of the updates the bot's log says it finished with. (An `update_failed` with an `attempt` is a store
    outage's, and the update is tried again: not finished.)"""
    return {
        line["update_id"]
        for line in bot.log_lines()
        if line.get("event") in FINISHED and isinstance(line.get("update_id"), int) and "attempt" not in line
    }


def secrets_in(text: str, *secrets: str) -> list[str]:
    """Which of the secrets (or the part of a bot token after the colon) occur in `text`."""
    found = []
    for secret in secrets:
        parts = [secret, secret.split(":", 1)[1]] if ":" in secret else [secret]
        if any(part and part in text for part in parts):
            found.append(secret)
    return found


def assert_log_clean(bot: BotProcess, *secrets: str) -> None:
    """No secret in the bot's log, and no update crashed."""
    raw = bot.log_path.read_text(encoding="utf-8", errors="replace")
    assert secrets_in(raw, bot.env["TELEGRAM_BOT_TOKEN"], API_KEY, *secrets) == []
    crashed = [line for line in bot.log_lines() if line.get("event") in ("update_failed", "update_crashed")]
    assert crashed == [], crashed


def webhook_secret_of(env: Mapping[str, str]) -> str:
    """The webhook secret the bot will use with this environment (set, or derived from the token)."""
    return TelegramSettings.from_env(env).webhook_secret


async def greet_ask_and_reject_the_key(tg: FakeTelegram, ai: FakeOpenAI, user: User) -> None:
    """/start, one answered question, then one question the model server refuses for a bad API key."""
    tg.send_command(user, "start")
    await wait_for_text(tg, user.id, f"Hello, {user.first_name}")
    tg.send_text(user, "first question")
    await wait_for_text(tg, user.id, "echo: first question")
    ai.fail_next("invalid_api_key")
    tg.send_text(user, "the key is rejected")
    await wait_for_text(tg, user.id, "misconfigured")
