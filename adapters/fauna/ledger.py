"""The usage ledger's projection in Fauna: a document per ledger key, and one checkpoint document (schema:
adapters/fauna/schema.py).

Each operation is one FQL query, so one transaction. `advance` reads the checkpoint, and only if it is still the
one expected adds the lines and moves it; Fauna runs transactions strictly serializably, so of advancers racing
from one checkpoint exactly one finds it unchanged. One that loses the race to create a document (the checkpoint,
or a key's first line) fails on a unique index with `instance not unique`, nothing written, and is asked again: it
then finds the checkpoint moved.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

from adapters.fauna import schema
from adapters.fauna.connection import error_code
from adapters.fauna.driver import errors, q
from domain.ports import StoreUnavailable
from domain.usage import LedgerKey

if TYPE_CHECKING:
    from adapters.fauna.store import FaunaEventStore

NAME = "ledger"
"""The checkpoint document's `name`."""
PAGE = 100_000
"""Most lines one holder's period is read with (Fauna's largest page; a period has one line per model and unit)."""
RACES = 3
"""How often an advance that lost the race to create a document is asked again."""


def _first(index: str, terms: Any) -> Any:
    """The ref of the one document an index of unique terms has for them, or null."""
    return q.select(["data", 0], q.paginate(q.match(q.index(index), terms)), None)


def _position() -> Any:
    """The position of the checkpoint document bound to `ref`, or null when there is none."""
    return q.if_(q.equals(q.var("ref"), None), None, q.select(["data", "position"], q.get(q.var("ref"))))


def _checkpoint() -> Any:
    """FQL: the checkpoint's position, or null when there is none."""
    return q.let({"ref": _first(schema.LEDGER_CHECKPOINT_BY_NAME, NAME)}, _position())


def _add(key: LedgerKey, quantity: int) -> Any:
    """Add `quantity` to the key's document, creating it if missing."""
    fields = {
        "scope": key.scope,
        "holder": key.holder,
        "period": key.period,
        "when": key.when,
        "model": key.model,
        "unit": key.unit,
    }
    return q.let(
        {"line": _first(schema.LEDGER_BY_KEY, list(fields.values()))},
        q.if_(
            q.equals(q.var("line"), None),
            q.create(q.collection(schema.LEDGER), {"data": {**fields, "quantity": quantity}}),
            q.update(
                q.var("line"),
                {"data": {"quantity": q.add(q.select(["data", "quantity"], q.get(q.var("line"))), quantity)}},
            ),
        ),
    )


def _advance(expected: str | None, to: str, lines: Mapping[LedgerKey, int]) -> Any:
    """FQL: if the checkpoint is `expected`, add the lines, move it to `to` and answer true; else answer false."""
    move = q.if_(
        q.equals(q.var("ref"), None),
        q.create(q.collection(schema.LEDGER_CHECKPOINT), {"data": {"name": NAME, "position": to}}),
        q.update(q.var("ref"), {"data": {"position": to}}),
    )
    return q.let(
        {"ref": _first(schema.LEDGER_CHECKPOINT_BY_NAME, NAME)},
        q.if_(
            q.equals(_position(), expected),
            q.do(*(_add(key, quantity) for key, quantity in lines.items()), move, True),
            False,
        ),
    )


def _quantities(scope: str, holder: str, period: str, when: str) -> Any:
    """FQL: the `[model, unit, quantity]` entries of one holder's period."""
    return q.select(
        ["data"], q.paginate(q.match(q.index(schema.LEDGER_BY_HOLDER), [scope, holder, period, when]), size=PAGE)
    )


class FaunaLedger:
    """A LedgerStore in the Fauna store's `ledger` and `ledger_checkpoint` collections."""

    def __init__(self, store: FaunaEventStore) -> None:
        self._store = store

    async def checkpoint(self) -> str | None:
        """The position of the last event included (None: none yet)."""
        position = await self._store.query(_checkpoint)
        return None if position is None else str(position)

    async def advance(self, expected: str | None, to: str, lines: Mapping[LedgerKey, int]) -> bool:
        """Add `lines` and move the checkpoint from `expected` to `to`, in one transaction; False, writing nothing,
        when the checkpoint is no longer `expected` (see LedgerStore.advance)."""
        build = partial(_advance, expected, to, dict(lines))
        for _ in range(RACES):
            try:
                return bool(await self._store.query(build))
            except errors.BadRequest as error:
                if error_code(error) != "instance not unique":
                    raise
                # a concurrent advance created the checkpoint or a line first: the next attempt sees it moved
        raise StoreUnavailable(f"Fauna at {self._store.endpoint} kept refusing the ledger's documents")

    async def quantities(self, scope: str, holder: str, period: str, when: str) -> dict[tuple[str, str], int]:
        """What one holder used in one period: quantity by (model, unit), read from `ledger_by_holder`."""
        entries = await self._store.query(partial(_quantities, scope, holder, period, when))
        return {(model, unit): int(quantity) for model, unit, quantity in entries}
