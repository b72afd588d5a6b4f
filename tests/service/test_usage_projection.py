"""The ledger projection: workers catching up at once over one store count every billed event exactly once, and
what a holder spent equals the ledger folded from the whole log."""

from __future__ import annotations

import asyncio

from hypothesis import HealthCheck, given, settings

from adapters.memory.store import MemoryEventStore
from domain.prices import PriceTable
from domain.usage import fold_ledger, spent
from service.usage_projection import UsageProjection
from tests.strategies import streams


async def projected(store, *, workers: int, page: int) -> list[UsageProjection]:
    projections = [UsageProjection(store, PriceTable(), chat_of=str, page=page) for _ in range(workers)]
    await asyncio.gather(*(projection.catch_up() for projection in projections))
    return projections


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams(max_steps=30))
def test_workers_catching_up_together_count_each_event_once(stream):
    async def run() -> None:
        store = MemoryEventStore()
        half = len(stream) // 2
        if half:
            await store.import_recorded(stream[:half])
        first = await projected(store, workers=3, page=4)
        if stream[half:]:
            await store.import_recorded(stream[half:])
        await asyncio.gather(*(projection.catch_up() for projection in first))
        whole = fold_ledger(stream, chat_of=str)
        months = {(k.scope, k.holder, k.when) for k in whole if k.period == "month"}
        for scope, holder, when in months:
            expected = spent(whole, PriceTable(), scope, holder, "month", when)
            assert await first[0].spent(scope, holder, "month", when) == expected

    asyncio.run(run())
