"""`convo stats`: one scan of the whole log, page by page in its global order, folded as it is read (no page is
kept), with tokens and cost read from the usage ledger's projection when it holds every charge the log holds."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import date, timedelta

from domain.ports import EventStore, LedgerStore
from domain.prices import PriceTable
from domain.usage import charge_of
from service.stats import Stats, StatsTally, UsageKey, fold_stats, stats_of, usage_stats

PAGE = 500
"""Events read per query while scanning the log."""
MOST_STREAMS_SIZED = 1000
"""Above this many streams the log's size is not worked out beforehand (one query per stream)."""


async def log_size(store: EventStore, most_streams: int = MOST_STREAMS_SIZED) -> int | None:
    """How many events the log holds (the sum of its streams' versions), or None when it has more than
    `most_streams` streams (then it is not worth a query per stream)."""
    names: list[str] = []
    async for stream in store.list_streams():
        names.append(stream)
        if len(names) > most_streams:
            return None
    return sum([await store.current_version(stream) for stream in names])


async def stats_report(
    store: EventStore,
    prices: PriceTable,
    since: date | None = None,
    progress: Callable[[int], None] | None = None,
    page_size: int = PAGE,
) -> Stats:
    """The stats of the events recorded on or after `since` (UTC day), reading `page_size` events at a time; reads
    only. `progress` is told how many more events were read after each page."""
    ledger = store.ledger()
    checkpoint = await ledger.checkpoint()
    passed_checkpoint = False
    charges_after = 0
    tally = StatsTally(since=since)
    after: str | None = None
    while True:
        page = [item async for item in store.read_all(after, page_size)]
        fold_stats((item.recorded for item in page), tally)
        for item in page:
            if passed_checkpoint and charge_of(item.recorded) is not None:
                charges_after += 1
            passed_checkpoint = passed_checkpoint or item.position == checkpoint
        if progress is not None:
            progress(len(page))
        if len(page) < page_size:
            break
        after = page[-1].position
    if checkpoint is not None and passed_checkpoint and charges_after == 0:
        quantities = await _ledger_quantities(ledger, tally.first_day, tally.last_day)
        return stats_of(tally, usage_stats(quantities, prices, "ledger"))
    return stats_of(tally, usage_stats(tally.usage, prices, "scan"))


async def _ledger_quantities(ledger: LedgerStore, first: str, last: str) -> Counter[UsageKey]:
    """The ledger's total usage of each day from `first` to `last` (none when they are empty)."""
    quantities: Counter[UsageKey] = Counter()
    if not first:
        return quantities
    day, end = date.fromisoformat(first), date.fromisoformat(last)
    while day <= end:
        text = day.isoformat()
        for (model, unit), quantity in (await ledger.quantities("total", "", "day", text)).items():
            quantities[(text, model, unit)] += quantity
        day += timedelta(days=1)
    return quantities
