"""Two webhook workers on one PostgreSQL database, one of them SIGKILLed and restarted again and again.

Telegram posts every update to one URL, a load balancer in front of workers A and B (`Balancer`, below), which
hands each POST to one of them at random and answers 502 for a worker that is down (Telegram then sends the update
again, and it may reach the other one). Twenty users ask at once while the model streams slowly; A is killed
mid-answers (each user asked twice, so a chat's two updates often reach different workers, one waiting for the
other); while it is down every user asks again, so B gets new updates of the very chats whose earlier updates
A left claimed, and must take those over once A's claims go stale; then A starts again, and its start-up (resuming
the inbox, recovering the log's pending requests) races B's takeover. Three times, at random moments (the seed is
printed).

Afterwards: every question answered and on screen; no answer shown twice; no preview left half-written ("▌");
each log holds each question once and its answer once, delivered once, versions without gaps. The one repetition
the design allows is the kill test's (test_kill_under_load.py): a crash between Telegram accepting a message and the
log recording it may show that one message twice; a second copy is accepted only for a message whose first copy
Telegram accepted in the 3 s before a kill, and then only one per kill. A streamed preview Telegram accepted just
before the kill, but the inbox never heard of, is that same case (the next worker cannot edit a preview it does
not know of), and it is held to the same rule and the same budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import psycopg
import pytest
from aiohttp import web

from tests.doubles.openai_server import RecordedRequest
from tests.doubles.telegram import FakeTelegram, StoredMessage
from tests.e2e.harness import BotProcess, assert_log_clean, bot_env, running_bot, texts
from tests.reliability.test_faults import WEBHOOK_SECRET, events_of, free_port, scratch_postgres, until
from tests.reliability.test_kill_under_load import KILL_WINDOW

USERS = 20
KILLS = 3
PREVIEW_MARK = "▌"
HOP_BY_HOP = frozenset({"host", "content-length", "transfer-encoding", "connection", "keep-alive"})
"""Request headers a proxy does not pass on; everything else (the secret token above all) goes to the worker."""


class Balancer:
    """A load balancer in front of the workers: each POST goes to one picked at random, its answer (status and
    body) goes back to Telegram; a worker that is down or drops the connection is answered 502, as nginx does."""

    def __init__(self, workers: dict[str, int], chooser: random.Random) -> None:
        self._workers = workers
        self._chooser = chooser
        self.routed: Counter[tuple[str, int]] = Counter()
        """(worker, status) of every POST passed on."""
        self.accepted: dict[int, set[str]] = {}
        """The workers that answered 200 for each update id."""

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[str]:
        """Listen on a free port; the URL to give the workers as --webhook-url."""
        port = free_port()
        app = web.Application()
        app.router.add_post("/hook", self._forward)
        runner = web.AppRunner(app)
        await runner.setup()
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:
            self._http = http
            await web.TCPSite(runner, "127.0.0.1", port).start()
            try:
                yield f"http://127.0.0.1:{port}/hook"
            finally:
                await runner.cleanup()

    async def _forward(self, request: web.Request) -> web.Response:
        name = self._chooser.choice(sorted(self._workers))
        headers = {key: value for key, value in request.headers.items() if key.lower() not in HOP_BY_HOP}
        url = f"http://127.0.0.1:{self._workers[name]}{request.path_qs}"
        update = await request.read()
        try:
            async with self._http.post(
                url, data=update, headers=headers, timeout=aiohttp.ClientTimeout(total=8)
            ) as answer:
                body = await answer.read()
                self.routed[name, answer.status] += 1
                if answer.status == 200:
                    self.accepted.setdefault(json.loads(update)["update_id"], set()).add(name)
                return web.Response(status=answer.status, body=body, content_type=answer.content_type)
        except (aiohttp.ClientError, TimeoutError):
            self.routed[name, 502] += 1
            return web.Response(status=502, text="502 Bad Gateway")


async def slow_echo(request: RecordedRequest) -> str:
    """The model thinks 0.2-1.0 s, then streams (see `ai.chunk_delay`)."""
    await asyncio.sleep(random.uniform(0.2, 1.0))
    return f"echo: {request.last_user_text}"


async def healthy(port: int) -> bool:
    """The worker on `port` answers /healthz (its webhook server is up)."""
    async with aiohttp.ClientSession() as http:
        with contextlib.suppress(aiohttp.ClientError):
            async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                return response.status == 200
    return False


@pytest.mark.postgres
@pytest.mark.slow
async def test_two_webhook_workers_one_killed_and_restarted_show_no_answer_twice(tg, ai, tmp_path):
    seed = random.randrange(1_000_000)
    print(f"\nseed {seed}")
    chooser = random.Random(seed)
    ai.set_answer(slow_echo)
    ai.chunk_delay = 0.25
    ports = {"A": free_port(), "B": free_port()}
    balancer = Balancer(ports, random.Random(seed + 1))
    users = [tg.register_user(tg.new_user(f"User{n}")) for n in range(USERS)]
    asked: dict[int, list[str]] = {user.id: [] for user in users}
    updates: dict[int, list[int]] = {user.id: [] for user in users}

    def everyone_asks(round_name: str) -> None:
        for n, user in enumerate(users):
            question = f"u{n} {round_name}"
            asked[user.id].append(question)
            updates[user.id].append(tg.send_text(user, question).update_id or 0)

    def unanswered() -> dict[int, tuple[list[str], list[str]]]:
        """Per chat still waiting: the questions whose answer is not on screen, and what is on screen."""
        missing = {user_id: [q for q in qs if f"echo: {q}" not in texts(tg, user_id)] for user_id, qs in asked.items()}
        return {user_id: (qs, texts(tg, user_id)) for user_id, qs in missing.items() if qs}

    kills: list[float] = []
    a_runs: list[BotProcess] = []
    with scratch_postgres() as url:
        # CONVO_RECOVERY_GRACE stays at the default for a shared store (20 s), as a deployment of workers has it
        streaming = {"CONVO_STREAM": "edits", "CONVO_STREAM_EDIT_INTERVAL": "0.7", "CONVO_MODEL_TIMEOUT": "10"}
        env = bot_env(tg, ai, url, CONVO_WEBHOOK_SECRET=WEBHOOK_SECRET, **streaming)
        env_of = {name: env | {"CONVO_WEBHOOK_LISTEN": f"127.0.0.1:{port}"} for name, port in ports.items()}
        for name in ports:
            (tmp_path / name).mkdir()
        began = time.monotonic()
        async with contextlib.AsyncExitStack() as stack:
            hook = await stack.enter_async_context(balancer.serving())
            b_run = running_bot(env_of["B"], tmp_path / "B", "--webhook-url", hook)
            b_starting = asyncio.create_task(stack.enter_async_context(b_run))  # B starts as A first does
            stack.push_async_callback(_settled, b_starting)
            for round_number in range(KILLS + 1):
                async with running_bot(env_of["A"], tmp_path / "A", "--webhook-url", hook) as a:
                    a_runs.append(a)
                    b = await b_starting
                    await until(lambda: healthy(ports["A"]), "worker A to serve", timeout=30)
                    await until(lambda: healthy(ports["B"]), "worker B to serve", timeout=30)
                    if round_number:  # A's start-up (inbox resumed, log recovered) races B's takeover meanwhile
                        await asyncio.sleep(chooser.uniform(0.0, 4.0))
                    # twice each before a kill: a chat's two updates often reach different workers, one waiting
                    for turn in (1, 2) if round_number < KILLS else (1,):
                        everyone_asks(f"r{round_number} both up {turn}")
                    if round_number == KILLS:
                        with contextlib.suppress(TimeoutError):
                            await tg.wait_for(lambda: not unanswered(), timeout=150)
                        assert not unanswered(), unanswered()
                        answered_after = time.monotonic() - began
                        await until(_confirmed(tg), "every update to be confirmed", timeout=30)
                        await ai.wait_until_idle(within=30)
                        await asyncio.sleep(1.0)  # room for a late duplicate to show
                        break
                    await asyncio.sleep(chooser.uniform(0.5, 3.5))
                    kills.append(time.monotonic())
                    assert await a.stop(signal.SIGKILL, timeout=10) == -signal.SIGKILL
                everyone_asks(f"r{round_number} A down")  # B alone takes these, behind A's stale claims
                await asyncio.sleep(chooser.uniform(1.0, 12.0))
            for worker in [b, *a_runs]:
                assert_log_clean(worker, WEBHOOK_SECRET)
        logs = await until(_all_delivered(url, asked), "every answer to be recorded as delivered", timeout=20)
        replayed = await events_of(env, tmp_path, str(users[0].id))
    assert [(e["version"], e["type"]) for e in replayed] == [(e["version"], e["type"]) for e in logs[str(users[0].id)]]
    handled = {"A": _handled(a_runs), "B": _handled([b])}
    taken_over = [update_id for update_id, by in balancer.accepted.items() if by == {"A"} and update_id in handled["B"]]
    assert taken_over, "B finished none of the updates A had accepted: the scenario did not happen"

    repeated: list[tuple[int, str, float]] = []
    for user in users:
        mine = tg.bot_messages(user.id)
        shown = Counter(texts(tg, user.id))
        for message in mine:
            if (message.text or "").endswith(PREVIEW_MARK):
                repeated.append((user.id, message.text or "", _preview_sent_at(tg, message)))
        for question in asked[user.id]:
            answer = f"echo: {question}"
            copies = shown[answer]
            assert copies >= 1, (question, shown)
            assert copies <= 2, (question, shown)
            if copies == 2:
                repeated.append((user.id, answer, min(_accepted_at(tg, user.id, answer))))
        events = logs[str(user.id)]
        assert [e["version"] for e in events] == list(range(1, len(events) + 1))
        questions = [e for e in events if e["type"] == "QuestionAsked"]
        assert [e["data"]["text"] for e in questions] == asked[user.id]
        assert [e["causation_id"] for e in questions] == [f"tg:{update_id}" for update_id in updates[user.id]]
        answers = [e for e in events if e["type"] == "AnswerGiven"]
        assert [e["data"]["question_version"] for e in answers] == [e["version"] for e in questions]
        assert [e["data"]["text"] for e in answers] == [f"echo: {q}" for q in asked[user.id]]
        delivered = [e["data"]["request_version"] for e in events if e["type"] == "ReplyDelivered"]
        assert delivered == [e["version"] for e in questions]
        assert not [e for e in events if e["type"] in ("AnswerFailed", "DeliveryFailed")]
    for user_id, text, sent in repeated:  # each a message Telegram accepted just before a kill, and one per kill
        log = "\n".join(f"  {e['version']} {e['type']} {e['causation_id']} {e['data']}" for e in logs[str(user_id)])
        assert any(kill - KILL_WINDOW <= sent <= kill + 1 for kill in kills), (
            f"{text!r} repeated in chat {user_id}, first accepted at {sent:.2f}, kills at {kills}; its log:\n{log}"
        )
    assert len(repeated) <= KILLS, repeated
    questions_asked = sum(len(qs) for qs in asked.values())
    near_kills = [(text, round(sent - min(kills, key=lambda kill: abs(kill - sent)), 2)) for _, text, sent in repeated]
    print(
        f"two workers, {KILLS} kills of A: {questions_asked} questions, all answered {answered_after:.1f} s after "
        f"the first start; {len(ai.chat_requests)} model calls; B finished {len(taken_over)} updates A had accepted, "
        f"A finished {len(handled['A'])}; repeated (s from a kill) {near_kills}; posts {dict(balancer.routed)}"
    )


async def _settled(task: asyncio.Task[Any]) -> None:
    """Cancel the task unless it is done, and wait for it (a worker still starting is stopped)."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task


def _handled(bots: list[BotProcess]) -> set[int]:
    """The updates these processes logged as handled (a killed process may have lost its last lines)."""
    return {line["update_id"] for bot in bots for line in bot.log_lines() if line.get("event") == "update_handled"}


def _confirmed(tg: FakeTelegram) -> Any:
    """Telegram holds no update unconfirmed (every webhook POST was answered 2xx)."""

    async def check() -> bool:
        return not tg.pending_updates

    return check


def _all_delivered(url: str, asked: dict[int, list[str]]) -> Any:
    """Every stream's log, once each holds a ReplyDelivered for each question asked."""

    async def check() -> dict[str, list[dict[str, Any]]] | None:
        logs = await _logs(url)
        for user_id, questions in asked.items():
            delivered = [e for e in logs.get(str(user_id), []) if e["type"] == "ReplyDelivered"]
            if len(delivered) < len(questions):
                return None
        return logs

    return check


async def _logs(url: str) -> dict[str, list[dict[str, Any]]]:
    """Every stream's events (version, type, causation_id, data), read straight from the store in one query."""
    query = "SELECT stream, version, type, causation_id, data FROM events ORDER BY stream, version"
    async with await psycopg.AsyncConnection.connect(url) as connection:
        rows = await (await connection.execute(query)).fetchall()
    logs: dict[str, list[dict[str, Any]]] = {}
    for stream, version, kind, causation_id, data in rows:
        logs.setdefault(stream, []).append(
            {"version": version, "type": kind, "causation_id": causation_id, "data": data}
        )
    return logs


def _accepted_at(tg: FakeTelegram, chat_id: int, text: str) -> list[float]:
    """When Telegram accepted each message or edit that put `text` on screen in the chat."""
    return [
        call.time
        for call in tg.calls
        if call.method.lower() in ("sendmessage", "editmessagetext")
        and call.status == 200
        and call.params.get("text") == text
        and str(call.params.get("chat_id")) == str(chat_id)
    ]


def _preview_sent_at(tg: FakeTelegram, message: StoredMessage) -> float:
    """When Telegram accepted the sendMessage that created `message`."""
    return next(
        call.time
        for call in tg.calls_to("sendMessage")
        if call.status == 200
        and (call.response.get("result") or {}).get("message_id") == message.message_id
        and str(call.params.get("chat_id")) == str(message.chat_id)
    )
