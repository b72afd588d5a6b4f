"""The double's one database: collections, documents and indexes, changed only inside transactions.

A transaction applies its writes at once (so later reads in the same query see them) and keeps an undo log; the
server commits it when the query succeeds and rolls it back on any error, so a query is all or nothing. The server
runs one transaction at a time, which makes every query serialized.

Index semantics kept from Fauna v4: an entry per document, partitioned by its terms and sorted by its values (then
by ref); a field that is missing reads as null; no entry when all terms are null (an index with terms) or all
values are null (an index with values); `unique` constrains terms and values combined (terms alone when no values
are declared); documents never store null-valued object fields.
"""

from __future__ import annotations

import bisect
import functools
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from tests.doubles.fauna.errors import QueryError
from tests.doubles.fauna.values import Ref, collection_ref, index_ref, sort_key

SYNC_BUILD_LIMIT = 128
"""Fauna indexes a collection synchronously when it has at most this many events; else it builds in background."""

Entry = tuple[tuple[Any, ...], list[Any], Ref]
"""An index entry: (sort key, values as returned, document ref)."""


@dataclass
class Document:
    """A stored document."""

    ref: Ref
    ts: int
    data: dict[str, Any]

    def as_object(self) -> dict[str, Any]:
        """The document as queries see it."""
        return {"ref": self.ref, "ts": self.ts, "data": self.data}


@dataclass
class Index:
    """An index and its entries."""

    name: str
    source: str
    terms: list[list[str]]
    values: list[list[str]]
    unique: bool
    serialized: bool
    ts: int
    definition: dict[str, Any]
    active_at: float = 0.0
    partitions: dict[tuple[Any, ...], list[Entry]] = field(default_factory=dict)
    claimed: dict[tuple[Any, ...], Ref] = field(default_factory=dict)

    def entries_for(self, document: Document) -> list[tuple[tuple[Any, ...], Entry, tuple[Any, ...]]]:
        """(partition key, entry, uniqueness key) for the document, or nothing when Fauna would not index it."""
        terms = [_field(document, path) for path in self.terms]
        if self.terms and all(term is None for term in terms):
            return []
        values = [_field(document, path) for path in self.values] if self.values else [document.ref]
        if self.values and all(value is None for value in values):
            return []
        if any(type(item) is list for item in (*terms, *values)):
            raise QueryError("invalid argument", f"The double does not index array fields (index {self.name}).")
        if any(_size(term) > TERM_LIMIT for term in terms):
            return []  # Fauna leaves a document whose term is too large out of the index
        partition = tuple(sort_key(term) for term in terms)
        value_keys = tuple(sort_key(value) for value in values)
        ordering = (*value_keys, sort_key(document.ref))
        claim = (partition, value_keys if self.values else ())
        return [(partition, (ordering, values, document.ref), claim)]

    def document(self, ts: int, active: bool) -> dict[str, Any]:
        """The index's definition document, as Get(Index(name)) answers it."""
        return {
            "ref": index_ref(self.name),
            "ts": ts,
            "active": active,
            "serialized": self.serialized,
            "name": self.name,
            "source": collection_ref(self.source),
            **self.definition,
            "unique": self.unique,
            "partitions": 1 if self.terms else 8,
        }


def _field(document: Document, path: list[str]) -> Any:
    """The value at `path` in the document (`ref`, `ts` or under `data`), null when missing."""
    head, rest = path[0], path[1:]
    value: Any = (
        document.data if head == "data" else document.ref if head == "ref" else document.ts if head == "ts" else None
    )
    for step in rest:
        if type(value) is not dict or step not in value:
            return None
        value = value[step]
    return value


DOCUMENT_LIMIT = 8 * 1024 * 1024
"""Largest document Fauna stores (its `data`, as JSON bytes here)."""
TRANSACTION_LIMIT = 16 * 1024 * 1024
"""Most bytes one transaction may write."""
TERM_LIMIT = 32 * 1024
"""Largest index term Fauna indexes; a document with a larger one is left out of that index."""


def _size(value: Any) -> int:
    """Bytes of the value as JSON (what the limits count, near enough)."""
    return len(json.dumps(value, default=str, ensure_ascii=False).encode("utf-8", "surrogatepass"))


def without_nulls(value: Any) -> Any:
    """The value as Fauna stores it: object fields whose value is null are dropped (array items are kept)."""
    if isinstance(value, dict):
        return {name: without_nulls(item) for name, item in value.items() if item is not None}
    if isinstance(value, list):
        return [without_nulls(item) for item in value]
    return value


class Database:
    """Everything the double stores."""

    def __init__(self, index_build_seconds: float = 0.0) -> None:
        self.collections: dict[str, dict[str, Any]] = {}
        self.documents: dict[str, dict[str, Document]] = {}
        self.indexes: dict[str, Index] = {}
        self.index_build_seconds = index_build_seconds
        self._last_ts = 0
        self._next_id = 300_000_000_000_000_000

    def begin(self) -> Transaction:
        """Start the next transaction (its timestamp is strictly later than any before)."""
        self._last_ts = max(self._last_ts + 1, time.time_ns() // 1000)
        return Transaction(self, self._last_ts)

    def new_id(self) -> str:
        """A fresh document id (numeric, increasing, like Fauna's)."""
        self._next_id += 1
        return str(self._next_id)


class Transaction:
    """One query's reads and writes against the database, undone unless committed."""

    def __init__(self, database: Database, ts: int) -> None:
        self.db = database
        self.ts = ts
        self.wrote = False
        self.written_bytes = 0
        self.touched: set[str] = set()
        """The collections whose documents or indexes the transaction read or wrote."""
        self._undo: list[Callable[[], object]] = []
        self._new_collections: set[str] = set()
        self._new_indexes: set[str] = set()

    def rollback(self) -> None:
        """Undo every write of the transaction, newest first."""
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()

    # Schema

    def collection(self, ref: Ref) -> str:
        """The name of an existing collection; invalid ref otherwise."""
        if ref.collection is None or ref.collection.id != "collections" or ref.id not in self.db.collections:
            raise QueryError("invalid ref", f"Ref refers to undefined collection '{ref.id}'")
        return ref.id

    def index(self, ref: Ref) -> Index:
        """An existing index that this transaction may read; invalid ref otherwise."""
        if ref.collection is None or ref.collection.id != "indexes" or ref.id not in self.db.indexes:
            raise QueryError("invalid ref", f"Ref refers to undefined index '{ref.id}'")
        if ref.id in self._new_indexes:
            raise QueryError("invalid argument", f"Index '{ref.id}' cannot be read in the transaction creating it.")
        return self.db.indexes[ref.id]

    def exists(self, ref: Ref) -> bool:
        """Whether the ref names a collection, an index or a document that exists now."""
        if ref.collection is None:
            return ref.id in ("collections", "indexes")
        if ref.collection.id == "collections" and ref.collection.collection is None:
            return ref.id in self.db.collections
        if ref.collection.id == "indexes" and ref.collection.collection is None:
            return ref.id in self.db.indexes
        return ref.id in self.db.documents.get(ref.collection.id, {})

    def create_collection(self, params: dict[str, Any]) -> dict[str, Any]:
        """CreateCollection: a new, empty collection."""
        name = _name(params)
        if name in self.db.collections:
            raise QueryError("instance already exists", "Collection already exists.")
        history = params.get("history_days", 30)  # Fauna keeps 30 days of every document's history by default
        collection = {"ref": collection_ref(name), "ts": self.ts, "history_days": history, "name": name}
        self.db.collections[name] = collection
        self.db.documents[name] = {}
        self._new_collections.add(name)
        self._written(lambda: (self.db.collections.pop(name), self.db.documents.pop(name)))
        return collection

    def create_index(self, params: dict[str, Any]) -> dict[str, Any]:
        """CreateIndex: built at once from the source's documents (reported inactive for a while when large)."""
        name = _name(params)
        if name in self.db.indexes:
            raise QueryError("instance already exists", "Index already exists.")
        source = params.get("source")
        if not isinstance(source, Ref):
            raise QueryError("invalid argument", "The double supports only a collection ref as an index source.")
        collection = self.collection(source)
        if collection in self._new_collections:
            raise QueryError(
                "invalid argument", "An index cannot be created in the same transaction that creates its source."
            )
        definition: dict[str, Any] = {key: params[key] for key in ("terms", "values") if key in params}
        index = Index(
            name=name,
            source=collection,
            terms=_paths(params.get("terms"), "terms"),
            values=_paths(params.get("values"), "values"),
            unique=bool(params.get("unique", False)),
            serialized=bool(params.get("serialized", True)),
            ts=self.ts,
            definition=definition,
        )
        documents = list(self.db.documents[collection].values())
        if len(documents) > SYNC_BUILD_LIMIT:
            index.active_at = time.monotonic() + self.db.index_build_seconds
        for document in documents:
            for partition, entry, claim in index.entries_for(document):
                if index.unique and index.claimed.setdefault(claim, document.ref) != document.ref:
                    raise QueryError("instance not unique", "document is not unique.")
                bisect.insort(index.partitions.setdefault(partition, []), entry, key=_order)
        self.db.indexes[name] = index
        self._new_indexes.add(name)
        self._written(lambda: self.db.indexes.pop(name))
        return index.document(self.ts, active=index.active_at <= time.monotonic())

    def index_document(self, ref: Ref) -> dict[str, Any]:
        """Get(Index(name)): the definition, with `active` false while a background build would run."""
        if ref.id not in self.db.indexes:
            raise QueryError("invalid ref", f"Ref refers to undefined index '{ref.id}'")
        index = self.db.indexes[ref.id]
        return index.document(index.ts, active=index.active_at <= time.monotonic())

    # Documents

    def get(self, ref: Ref) -> Document:
        """The document; instance not found when there is none."""
        if ref.collection is None or ref.collection.collection is None:
            raise QueryError("invalid argument", "The double can Get documents and index definitions only.")
        collection = self.collection(ref.collection)
        self.touched.add(collection)
        found = self.db.documents[collection].get(ref.id)
        if found is None:
            raise QueryError("instance not found", "Document not found.")
        return found

    def create(self, target: Ref, params: dict[str, Any]) -> Document:
        """Create a document in a collection (new id) or at a given ref; keeps every index and constraint."""
        if target.collection is not None and target.collection.id == "collections":
            collection, document_id = self.collection(target), self.db.new_id()
        elif target.collection is not None and target.collection.collection is not None:
            collection, document_id = self.collection(target.collection), target.id
        else:
            raise QueryError("invalid argument", "Create expects a collection or a document ref.")
        unknown = sorted(set(params) - {"data"})
        if unknown:
            raise QueryError("invalid argument", f"The double's Create takes only data, not {', '.join(unknown)}.")
        data = params.get("data", {})
        if not isinstance(data, dict):
            raise QueryError("invalid argument", "Object expected, Array or scalar provided.")
        self.touched.add(collection)
        documents = self.db.documents[collection]
        if document_id in documents:
            raise QueryError("instance already exists", "Document already exists.")
        size = _size(data)
        if size > DOCUMENT_LIMIT:
            raise QueryError("invalid argument", f"Document data is {size} bytes; the limit is 8 MB.")
        self.written_bytes += size
        if self.written_bytes > TRANSACTION_LIMIT:
            raise QueryError("invalid argument", "Transaction writes exceed the limit of 16 MB.")
        document = Document(Ref(document_id, collection_ref(collection)), self.ts, without_nulls(data))
        self._index(document, collection)
        documents[document_id] = document
        self._written(lambda: documents.pop(document_id))
        return document

    def update(self, ref: Ref, params: dict[str, Any]) -> Document:
        """Update: `data` merged into the document's (objects recursively; a null removes the field)."""
        unknown = sorted(set(params) - {"data"})
        if unknown:
            raise QueryError("invalid argument", f"The double's Update takes only data, not {', '.join(unknown)}.")
        changes = params.get("data", {})
        if not isinstance(changes, dict):
            raise QueryError("invalid argument", "Object expected, Array or scalar provided.")
        merged = _merged(self.get(ref).data, changes)
        self.delete(ref)
        return self.create(ref, {"data": merged})

    def delete(self, ref: Ref) -> Document:
        """Delete a document and its index entries."""
        document = self.get(ref)
        collection = self.collection(ref.collection)  # type: ignore[arg-type]
        for index in self._indexes_of(collection):
            for partition, entry, claim in index.entries_for(document):
                _remove(index.partitions[partition], entry)
                if index.unique:
                    index.claimed.pop(claim, None)
        del self.db.documents[collection][ref.id]
        self._written(lambda: self._restore(document, collection))
        return document

    def entries(self, index: Index, terms: tuple[Any, ...] | None) -> list[Entry]:
        """The sorted entries of `Match(index, terms)`."""
        self.touched.add(index.source)
        wanted = terms or ()
        if len(wanted) != len(index.terms):
            return []
        return index.partitions.get(tuple(sort_key(term) for term in wanted), [])

    def _index(self, document: Document, collection: str) -> None:
        placed: list[tuple[Index, tuple[Any, ...], Entry, tuple[Any, ...]]] = []
        for index in self._indexes_of(collection):
            for partition, entry, claim in index.entries_for(document):
                if index.unique and claim in index.claimed:
                    raise QueryError("instance not unique", "document is not unique.")
                placed.append((index, partition, entry, claim))
        for index, partition, entry, claim in placed:
            bisect.insort(index.partitions.setdefault(partition, []), entry, key=_order)
            if index.unique:
                index.claimed[claim] = document.ref
            self._undo.append(functools.partial(self._unindex, index, partition, entry, claim))

    def _unindex(self, index: Index, partition: tuple[Any, ...], entry: Entry, claim: tuple[Any, ...]) -> None:
        _remove(index.partitions[partition], entry)
        if index.unique:
            index.claimed.pop(claim, None)

    def _restore(self, document: Document, collection: str) -> None:
        self.db.documents[collection][document.ref.id] = document
        for index in self._indexes_of(collection):
            for partition, entry, claim in index.entries_for(document):
                bisect.insort(index.partitions.setdefault(partition, []), entry, key=_order)
                if index.unique:
                    index.claimed[claim] = document.ref

    def _indexes_of(self, collection: str) -> Iterator[Index]:
        return (index for index in self.db.indexes.values() if index.source == collection)

    def _written(self, undo: Callable[[], object]) -> None:
        self.wrote = True
        self._undo.append(undo)


def _merged(old: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """Fauna's Update merge: nested objects merge, a null removes the field, anything else replaces."""
    merged = dict(old)
    for name, value in changes.items():
        if value is None:
            merged.pop(name, None)
        elif isinstance(value, dict) and isinstance(merged.get(name), dict):
            merged[name] = _merged(merged[name], value)
        else:
            merged[name] = value
    return merged


def _order(entry: Entry) -> tuple[Any, ...]:
    return entry[0]


def _remove(entries: list[Entry], entry: Entry) -> None:
    at = bisect.bisect_left(entries, entry[0], key=_order)
    if at < len(entries) and entries[at][0] == entry[0]:
        del entries[at]


def _name(params: dict[str, Any]) -> str:
    name = params.get("name")
    if not isinstance(name, str) or not name:
        raise QueryError("validation failed", "document data is not valid.")
    return name


def _paths(fields: Any, what: str) -> list[list[str]]:
    if fields is None:
        return []
    if not isinstance(fields, list):
        raise QueryError("invalid argument", f"Index {what} must be an array.")
    paths = []
    for item in fields:
        if not isinstance(item, dict) or "field" not in item:
            raise QueryError("invalid argument", f"The double supports only field {what} (no bindings).")
        if item.get("reverse"):
            raise QueryError("invalid argument", "The double does not implement reverse index values.")
        path = item["field"]
        paths.append([path] if isinstance(path, str) else list(path))
    return paths


__all__ = ["Database", "Document", "Index", "Transaction", "without_nulls"]
