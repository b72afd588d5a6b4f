"""`convo replay USER --what-if`: recorded prompts folded again under another persona, model or budget, and with
`--ask` put to the model again; the store is never written (its file is byte-identical before and after)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
from pathlib import Path

from adapters.sqlite.store import SqliteEventStore
from domain.commands import Sender
from domain.prompt import PromptPolicy, estimate_tokens
from service.conversations import ConversationService, Request
from tests.e2e.harness import API_KEY, run_cli
from tests.fakes import FakeChatModel, FakeImageModel

ANN = Sender(user_id=7, first_name="Ann")


async def recorded_conversation(path: Path) -> None:
    """Four questions of about 30 tokens each, answered under a roomy budget by `fake-chat`."""
    store = SqliteEventStore(str(path))
    await store.init_schema()
    service = ConversationService(
        store, FakeChatModel(), FakeImageModel(), PromptPolicy(persona="Be brief.", budget=3000), estimate_tokens
    )
    try:
        for n in range(4):
            await service.ask(Request("7", f"tg:{n}", ANN), f"question {n} " + "word " * 20)
    finally:
        await service.close()


def env_for(path: Path, ai=None) -> dict[str, str]:  # type: ignore[no-untyped-def]
    env = {"PATH": "/usr/bin:/bin", "CONVO_STORE": f"sqlite:///{path}", "CONVO_LOG_LEVEL": "ERROR"}
    env |= {name: os.environ[name] for name in ("PYTHONPATH",) if name in os.environ}
    if ai is not None:
        env |= {"OPENAI_API_KEY": API_KEY, "OPENAI_BASE_URL": ai.base_url}
    return env


def digest(path: Path) -> str:
    """SHA-256 of the log: every row of every event table, in order (the file's pages may be checkpointed)."""
    with contextlib.closing(sqlite3.connect(path)) as connection:
        rows = connection.execute("SELECT * FROM events ORDER BY stream, version").fetchall()
    return hashlib.sha256(repr(rows).encode()).hexdigest()


async def test_a_smaller_budget_shows_which_turns_drop_out_and_writes_nothing(tmp_path):
    db = tmp_path / "convo.db"
    await recorded_conversation(db)
    before = digest(db)
    result = await run_cli(env_for(db), tmp_path, "replay", "7", "--what-if", "--budget", "120", "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["what_if"] == {"persona": None, "model": None, "budget": 120}
    last = document["prompts"][-1]
    assert last["budget"] == 120 and last["tokens"] <= 120
    assert last["recorded"]["verification"] == "verified" and last["recorded"]["budget"] == 3000
    assert last["dropped_turns"] and not last["added_turns"]
    assert {message["role"] for message in last["messages"]} <= {"system", "user", "assistant"}
    table = await run_cli(env_for(db) | {"COLUMNS": "100"}, tmp_path, "replay", "7", "--what-if", "--budget", "120")
    assert "drops the turns of" in table.stdout
    assert digest(db) == before


async def test_a_persona_by_name_and_ask_put_the_questions_again_side_by_side(tmp_path, ai):
    db = tmp_path / "convo.db"
    await recorded_conversation(db)
    before = digest(db)
    first = 3  # after the registration and the prompt settings
    args = ("replay", "7", "--what-if", "--persona", "concise", "--ask", "--at", str(first), "--json")
    result = await run_cli(env_for(db, ai), tmp_path, *args)
    assert result.returncode == 0, result.stderr
    [prompt] = json.loads(result.stdout)["prompts"]
    assert prompt["question_version"] == first and prompt["messages"][0]["content"].startswith("You are a precise")
    assert prompt["old_answer"]["text"] == "echo: question 0 " + "word " * 20
    assert prompt["old_answer"]["model"] == "fake-chat"
    assert prompt["new_answer"]["text"].startswith("echo: question 0") and prompt["new_answer"]["latency_ms"] >= 0
    assert len(ai.chat_requests) == 1
    assert ai.chat_requests[0].messages[0] == {"role": "system", "content": prompt["messages"][0]["content"]}
    assert digest(db) == before
