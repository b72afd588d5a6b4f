"""Exporting one stream: JSON lines that `convo import` restores, or a Markdown transcript people read.

An export is of the stream as it stood when the export began (`Export.newest`): events the bot records meanwhile
are left for the next one. Events are read from the store page by page (`EventStore.read_forwards` pages) and each
is written out as it arrives, so a stream of any length is exported without holding it: the Markdown transcript
reads the stream twice, first to learn which turns were undone (a few numbers), then to write it.

A JSON line is the codec's recorded-event document (`domain.codec.recorded_to_document`: stream, version,
recorded_at, causation_id, event), compact, not ASCII-escaped, its keys in the codec's order (the envelope's, then
each event's fields as declared), so one stream always exports to the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Literal, TypeAlias

import attrs

from domain.codec import recorded_to_document
from domain.events import RecordedEvent, TurnUndone, UndoReason
from domain.ports import EventStore
from service import transcript
from service.replay import StreamNotFound

Format: TypeAlias = Literal["jsonl", "md"]
FORMATS: tuple[Format, ...] = ("jsonl", "md")


class ExportTooBig(Exception):
    """An export would be larger than the limit it must fit (say, a Telegram document's)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the export is larger than {limit} bytes")
        self.limit = limit


def json_line(recorded: RecordedEvent) -> str:
    """One recorded event as a line of the JSON-lines export, its newline included."""
    return json.dumps(recorded_to_document(recorded), ensure_ascii=False, separators=(",", ":")) + "\n"


@attrs.frozen
class Export:
    """One stream's export, up to the version it had when it began."""

    store: EventStore
    """Where the stream is read from."""
    stream: str
    """The stream exported."""
    newest: int
    """Its version when the export began: the last version exported."""

    def events(self) -> AsyncIterator[RecordedEvent]:
        """The events exported, oldest first, read from the store a page at a time."""
        return self.store.read_forwards(self.stream, limit=self.newest)

    async def json_lines(self) -> AsyncIterator[str]:
        """The JSON-lines export, a line per event."""
        async for recorded in self.events():
            yield json_line(recorded)

    async def markdown(self) -> AsyncIterator[str]:
        """The Markdown transcript, a block per event that people would want to read (each ending in a newline)."""
        undone: dict[int, UndoReason] = {}
        async for recorded in self.events():
            if isinstance(recorded.event, TurnUndone):
                undone[recorded.event.question_version] = recorded.event.reason
        yield transcript.header(self.stream, self.newest) + "\n"
        async for recorded in self.events():
            block = transcript.event_block(recorded, undone)
            if block is not None:
                yield "\n" + block + "\n"

    def chunks(self, form: Format) -> AsyncIterator[str]:
        """The export in `form`, in pieces to write out as they come."""
        return self.json_lines() if form == "jsonl" else self.markdown()


async def begin_export(store: EventStore, stream: str) -> Export:
    """The export of `stream` as it stands now; raises StreamNotFound when it has no events."""
    newest = await store.current_version(stream)
    if newest == 0:
        raise StreamNotFound(stream)
    return Export(store=store, stream=stream, newest=newest)


async def gathered(chunks: AsyncIterator[str], limit: int) -> bytes:
    """The chunks as UTF-8 bytes, for a document sent whole; raises ExportTooBig once they pass `limit` bytes (so
    no more than about `limit` bytes are ever held)."""
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        encoded = chunk.encode()
        size += len(encoded)
        if size > limit:
            raise ExportTooBig(limit)
        parts.append(encoded)
    return b"".join(parts)
