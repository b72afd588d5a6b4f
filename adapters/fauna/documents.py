"""Recorded events to and from the `data` of Fauna documents, through the domain codec.

Fauna does not store object fields whose value is null, so a payload field that is None is left out of `data` and
its name listed in `nulls`; reading puts it back. Payloads are flat (every event field is a scalar), so only
top-level fields need this.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from adapters.fauna.driver import FaunaTime
from domain.codec import event_to_document, recorded_from_document
from domain.errors import MalformedDocument
from domain.events import Event, RecordedEvent


def event_fields(
    stream: str, version: int, recorded_at: datetime, causation_id: str, event: Event, *, starts_batch: bool
) -> dict[str, Any]:
    """The document `data` recording `event` (causation_key only when it starts a causation batch)."""
    document = event_to_document(event)
    payload: dict[str, Any] = document["data"]
    fields: dict[str, Any] = {
        "stream": stream,
        "version": version,
        "recorded_at": recorded_at.astimezone(UTC),
        "causation_id": causation_id,
        "type": document["type"],
        "schema": document["schema"],
        "data": {name: value for name, value in payload.items() if value is not None},
    }
    nulls = [name for name, value in payload.items() if value is None]
    if nulls:
        fields["nulls"] = nulls
    if starts_batch:
        fields["causation_key"] = causation_id
    return fields


def recorded_fields(recorded: RecordedEvent, *, starts_batch: bool) -> dict[str, Any]:
    """The document `data` recording an already-recorded event verbatim."""
    return event_fields(
        recorded.stream,
        recorded.version,
        recorded.recorded_at,
        recorded.causation_id,
        recorded.event,
        starts_batch=starts_batch,
    )


def recorded_from_fields(fields: object) -> RecordedEvent:
    """The recorded event a document's `data` describes; MalformedDocument names what is wrong."""
    if not isinstance(fields, Mapping):
        raise MalformedDocument(f"Fauna event document data must be an object, got {type(fields).__name__}")
    payload = fields.get("data", {})
    if not isinstance(payload, Mapping):
        raise MalformedDocument("Fauna event document: 'data' must be an object")
    nulls = fields.get("nulls", [])
    if not isinstance(nulls, list) or not all(isinstance(name, str) for name in nulls):
        raise MalformedDocument("Fauna event document: 'nulls' must be a list of field names")
    return recorded_from_document(
        {
            "stream": fields.get("stream"),
            "version": fields.get("version"),
            "recorded_at": _time_text(fields.get("recorded_at")),
            "causation_id": fields.get("causation_id"),
            "event": {
                "type": fields.get("type"),
                "schema": fields.get("schema"),
                "data": {**payload, **dict.fromkeys(nulls)},
            },
        }
    )


def _time_text(value: object) -> object:
    """Fauna's ISO 8601 text of a Time value (other values pass through for the codec to refuse)."""
    if isinstance(value, FaunaTime):
        return value.value
    return value
