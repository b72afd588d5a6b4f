"""Security against a real `convo bot`: the allowlist for every update kind, the webhook secret, secrets kept out
of logs, replies and replay output, and /forget + `convo forget` erasing a stream in SQLite, PostgreSQL and Fauna."""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import psycopg
import pytest
from psycopg import sql

from adapters.telegram import replies
from tests.contract.backends import require_postgres
from tests.doubles.fauna import FaunaDouble
from tests.doubles.telegram import FakeTelegram, StoredMessage, User
from tests.e2e.harness import (
    API_KEY,
    BotProcess,
    assert_log_clean,
    bot_env,
    conversation,
    event_types,
    greet_ask_and_reject_the_key,
    replay_json,
    replay_list,
    run_cli,
    running_bot,
    secrets_in,
    texts,
    wait_for_text,
    webhook_secret_of,
)
from tests.e2e.test_webhook import free_port, raw_text_update

POSTGRES_SERVER = "postgresql://postgres@127.0.0.1:5432/"


def _is_one_answered_question(types: list[str]) -> bool:
    """A new stream with one question and its answer (bookkeeping events such as deliveries aside)."""
    return (
        types[:2] == ["UserRegistered", "QuestionAsked"]
        and types.count("QuestionAsked") == 1
        and (types.count("AnswerGiven") == 1)
    )


def _answer_to(tg: FakeTelegram, query_id: str) -> Callable[[], Any]:
    return lambda: next((a for a in tg.callback_answers if a.callback_query_id == query_id), None)


def _denied_lines(bot: BotProcess, user: User) -> list[dict[str, Any]]:
    return [
        line
        for line in bot.log_lines()
        if line.get("event") == "update_handled" and line.get("user_id") == user.id and line.get("outcome") == "denied"
    ]


# ---------------------------------------------------------------------------------------------------- allowlist


async def test_the_allowlist_holds_for_every_update_kind_and_denied_users_leave_no_events(tg, ai, tmp_path):
    alice, bob = tg.new_user("Alice"), tg.new_user("Bob")
    group = tg.new_group("Mixed company")
    env = bot_env(tg, ai, f"sqlite:///{tmp_path}/convo.db", CONVO_ALLOWED_USERS=f" {alice.id} ,")
    async with running_bot(env, tmp_path) as bot:
        bob_text = tg.send_text(bob, "let me in")
        tg.send_command(bob, "start")
        tg.send_command(bob, "image", "a red fox")
        tg.send_sticker(bob)
        await tg.wait_for_messages(bob.id, 4, timeout=20)
        query = tg.press_button(bob, tg.bot_messages(bob.id)[0], f"forget:yes:{bob.id}", strict=False)
        tg.edit_message(bob, bob_text, "let me in, please")
        tg.mention_bot(bob, group, "what is a fox?")
        tg.send_command(bob, "reset", chat=group, mention_bot=True)
        denied_answer = await tg.wait_for(_answer_to(tg, query), timeout=10)
        await tg.wait_until_consumed(timeout=10)

        tg.mention_bot(alice, group, "and a wolf?")
        await wait_for_text(tg, group.id, "echo: Alice: and a wolf?")
        tg.send_text(alice, "hello")
        await wait_for_text(tg, alice.id, "echo: hello")
        await tg.wait_until_consumed(timeout=10)
        assert bot.process.returncode is None
        assert_log_clean(bot)
        assert len(_denied_lines(bot, bob)) == 8  # text, /start, /image, sticker, button, edit, mention, command
    assert texts(tg, bob.id) == [replies.NOT_ALLOWED] * 4  # one per private message; edits are not answered
    assert denied_answer.show_alert and denied_answer.text == replies.NOT_ALLOWED
    assert texts(tg, group.id) == ["echo: Alice: and a wolf?"]  # nothing said to the group about Bob
    assert [r.messages[-1]["content"] for r in ai.chat_requests] == ["Alice: and a wolf?", "hello"]
    assert ai.image_requests == []
    assert sorted(await replay_list(env, tmp_path)) == sorted([str(alice.id), str(group.id)])
    group_log = await replay_json(env, tmp_path, str(group.id))
    assert _is_one_answered_question(conversation(group_log["events"]))
    assert str(bob.id) not in str(group_log["events"])
    missing = await run_cli(env, tmp_path, "replay", str(bob.id), "--json")
    assert missing.returncode == 1


# ------------------------------------------------------------------------------------------------------ webhook


async def test_webhook_requests_without_the_right_secret_get_401_and_record_nothing(tg, ai, tmp_path):
    port = free_port()
    secret = "rel-Webhook_secret-" + secrets.token_hex(8)
    env = bot_env(
        tg, ai, f"sqlite:///{tmp_path}/convo.db", CONVO_WEBHOOK_LISTEN=f"127.0.0.1:{port}", CONVO_WEBHOOK_SECRET=secret
    )
    alice, mallory = tg.new_user("Alice"), tg.new_user("Mallory")
    async with running_bot(env, tmp_path, "--webhook-url", f"http://127.0.0.1:{port}/hook") as bot:
        await tg.wait_for(lambda: tg.webhook.active, timeout=20)
        forged = [None, "", "wrong", secret.upper(), secret[:-1], secret + "x"]
        statuses = [await tg.deliver_webhook(raw_text_update(mallory.id, "forged"), secret=s) for s in forged]
        assert statuses == [401] * len(forged)
        tg.send_text(alice, "over the hook")
        await wait_for_text(tg, alice.id, "echo: over the hook")
        await tg.wait_until_consumed(timeout=10)
        assert_log_clean(bot, secret)
        refused = [line for line in bot.log_lines() if line.get("event") == "webhook_unauthorized"]
        assert len(refused) == len(forged)
        assert not any(line.get("update_id") for line in refused)
    assert tg.bot_messages(mallory.id) == []
    assert [r.messages[-1]["content"] for r in ai.chat_requests] == ["over the hook"]
    assert await replay_list(env, tmp_path) == [str(alice.id)]


# ------------------------------------------------------------------------------------------------------ secrets


@asynccontextmanager
async def fauna_double(secret: str | None = None) -> AsyncIterator[FaunaDouble]:
    """A running Fauna double (its own thread), stopped at exit."""
    double = FaunaDouble(secret) if secret else FaunaDouble()
    await asyncio.to_thread(double.start)
    try:
        yield double
    finally:
        await asyncio.to_thread(double.stop)


def _everything_the_bot_said(tg: FakeTelegram) -> str:
    sent = tg.bot_messages(include_deleted=True)
    parts = [text or "" for m in sent for text in [*m.texts, m.caption]]
    parts += [a.text or "" for a in tg.callback_answers]
    parts += [str(call.params) for call in tg.calls]  # every request the bot made, parameters included
    return "\n".join(parts)


async def test_secrets_appear_in_no_log_line_reply_or_replay_output(tg, ai, tmp_path):
    fauna_secret = "fnAErel-" + secrets.token_hex(12)
    async with fauna_double(fauna_secret) as fauna:
        env = bot_env(
            tg, ai, "fauna", FAUNA_SECRET=fauna_secret, FAUNA_ENDPOINT=fauna.endpoint, CONVO_LOG_LEVEL="DEBUG"
        )
        all_secrets = (tg.token, API_KEY, fauna_secret, webhook_secret_of(env))
        alice = tg.new_user("Alice", username="alice")
        async with running_bot(env, tmp_path) as bot:
            await greet_ask_and_reject_the_key(tg, ai, alice)
            ai.fail_next("invalid_api_key", endpoint="images")
            tg.send_command(alice, "image", "a fox with a rejected key")
            await tg.wait_for(lambda: sum("misconfigured" in t for t in texts(tg, alice.id)) == 2, timeout=15)
            tg.fail_next("sendMessage", error_code=400, description="Bad Request: can't parse entities")
            tg.send_command(alice, "help")
            tg.fail_next("sendMessage", error_code=500)
            tg.send_command(alice, "chat")
            tg.flood_next("sendMessage", retry_after=1)
            tg.send_text(alice, "answer despite a flood wait")
            await wait_for_text(tg, alice.id, "echo: answer despite a flood wait", timeout=20)
            fauna.fail_next("unavailable", "the node is down")
            tg.send_text(alice, "while the store is down")
            await tg.wait_until_consumed(timeout=10)  # its reply: test_a_store_outage_gets_the_documented_reply
            tg.fail_next("getUpdates", error_code=502, description="Bad Gateway")
            tg.send_text(alice, "after a failed poll")
            await wait_for_text(tg, alice.id, "echo: after a failed poll", timeout=20)
            tg.send_command(alice, "forget")
            await wait_for_text(tg, alice.id, "Erase everything")
            await tg.wait_until_consumed(timeout=10)
            assert bot.process.returncode is None
        outputs = [
            await run_cli(env, tmp_path, "replay", str(alice.id), "--full"),
            await run_cli(env, tmp_path, "replay", str(alice.id), "--json"),
            await run_cli(env, tmp_path, "replay", str(alice.id), "--at", "2"),
            await run_cli(env, tmp_path, "replay", "--list"),
            await run_cli(env, tmp_path, "replay", "999"),  # an error path
        ]
    assert [o.returncode for o in outputs] == [0, 0, 0, 0, 1]
    assert "after a failed poll" in outputs[0].stdout  # the replay really shows the stream
    logs = sorted(tmp_path.glob("bot-*.log"))
    lines = [line for path in logs for line in path.read_text(encoding="utf-8", errors="replace").splitlines()]
    assert len(lines) > 20
    assert any('"update_handled"' in line for line in lines)  # DEBUG-level session log is really there
    leaking = [line for line in lines if secrets_in(line, *all_secrets)]
    assert leaking == []
    assert not any('"update_crashed"' in line for line in lines)
    assert secrets_in(_everything_the_bot_said(tg), *all_secrets) == []
    for output in outputs:
        assert secrets_in(output.stdout + output.stderr, *all_secrets) == [], output.args


async def test_a_store_outage_gets_the_documented_reply(tg, ai, tmp_path):
    async with fauna_double() as fauna:
        env = bot_env(tg, ai, "fauna", FAUNA_SECRET=fauna.secret, FAUNA_ENDPOINT=fauna.endpoint)
        alice = tg.new_user("Alice")
        async with running_bot(env, tmp_path):
            await _chat(tg, alice, "hello")
            fauna.fail_next("unavailable", "the node is down")
            tg.send_text(alice, "while the store is down")
            await wait_for_text(tg, alice.id, replies.STORE_DOWN, timeout=15)  # generous: load slows it


# ------------------------------------------------------------------------------------------------------- forget


@attrs.frozen
class Store:
    """A store for one test: the CONVO_STORE value, its extra environment, and a direct reader of its events."""

    url: str
    env: dict[str, str]
    events_by_stream: Callable[[], dict[str, int]]


def _sqlite_counts(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as connection:
        return dict(connection.execute("SELECT stream, count(*) FROM events GROUP BY stream").fetchall())


def _postgres_counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as connection:
        return dict(connection.execute("SELECT stream, count(*) FROM events GROUP BY stream").fetchall())


def _fauna_counts(double: FaunaDouble) -> dict[str, int]:
    counts: dict[str, int] = {}
    for document in list(double.database.documents.get("events", {}).values()):
        stream = str(document.data["stream"])
        counts[stream] = counts.get(stream, 0) + 1
    return counts


@asynccontextmanager
async def store_for(kind: str, tmp_path: Path) -> AsyncIterator[Store]:
    """A fresh store of a kind: an SQLite file, a new PostgreSQL database (dropped at exit), or a Fauna double."""
    if kind == "sqlite":
        path = tmp_path / "convo.db"
        yield Store(f"sqlite:///{path}", {}, lambda: _sqlite_counts(path))
    elif kind == "postgres":
        require_postgres()
        name = f"convo_rel_{secrets.token_hex(6)}"
        async with await psycopg.AsyncConnection.connect(POSTGRES_SERVER + "postgres", autocommit=True) as admin:
            await admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            try:
                url = POSTGRES_SERVER + name
                yield Store(url, {}, lambda: _postgres_counts(url))
            finally:
                await admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    else:
        async with fauna_double() as double:
            env = {"FAUNA_SECRET": double.secret, "FAUNA_ENDPOINT": double.endpoint}
            yield Store("fauna", env, lambda: _fauna_counts(double))


async def _chat(tg: FakeTelegram, user: User, text: str) -> None:
    tg.send_text(user, text)
    await wait_for_text(tg, user.id, f"echo: {text}")


async def _confirm_forget(tg: FakeTelegram, user: User) -> StoredMessage:
    tg.send_command(user, "forget")
    confirm: StoredMessage = await tg.wait_for(
        lambda: next((m for m in tg.bot_messages(user.id) if m.text == replies.FORGET_CONFIRM), None), timeout=10
    )
    assert confirm.reply_markup is not None
    yes = confirm.reply_markup["inline_keyboard"][0][0]["callback_data"]
    tg.press_button(user, confirm, yes)
    await tg.wait_for(lambda: tg.message(user.id, confirm.message_id).text == replies.FORGET_DONE, timeout=10)
    return confirm


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres), "fauna"])
async def test_forget_and_convo_forget_erase_the_stream_in_every_store(tg, ai, tmp_path, kind):
    alice, bob, carol = tg.new_user("Alice"), tg.new_user("Bob"), tg.new_user("Carol")
    ids = [str(alice.id), str(bob.id), str(carol.id)]
    async with store_for(kind, tmp_path) as store:
        env = bot_env(tg, ai, store.url, **store.env)
        async with running_bot(env, tmp_path) as bot:
            for user in (alice, bob, carol):
                await _chat(tg, user, f"remember {user.first_name}")
            await _chat(tg, alice, "and this too")
            before = store.events_by_stream()
            assert sorted(before) == sorted(ids) and before[ids[0]] > before[ids[1]] >= 3

            await _confirm_forget(tg, alice)  # /forget in Telegram
            forgot = await run_cli(env, tmp_path, "forget", ids[1], "--yes")  # the operator, while the bot runs
            assert forgot.returncode == 0, forgot.stderr
            assert f"erased stream {ids[1]} ({before[ids[1]]} events)" in forgot.stdout
            again = await run_cli(env, tmp_path, "forget", ids[1], "--yes")
            assert again.returncode == 1

            assert store.events_by_stream() == {ids[2]: before[ids[2]]}  # read back from the store itself
            for gone in ids[:2]:
                missing = await run_cli(env, tmp_path, "replay", gone, "--json")
                assert missing.returncode == 1
                assert "no events" in missing.stderr and "Traceback" not in missing.stderr
            assert await replay_list(env, tmp_path) == [ids[2]]
            assert _is_one_answered_question(await event_types(env, tmp_path, ids[2]))

            await _chat(tg, alice, "who am I?")  # a forgotten user starts from nothing
            await tg.wait_until_consumed(timeout=10)
            assert_log_clean(bot)
        after = store.events_by_stream()
        assert sorted(after) == sorted([ids[0], ids[2]]) and after[ids[2]] == before[ids[2]]
        assert _is_one_answered_question(await event_types(env, tmp_path, ids[0]))
    assert ai.chat_requests[-1].messages[1:] == [{"role": "user", "content": "who am I?"}]


async def test_forget_leaves_no_trace_in_the_sqlite_files_or_the_logs(tg, ai, tmp_path):
    """A marker from the erased conversation (a question streamed into a preview, its answer, a question queued
    behind it) is found nowhere after /forget: not in the database, its WAL or journal, nor in the bot's log."""
    marker = f"marker-{secrets.token_hex(6)}"
    env = bot_env(tg, ai, f"sqlite:///{tmp_path}/convo.db", CONVO_LOG_LEVEL="DEBUG")
    alice, bob = tg.new_user("Alice"), tg.new_user("Bob")
    async with running_bot(env, tmp_path) as bot:
        await _chat(tg, bob, "bob stays")
        for number in range(3):
            await _chat(tg, alice, f"{marker} question {number}")
        files_before = b"".join(path.read_bytes() for path in tmp_path.glob("convo.db*"))
        assert marker.encode() in files_before
        await _confirm_forget(tg, alice)
        await tg.wait_until_consumed(timeout=20)
        await _chat(tg, bob, "bob still here")
    leftovers = {
        path.name: marker.encode() in path.read_bytes() for path in tmp_path.glob("convo.db*") if path.is_file()
    }
    assert leftovers and not any(leftovers.values()), leftovers
    assert marker not in bot.log_path.read_text(encoding="utf-8", errors="replace")
