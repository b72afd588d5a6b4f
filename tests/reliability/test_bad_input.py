"""The whole bad-input corpus (bad_inputs.py) fed to ONE `convo bot` process on SQLite.

A module fixture runs the session once (its own local Telegram and OpenAI servers) and records what happened; the
tests then check each input (one test id per kind), the flood, and that the process survived and its log folds.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import attrs
import pytest

from tests.doubles.openai_server import FakeOpenAI
from tests.doubles.telegram import FakeTelegram, utf16_len
from tests.e2e.harness import (
    BotProcess,
    assert_log_clean,
    bot_env,
    replay_list,
    run_cli,
    running_bot,
    texts,
    updates_finished,
)
from tests.reliability.bad_inputs import CORPUS, FLOOD_SIZE, BadInput, Scene

BATCH = 6
"""Inputs injected together (fresh users each), then awaited: keeps the run short without flooding Telegram."""
LATENCY_BOUND = 5.0
"""Seconds within which another user's question is answered during a flood (a behavioural bound)."""

KNOWN_BUGS: dict[str, str] = {}
"""Corpus entries whose behaviour is a known product bug (the test is xfail(strict=True) with this reason)."""


@attrs.define
class Seen:
    """What one input led to."""

    chat_id: int
    said: list[str]
    stream_exists: bool


@attrs.define
class Session:
    """Everything the one bot session left behind."""

    seen: dict[str, Seen] = attrs.field(factory=dict)
    alive_at_end: bool = False
    exit_code: int | None = None
    log_problem: str | None = None
    log_lines: int = 0
    streams: list[str] = attrs.field(factory=list)
    replay_failures: list[str] = attrs.field(factory=list)
    events_checked: int = 0
    list_text_ok: bool = False
    oversized: list[int] = attrs.field(factory=list)
    flood_chat: int = 0
    flood_too_fast: int = 0
    flood_questions: int = 0
    other_latency: float | None = None
    flood_updates: frozenset[int] = frozenset()
    unhandled: list[int] = attrs.field(factory=list)
    """Updates handed to the bot that its log never says it finished with."""


def _said(tg: FakeTelegram, scene: Scene, chat_id: int) -> list[str]:
    answers = {a.callback_query_id: a.text or "" for a in tg.callback_answers}
    return [*texts(tg, chat_id), *(answers[q] for q in scene.queries if q in answers)]


def _new_scene(tg: FakeTelegram, ai: FakeOpenAI) -> Scene:
    user = tg.new_user("Alice")
    return Scene(tg, ai, user, tg.new_group(f"Group of {user.id}"))


async def _settle(tg: FakeTelegram, pending: list[tuple[BadInput, Scene, int]], timeout: float = 8.0) -> None:
    """Wait until every update is confirmed and every expected reply is there (or give up: the tests will say)."""

    def replied(item: BadInput, scene: Scene, chat: int) -> bool:
        said = _said(tg, scene, chat)
        if item.name in KNOWN_BUGS:
            return bool(said)
        return item.reply is None or any(item.reply in text for text in said)

    def done() -> bool:
        return all(replied(item, scene, chat) for item, scene, chat in pending)

    try:
        await tg.wait_until_consumed(timeout=timeout)
        await tg.wait_for(done, timeout=timeout)
    except TimeoutError:
        return


async def _flood(tg: FakeTelegram, ai: FakeOpenAI, session: Session, item: BadInput) -> tuple[Scene, int]:
    scene = _new_scene(tg, ai)
    queued = len(tg.updates)
    chat = item.inject(scene)
    session.flood_updates = frozenset(update["update_id"] for update in tg.updates[queued:])
    session.flood_chat = chat
    other = tg.new_user("Olga")
    started = time.monotonic()
    tg.send_text(other, "a question during the flood")
    try:
        await tg.wait_for(lambda: "echo: a question during the flood" in texts(tg, other.id), timeout=20)
        session.other_latency = time.monotonic() - started
    except TimeoutError:
        session.other_latency = None
    await _settle(tg, [(item, scene, chat)])
    return scene, chat


async def _wait_until_handled(tg: FakeTelegram, bot: BotProcess, session: Session) -> None:
    """Wait until the bot's log says it finished every update it was handed (the flood's aside: its answers still
    trickle out, and its checks do not need them); what never finishes is noted for the tests."""

    def unhandled() -> list[int]:
        done = updates_finished(bot) | session.flood_updates
        handed = (u["update_id"] for u in tg.updates if tg.delivery_count(u["update_id"]))
        return [update_id for update_id in handed if update_id not in done]

    try:
        await tg.wait_for(lambda: not unhandled(), timeout=20)
    except TimeoutError:
        session.unhandled = unhandled()


async def _replay(env: dict[str, str], workdir: Path, stream: str) -> tuple[dict[str, Any], str | None]:
    """`convo replay STREAM --json`: the document, or what went wrong."""
    result = await run_cli(env, workdir, "replay", stream, "--json")
    if result.returncode != 0:
        return {}, f"exit {result.returncode}: {result.stderr.strip()[-300:]}"
    try:
        return json.loads(result.stdout), None
    except json.JSONDecodeError as error:
        return {}, f"not JSON: {error}"


async def _fold_all(env: dict[str, str], workdir: Path, session: Session, streams: list[str]) -> None:
    """Replays each stream (one at a time: each is a Python start-up, and parallel starts only contend)."""
    for stream in streams:
        log, problem = await _replay(env, workdir, stream)
        if problem is not None:
            session.replay_failures.append(f"{stream}: {problem}")
            continue
        session.events_checked += len(log["events"])
        if int(stream) == session.flood_chat:
            session.flood_questions = sum(1 for e in log["events"] if e["type"] == "QuestionAsked")


async def _feed(tg: FakeTelegram, ai: FakeOpenAI, session: Session) -> list[tuple[BadInput, Scene, int]]:
    """The one-shot model faults first (nothing else may take the fault), then the flood, then batches."""
    placed: list[tuple[BadInput, Scene, int]] = []
    for item in (item for item in CORPUS if item.solo):
        if item.name.startswith(f"{FLOOD_SIZE} messages"):
            scene, chat = await _flood(tg, ai, session, item)
        else:
            scene = _new_scene(tg, ai)
            chat = item.inject(scene)
            await _settle(tg, [(item, scene, chat)])
        placed.append((item, scene, chat))
    together = [item for item in CORPUS if not item.solo]
    for start in range(0, len(together), BATCH):
        batch = []
        for item in together[start : start + BATCH]:
            scene = _new_scene(tg, ai)
            batch.append((item, scene, item.inject(scene)))
        await _settle(tg, batch)
        placed += batch
    return placed


async def _run(workdir: Path) -> Session:
    session = Session()
    async with FakeTelegram() as tg, FakeOpenAI(api_key=None) as ai:
        env = bot_env(tg, ai, f"sqlite:///{workdir}/convo.db")
        async with running_bot(env, workdir) as bot:
            await tg.wait_for_call("setMyCommands", timeout=20)
            placed = await _feed(tg, ai, session)
            await tg.wait_until_consumed(timeout=20)
            await _wait_until_handled(tg, bot, session)  # a late reply to a "silent" input would be sent by then
            settled = [s for s in await replay_list(env, workdir) if int(s) != session.flood_chat]
            await _fold_all(env, workdir, session, settled)  # while the flood's answers still trickle out
            session.alive_at_end = bot.process.returncode is None
            session.exit_code = await bot.stop()
            try:
                assert_log_clean(bot)
            except AssertionError as problem:
                session.log_problem = str(problem)[:2000]
            session.log_lines = len(bot.log_lines())
        session.streams = await replay_list(env, workdir)
        session.list_text_ok = (await run_cli(env, workdir, "replay", "--list")).returncode == 0
        await _fold_all(env, workdir, session, [s for s in session.streams if s not in settled])
        for item, scene, chat in placed:
            session.seen[item.name] = Seen(chat, _said(tg, scene, chat), str(chat) in session.streams)
        session.oversized = [utf16_len(m.text or "") for m in tg.bot_messages() if utf16_len(m.text or "") > 4096]
        session.flood_too_fast = sum("too fast" in text for text in texts(tg, session.flood_chat))
    return session


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Session:
    """Runs the corpus once through one bot process."""
    return asyncio.run(_run(tmp_path_factory.mktemp("bad_input")))


def _cases() -> list[Any]:
    return [
        pytest.param(item, id=item.name, marks=[pytest.mark.xfail(strict=True, reason=KNOWN_BUGS[item.name])])
        if item.name in KNOWN_BUGS
        else pytest.param(item, id=item.name)
        for item in CORPUS
    ]


def test_the_corpus_has_at_least_thirty_kinds():
    assert len(CORPUS) >= 30


@pytest.mark.parametrize("item", _cases())
def test_each_bad_input_gets_its_documented_behaviour(session: Session, item: BadInput):
    seen = session.seen[item.name]
    if item.reply is not None:
        assert any(item.reply in text for text in seen.said), (item.reply, seen.said)
    else:
        assert seen.said == [], f"{item.silent}: {seen.said}"
    if not item.records:
        assert not seen.stream_exists, f"chat {seen.chat_id} has a stream"
    else:
        assert seen.stream_exists


def test_the_process_survives_and_its_log_folds(session: Session):
    assert session.alive_at_end
    assert session.unhandled == []
    assert session.exit_code == 0
    assert session.log_problem is None, session.log_problem
    assert session.log_lines > 0
    assert session.streams, "no stream at all"
    assert session.replay_failures == []
    assert session.list_text_ok
    assert session.events_checked > 0
    assert session.oversized == []


def test_a_flood_gets_one_reply_and_does_not_slow_other_users(session: Session):
    assert session.flood_too_fast == 1
    assert 0 < session.flood_questions <= FLOOD_SIZE // 3
    assert session.other_latency is not None, "the other user's question was not answered within 20 s"
    assert session.other_latency < LATENCY_BOUND
