"""The usage ledger's projection store, on every backend: sums by key, and a checkpoint that moves only from the
position a worker read, so that however many workers advance it, every event counts once."""

from __future__ import annotations

import asyncio

from domain.ports import EventStore
from domain.usage import LedgerKey


def key(holder: str = "7", period: str = "day", when: str = "2026-11-27", unit: str = "input") -> LedgerKey:
    return LedgerKey("user", holder, period, when, "gpt-4o-mini", unit)


async def test_a_new_ledger_is_empty(store: EventStore) -> None:
    ledger = store.ledger()
    assert await ledger.checkpoint() is None
    assert await ledger.quantities("user", "7", "day", "2026-11-27") == {}


async def test_advancing_adds_the_lines_and_moves_the_checkpoint(store: EventStore) -> None:
    ledger = store.ledger()
    assert await ledger.advance(None, "5|1|a:b", {key(): 100, key(unit="output"): 7})
    assert await ledger.advance("5|1|a:b", "9:12", {key(): 50, key(holder="8"): 1})
    assert await ledger.checkpoint() == "9:12"
    assert await ledger.quantities("user", "7", "day", "2026-11-27") == {
        ("gpt-4o-mini", "input"): 150,
        ("gpt-4o-mini", "output"): 7,
    }
    assert await ledger.quantities("user", "8", "day", "2026-11-27") == {("gpt-4o-mini", "input"): 1}
    assert await ledger.quantities("user", "7", "month", "2026-11") == {}


async def test_a_stale_checkpoint_advances_nothing(store: EventStore) -> None:
    ledger = store.ledger()
    assert await ledger.advance(None, "1", {key(): 1})
    assert not await ledger.advance(None, "2", {key(): 1000})
    assert not await ledger.advance("0", "2", {key(): 1000})
    assert await ledger.checkpoint() == "1"
    assert await ledger.quantities("user", "7", "day", "2026-11-27") == {("gpt-4o-mini", "input"): 1}


async def test_of_workers_racing_from_one_checkpoint_exactly_one_advances(store: EventStore) -> None:
    ledger = store.ledger()
    await ledger.advance(None, "10", {key(): 1})
    won = await asyncio.gather(*(ledger.advance("10", f"11-{n}", {key(): 1}) for n in range(5)))
    assert sorted(won) == [False] * 4 + [True]
    assert await ledger.quantities("user", "7", "day", "2026-11-27") == {("gpt-4o-mini", "input"): 2}
    assert await ledger.checkpoint() == f"11-{won.index(True)}"


async def test_an_advance_without_lines_still_moves_the_checkpoint(store: EventStore) -> None:
    ledger = store.ledger()
    assert await ledger.advance(None, "3", {})
    assert await ledger.checkpoint() == "3"
