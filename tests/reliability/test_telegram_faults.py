"""Telegram's own faults against a real `convo bot`: what is confirmed is never lost, what is owed is delivered once.

- Updates queued behind a busy chat are confirmed only once the inbox holds them, so SIGKILL loses none.
- An HTML 502 from a proxy in front of the Bot API, or an update aiogram cannot parse, never stops the bot.
- A reply Telegram refuses for a while (429 with a long retry_after, 5xx, HTML pages, a 10 s outage) is delivered
  once it is accepted, by the running bot, and the log says "delivered" only then.
- A preview the user deleted means a new message; a preview left by a killed process is finished, not left "▌".
- A second poller of the same bot on the same store refuses to start.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sqlite3
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from adapters.telegram import replies
from tests.e2e.harness import (
    assert_log_clean,
    bot_env,
    running_bot,
    texts,
    wait_for_text,
)
from tests.reliability.test_faults import answers_in, events_of, long_poll_waiting, raw_events, scratch_postgres, until


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/convo.db"
        return
    with scratch_postgres() as url:
        yield url


def questions_and_answers(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    asked = {e["version"]: e["data"]["text"] for e in events if e["type"] == "QuestionAsked"}
    return [(asked[e["data"]["question_version"]], e["data"]["text"]) for e in events if e["type"] == "AnswerGiven"]


async def preview_remembered(url: str, message_id: int) -> bool:
    """Whether the store's inbox holds this preview message id for an update (read straight from the store)."""
    query = "SELECT count(*) FROM inbox WHERE preview = {}"
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///")
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)) as connection:
            (count,) = connection.execute(query.format("?"), (message_id,)).fetchone()
    else:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as connection:
            row = await (await connection.execute(query.format("%s"), (message_id,))).fetchone()
            count = row[0] if row else 0
    return count > 0


def log_events(bot: Any, name: str) -> list[dict[str, Any]]:
    return [line for line in bot.log_lines() if line.get("event") == name]


async def test_updates_queued_behind_a_busy_chat_survive_sigkill(tg, ai, tmp_path, store_url):
    """Three questions in a row while the model is slow: all three are confirmed to Telegram while the first is
    answered; SIGKILL then; after a restart each is answered exactly once, in order."""
    env = bot_env(tg, ai, store_url, CONVO_STREAM="false", CONVO_RECOVERY_GRACE="0")
    alice = tg.new_user("Alice")
    questions = ["first in line", "second in line", "third in line"]
    async with running_bot(env, tmp_path) as bot:
        await long_poll_waiting(tg)
        ai.delay = 30
        for question in questions:
            tg.send_text(alice, question)
        await ai.wait_for_in_flight(1, within=30)
        await tg.wait_until_consumed(timeout=30)  # all three confirmed: Telegram will not hand them over again
        assert await bot.stop(signal.SIGKILL, timeout=10) == -signal.SIGKILL
    ai.delay = 0
    async with running_bot(env, tmp_path) as bot:
        for question in questions:
            await wait_for_text(tg, alice.id, f"echo: {question}", timeout=60)
        await tg.wait_until_consumed(timeout=20)
        assert_log_clean(bot)
    events = await events_of(env, tmp_path, str(alice.id))
    assert questions_and_answers(events) == [(q, f"echo: {q}") for q in questions]
    shown = [text for text in texts(tg, alice.id) if text.startswith("echo: ")]
    assert shown == [f"echo: {q}" for q in questions]


async def test_an_html_502_and_a_poison_update_do_not_stop_the_bot(tg, ai, tmp_path):
    """getUpdates answered by nginx's HTML 502 page three times, then an update aiogram cannot parse: the bot logs
    both, skips the poison update, answers the next question, and a restart does not die on it either."""
    env = bot_env(tg, ai, f"sqlite:///{tmp_path}/convo.db", CONVO_STREAM="false")
    alice = tg.new_user("Alice")
    async with running_bot(env, tmp_path) as bot:
        await long_poll_waiting(tg)
        tg.fail_next_html("getUpdates", status=502, times=3)
        tg.push_update({"message": {"message_id": 1, "date": "not a date", "chat": {"id": alice.id}, "text": "?"}})
        tg.send_text(alice, "after the poison")
        await wait_for_text(tg, alice.id, "echo: after the poison", timeout=60)
        await tg.wait_until_consumed(timeout=20)
        assert bot.process.returncode is None
        assert len(log_events(bot, "update_poison")) == 1
        assert len(log_events(bot, "get_updates_failed")) >= 1
        assert "<html>" not in bot.log_path.read_text()
    async with running_bot(env, tmp_path) as bot:
        tg.send_text(alice, "still here")
        await wait_for_text(tg, alice.id, "echo: still here", timeout=60)
        assert bot.process.returncode is None


async def _kinds(url: str, stream: str) -> list[str]:
    return [e["type"] for e in await raw_events(url, stream)]


async def test_a_refused_reply_is_delivered_once_accepted_and_only_then_recorded(tg, ai, tmp_path):
    """sendMessage refused by flood control with retry_after 35 (longer than any cap the bot used to honour), then
    by a 500 and by two HTML 502 pages: the running bot delivers the answer exactly once, without the user writing
    again, and ReplyDelivered is recorded only after Telegram accepted it."""
    url = f"sqlite:///{tmp_path}/convo.db"
    env = bot_env(tg, ai, url, CONVO_STREAM="false")
    alice = tg.new_user("Alice")
    async with running_bot(env, tmp_path) as bot:
        await long_poll_waiting(tg)
        tg.flood_next("sendMessage", retry_after=35)
        tg.fail_next("sendMessage", error_code=500, description="Internal Server Error")
        tg.fail_next_html("sendMessage", status=502, times=2)
        tg.send_text(alice, "worth the wait")
        await tg.wait_for(lambda: any(c.status == 429 for c in tg.calls_to("sendMessage")), timeout=30)

        async def answered() -> bool:
            return "AnswerGiven" in await _kinds(url, str(alice.id))

        await until(answered, "the answer to be recorded")
        assert "ReplyDelivered" not in await _kinds(url, str(alice.id))
        refused_at = time.monotonic()
        await wait_for_text(tg, alice.id, "echo: worth the wait", timeout=90)
        assert time.monotonic() - refused_at > 25  # the 35 s were honoured, not cut short

        async def delivered() -> bool:
            return "ReplyDelivered" in await _kinds(url, str(alice.id))

        await until(delivered, "the delivery to be recorded")
        assert bot.process.returncode is None
    assert answers_in(tg, alice.id, "echo: worth the wait") == ["echo: worth the wait"]
    statuses = [c.status for c in tg.calls_to("sendMessage")]
    assert sorted(statuses[:4]) == [429, 500, 502, 502] and statuses.count(200) == 1


async def test_an_answer_recorded_during_a_ten_second_outage_arrives_once_it_ends(tg, ai, tmp_path):
    """Every Bot API call fails (HTML 502) for 10 s right after the question is recorded: the answer arrives once
    the outage is over, exactly once, and the model was asked once."""
    url = f"sqlite:///{tmp_path}/convo.db"
    env = bot_env(tg, ai, url, CONVO_STREAM="false")
    alice = tg.new_user("Alice")
    async with running_bot(env, tmp_path) as bot:
        await long_poll_waiting(tg)
        ai.delay = 1.0
        tg.send_text(alice, "through the outage")
        await ai.wait_for_in_flight(1, within=30)
        tg.fail_next_html(None, status=502, times=1_000_000)
        await asyncio.sleep(10)
        tg.state.html_failures.clear()
        await wait_for_text(tg, alice.id, "echo: through the outage", timeout=60)
        await tg.wait_until_consumed(timeout=30)
        assert bot.process.returncode is None
    assert answers_in(tg, alice.id, "echo: through the outage") == ["echo: through the outage"]
    assert len([r for r in ai.chat_requests if r.last_user_text == "through the outage"]) == 1


@pytest.mark.slow
async def test_a_75_second_stall_of_get_updates_and_of_send_message_loses_and_repeats_nothing(tg, ai, tmp_path):
    """The next getUpdates and the next sendMessage hang for 75 s behind a proxy that then gives up (504) without
    reaching the Bot API. The bot gives up on each first: the question sent during the stalled poll is fetched
    by the next one, the stalled answer is sent again, each arrives exactly once, and the log does not say
    "delivered" while the answer hangs."""
    url = f"sqlite:///{tmp_path}/convo.db"
    env = bot_env(tg, ai, url, CONVO_STREAM="false")
    alice, bob = tg.new_user("Alice"), tg.new_user("Bob")
    async with running_bot(env, tmp_path) as bot:
        await long_poll_waiting(tg)
        tg.stall_next("getUpdates")
        tg.stall_next("sendMessage")
        tg.send_text(alice, "before the stall")
        await tg.wait_for(lambda: len(tg.calls_to("getUpdates")) >= 2 and len(tg.calls_to("sendMessage")) >= 1)
        tg.send_text(bob, "during the stall")

        async def answered() -> bool:
            return "AnswerGiven" in await _kinds(url, str(alice.id))

        await until(answered, "the answer to be recorded")
        assert "ReplyDelivered" not in await _kinds(url, str(alice.id))
        await wait_for_text(tg, bob.id, "echo: during the stall", timeout=90)
        await wait_for_text(tg, alice.id, "echo: before the stall", timeout=90)
        await tg.wait_until_consumed(timeout=30)
        assert bot.process.returncode is None
    assert answers_in(tg, alice.id, "echo: before the stall") == ["echo: before the stall"]
    assert answers_in(tg, bob.id, "echo: during the stall") == ["echo: during the stall"]
    assert sorted(r.last_user_text for r in ai.chat_requests) == ["before the stall", "during the stall"]
    # "delivered" was recorded after Telegram accepted the answer, not while it hung: by the clock of this machine,
    # which both the fake server and the bot read
    (accepted,) = [c for c in tg.calls_to("sendMessage") if c.ok and str(c.params.get("chat_id")) == str(alice.id)]
    (delivered,) = [e for e in await events_of(env, tmp_path, str(alice.id)) if e["type"] == "ReplyDelivered"]
    assert datetime.fromisoformat(delivered["recorded_at"]).timestamp() >= accepted.wall_time


async def test_a_deleted_preview_and_failing_edits_neither_lose_the_answer_nor_repeat_the_model_call(tg, ai, tmp_path):
    """The answer streams into a preview; edits fail with 500s and the user deletes the preview: the model is asked
    once, and the whole answer arrives as a new message."""
    answer = " ".join(f"word{i}" for i in range(60))
    ai.set_answer(answer)
    ai.chunk_delay = 0.05
    env = bot_env(tg, ai, f"sqlite:///{tmp_path}/convo.db", CONVO_STREAM="edits", CONVO_STREAM_EDIT_INTERVAL="0.3")
    alice = tg.new_user("Alice")
    async with running_bot(env, tmp_path) as bot:
        await long_poll_waiting(tg)
        tg.fail_next("editMessageText", error_code=500, description="Internal Server Error", times=2)
        tg.send_text(alice, "stream to me")
        preview = await tg.wait_for(lambda: next(iter(tg.bot_messages(alice.id)), None), timeout=30)
        preview.deleted = True
        await wait_for_text(tg, alice.id, answer, timeout=60)
        await tg.wait_until_consumed(timeout=20)
        assert_log_clean(bot)
    assert len(ai.chat_requests) == 1
    assert texts(tg, alice.id) == [answer]


async def test_sigkill_mid_stream_leaves_no_half_written_preview(tg, ai, tmp_path, store_url):
    """SIGKILL while an answer streams into its preview: after the restart that same message shows the whole
    answer, and no message is left ending in "▌"."""
    answer = " ".join(f"token{i}" for i in range(80))
    ai.set_answer(answer)
    ai.chunk_delay = 0.1
    env = bot_env(tg, ai, store_url, CONVO_STREAM="edits", CONVO_RECOVERY_GRACE="0")
    alice = tg.new_user("Alice")
    async with running_bot(env, tmp_path) as bot:
        await long_poll_waiting(tg)
        tg.send_text(alice, "a long story please")
        preview = await tg.wait_for(
            lambda: next((m for m in tg.bot_messages(alice.id) if (m.text or "").endswith("▌")), None), timeout=30
        )
        await until(lambda: preview_remembered(store_url, preview.message_id), "the preview's id to reach the inbox")
        assert await bot.stop(signal.SIGKILL, timeout=10) == -signal.SIGKILL
    ai.chunk_delay = 0
    async with running_bot(env, tmp_path) as bot:
        await wait_for_text(tg, alice.id, answer, timeout=60)
        await tg.wait_until_consumed(timeout=20)
        assert_log_clean(bot)
    assert texts(tg, alice.id) == [answer]
    assert tg.message(alice.id, preview.message_id).text == answer


async def test_a_second_poller_of_the_same_bot_and_store_refuses_to_start(tg, ai, tmp_path, store_url):
    """Two `convo bot` processes in polling mode, one token, one store: the second exits with one line naming
    the cause; the first keeps answering, and nothing is answered twice."""
    env = bot_env(tg, ai, store_url, CONVO_STREAM="false")
    alice = tg.new_user("Alice")
    async with running_bot(env, tmp_path) as first:
        await long_poll_waiting(tg)
        second = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "entrypoints.cli",
            "bot",
            env=env,
            cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(second.communicate(), 60)
        assert second.returncode not in (0, None)
        said = (out + err).decode().strip().splitlines()
        refusal = [line for line in said if "already polling" in line]
        assert len(refusal) == 1 and "Traceback" not in "\n".join(said), said
        for number in range(5):
            tg.send_text(alice, f"question {number}")
        for number in range(5):
            await wait_for_text(tg, alice.id, f"echo: question {number}", timeout=60)
        assert first.process.returncode is None
    assert sorted(texts(tg, alice.id)) == sorted(f"echo: question {n}" for n in range(5))


async def test_an_answer_cut_off_for_good_keeps_what_the_user_already_saw(tg, ai, tmp_path):
    """The model's stream is cut after some words on every attempt: the preview the user watched grow is kept,
    marked as cut short with the failure's reason, instead of being replaced by the reason alone."""
    answer = " ".join(f"part{i}" for i in range(40))
    ai.set_answer(answer)
    ai.chunk_delay = 0.05
    ai.fail_next("cut", after_chunks=20, times=2)
    env = bot_env(tg, ai, f"sqlite:///{tmp_path}/convo.db", CONVO_STREAM="edits", CONVO_MODEL_RETRIES="2")
    alice = tg.new_user("Alice")
    async with running_bot(env, tmp_path) as bot:
        await long_poll_waiting(tg)
        tg.send_text(alice, "tell me everything")
        shown = await wait_for_text(tg, alice.id, "⚠️", timeout=60)
        await tg.wait_until_consumed(timeout=20)
        assert_log_clean(bot)
    assert len(tg.bot_messages(alice.id)) == 1
    kept, _, reason = shown.partition("\n\n⚠️ ")
    assert kept.startswith("part0 part1") and kept in answer and "▌" not in shown
    assert reason == replies.failure("upstream")
    events = await events_of(bot_env(tg, ai, f"sqlite:///{tmp_path}/convo.db"), tmp_path, str(alice.id))
    assert [e["type"] for e in events if e["type"] in ("AnswerGiven", "AnswerFailed")] == ["AnswerFailed"]
