"""Restoring a JSON-lines export (`service.export`) into a store: checked whole first, then written verbatim.

The file is read twice, never held: the first pass checks every line (JSON, a known event type, the fields the
codec expects, versions 1, 2, 3 ... with no gap, one stream, each causation batch once) and counts the events;
an error names its line and nothing is written. The second pass compares the events the stream already holds with
the file's first events, and writes the rest with `EventStore.import_recorded`, a batch at a time:

- an empty stream receives every event;
- a stream holding exactly the file's events (or the file's events and later ones) receives nothing: importing
  a file twice is a no-op;
- a stream holding the file's first events and no others receives the rest, so an interrupted import is finished
  by running it again;
- a stream holding any event that differs from the file's at the same version is refused, and nothing is written.

`as_stream` (`convo import --as USER`) imports the events under another stream id: the file's stream ids are then
not checked against each other.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator

import attrs

from domain.codec import recorded_from_document
from domain.errors import DomainError
from domain.events import RecordedEvent
from domain.ports import ConcurrencyConflict, EventStore

BATCH_SIZE = 500
"""Events written per `import_recorded` call."""

ENVELOPE = frozenset({"stream", "version", "recorded_at", "causation_id", "event"})
"""The fields of a line: those of `domain.codec.recorded_to_document`."""

Lines = Callable[[], Iterable[bytes]]
"""Opens the file anew and gives its lines (bytes, split at newlines only), for each pass."""


class ImportRefused(Exception):
    """The import wrote nothing: the file is not a valid export, or the stream holds other events."""


class InvalidExport(ImportRefused):
    """A line of the file is not what an export holds."""

    def __init__(self, line: int, problem: str) -> None:
        super().__init__(f"line {line}: {problem}")
        self.line = line


@attrs.frozen
class ImportReport:
    """What an import did."""

    stream: str
    """The stream imported into."""
    in_file: int
    """Events the file holds."""
    held_before: int
    """Events the stream held before (the file's first ones, or the file's and later ones)."""
    written: int
    """Events written."""


def parse_line(raw: bytes, number: int) -> RecordedEvent:
    """The recorded event a line holds; raises InvalidExport naming the line and the fault."""
    try:
        text = raw.decode()
    except UnicodeDecodeError as error:
        raise InvalidExport(number, f"not UTF-8 text (byte {error.start + 1})") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidExport(number, f"not JSON ({error.msg}, column {error.colno})") from None
    if not isinstance(document, dict):
        raise InvalidExport(number, f"not a JSON object but {type(document).__name__}")
    unknown = sorted(set(document) - ENVELOPE)
    if unknown:
        raise InvalidExport(number, f"unknown field(s) {', '.join(unknown)}")
    try:
        return recorded_from_document(document)
    except DomainError as error:
        raise InvalidExport(number, str(error)) from None


def checked(lines: Iterable[bytes], as_stream: str | None = None) -> Iterator[tuple[int, RecordedEvent]]:
    """(line number, event) for each event of the file in order, under `as_stream` when given; raises InvalidExport
    at the first line that breaks the rules in the module doc. Blank lines are skipped."""
    stream: str | None = as_stream
    previous: RecordedEvent | None = None
    batches: set[str] = set()
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        recorded = parse_line(raw, number)
        if as_stream is None and stream is None:
            stream = recorded.stream
        elif as_stream is None and recorded.stream != stream:
            raise InvalidExport(
                number, f"stream {recorded.stream!r} after {stream!r}: a file holds one stream (or use --as USER)"
            )
        expected = 1 if previous is None else previous.version + 1
        if recorded.version != expected:
            raise InvalidExport(number, f"version {recorded.version} where {expected} was expected (a gap or repeat)")
        if previous is None or recorded.causation_id != previous.causation_id:
            if recorded.causation_id in batches:
                raise InvalidExport(number, f"causation id {recorded.causation_id!r} starts a second batch")
            batches.add(recorded.causation_id)
        previous = recorded
        yield number, recorded if as_stream is None else attrs.evolve(recorded, stream=as_stream)


def scan(lines: Iterable[bytes], as_stream: str | None = None) -> tuple[str, int]:
    """The stream a whole file imports into and its number of events; raises InvalidExport (ImportRefused for an
    empty file)."""
    stream, count = as_stream, 0
    for _, recorded in checked(lines, as_stream):
        stream, count = recorded.stream, count + 1
    if stream is None or count == 0:
        raise ImportRefused("the file holds no events")
    return stream, count


async def import_export(store: EventStore, lines: Lines, as_stream: str | None = None) -> ImportReport:
    """Import the export `lines` opens into `store` as the module doc says; raises ImportRefused having written
    nothing (unless another writer appends to the stream while it is written: then what was written stays, and
    running the import again says whether the stream still agrees with the file)."""
    if as_stream is not None and not as_stream.strip():
        raise ImportRefused("--as needs a stream id")
    stream, count = scan(lines(), as_stream)
    held = await store.current_version(stream)
    events = checked(lines(), as_stream)
    overlap = min(held, count)
    if overlap:
        async for theirs in store.read_forwards(stream, limit=overlap):
            number, ours = next(events)
            if ours != theirs:
                raise ImportRefused(
                    f"stream {stream!r} already holds other events: its version {theirs.version} differs from line "
                    f"{number} of the file; nothing imported"
                )
    written = 0
    batch: list[RecordedEvent] = []
    for _, recorded in events:
        batch.append(recorded)
        if len(batch) == BATCH_SIZE:
            written += await _write(store, batch)
            batch = []
    if batch:
        written += await _write(store, batch)
    return ImportReport(stream=stream, in_file=count, held_before=held, written=written)


async def _write(store: EventStore, batch: list[RecordedEvent]) -> int:
    try:
        await store.import_recorded(batch)
    except ConcurrencyConflict as conflict:
        raise ImportRefused(
            f"stream {conflict.stream!r} changed while it was being imported (someone else wrote to it at version "
            f"{conflict.expected + 1}); run the import again to check it"
        ) from None
    return len(batch)
