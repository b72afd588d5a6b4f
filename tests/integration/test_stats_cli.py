"""`convo stats` as an operator runs it, over a SQLite store of real events: every count, percentile, token and
amount is the one the events put in give, in JSON and in the table; tokens and cost come from the usage ledger once
its projection has caught up; the progress bar goes to a terminal, and nothing to a pipe."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import sys
from datetime import UTC, datetime
from decimal import Decimal

import attrs

from adapters.sqlite.store import SqliteEventStore
from domain.commands import Ask, FailAnswer, FailImage, GiveAnswer, GiveImage, RequestImage, Sender
from domain.events import RecordedEvent
from domain.prices import PriceTable
from service.usage_projection import UsageProjection
from tests.e2e.harness import run_cli
from tests.integration.test_store_cli import cli_env
from tests.strategies import run_script

ANN, BOB, CY = (Sender(user_id=n, first_name=name) for n, name in ((1, "Ann"), (2, "Bob"), (3, "Cy")))
GROUP = "-1001"


def answer(version: int, model: str, prompt: int, completion: int, latency: int, cached: int = 0) -> GiveAnswer:
    return GiveAnswer(
        question_version=version,
        text="a",
        model=model,
        prompt_tokens=prompt,
        completion_tokens=completion,
        cached_tokens=cached,
        latency_ms=latency,
    )


def on(day: str, events: list[RecordedEvent]) -> list[RecordedEvent]:
    moment = datetime.fromisoformat(f"{day}T12:00:00+00:00").astimezone(UTC)
    return [attrs.evolve(e, recorded_at=moment) for e in events]


async def seed(path) -> None:
    """Ann in private over two days, Bob in a group, Cy in private before November."""
    ann = run_script(
        [
            Ask(sender=ANN, text="q"),  # v2
            answer(2, "gpt-4o-mini", 1000, 200, latency=100),
            Ask(sender=ANN, text="q"),  # v4
            FailAnswer(question_version=4, kind="timeout", message="slow"),
            RequestImage(sender=ANN, prompt="fox"),  # v6
            GiveImage(request_version=6, image_ref="https://x", model="dall-e-3", revised_prompt=None),
            Ask(sender=ANN, text="q"),  # v8
            answer(8, "gpt-4o-mini", 3000, 500, latency=300, cached=1000),
        ],
        ANN,
        "1",
    )
    bob = run_script(
        [
            Ask(sender=BOB, text="q"),  # v2
            answer(2, "llama-local", 50, 60, latency=2000),
            RequestImage(sender=BOB, prompt="cat"),  # v4
            FailImage(request_version=4, kind="content_refused", message="no"),
            Ask(sender=BOB, text="q"),  # v6
            FailAnswer(
                question_version=6, kind="content_refused", message="no", model="gpt-4o-mini", prompt_tokens=400
            ),
        ],
        BOB,
        GROUP,
    )
    cy = run_script([Ask(sender=CY, text="q"), answer(2, "gpt-4o", 100, 100, latency=50)], CY, "3")
    store = SqliteEventStore.from_url(f"sqlite:///{path}")
    await store.init_schema()
    for recorded in on("2026-10-30", cy) + on("2026-11-01", ann[:7]) + on("2026-11-02", ann[7:] + bob):
        await store.import_recorded([recorded])
    await store.close()


def usd(*terms: tuple[int, str]) -> Decimal:
    """Tokens times USD per 1M tokens, summed."""
    return sum((Decimal(tokens) * Decimal(price) / 10**6 for tokens, price in terms), Decimal(0))


# gpt-4o-mini: input 0.15, cached 0.075, output 0.60; gpt-4o: input 2.50, output 10.00; dall-e-3: 0.040 a picture
MINI = usd((1000 + 2000 + 400, "0.15"), (1000, "0.075"), (200 + 500, "0.60"))
FOUR_O = usd((100, "2.50"), (100, "10.00"))
DAYS = {
    "2026-10-30": FOUR_O,
    "2026-11-01": usd((1000, "0.15"), (200, "0.60")) + Decimal("0.040"),
    "2026-11-02": usd((2000 + 400, "0.15"), (1000, "0.075"), (500, "0.60")),
}


async def stats(tmp_path, *args: str) -> dict:
    result = await run_cli(cli_env("sqlite:///s.db"), tmp_path, "stats", "--json", *args)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no progress bar on a pipe
    return json.loads(result.stdout)


async def test_every_number_is_the_one_the_events_give(tmp_path):
    await seed(tmp_path / "s.db")
    everything = await stats(tmp_path)
    assert {k: everything[k] for k in ("since", "streams", "active_users", "questions", "image_requests")} == {
        "since": None,
        "streams": 3,
        "active_users": 3,
        "questions": 6,
        "image_requests": 2,
    }
    assert (everything["answers"], everything["pictures"]) == (4, 1)
    assert everything["failures"] == {"answers": {"timeout": 1, "content_refused": 1}, "images": {"content_refused": 1}}
    # latencies 50, 100, 300, 2000: nearest rank 2 of 4 is the median, rank 4 the 95th and 99th
    assert everything["answer_latency_ms"] == {"answers": 4, "p50": 100, "p95": 2000, "p99": 2000}
    usage = everything["usage"]
    assert usage["source"] == "scan"
    by_model = {row["key"]: row for row in usage["by_model"]}
    assert [row["key"] for row in usage["by_model"]] == ["dall-e-3", "gpt-4o", "gpt-4o-mini", "llama-local"]
    assert Decimal(by_model["gpt-4o-mini"]["cost_usd"]) == MINI
    assert (by_model["gpt-4o-mini"]["input_tokens"], by_model["gpt-4o-mini"]["cached_input_tokens"]) == (3400, 1000)
    assert by_model["gpt-4o-mini"]["output_tokens"] == 700
    assert Decimal(by_model["gpt-4o"]["cost_usd"]) == FOUR_O
    assert (by_model["dall-e-3"]["images"], by_model["dall-e-3"]["cost_usd"]) == (1, "0.04")
    assert by_model["llama-local"] | {"key": ""} == {
        "key": "",
        "input_tokens": 50,
        "cached_input_tokens": 0,
        "output_tokens": 60,
        "images": 0,
        "cost_usd": "0",
    }
    assert {row["key"]: Decimal(row["cost_usd"]) for row in usage["by_day"]} == DAYS
    assert [row["key"] for row in usage["by_day"]] == sorted(DAYS)
    assert Decimal(usage["total"]["cost_usd"]) == MINI + FOUR_O + Decimal("0.040") == sum(DAYS.values())
    assert usage["total"]["input_tokens"] == 3400 + 100 + 50
    assert usage["unpriced_models"] == ["llama-local"]

    november = await stats(tmp_path, "--since", "2026-11-01")
    assert (november["since"], november["streams"], november["active_users"], november["questions"]) == (
        "2026-11-01",
        2,
        2,
        5,
    )
    assert november["answer_latency_ms"] == {"answers": 3, "p50": 300, "p95": 2000, "p99": 2000}
    assert [row["key"] for row in november["usage"]["by_day"]] == ["2026-11-01", "2026-11-02"]
    assert Decimal(november["usage"]["total"]["cost_usd"]) == MINI + Decimal("0.040")
    assert "gpt-4o" not in {row["key"] for row in november["usage"]["by_model"]}


async def test_the_ledger_is_read_once_it_has_caught_up_and_gives_the_same_amounts(tmp_path):
    await seed(tmp_path / "s.db")
    scanned = await stats(tmp_path)
    store = SqliteEventStore.from_url(f"sqlite:///{tmp_path / 's.db'}")
    try:
        await UsageProjection(store, PriceTable()).catch_up()
    finally:
        await store.close()
    from_ledger = await stats(tmp_path)
    assert from_ledger["usage"]["source"] == "ledger"
    assert from_ledger | {"usage": {}} == scanned | {"usage": {}}
    assert from_ledger["usage"] == scanned["usage"] | {"source": "ledger"}
    table = await run_cli(cli_env("sqlite:///s.db"), tmp_path, "stats")
    assert "tokens and cost from the usage ledger" in table.stdout


async def test_the_table_shows_the_numbers_of_the_json(tmp_path):
    await seed(tmp_path / "s.db")
    document = await stats(tmp_path)
    table = await run_cli(cli_env("sqlite:///s.db"), tmp_path, "stats")
    assert table.returncode == 0 and table.stderr == "", table.stderr
    lines = table.stdout.splitlines()

    def value(name: str) -> str:
        return next(line for line in lines if line.startswith(name + "  ")).split()[-1]

    assert value("streams") == "3" and value("active users") == "3" and value("questions") == "6"
    assert value("image requests") == "2" and value("answers") == "4" and value("pictures") == "1"
    assert value("failed answers") == "2" and value("failed answers: timeout") == "1"
    assert value("failed answers: content_refused") == "1" and value("failed pictures: content_refused") == "1"
    assert [value(f"answer latency {p} (ms)") for p in ("p50", "p95", "p99")] == ["100", "2000", "2000"]
    usage = document["usage"]
    for row in [*usage["by_model"], *usage["by_day"]]:
        assert value(row["key"]) == row["cost_usd"]
        cells = next(line for line in lines if line.startswith(row["key"] + " ")).split()
        assert cells == [row["key"], *(str(row[k]) for k in list(row)[1:])]
    totals = [line.split() for line in lines if line.startswith("total ")]
    assert totals == [["total", *(str(usage["total"][k]) for k in list(usage["total"])[1:])]] * 2
    assert "tokens and cost from a full scan of the log" in table.stdout
    assert "no price for llama-local" in table.stdout


async def test_a_terminal_sees_a_progress_bar(tmp_path):
    await seed(tmp_path / "s.db")
    controller, terminal = pty.openpty()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "entrypoints.cli",
        "stats",
        "--json",
        env=cli_env("sqlite:///s.db", TERM="xterm", COLUMNS="100"),
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=terminal,
    )
    os.close(terminal)
    out, _ = await process.communicate()
    shown = b""
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the terminal's other end is closed: everything was read
            break
        if not chunk:
            break
        shown += chunk
    os.close(controller)
    assert process.returncode == 0
    assert b"reading the log" in shown
    assert json.loads(out)["questions"] == 6
