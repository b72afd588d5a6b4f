"""Copying every stream of one event store into another, verbatim, resumably.

For each stream the copy asks the destination how far it already is and copies only what follows, in batches, so
an interrupted copy picks up where it stopped and a finished one copies nothing when run again. Before continuing
a stream it checks that the destination's newest event is the source's event at that version, so a destination
holding different data under the same stream name is reported instead of being extended with a mismatched tail.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from domain.events import RecordedEvent
from domain.ports import EventStore, StoreError

BATCH_SIZE = 500
"""Events written per `import_recorded` call."""

Progress = Callable[[str, int], None]
"""Told (stream, events just written) after each batch, and (stream, 0) for a stream that was already complete."""


class CopyMismatch(StoreError):
    """The destination holds a stream whose events are not the source's: the copy would not be faithful."""


@attrs.frozen
class CopyReport:
    """What a copy did."""

    streams_seen: int
    """Streams the source holds."""
    streams_copied: int
    """Streams that received at least one event."""
    events_copied: int
    """Events written to the destination."""


async def copy_store(
    src: EventStore, dst: EventStore, progress: Progress | None = None, batch_size: int = BATCH_SIZE
) -> CopyReport:
    """Copy every stream of `src` into `dst`, preserving versions, times and causation ids; see the module doc."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be 1 or more, got {batch_size}")
    seen = copied_streams = copied_events = 0
    async for stream in src.list_streams():
        seen += 1
        copied = await _copy_stream(src, dst, stream, progress, batch_size)
        if copied:
            copied_streams += 1
            copied_events += copied
    return CopyReport(streams_seen=seen, streams_copied=copied_streams, events_copied=copied_events)


async def _copy_stream(src: EventStore, dst: EventStore, stream: str, progress: Progress | None, size: int) -> int:
    """Events of `stream` written to `dst`: those after the version it already had."""
    done = await dst.current_version(stream)
    if done:
        await _check_same(src, dst, stream, done)
    copied = 0
    batch: list[RecordedEvent] = []
    async for event in src.read_forwards(stream, from_version=done + 1):
        batch.append(event)
        if len(batch) == size:
            copied += await _write(dst, batch, progress)
            batch = []
    if batch:
        copied += await _write(dst, batch, progress)
    if not copied and progress is not None:
        progress(stream, 0)
    return copied


async def _write(dst: EventStore, batch: list[RecordedEvent], progress: Progress | None) -> int:
    await dst.import_recorded(batch)
    if progress is not None:
        progress(batch[0].stream, len(batch))
    return len(batch)


async def _check_same(src: EventStore, dst: EventStore, stream: str, version: int) -> None:
    """Raise CopyMismatch unless dst's event at `version` is src's (same causation id and event)."""
    theirs = [event async for event in src.read_forwards(stream, from_version=version, limit=1)]
    ours = [event async for event in dst.read_backwards(stream, limit=1)]
    if not theirs or theirs[0].version != version:
        raise CopyMismatch(f"stream {stream!r}: the destination is at version {version}, past the source's end")
    if (ours[0].causation_id, ours[0].event) != (theirs[0].causation_id, theirs[0].event):
        raise CopyMismatch(f"stream {stream!r}: the destination's version {version} differs from the source's")
