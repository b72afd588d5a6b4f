"""The usage ledger kept current from the log: every worker folds the events after the stored checkpoint and
advances it (domain.usage, EventStore.read_all, LedgerStore), so what anyone spent is one indexed read, however
long the history, and no event counts twice whichever worker folds it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from decimal import Decimal

import structlog

from domain.ports import EventStore
from domain.prices import PriceTable
from domain.usage import Billed, cost, fold_ledger, unpriced
from service.usage_report import chat_of_stream

log = structlog.get_logger(__name__)

PAGE = 500
"""Events folded per advance."""


class UsageProjection:
    """The store's ledger projection, brought up to date on demand, and what holders spent by a price table."""

    def __init__(
        self,
        store: EventStore,
        prices: PriceTable,
        chat_of: Callable[[str], str] = chat_of_stream,
        page: int = PAGE,
    ) -> None:
        self._store = store
        self._ledger = store.ledger()
        self._prices = prices
        self._chat_of = chat_of
        self._page = page
        self._catching_up = asyncio.Lock()
        self._warned: set[str] = set()

    async def catch_up(self) -> int:
        """Fold every event after the checkpoint into the ledger; how many events this worker folded.

        A page without usage moves the checkpoint only when it is full (so a long run of other events is passed
        once); a worker that finds the checkpoint moved by another takes up from there."""
        folded = 0
        async with self._catching_up:
            position = await self._ledger.checkpoint()
            while True:
                page = [item async for item in self._store.read_all(position, self._page)]
                if not page:
                    return folded
                lines = fold_ledger((item.recorded for item in page), self._chat_of)
                if not lines and len(page) < self._page:
                    return folded
                if await self._ledger.advance(position, page[-1].position, lines):
                    position, folded = page[-1].position, folded + len(page)
                else:
                    position = await self._ledger.checkpoint()

    async def quantities(self, scope: str, holder: str, period: str, when: str) -> dict[tuple[str, str], int]:
        """What one holder used in one period (as of the last catch-up): quantity by (model, unit)."""
        return await self._ledger.quantities(scope, holder, period, when)

    async def spent(self, scope: str, holder: str, period: str, when: str) -> Decimal:
        """What one holder spent in one period (as of the last catch-up), in exact USD."""
        return self.priced(await self._ledger.quantities(scope, holder, period, when))

    def priced(self, quantities: Mapping[tuple[str, str], int]) -> Decimal:
        """What quantities by (model, unit) cost, in exact USD. A model without a price counts as 0, with one
        warning per model in this process."""
        billed = [Billed(model, unit, quantity) for (model, unit), quantity in quantities.items()]
        for model in sorted(unpriced(billed, self._prices) - self._warned):
            self._warned.add(model)
            log.warning("model_unpriced", model=model, hint="counted at 0; give it a price in CONVO_PRICES")
        return cost(billed, self._prices)
