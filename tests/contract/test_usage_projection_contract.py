"""The ledger projection on every store: workers folding one log at once, page by page, count each billed event
exactly once (the checkpoint moves only from the position each read)."""

from __future__ import annotations

import asyncio

from domain.commands import Ask, GiveAnswer, Sender
from domain.ports import EventStore
from domain.prices import PriceTable
from domain.usage import fold_ledger, spent
from service.usage_projection import UsageProjection
from tests.strategies import run_script


def billed_stream(stream: str, user: int, answers: int) -> list:
    steps = []
    for n in range(answers):
        steps += [
            Ask(sender=Sender(user_id=user), text=f"q{n}"),
            GiveAnswer(
                question_version=2 * n + 2,
                text="a",
                model="gpt-4o-mini",
                prompt_tokens=1000 + n,
                completion_tokens=500,
                latency_ms=1,
            ),
        ]
    return run_script(steps, Sender(user_id=user), stream)


async def test_workers_folding_one_log_at_once_count_each_billed_event_once(store: EventStore) -> None:
    streams = [billed_stream(str(user), user, 6) for user in (1, 2, 3)]
    for events in streams:
        await store.import_recorded(events[:7])
    workers = [UsageProjection(store, PriceTable(), chat_of=str, page=3) for _ in range(3)]
    await asyncio.gather(*(worker.catch_up() for worker in workers))
    for events in streams:
        await store.import_recorded(events[7:])
    await asyncio.gather(*(worker.catch_up() for worker in workers))
    whole = fold_ledger([e for events in streams for e in events], chat_of=str)
    for user in ("1", "2", "3"):
        expected = spent(whole, PriceTable(), "user", user, "month", streams[0][1].recorded_at.strftime("%Y-%m"))
        assert expected > 0
        for worker in workers:
            assert await worker.spent("user", user, "month", streams[0][1].recorded_at.strftime("%Y-%m")) == expected
