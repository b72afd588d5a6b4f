"""`convo usage` as an operator runs it: exact costs by user, chat, model and day, from the billed usage in the log,
re-priced with another table without writing anything, the same totals in the table and in JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import attrs

from adapters.sqlite.store import SqliteEventStore
from domain.commands import Ask, GiveAnswer, GiveImage, RequestImage, Sender
from domain.events import RecordedEvent
from tests.e2e.harness import run_cli
from tests.integration.test_store_cli import cli_env
from tests.strategies import run_script

ANN, BOB = Sender(user_id=1, first_name="Ann"), Sender(user_id=2, first_name="Bob")
GROUP = "-1001"


def answer(version: int, model: str, prompt: int, completion: int, cached: int = 0) -> GiveAnswer:
    return GiveAnswer(
        question_version=version,
        text="a",
        model=model,
        prompt_tokens=prompt,
        completion_tokens=completion,
        cached_tokens=cached,
        latency_ms=1,
    )


def dated(events: list[RecordedEvent], day: str) -> list[RecordedEvent]:
    moment = datetime.fromisoformat(f"{day}T12:00:00+00:00").astimezone(UTC)
    return [attrs.evolve(e, recorded_at=moment) for e in events]


async def seed(path) -> list[RecordedEvent]:
    """Ann and Bob in a group on two days, Ann alone in private; gpt-4o-mini, a local model and a picture."""
    group = run_script(
        [
            Ask(sender=ANN, text="q"),  # v2 (v1 registers)
            answer(2, "gpt-4o-mini", 1_000_000, 200_000, cached=400_000),
            Ask(sender=BOB, text="q"),  # v4
            answer(4, "llama-local", 5_000, 5_000),
        ],
        ANN,
        GROUP,
    )
    group[3:5] = [  # run_script speaks as one sender: Bob asked the second question
        attrs.evolve(e, event=attrs.evolve(e.event, **{"sender_id" if i == 0 else "asker_id": BOB.user_id}))
        for i, e in enumerate(group[3:5])
    ]
    private = run_script(
        [
            Ask(sender=ANN, text="q"),  # v2
            answer(2, "gpt-4o-mini-2024-07-18", 2_000_000, 0),
            RequestImage(sender=ANN, prompt="fox"),  # v4
            GiveImage(request_version=4, image_ref="https://x", model="dall-e-3", revised_prompt=None),
        ],
        ANN,
        "1",
    )
    store = SqliteEventStore.from_url(f"sqlite:///{path}")
    await store.init_schema()
    everything = dated(group, "2026-11-01") + dated(private[:3], "2026-11-02") + dated(private[3:], "2026-11-03")
    for recorded in everything:
        await store.import_recorded([recorded])
    await store.close()
    return everything


async def usage(tmp_path, *args: str, **env: str) -> dict:
    result = await run_cli(cli_env("sqlite:///u.db", **env), tmp_path, "usage", "--json", *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


async def test_costs_by_user_chat_model_and_day_are_exact(tmp_path):
    await seed(tmp_path / "u.db")
    by_user = await usage(tmp_path, "--by", "user")
    ann = (
        (Decimal(600_000) * Decimal("0.15") + Decimal(400_000) * Decimal("0.075") + 200_000 * Decimal("0.60")) / (10**6)
        + Decimal(2_000_000) * Decimal("0.15") / 10**6
        + Decimal("0.040")
    )
    assert {row["key"]: Decimal(row["cost_usd"]) for row in by_user["rows"]} == {"1": ann, "2": Decimal(0)}
    assert Decimal(by_user["total"]["cost_usd"]) == ann
    assert by_user["unpriced_models"] == ["llama-local"]
    assert by_user["total"]["input_tokens"] == 600_000 + 5_000 + 2_000_000
    assert by_user["total"]["images"] == 1
    by_model = {row["key"]: row for row in (await usage(tmp_path, "--by", "model"))["rows"]}
    assert set(by_model) == {"gpt-4o-mini", "gpt-4o-mini-2024-07-18", "llama-local", "dall-e-3"}
    by_chat = {row["key"]: Decimal(row["cost_usd"]) for row in (await usage(tmp_path, "--by", "chat"))["rows"]}
    assert sum(by_chat.values()) == ann and set(by_chat) == {GROUP, "1"}
    days = await usage(tmp_path, "--by", "day", "--since", "2026-11-02", "--until", "2026-11-02")
    assert [row["key"] for row in days["rows"]] == ["2026-11-02"]
    assert Decimal(days["total"]["cost_usd"]) == Decimal("0.3")
    top = await usage(tmp_path, "--by", "model", "--top", "1")
    assert [row["key"] for row in top["rows"]] == ["gpt-4o-mini-2024-07-18"]
    assert top["total"] == by_user["total"]


async def test_repricing_changes_only_the_amounts_and_writes_nothing(tmp_path):
    recorded = await seed(tmp_path / "u.db")
    (tmp_path / "prices.toml").write_text(
        '[models."gpt-4o-mini"]\ninput = "1"\noutput = "2"\n[models."llama-local"]\ninput = "0.5"\noutput = "0.5"\n'
    )
    repriced = await usage(tmp_path, "--by", "model", "--prices", "prices.toml")
    costs = {row["key"]: Decimal(row["cost_usd"]) for row in repriced["rows"]}
    assert costs["gpt-4o-mini"] == Decimal(1_000_000 * 1 + 200_000 * 2) / 10**6  # cached billed as input
    assert costs["gpt-4o-mini-2024-07-18"] == Decimal(2)
    assert costs["llama-local"] == Decimal("0.005")
    assert repriced["unpriced_models"] == []
    store = SqliteEventStore.from_url(f"sqlite:///{tmp_path / 'u.db'}")
    try:
        assert [item.recorded async for item in store.read_all(None, 100)] == recorded
    finally:
        await store.close()


async def test_the_plain_table_has_the_json_totals_and_a_bad_price_file_is_one_clear_line(tmp_path):
    await seed(tmp_path / "u.db")
    table = await run_cli(cli_env("sqlite:///u.db"), tmp_path, "usage", "--by", "chat")
    assert table.returncode == 0, table.stderr
    total = (await usage(tmp_path, "--by", "chat"))["total"]
    last = table.stdout.splitlines()
    total_line = next(line for line in last if line.startswith("total"))
    assert total_line.split() == ["total", *(str(total[k]) for k in list(total)[1:])]
    assert "no price for llama-local" in table.stdout
    (tmp_path / "bad.toml").write_text('[models."x"]\ninput = 0.15\noutput = "1"\n')
    bad = await run_cli(cli_env("sqlite:///u.db"), tmp_path, "usage", "--prices", "bad.toml")
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1 and "--prices" in bad.stderr and "decimal string" in bad.stderr
    env = cli_env("sqlite:///u.db", CONVO_PRICES="missing.toml")
    missing = await run_cli(env, tmp_path, "usage")
    assert missing.returncode == 2 and "CONVO_PRICES" in missing.stderr and "Traceback" not in missing.stderr
