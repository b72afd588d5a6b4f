"""Events to and from plain JSON-compatible documents, with upcasting of older schema versions.

An event document is `{"type": <class name>, "schema": <int>, "data": {<field>: <value>}}`; a recorded event adds
its envelope: `{"stream", "version", "recorded_at" (ISO 8601 UTC), "causation_id", "event": <event document>}`.
Loading checks every field's type, so a store or a hand-edited file can never smuggle a malformed event into a fold.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from types import NoneType, UnionType
from typing import Any, Literal, TypeAlias, Union, get_args, get_origin, get_type_hints

import attr
import attrs

from domain.errors import MalformedDocument, UnknownEventType
from domain.events import EVENT_TYPES, Event, RecordedEvent

Document: TypeAlias = dict[str, Any]
Upcaster: TypeAlias = Callable[[Document], Document]

_TYPES: dict[str, type[Event]] = {cls.__name__: cls for cls in EVENT_TYPES}

SCHEMA_VERSIONS: dict[str, int] = dict.fromkeys(_TYPES, 1) | {"UserRegistered": 2}
"""The schema version each event type is written with today."""


def _user_registered_v1_to_v2(data: Document) -> Document:
    """Version 1 had no language code: such users simply had none recorded."""
    return {**data, "language_code": None}


UPCASTERS: dict[tuple[str, int], Upcaster] = {("UserRegistered", 1): _user_registered_v1_to_v2}
"""(type, schema) -> function turning that schema's data into the next schema's data."""


def event_to_document(event: Event) -> Document:
    """The event as a JSON-compatible document."""
    name = type(event).__name__
    return {"type": name, "schema": SCHEMA_VERSIONS[name], "data": attr.asdict(event, retain_collection_types=False)}


def event_from_document(document: object) -> Event:
    """The event a document describes, upcast to today's schema; raises a DomainError naming the fault."""
    doc = _mapping(document, "event document")
    name = doc.get("type")
    if not isinstance(name, str):
        raise MalformedDocument("event document has no string 'type'")
    cls = _TYPES.get(name)
    if cls is None:
        raise UnknownEventType(name)
    schema = doc.get("schema")
    if not isinstance(schema, int) or isinstance(schema, bool) or not 1 <= schema <= SCHEMA_VERSIONS[name]:
        raise MalformedDocument(f"{name}: unsupported schema {schema!r} (known up to {SCHEMA_VERSIONS[name]})")
    data = dict(_mapping(doc.get("data"), f"{name}.data"))
    for version in range(schema, SCHEMA_VERSIONS[name]):
        data = UPCASTERS[(name, version)](data)
    event: Event = _build(cls, data)
    return event


def recorded_to_document(recorded: RecordedEvent) -> Document:
    """The recorded event with its envelope as a JSON-compatible document."""
    return {
        "stream": recorded.stream,
        "version": recorded.version,
        "recorded_at": recorded.recorded_at.astimezone(UTC).isoformat(),
        "causation_id": recorded.causation_id,
        "event": event_to_document(recorded.event),
    }


def recorded_from_document(document: object) -> RecordedEvent:
    """The recorded event a document describes; raises a DomainError naming the fault."""
    doc = _mapping(document, "recorded event document")
    stream = _typed(doc.get("stream"), str, "stream")
    version = _typed(doc.get("version"), int, "version")
    if version < 1:
        raise MalformedDocument(f"version must be 1 or more, got {version}")
    causation_id = _typed(doc.get("causation_id"), str, "causation_id")
    return RecordedEvent(
        stream=stream,
        version=version,
        recorded_at=parse_utc(_typed(doc.get("recorded_at"), str, "recorded_at")),
        causation_id=causation_id,
        event=event_from_document(doc.get("event")),
    )


def parse_utc(text: str) -> datetime:
    """An ISO 8601 timestamp with a zone, as UTC; raises MalformedDocument for anything else."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise MalformedDocument(f"recorded_at is not an ISO 8601 time: {text!r}") from None
    if moment.tzinfo is None:
        raise MalformedDocument(f"recorded_at has no time zone: {text!r}")
    return moment.astimezone(UTC)


_Shape: TypeAlias = tuple[tuple["attrs.Attribute[Any]", ...], frozenset[str], dict[str, Any]]
_SHAPES: dict[type, _Shape] = {}


def _shape(cls: type) -> _Shape:
    """An attrs class's fields, their names and their resolved type hints (resolved once per class)."""
    if cls not in _SHAPES:
        fields = tuple(attrs.fields(cls))
        _SHAPES[cls] = fields, frozenset(field.name for field in fields), get_type_hints(cls)
    return _SHAPES[cls]


def _build(cls: type[Any], data: Mapping[str, Any]) -> Any:
    """An event (or a value inside one, such as a Photo) from its data, every field checked against its type."""
    fields, known, hints = _shape(cls)
    unknown = sorted(set(data) - known)
    if unknown:
        raise MalformedDocument(f"{cls.__name__}: unknown field(s) {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for field in fields:
        if field.name not in data:
            if field.default is not attrs.NOTHING:
                continue
            raise MalformedDocument(f"{cls.__name__}: missing field {field.name!r}")
        value = data[field.name]
        hint = hints[field.name]
        if _is_values(hint):
            values[field.name] = _build_values(cls, field.name, value, get_args(hint)[0])
            continue
        if not _conforms(value, hint):
            raise MalformedDocument(f"{cls.__name__}.{field.name}: {value!r} is not {_describe(hint)}")
        values[field.name] = value
    return cls(**values)


def _is_values(hint: Any) -> bool:
    """Whether a field holds a tuple of attrs values (`tuple[Photo, ...]`), kept in a document as a list."""
    return get_origin(hint) is tuple and attrs.has(get_args(hint)[0])


def _build_values(owner: type, name: str, value: object, cls: type) -> tuple[Any, ...]:
    if not isinstance(value, list | tuple):
        raise MalformedDocument(f"{owner.__name__}.{name}: {value!r} is not a list")
    return tuple(_build(cls, _mapping(item, f"{owner.__name__}.{name}[{index}]")) for index, item in enumerate(value))


def _conforms(value: object, hint: Any) -> bool:
    origin = get_origin(hint)
    if origin is Literal:
        return any(value == choice and type(value) is type(choice) for choice in get_args(hint))
    if origin in (Union, UnionType):
        return any(_conforms(value, option) for option in get_args(hint))
    if hint is NoneType:
        return value is None
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(hint, type) and isinstance(value, hint)


def _describe(hint: Any) -> str:
    if get_origin(hint) is Literal:
        return "one of " + ", ".join(repr(choice) for choice in get_args(hint))
    if get_origin(hint) in (Union, UnionType):
        return " or ".join(_describe(option) for option in get_args(hint))
    return "None" if hint is NoneType else getattr(hint, "__name__", str(hint))


def _mapping(value: object, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise MalformedDocument(f"{what} must be an object, got {type(value).__name__}")
    return value


def _typed(value: object, kind: type, what: str) -> Any:
    if not _conforms(value, kind):
        raise MalformedDocument(f"{what} must be {kind.__name__}, got {value!r}")
    return value
