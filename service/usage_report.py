"""`convo usage`: where the money went, read from the whole log and priced with a table (any table: re-pricing
the history writes nothing)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal
from typing import Literal, TypeAlias

import attrs

from domain.ports import EventStore
from domain.prices import PriceTable
from domain.usage import Billed, Charge, charge_of, cost, unpriced

By: TypeAlias = Literal["user", "chat", "model", "day"]
BY: tuple[By, ...] = ("user", "chat", "model", "day")
PAGE = 500
"""Events read per query while scanning the log."""


@attrs.frozen
class UsageRow:
    """What one user, chat, model or day used, and what it cost."""

    key: str
    """The user id, chat id, model or day (`unknown` for usage recorded without its asker)."""
    input_tokens: int = 0
    """Prompt tokens not served from a cache."""
    cached_input_tokens: int = 0
    """Prompt tokens served from a cache."""
    output_tokens: int = 0
    """Completion tokens."""
    images: int = 0
    """Pictures."""
    cost: Decimal = Decimal(0)
    """USD, exact."""

    def plus(self, line: Billed, amount: Decimal) -> UsageRow:
        """This row with one more billed line and its cost."""
        counts = {
            "input": "input_tokens",
            "cached_input": "cached_input_tokens",
            "output": "output_tokens",
        }
        field = counts.get(line.unit, "images" if line.unit.startswith("image:") else None)
        grown = attrs.evolve(self, cost=self.cost + amount)
        if field is None:
            return grown
        return attrs.evolve(grown, **{field: getattr(self, field) + line.quantity})


@attrs.frozen
class UsageReport:
    """Usage grouped one way over a range of days."""

    by: By
    """How rows are grouped."""
    since: date | None
    """First day counted (UTC), if limited."""
    until: date | None
    """Last day counted (UTC), if limited."""
    rows: tuple[UsageRow, ...]
    """The rows shown (the `top` most costly when asked), most costly first (by day: in date order)."""
    total: UsageRow
    """Everything in the range, shown or not."""
    unpriced: tuple[str, ...]
    """Models used that the table has no price for (counted at 0)."""


def chat_of_stream(stream: str) -> str:
    """The chat of a stream (a forum topic's stream is `<chat>:<topic>`)."""
    return stream.partition(":")[0]


async def usage_report(
    store: EventStore,
    prices: PriceTable,
    by: By,
    since: date | None = None,
    until: date | None = None,
    top: int | None = None,
) -> UsageReport:
    """Scan the log in its global order and group what was billed; reads only."""
    rows: dict[str, UsageRow] = {}
    total = UsageRow("total")
    missing: set[str] = set()
    async for charge in _charges(store):
        day = date.fromisoformat(charge.day)
        if (since is not None and day < since) or (until is not None and day > until):
            continue
        missing |= unpriced(charge.billed, prices)
        for line in charge.billed:
            amount = cost((line,), prices)
            key = _key(charge, line, by)
            rows[key] = rows.get(key, UsageRow(key)).plus(line, amount)
            total = total.plus(line, amount)
    ordered = sorted(rows.values(), key=lambda row: row.key if by == "day" and top is None else (-row.cost, row.key))
    shown = tuple(ordered[:top] if top is not None else ordered)
    return UsageReport(by, since, until, shown, total, tuple(sorted(missing)))


async def _charges(store: EventStore) -> AsyncIterator[Charge]:
    """Every charge the log records, page by page in the store's global order."""
    after: str | None = None
    while True:
        page = [item async for item in store.read_all(after, PAGE)]
        for item in page:
            charge = charge_of(item.recorded)
            if charge is not None:
                yield charge
        if len(page) < PAGE:
            return
        after = page[-1].position


def _key(charge: Charge, line: Billed, by: By) -> str:
    if by == "user":
        return "unknown" if charge.user_id is None else str(charge.user_id)
    if by == "chat":
        return chat_of_stream(charge.stream)
    if by == "model":
        return line.model
    return charge.day
