"""The usage ledger's projection held in memory, for the memory store: the reference the others agree with."""

from __future__ import annotations

from collections.abc import Mapping

from domain.usage import LedgerKey


class MemoryLedger:
    """A LedgerStore in two fields: the checkpoint and the quantities by key."""

    def __init__(self) -> None:
        self._checkpoint: str | None = None
        self._quantities: dict[LedgerKey, int] = {}

    async def checkpoint(self) -> str | None:
        """The position of the last event included (None: none yet)."""
        return self._checkpoint

    async def advance(self, expected: str | None, to: str, lines: Mapping[LedgerKey, int]) -> bool:
        """Add the lines and move the checkpoint, unless it is no longer `expected` (then False)."""
        if self._checkpoint != expected:
            return False
        for key, quantity in lines.items():
            self._quantities[key] = self._quantities.get(key, 0) + quantity
        self._checkpoint = to
        return True

    async def quantities(self, scope: str, holder: str, period: str, when: str) -> dict[tuple[str, str], int]:
        """What one holder used in one period: quantity by (model, unit)."""
        wanted = (scope, holder, period, when)
        return {
            (key.model, key.unit): quantity
            for key, quantity in self._quantities.items()
            if (key.scope, key.holder, key.period, key.when) == wanted
        }
