"""What every event store adapter checks and computes the same way, so that all of them agree with the memory model.

Argument rules: `limit` is None (no limit) or 0 and up; a batch given to `import_recorded` belongs to one stream
and has contiguous versions. Batch starts: the SQL stores mark the first event of each causation batch so that the
database itself can keep one batch per causation id in a stream (see `batch_starts`).
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import TypeVar

from domain.events import Event, RecordedEvent

PAGE_SIZE = 500
"""Rows a SQL store fetches per round trip while paging through a stream or the list of streams."""

Item = TypeVar("Item")
Key = TypeVar("Key")


def utc_now() -> datetime:
    """The current time, timezone-aware UTC: the default clock of every store."""
    return datetime.now(UTC)


def recording_time(now: Callable[[], datetime]) -> datetime:
    """The clock's reading as UTC; a naive reading is refused because its zone would be a guess."""
    moment = now()
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("the store's clock returned a naive datetime; it must be timezone-aware")
    return moment.astimezone(UTC)


def check_limit(limit: int | None) -> None:
    """Refuse a negative limit (None means no limit, 0 means nothing)."""
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be None or 0 or more, got {limit}")


def check_page_size(page_size: int) -> int:
    """The page size, if it is at least 1."""
    if page_size < 1:
        raise ValueError(f"page_size must be 1 or more, got {page_size}")
    return page_size


def check_import(events: Sequence[RecordedEvent]) -> str:
    """The one stream an import batch belongs to; ValueError unless its versions are contiguous and ascending."""
    stream = events[0].stream
    for previous, event in itertools.pairwise(events):
        if event.stream != stream:
            raise ValueError(f"import batch mixes streams {stream!r} and {event.stream!r}")
        if event.version != previous.version + 1:
            raise ValueError(f"import batch of {stream!r} jumps from version {previous.version} to {event.version}")
    return stream


def batch_starts(before: str | None, causation_ids: Iterable[str]) -> list[bool]:
    """For each event, whether it starts a causation batch: its causation id differs from the event before it.

    `before` is the causation id of the event preceding the first one (None at the start of a stream). Events of
    one append share its causation id, so the first event of each append is exactly the one whose predecessor has
    another id; an import that splits a batch across calls marks the start only once.
    """
    starts = []
    for causation_id in causation_ids:
        starts.append(causation_id != before)
        before = causation_id
    return starts


async def keyset_pages(
    fetch: Callable[[Key | None, int], Awaitable[Sequence[Item]]],
    key: Callable[[Item], Key],
    limit: int | None,
    page_size: int,
) -> AsyncIterator[Item]:
    """Items from successive `fetch(after, n)` pages (after=None first), at most `limit` in all.

    `fetch` returns up to n items that follow `after` in the store's order; `key(item)` is what the next page
    follows. A page shorter than asked for is the last one. Nothing is held between pages.
    """
    check_limit(limit)
    remaining = limit
    after: Key | None = None
    while remaining is None or remaining > 0:
        wanted = page_size if remaining is None else min(page_size, remaining)
        page = await fetch(after, wanted)
        for row in page:
            yield row
        if len(page) < wanted:
            return
        if remaining is not None:
            remaining -= len(page)
        after = key(page[-1])


def new_batch(
    stream: str, events: Sequence[Event], expected_version: int, moment: datetime, causation_id: str
) -> tuple[RecordedEvent, ...]:
    """The envelopes of a batch appended after `expected_version`, all recorded at `moment`."""
    return tuple(
        RecordedEvent(
            stream=stream,
            version=expected_version + offset,
            recorded_at=moment,
            causation_id=causation_id,
            event=event,
        )
        for offset, event in enumerate(events, start=1)
    )
