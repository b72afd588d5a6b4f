"""FQL v4 values inside the double, their wire JSON (both ways) and the order indexes sort them in.

Wire forms (what the driver sends and parses): `{"@ref": {"id", "collection"?}}` for refs (schema refs point at
the native `collections` / `indexes` refs), `{"@ts": ISO}` times, `{"@date": ISO}` dates, `{"@bytes": base64url}`,
`{"@set": {"match": ref, "terms": ...}}` sets, and `{"@obj": {...}}` for a literal object whose keys would
otherwise read as one of these forms.
"""

from __future__ import annotations

import base64
import functools
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from tests.doubles.fauna.errors import QueryError

SPECIAL_KEYS = frozenset({"@ref", "@ts", "@date", "@bytes", "@set", "@obj", "@query"})


@dataclass(frozen=True)
class Ref:
    """A reference: a native collection (`collections`, `indexes`) when `collection` is None."""

    id: str
    collection: Ref | None = None

    @functools.cached_property
    def key(self) -> tuple[Any, ...]:
        """The ref's sort key: by collection, then numeric ids in numeric order."""
        identity = (0, int(self.id), "") if self.id.isdigit() else (1, 0, self.id)
        return (4, self.collection.key if self.collection else (), identity)

    def describe(self) -> str:
        """FQL's own rendering, for error messages."""
        if self.collection is None:
            return self.id.capitalize() + "()"
        if self.collection == COLLECTIONS:
            return f'Collection("{self.id}")'
        if self.collection == INDEXES:
            return f'Index("{self.id}")'
        return f'Ref({self.collection.describe()}, "{self.id}")'


COLLECTIONS = Ref("collections")
INDEXES = Ref("indexes")


def collection_ref(name: str) -> Ref:
    """The ref of a user collection."""
    return Ref(name, COLLECTIONS)


def index_ref(name: str) -> Ref:
    """The ref of an index."""
    return Ref(name, INDEXES)


@dataclass(frozen=True)
class Time:
    """A Fauna timestamp, to the microsecond, UTC."""

    moment: datetime

    @classmethod
    def parse(cls, text: str) -> Time:
        """An ISO 8601 time with a zone (digits past microseconds are dropped)."""
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise QueryError("invalid argument", f"Cannot cast '{text}' to a time.") from None
        if moment.tzinfo is None:
            raise QueryError("invalid argument", f"Time '{text}' has no offset.")
        return cls(moment.astimezone(UTC))

    def iso(self) -> str:
        """Fauna's rendering: UTC with a Z, fractions only when there are some."""
        return self.moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class SetRef:
    """The set `Match(index, terms)`: lazy until paginated."""

    index: Ref
    terms: tuple[Any, ...] | None


@dataclass
class Page:
    """A page of a set: `data`, with cursors when there is more before or after it."""

    data: list[Any]
    before: list[Any] | None = None
    after: list[Any] | None = None

    def as_object(self) -> dict[str, Any]:
        """The page as the object Select and the wire see."""
        page: dict[str, Any] = {}
        if self.before is not None:
            page["before"] = self.before
        if self.after is not None:
            page["after"] = self.after
        page["data"] = self.data
        return page


@dataclass(frozen=True)
class Closure:
    """A Lambda: parameter name(s), unevaluated body, and the variables it closes over."""

    params: str | tuple[str, ...]
    body: Any = field(compare=False)
    env: dict[str, Any] = field(compare=False)
    wire: Any = field(compare=False)


def decode_literal(key: str, value: Any) -> Any:
    """The value of a wire special form (`{"@ref": ...}` and the rest) in a request."""
    if key == "@ref":
        return _decode_ref(value)
    if key == "@ts":
        return Time.parse(_text(value, "@ts"))
    if key == "@date":
        try:
            return date.fromisoformat(_text(value, "@date"))
        except ValueError:
            raise QueryError("invalid argument", f"Cannot cast '{value}' to a date.") from None
    if key == "@bytes":
        return base64.urlsafe_b64decode(_text(value, "@bytes"))
    if key == "@set":
        if not isinstance(value, dict) or "match" not in value:
            raise QueryError("invalid expression", "Only Match sets are understood by the double.")
        terms = value.get("terms")
        return SetRef(decode_wire(value["match"]), None if terms is None else _as_terms(decode_wire(terms)))
    if key == "@obj":
        if not isinstance(value, dict):
            raise QueryError("invalid expression", "@obj expects an object.")
        return {name: decode_wire(item) for name, item in value.items()}
    raise QueryError("invalid expression", f"The double does not accept {key} values.")


def decode_wire(value: Any) -> Any:
    """A literal wire value (inside @obj, @set, @ref): no function calls, only data and special forms."""
    if isinstance(value, list):
        return [decode_wire(item) for item in value]
    if isinstance(value, dict):
        if len(value) == 1 and next(iter(value)) in SPECIAL_KEYS:
            key = next(iter(value))
            return decode_literal(key, value[key])
        return {name: decode_wire(item) for name, item in value.items()}
    return value


def encode(value: Any) -> Any:
    """The wire JSON of a value in a response."""
    if isinstance(value, Ref):
        body: dict[str, Any] = {"id": value.id}
        if value.collection is not None:
            body["collection"] = encode(value.collection)
        return {"@ref": body}
    if isinstance(value, Time):
        return {"@ts": value.iso()}
    if isinstance(value, datetime):
        return {"@ts": Time(value).iso()}
    if isinstance(value, date):
        return {"@date": value.isoformat()}
    if isinstance(value, bytes | bytearray):
        return {"@bytes": base64.urlsafe_b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, SetRef):
        match: dict[str, Any] = {"match": encode(value.index)}
        if value.terms is not None:
            match["terms"] = encode(list(value.terms) if len(value.terms) != 1 else value.terms[0])
        return {"@set": match}
    if isinstance(value, Page):
        return encode(value.as_object())
    if isinstance(value, Closure):
        return {"@query": value.wire}
    if isinstance(value, list | tuple):
        return [encode(item) for item in value]
    if isinstance(value, dict):
        body = {name: encode(item) for name, item in value.items()}
        return {"@obj": body} if any(name.startswith("@") for name in value) else body
    return value


def _decode_ref(value: Any) -> Ref:
    if not isinstance(value, dict) or not isinstance(value.get("id"), str):
        raise QueryError("invalid expression", "A @ref needs a string id.")
    if "database" in value:
        raise QueryError("invalid argument", "The double has one database; scoped refs are not supported.")
    collection = value.get("collection")
    if collection is None:
        return Ref(value["id"])
    parent = decode_wire(collection)
    if not isinstance(parent, Ref):
        raise QueryError("invalid expression", "A @ref's collection must be a ref.")
    return Ref(value["id"], parent)


def _text(value: Any, form: str) -> str:
    if not isinstance(value, str):
        raise QueryError("invalid expression", f"{form} expects a string.")
    return value


def _as_terms(value: Any) -> tuple[Any, ...]:
    return tuple(value) if isinstance(value, list) else (value,)


def sort_key(value: Any) -> tuple[Any, ...]:
    """A Python-comparable key that orders values the way an index orders them.

    Fauna sorts index values "lexically according to the field's type"; across types the double uses a fixed
    rank (numbers, bytes, strings, arrays, refs, times, dates, booleans, objects, null): an assumption, since our
    indexes never mix types in one position.
    """
    kind = type(value)
    if kind is str:
        return (2, value)
    if kind is int or kind is float:
        return (0, value)
    if kind is Ref:
        ref: Ref = value
        return ref.key
    if value is None:
        return (9,)
    if kind is bool:
        return (7, value)
    if kind is Time:
        return (5, value.moment)
    if isinstance(value, list | tuple):
        return (3, tuple(sort_key(item) for item in value))
    if isinstance(value, bytes | bytearray):
        return (1, bytes(value))
    if isinstance(value, date):
        return (6, value)
    if isinstance(value, dict):
        return (8, tuple(sorted((name, sort_key(item)) for name, item in value.items())))
    raise QueryError("invalid argument", f"{type(value).__name__} values cannot be compared.")


def same(left: Any, right: Any) -> bool:
    """FQL equality: by type and value (true is not 1), deep for arrays and objects."""
    if isinstance(left, Page) or isinstance(right, Page):
        return isinstance(left, Page) and isinstance(right, Page) and same(left.as_object(), right.as_object())
    if isinstance(left, SetRef | Closure) or isinstance(right, SetRef | Closure):
        return bool(left == right)
    return sort_key(left) == sort_key(right)
