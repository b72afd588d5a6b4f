"""The stream list of `convo inspect`: each stream's registered user, size, last activity, and the tokens and cost
its answers, pictures and voice billed, found by a search over id, @username and name. Reads the store only."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal

import attrs

from domain.ports import EventStore
from domain.prices import PriceTable
from domain.usage import Billed, billed_by, cost
from service.replay import StreamSummary, list_streams

READ_ALL_PAGE = 1000
"""Events read per query while counting usage."""
TOKEN_UNITS = frozenset({"input", "cached_input", "output"})
"""The billed units that are tokens."""


@attrs.frozen
class StreamRow:
    """One line of the stream list."""

    summary: StreamSummary
    """Size, user and last activity."""
    tokens: int
    """Prompt and completion tokens the model servers billed for the stream."""
    cost: Decimal
    """What everything billed for the stream cost by the price table, in exact USD."""


class StreamUsage:
    """Tokens and cost by stream, folded in memory from the log's global order and kept current by reading only
    what was appended since (`EventStore.read_all`). Writes nothing: not even the ledger's checkpoint."""

    def __init__(self, store: EventStore, prices: PriceTable, page: int = READ_ALL_PAGE) -> None:
        self._store = store
        self._prices = prices
        self._page = page
        self._position: str | None = None
        self._billed: defaultdict[str, defaultdict[tuple[str, str], int]] = defaultdict(lambda: defaultdict(int))

    async def catch_up(self) -> None:
        """Fold the events appended since the last call."""
        while True:
            page = [item async for item in self._store.read_all(self._position, self._page)]
            for item in page:
                for line in billed_by(item.recorded.event):
                    self._billed[item.recorded.stream][line.model, line.unit] += line.quantity
            if not page:
                return
            self._position = page[-1].position

    def tokens(self, stream: str) -> int:
        """Tokens billed for the stream so far."""
        return sum(quantity for (_, unit), quantity in self._billed[stream].items() if unit in TOKEN_UNITS)

    def cost(self, stream: str) -> Decimal:
        """What the stream cost so far (models without a price count 0)."""
        return cost((Billed(model, unit, q) for (model, unit), q in self._billed[stream].items()), self._prices)


async def stream_rows(
    store: EventStore, usage: StreamUsage, query: str = "", offset: int = 0, limit: int = 50
) -> tuple[list[StreamRow], int]:
    """The streams matching `query` (in the id, the @username or the first name, case-insensitive; all when
    empty), newest activity first: `limit` of them from `offset`, and how many matched."""
    await usage.catch_up()
    found = [summary for summary in await list_streams(store) if matches(summary, query)]
    found.sort(key=lambda summary: summary.last_event_at, reverse=True)
    shown = found[offset : offset + limit]
    rows = [StreamRow(summary, usage.tokens(summary.stream), usage.cost(summary.stream)) for summary in shown]
    return rows, len(found)


def matches(summary: StreamSummary, query: str) -> bool:
    """Whether the query is part of the stream id, the @username or the first name (case-insensitive)."""
    needle = query.strip().lstrip("@").casefold()
    fields: Sequence[str | None] = (summary.stream, summary.username, summary.first_name)
    return not needle or any(needle in field.casefold() for field in fields if field)
