"""The usage ledger's projection in the SQL stores: `ledger` (quantities by key) and `ledger_checkpoint` (the
global position of the last event they include), advanced in one transaction that first moves the checkpoint from
the position the worker read, so of two workers advancing from one position only the first writes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from adapters.sql.schema import Dialect
from adapters.sql.statements import Change, Mode, Rows, Script, in_dialect
from domain.usage import LedgerKey

if TYPE_CHECKING:
    from adapters.sql.store import SqlEventStore

_TABLES = (
    """
    CREATE TABLE IF NOT EXISTS {ledger} (
        scope    TEXT NOT NULL,
        holder   TEXT NOT NULL,
        period   TEXT NOT NULL,
        span     TEXT NOT NULL,
        model    TEXT NOT NULL,
        unit     TEXT NOT NULL,
        quantity {big} NOT NULL,
        PRIMARY KEY (scope, holder, period, span, model, unit)
    )
    """,
    "CREATE TABLE IF NOT EXISTS {checkpoint} (name TEXT PRIMARY KEY, position TEXT NOT NULL)",
)
_NAME = "usage"
"""The checkpoint's row (one projection so far)."""


def ledger_tables(dialect: Dialect, ledger: str, checkpoint: str) -> tuple[str, ...]:
    """The statements that create the ledger's tables (quoted names), idempotent."""
    return tuple(text.format(ledger=ledger, checkpoint=checkpoint, big=dialect.big) for text in _TABLES)


class SqlLedger:
    """A LedgerStore in the tables `ledger_tables` made, through a SQL store's connections."""

    def __init__(self, store: SqlEventStore, ledger: str, checkpoint: str) -> None:
        self._store = store
        said = {
            "read": f"SELECT position FROM {checkpoint} WHERE name = :name",
            "move": f"UPDATE {checkpoint} SET position = :to WHERE name = :name AND position = :expected",
            "start": f"INSERT INTO {checkpoint} (name, position) VALUES (:name, :to) ON CONFLICT DO NOTHING",
            "add": f"""
                INSERT INTO {ledger} (scope, holder, period, span, model, unit, quantity)
                VALUES (:scope, :holder, :period, :span, :model, :unit, :quantity)
                ON CONFLICT (scope, holder, period, span, model, unit)
                DO UPDATE SET quantity = {ledger}.quantity + excluded.quantity
                """,
            "sums": f"SELECT model, unit, quantity FROM {ledger} "
            "WHERE scope = :scope AND holder = :holder AND period = :period AND span = :span",
        }
        self._sql = {name: in_dialect(store.dialect, text) for name, text in said.items()}

    async def checkpoint(self) -> str | None:
        """The position of the last event included (None: none yet)."""

        def read() -> Script[str | None]:
            rows = yield Rows(self._sql["read"], {"name": _NAME})
            return str(rows[0][0]) if rows else None

        return await self._store.run(read, Mode.READ)

    async def advance(self, expected: str | None, to: str, lines: Mapping[LedgerKey, int]) -> bool:
        """Move the checkpoint from `expected` to `to` and add the lines, in one transaction; False (nothing
        written) when another worker moved it first."""
        sql = self._sql

        def write() -> Script[bool]:
            if expected is None:
                moved = yield Change(sql["start"], {"name": _NAME, "to": to})
            else:
                moved = yield Change(sql["move"], {"name": _NAME, "to": to, "expected": expected})
            if moved != 1:
                return False
            for key, quantity in lines.items():
                parameters = {
                    "scope": key.scope,
                    "holder": key.holder,
                    "period": key.period,
                    "span": key.when,
                    "model": key.model,
                    "unit": key.unit,
                    "quantity": quantity,
                }
                yield Change(sql["add"], parameters)
            return True

        return await self._store.run(write, Mode.ALONE)

    async def quantities(self, scope: str, holder: str, period: str, when: str) -> dict[tuple[str, str], int]:
        """What one holder used in one period: quantity by (model, unit)."""

        def read() -> Script[dict[tuple[str, str], int]]:
            parameters = {"scope": scope, "holder": holder, "period": period, "span": when}
            rows = yield Rows(self._sql["sums"], parameters)
            return {(model, unit): int(quantity) for model, unit, quantity in rows}

        return await self._store.run(read, Mode.READ)
