"""Concurrency: many users at once through the real polling loop, a 1 s model, convo versus the sequential baseline.

`python -m bench.concurrency [--users 200] [--messages 5] [--model-delay 1.0] [--store sqlite|postgres] [--runs 1]`

convo runs as a real `convo bot` subprocess (long polling) against the local fake Telegram server (flood control
disabled) and the local fake OpenAI server (every answer delayed by `--model-delay`). Every user's messages are
queued at once; the wall time runs from the queueing to the last reply reaching the fake server. The baseline
(`bench.baseline`, one update at a time) would need users x messages x delay seconds, so it is measured on a small
sample and extrapolated linearly (it is sequential: wall time = messages x time per message).

This module also holds the load rig the other load benchmarks (`bench.overhead`, `bench.memory`) share.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs

from adapters.openai.settings import OpenAISettings, build_models
from adapters.stores import open_store
from bench.baseline import TutorialBaseline, run_baseline_polling
from domain.ports import EventStore
from entrypoints.config import prompt_policy
from tests.doubles.openai_server import FakeOpenAI
from tests.doubles.telegram import FakeTelegram, User
from tests.e2e.harness import API_KEY, BotProcess, bot_env, running_bot

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
"""The local PostgreSQL the test suite uses; each run gets a fresh schema in it."""
BASELINE_SAMPLE = (10, 2)
"""Users x messages the sequential baseline is timed on before extrapolating."""
TARGET_RATIO = 100.0
REPLY_METHODS = frozenset({"sendmessage", "editmessagetext"})


# ---------------------------------------------------------------------------------------------- the shared rig


@attrs.define
class LoadRig:
    """The fake Telegram and OpenAI servers and a `convo bot` subprocess pointed at them."""

    tg: FakeTelegram
    ai: FakeOpenAI
    bot: BotProcess
    store: str


def store_url_for(kind: str, workdir: Path) -> str:
    """A fresh store of the given kind: a new SQLite file, or a new PostgreSQL schema."""
    if kind == "sqlite":
        return f"sqlite:///{workdir / 'convo.db'}"
    if kind == "postgres":
        return f"{POSTGRES_URL}?schema=bench_{uuid.uuid4().hex[:10]}"
    raise ValueError(f"unknown store {kind!r}: sqlite or postgres")


async def drop_schema(url: str) -> None:
    """Remove a benchmark's PostgreSQL schema (no-op for SQLite)."""
    if not url.startswith("postgresql://") or "schema=" not in url:
        return
    import psycopg

    schema = url.rsplit("schema=", 1)[1]
    async with await psycopg.AsyncConnection.connect(POSTGRES_URL, autocommit=True) as conn:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


async def wait_until(predicate: Callable[[], bool], within: float, interval: float = 0.02) -> float:
    """Poll `predicate` until true (returns the monotonic time it was seen true); TimeoutError after `within` s."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not done within {within:.0f}s")
        await asyncio.sleep(interval)
    return time.monotonic()


@asynccontextmanager
async def fakes(model_delay: float) -> AsyncIterator[tuple[FakeTelegram, FakeOpenAI]]:
    """Both fake servers on 127.0.0.1; Telegram's flood control is disabled for load."""
    async with FakeTelegram() as tg, FakeOpenAI(api_key=None, delay=model_delay) as ai:
        tg.disable_flood_control()
        yield tg, ai


@asynccontextmanager
async def load_rig(store: str = "sqlite", model_delay: float = 0.0, **extra_env: str) -> AsyncIterator[LoadRig]:
    """A ready bot (it has started long polling) over a fresh store; everything is stopped on exit."""
    with tempfile.TemporaryDirectory(prefix="convo-bench-") as tmp:
        workdir = Path(tmp)
        url = store_url_for(store, workdir)
        try:
            async with fakes(model_delay) as (tg, ai):
                env = bot_env(tg, ai, url, CONVO_STREAM_EDIT_INTERVAL="1.2", CONVO_MODEL_TIMEOUT="30", **extra_env)
                async with running_bot(env, workdir) as bot:
                    await wait_until(lambda: bool(tg.calls_to("getUpdates")) or bot.process.returncode is not None, 60)
                    if bot.process.returncode is not None:
                        raise RuntimeError(f"the bot exited at start-up: {bot.log_path.read_text()[-2000:]}")
                    yield LoadRig(tg, ai, bot, url)
        finally:
            await drop_schema(url)


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system, all threads) a process has used so far, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def make_users(tg: FakeTelegram, count: int) -> list[User]:
    """`count` fresh users, unknown to the bot."""
    return [tg.new_user(f"User{index}", username=f"user{index}") for index in range(count)]


def question(user_index: int, message_index: int) -> str:
    """The text of one user's n-th message; the fake model echoes it back."""
    return f"user {user_index} question {message_index}"


def queue_questions(tg: FakeTelegram, users: Sequence[User], messages: int) -> dict[int, list[str]]:
    """Queue every user's messages (round-robin, each user's in order); the answers each chat should get."""
    expected: dict[int, list[str]] = {user.id: [] for user in users}
    for message_index in range(messages):
        for user_index, user in enumerate(users):
            text = question(user_index, message_index)
            tg.send_text(user, text)
            expected[user.id].append(f"echo: {text}")
    return expected


def replies_of(tg: FakeTelegram, chat_id: int) -> list[str]:
    """The current texts of the bot's messages in a chat, oldest first."""
    return [message.text or "" for message in tg.bot_messages(chat_id)]


def all_answered(tg: FakeTelegram, expected: dict[int, list[str]]) -> bool:
    """True once every chat has as many bot messages as answers expected, each final."""
    return all(replies_of(tg, chat) == wanted for chat, wanted in expected.items())


def check_order(tg: FakeTelegram, expected: dict[int, list[str]]) -> tuple[int, int]:
    """(replies counted, users whose replies are exactly the expected answers in order)."""
    counted = sum(len(replies_of(tg, chat)) for chat in expected)
    in_order = sum(replies_of(tg, chat) == wanted for chat, wanted in expected.items())
    return counted, in_order


def last_reply_time(tg: FakeTelegram) -> float:
    """Arrival time (monotonic) of the last sendMessage/editMessageText the fake server answered."""
    return max(call.time for call in tg.calls if call.done and call.method.lower() in REPLY_METHODS)


def fmt_row(label: str, value: str) -> str:
    """One line of a result table."""
    return f"| {label:<52} | {value:>22} |"


# ---------------------------------------------------------------------------------------------- the baseline


def fake_model_env(ai: FakeOpenAI) -> dict[str, str]:
    """Settings of a model client pointed at the fake OpenAI server (no retries: the fake never fails)."""
    return {
        "OPENAI_API_KEY": API_KEY,
        "OPENAI_BASE_URL": ai.base_url,
        "CONVO_MODEL_RETRIES": "1",
        "CONVO_MODEL_TIMEOUT": "30",
        "CONVO_STREAM": "false",
    }


@asynccontextmanager
async def baseline_for(
    ai: FakeOpenAI, workdir: Path, store: str, with_model: bool = True
) -> AsyncIterator[TutorialBaseline]:
    """The tutorial-style baseline over a fresh store of the same kind, with a model client for the fake."""
    url = store_url_for(store, workdir)
    env = fake_model_env(ai)
    event_store: EventStore = open_store(url, env)
    try:
        await event_store.init_schema()
        chat, _ = build_models(OpenAISettings.from_env(env))
        try:
            yield TutorialBaseline(event_store, chat if with_model else None, prompt_policy(env))
        finally:
            await chat.close()
    finally:
        await event_store.close()
        await drop_schema(url)


async def time_baseline(tg: FakeTelegram, baseline: TutorialBaseline, users: int, messages: int) -> tuple[float, int]:
    """Seconds the sequential baseline takes for users x messages, and how many users got answers in order."""
    expected = queue_questions(tg, make_users(tg, users), messages)
    started = time.monotonic()
    await asyncio.wait_for(run_baseline_polling(tg.token, tg.api_base, baseline, users * messages), 600)
    elapsed = last_reply_time(tg) - started
    _, in_order = check_order(tg, expected)
    return elapsed, in_order


async def baseline_per_message(store: str, model_delay: float, users: int, messages: int) -> tuple[float, int]:
    """Seconds per message of the sequential baseline (timed on a small sample), and users answered in order."""
    with tempfile.TemporaryDirectory(prefix="convo-bench-base-") as tmp:
        async with fakes(model_delay) as (tg, ai), baseline_for(ai, Path(tmp), store) as baseline:
            elapsed, in_order = await time_baseline(tg, baseline, users, messages)
    return elapsed / (users * messages), in_order


# ---------------------------------------------------------------------------------------------- convo


@attrs.frozen
class ConvoRun:
    """One full-size run of convo."""

    wall: float
    replies: int
    users_in_order: int
    bot_cpu: float
    """CPU seconds the bot process spent from the first update queued to the last reply."""


async def run_convo(users: int, messages: int, model_delay: float, store: str) -> ConvoRun:
    """Queue users x messages at once, wait for every answer, and check each user's replies are in order."""
    async with load_rig(store, model_delay) as rig:
        cpu_before = cpu_seconds(rig.bot.process.pid)
        expected = queue_questions(rig.tg, make_users(rig.tg, users), messages)
        started = time.monotonic()
        timeout = 60 + users * messages * (model_delay + 0.05)
        await wait_until(lambda: all_answered(rig.tg, expected), timeout, interval=0.05)
        wall = last_reply_time(rig.tg) - started
        cpu = cpu_seconds(rig.bot.process.pid) - cpu_before
        replies, in_order = check_order(rig.tg, expected)
    return ConvoRun(wall, replies, in_order, cpu)


# ---------------------------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m bench.concurrency", description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--messages", type=int, default=5)
    parser.add_argument("--model-delay", type=float, default=1.0)
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--runs", type=int, default=1, help="repeat and report medians")
    parser.add_argument("--baseline-users", type=int, default=BASELINE_SAMPLE[0])
    parser.add_argument("--baseline-messages", type=int, default=BASELINE_SAMPLE[1])
    return parser.parse_args(argv)


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Baseline sample and full-size convo, `runs` times each; medians and the ratio."""
    total = args.users * args.messages
    base_runs = [
        await baseline_per_message(args.store, args.model_delay, args.baseline_users, args.baseline_messages)
        for _ in range(args.runs)
    ]
    convo_runs = [await run_convo(args.users, args.messages, args.model_delay, args.store) for _ in range(args.runs)]
    per_message = statistics.median(run[0] for run in base_runs)
    wall = statistics.median(run.wall for run in convo_runs)
    baseline_wall = per_message * total
    in_order = min(run.users_in_order for run in convo_runs)
    return {
        "users": args.users,
        "messages": args.messages,
        "model_delay": args.model_delay,
        "store": args.store,
        "runs": args.runs,
        "convo_walls": [run.wall for run in convo_runs],
        "convo_wall": wall,
        "bot_cpu_ms_per_message": statistics.median(run.bot_cpu for run in convo_runs) * 1000 / total,
        "replies": min(run.replies for run in convo_runs),
        "expected_replies": total,
        "users_in_order": in_order,
        "baseline_sample": f"{args.baseline_users}x{args.baseline_messages}",
        "baseline_per_message": per_message,
        "baseline_wall_extrapolated": baseline_wall,
        "baseline_users_in_order": min(run[1] for run in base_runs),
        "ratio": baseline_wall / wall,
        "target_ratio": TARGET_RATIO,
        "target_met": baseline_wall / wall >= TARGET_RATIO and in_order == args.users,
    }


def report(result: dict[str, Any]) -> None:
    """Print the result table."""
    print(
        f"concurrency: {result['users']} users x {result['messages']} messages, model {result['model_delay']} s "
        f"per answer, store {result['store']}, medians of {result['runs']} run(s); Telegram flood control disabled"
    )
    print(fmt_row("measure", "value"))
    print(fmt_row("-" * 52, "-" * 22))
    print(fmt_row("convo wall time (s)", f"{result['convo_wall']:.2f}"))
    print(fmt_row("convo wall times of each run (s)", " ".join(f"{w:.2f}" for w in result["convo_walls"])))
    print(fmt_row("convo bot process CPU per message (ms)", f"{result['bot_cpu_ms_per_message']:.1f}"))
    print(fmt_row("replies counted / expected", f"{result['replies']} / {result['expected_replies']}"))
    print(fmt_row("users with every reply in order", f"{result['users_in_order']} / {result['users']}"))
    sample = result["baseline_sample"]
    print(fmt_row(f"baseline s/message (measured, {sample})", f"{result['baseline_per_message']:.3f}"))
    print(fmt_row("baseline wall time (EXTRAPOLATED, s)", f"{result['baseline_wall_extrapolated']:.1f}"))
    print(fmt_row("speed-up convo vs baseline (x)", f"{result['ratio']:.1f}"))
    verdict = "met" if result["target_met"] else "MISSED"
    print(fmt_row(f"target >= {result['target_ratio']:.0f}x, all in order", verdict))
    print("baseline wall time = measured seconds per message x users x messages (the baseline is sequential)")


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print the table, return the figures."""
    result = asyncio.run(measure(parse_args(argv)))
    report(result)
    return result


if __name__ == "__main__":
    main()
