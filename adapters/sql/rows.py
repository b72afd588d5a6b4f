"""Rows of the SQL stores' tables and what they hold: recorded events and inbox entries, in each dialect's types."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from adapters.sql.schema import Dialect
from domain.codec import event_from_document, event_to_document, parse_utc
from domain.events import RecordedEvent
from domain.ports import InboxEntry


def time_to_row(dialect: Dialect, moment: datetime) -> Any:
    """A moment as the dialect holds it: ISO 8601 UTC text, or the timezone-aware datetime itself."""
    return moment.astimezone(UTC).isoformat() if dialect.text_times else moment


def time_from_row(dialect: Dialect, value: Any) -> datetime:
    """A held moment, in UTC."""
    return parse_utc(value) if dialect.text_times else value.astimezone(UTC)


def event_rows(dialect: Dialect, events: Sequence[RecordedEvent], starts: Sequence[bool]) -> list[dict[str, Any]]:
    """The rows of `events`; `starts[i]` tells whether event i starts a causation batch (it gets the key)."""
    rows = []
    for event, starts_batch in zip(events, starts, strict=True):
        document = event_to_document(event.event)
        rows.append(
            {
                "stream": event.stream,
                "version": event.version,
                "recorded_at": time_to_row(dialect, event.recorded_at),
                "causation_id": event.causation_id,
                "causation_key": event.causation_id if starts_batch else None,
                "type": document["type"],
                "schema": document["schema"],
                "data": json.dumps(document["data"], ensure_ascii=False, separators=(",", ":")),
            }
        )
    return rows


def recorded(dialect: Dialect, stream: str, row: Sequence[Any]) -> RecordedEvent:
    """The event a row of `statements.Statements.forwards` (or of any events query) holds."""
    version, recorded_at, causation_id, name, schema, data = row
    document = {"type": name, "schema": schema, "data": json.loads(data) if dialect.json_text else data}
    return RecordedEvent(
        stream=stream,
        version=version,
        recorded_at=time_from_row(dialect, recorded_at),
        causation_id=causation_id,
        event=event_from_document(document),
    )


def inbox_entry(dialect: Dialect, row: Sequence[Any]) -> InboxEntry:
    """The entry a row of `statements.Statements.unfinished` holds."""
    update_id, chat, payload, preview, admitted_at = row
    return InboxEntry(
        update_id=update_id,
        chat=chat,
        payload=payload,
        preview=preview,
        admitted_at=time_from_row(dialect, admitted_at),
    )
