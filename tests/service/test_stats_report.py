"""`convo stats` over a real store: the scan read in pages of any size gives the stats of the whole log, and tokens
and cost are read from the usage ledger exactly when its projection holds every charge in the log."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import attrs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.memory.store import MemoryEventStore
from domain.commands import Ask, GiveAnswer, Sender
from domain.events import RecordedEvent
from domain.prices import PriceTable
from service.stats import StatsTally, fold_stats, stats_of, usage_stats
from service.stats_report import log_size, stats_report
from service.usage_projection import UsageProjection
from tests.strategies import run_script, streams

ANN = Sender(user_id=1, first_name="Ann")


def answered(stream: str, model: str, tokens: int, days: int = 0) -> list[RecordedEvent]:
    script = [
        Ask(sender=ANN, text="q"),
        GiveAnswer(question_version=2, text="a", model=model, prompt_tokens=tokens, completion_tokens=1, latency_ms=5),
    ]
    return [attrs.evolve(e, recorded_at=e.recorded_at + timedelta(days=days)) for e in run_script(script, ANN, stream)]


async def fill(store, *streams_: list[RecordedEvent]) -> None:
    for stream in streams_:
        for recorded in stream:
            await store.import_recorded([recorded])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(streams(max_steps=15), min_size=1, max_size=3), st.integers(min_value=1, max_value=7))
def test_the_scan_in_pages_of_any_size_gives_the_stats_of_the_whole_log(parts, page_size):
    async def run() -> None:
        store = MemoryEventStore()
        log = [[attrs.evolve(e, stream=f"s{i}") for e in part] for i, part in enumerate(parts)]
        await fill(store, *log)
        read: list[int] = []
        stats = await stats_report(store, PriceTable(), progress=read.append, page_size=page_size)
        whole = fold_stats([e for part in log for e in part], StatsTally())
        assert stats == stats_of(whole, usage_stats(whole.usage, PriceTable(), "scan"))
        assert sum(read) == await log_size(store) == sum(len(part) for part in log)

    asyncio.run(run())


async def test_tokens_come_from_the_ledger_only_while_it_holds_every_charge(store):
    await fill(store, answered("1", "gpt-4o", 1000), answered("2", "gpt-4o-mini", 2000, days=1))
    assert (await stats_report(store, PriceTable(), page_size=2)).usage.source == "scan"  # the ledger was never kept
    await UsageProjection(store, PriceTable()).catch_up()
    scanned = usage_stats(
        fold_stats([item.recorded async for item in store.read_all(None, 100)], StatsTally()).usage,
        PriceTable(),
        "scan",
    )
    from_ledger = await stats_report(store, PriceTable(), page_size=2)
    assert from_ledger.usage == attrs.evolve(scanned, source="ledger")
    await fill(store, answered("3", "gpt-4.1", 3000, days=1))  # a charge after the checkpoint
    behind = await stats_report(store, PriceTable(), page_size=2)
    assert behind.usage.source == "scan"
    assert [row.key for row in behind.usage.by_model] == ["gpt-4.1", "gpt-4o", "gpt-4o-mini"]


async def test_the_ledger_keeps_the_usage_of_an_erased_stream_and_the_scan_does_not(store):
    await fill(store, answered("1", "gpt-4o", 1000), answered("2", "gpt-4.1", 3000), answered("3", "gpt-4o-mini", 10))
    await UsageProjection(store, PriceTable()).catch_up()
    await store.delete_stream("2")
    stats = await stats_report(store, PriceTable(), page_size=2)
    assert stats.questions == 2 and stats.usage.source == "ledger"
    assert stats.usage.total.input_tokens == 1000 + 3000 + 10
    await store.delete_stream("3")  # the checkpoint's own event is gone: the ledger's coverage cannot be told
    stats = await stats_report(store, PriceTable(), page_size=2)
    assert stats.usage.source == "scan" and stats.usage.total.input_tokens == 1000


async def test_events_before_since_are_left_out_of_everything(store):
    await fill(store, answered("1", "gpt-4o", 1000), answered("2", "gpt-4o-mini", 2000, days=2))
    await UsageProjection(store, PriceTable()).catch_up()
    first = (await store.read_forwards("2", 1, 1).__anext__()).recorded_at.date()
    stats = await stats_report(store, PriceTable(), since=first, page_size=3)
    assert (stats.streams, stats.questions, stats.answers) == (1, 1, 1)
    assert stats.usage.source == "ledger"
    assert [row.key for row in stats.usage.by_model] == ["gpt-4o-mini"]
    assert [row.key for row in stats.usage.by_day] == [first.isoformat()]
