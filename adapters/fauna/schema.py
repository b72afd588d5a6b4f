"""The Fauna schema of the event store: six collections and fifteen indexes, created idempotently.

The collections keep no document history (`history_days: 0`): an erased stream must not stay readable there.

Collection `events`, one document per recorded event; the document's `data` holds
`{stream, version, recorded_at (Time), causation_id, causation_key?, type, schema, data, nulls?}`:
- `causation_key` is the causation id, present only on the first event of a causation batch (all events of one
  append share the causation id, so uniqueness can only be asked of one of them);
- `data` is the event's payload with null fields left out, because Fauna does not store null-valued fields, and
  `nulls` (present only when needed) names the payload fields that were null, so they can be restored on read.

Indexes (terms -> values; `unique` is over terms and values combined, as Fauna defines it):
- `events_by_stream`          [stream] -> [version, ref]; pages of a stream, by version, either way, with cursors.
- `events_by_causation`       [stream, causation_id] -> [version, ref]; the batch a causation id recorded.
- `events_unique_version`     [stream, version] -> (ref), unique; no two events at one version of a stream.
- `events_unique_causation`   [causation_key] -> [stream], unique; one batch per causation id in a stream. Events
                              without `causation_key` have all their terms null, and Fauna stores no index entry
                              for such documents, so only batch starts are constrained.
- `events_by_version`         [version] -> [stream]; `Match(Index("events_by_version"), 1)` is the set of first
                              events, i.e. every stream that has events, sorted by name (no streams collection to
                              keep in step). The cost is one small index entry per event.
- `events_in_order`           no terms -> [ts, stream, version, ref]; every event in the store's global order (see
                              `FaunaEventStore.read_all`): by the commit time of the transaction that wrote it
                              (`ts`, the same for a whole append), then by stream and version.

Collection `erasures`, one document `{stream}` per erase in progress: an erase of a long stream takes several
transactions, and one that fails midway is finished at the next start (`erasures_by_stream` [stream] -> (ref);
`erasures_all`, no terms -> [stream]: every erase in progress).

Collection `inbox`, one document per Telegram update (see adapters/fauna/inbox.py):
`{bot, update_id, chat?, admitted_at, payload?, preview?, claimed_by?, claimed_at?, open?}`, where `open` is the
bot's id while the update is unhandled, and absent (like `payload`) once it is handled.
- `inbox_by_update`           [bot, update_id] -> (ref), unique; one document per update.
- `inbox_open`                [open] -> [update_id, ref]; a bot's unhandled updates, oldest first.
- `inbox_by_chat`             [chat] -> (ref); what an erasure of the chat's stream must drop.

Collection `leases`, one document `{bot, holder, expires (Time)}` per bot while a poller holds its lease (deleted on
release; one whose holder died stays until taken over; see adapters/fauna/lease.py):
- `leases_by_bot`             [bot] -> (ref), unique.

Collection `ledger`, one document `{scope, holder, period, when, model, unit, quantity}` per ledger key (the usage
ledger's projection, see adapters/fauna/ledger.py), and collection `ledger_checkpoint`, one document
`{name: "ledger", position}` once the ledger has been advanced:
- `ledger_by_key`             [scope, holder, period, when, model, unit] -> (ref), unique; one document per key.
- `ledger_by_holder`          [scope, holder, period, when] -> [model, unit, quantity]; what a holder used in a
                              period, read from the index alone.
- `ledger_checkpoint_by_name` [name] -> (ref), unique; the one checkpoint document.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from adapters.fauna.driver import q

COLLECTION = "events"

BY_STREAM = "events_by_stream"
BY_CAUSATION = "events_by_causation"
UNIQUE_VERSION = "events_unique_version"
UNIQUE_CAUSATION = "events_unique_causation"
BY_VERSION = "events_by_version"
IN_ORDER = "events_in_order"

ERASURES = "erasures"
ERASURES_BY_STREAM = "erasures_by_stream"
ERASURES_ALL = "erasures_all"

INBOX = "inbox"
INBOX_BY_UPDATE = "inbox_by_update"
INBOX_OPEN = "inbox_open"
INBOX_BY_CHAT = "inbox_by_chat"

LEASES = "leases"
LEASES_BY_BOT = "leases_by_bot"

LEDGER = "ledger"
LEDGER_BY_KEY = "ledger_by_key"
LEDGER_BY_HOLDER = "ledger_by_holder"
LEDGER_CHECKPOINT = "ledger_checkpoint"
LEDGER_CHECKPOINT_BY_NAME = "ledger_checkpoint_by_name"


@attrs.frozen
class IndexSpec:
    """One index of the schema, as given to CreateIndex."""

    name: str
    """The index name."""
    terms: tuple[str, ...]
    """Fields under the document's `data` that the index is searched by."""
    values: tuple[str, ...] = ()
    """Fields under `data` (or the document's `ref` or `ts`) each entry covers, in sort order; empty means the
    document ref."""
    unique: bool = False
    """Whether terms and values combined must be unique."""
    source: str = COLLECTION
    """The collection the index covers."""

    def definition(self) -> dict[str, Any]:
        """The index's `terms`, `values` and `unique` as Fauna stores and returns them."""
        definition: dict[str, Any] = {
            "terms": [{"field": _path(name)} for name in self.terms],
            "unique": self.unique,
        }
        if self.values:
            definition["values"] = [{"field": _path(name)} for name in self.values]
        return definition


INDEXES: tuple[IndexSpec, ...] = (
    IndexSpec(BY_STREAM, terms=("stream",), values=("version", "ref")),
    IndexSpec(BY_CAUSATION, terms=("stream", "causation_id"), values=("version", "ref")),
    IndexSpec(UNIQUE_VERSION, terms=("stream", "version"), unique=True),
    IndexSpec(UNIQUE_CAUSATION, terms=("causation_key",), values=("stream",), unique=True),
    IndexSpec(BY_VERSION, terms=("version",), values=("stream",)),
    IndexSpec(IN_ORDER, terms=(), values=("ts", "stream", "version", "ref")),
    IndexSpec(ERASURES_BY_STREAM, terms=("stream",), source=ERASURES),
    IndexSpec(ERASURES_ALL, terms=(), values=("stream",), source=ERASURES),
    IndexSpec(INBOX_BY_UPDATE, terms=("bot", "update_id"), unique=True, source=INBOX),
    IndexSpec(INBOX_OPEN, terms=("open",), values=("update_id", "ref"), source=INBOX),
    IndexSpec(INBOX_BY_CHAT, terms=("chat",), source=INBOX),
    IndexSpec(LEASES_BY_BOT, terms=("bot",), unique=True, source=LEASES),
    IndexSpec(LEDGER_BY_KEY, terms=("scope", "holder", "period", "when", "model", "unit"), unique=True, source=LEDGER),
    IndexSpec(
        LEDGER_BY_HOLDER,
        terms=("scope", "holder", "period", "when"),
        values=("model", "unit", "quantity"),
        source=LEDGER,
    ),
    IndexSpec(LEDGER_CHECKPOINT_BY_NAME, terms=("name",), unique=True, source=LEDGER_CHECKPOINT),
)


def _path(name: str) -> list[str]:
    return [name] if name in ("ref", "ts") else ["data", name]


def create_collection() -> Any:
    """FQL: create the collections unless they exist. (An index may not share its collection's transaction.)"""
    return q.do(
        *(
            q.if_(q.exists(q.collection(name)), None, q.create_collection({"name": name, "history_days": 0}))
            for name in (COLLECTION, ERASURES, INBOX, LEASES, LEDGER, LEDGER_CHECKPOINT)
        ),
        None,
    )


def create_indexes() -> Any:
    """FQL: create every missing index, in one transaction."""
    return q.do(
        *(
            q.if_(
                q.exists(q.index(spec.name)),
                None,
                q.create_index({"name": spec.name, "source": q.collection(spec.source), **spec.definition()}),
            )
            for spec in INDEXES
        ),
        None,
    )


def read_indexes() -> Any:
    """FQL: the definition documents of every index, in INDEXES order."""
    return [q.get(q.index(spec.name)) for spec in INDEXES]


def mismatches(found: Sequence[Mapping[str, Any]]) -> list[str]:
    """Names of indexes whose stored definition is not the one this code needs (index documents in INDEXES order)."""
    wrong = []
    for spec, document in zip(INDEXES, found, strict=True):
        wanted = spec.definition()
        stored = {
            "terms": list(document.get("terms") or []),
            "unique": bool(document.get("unique", False)),
        }
        if document.get("values"):
            stored["values"] = list(document["values"])
        if stored != wanted:
            wrong.append(spec.name)
    return wrong


def inactive(found: Sequence[Mapping[str, Any]]) -> list[str]:
    """Names of indexes Fauna is still building (index documents in INDEXES order)."""
    return [spec.name for spec, document in zip(INDEXES, found, strict=True) if not document.get("active", False)]
