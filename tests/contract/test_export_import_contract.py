"""Export and import on every store (memory, sqlite, postgres, fauna): export -> import into an empty store ->
export gives the same bytes; importing again writes nothing; a stream holding other events is refused untouched."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import timedelta

import attrs
import pytest

from domain.events import Event, QuestionAsked, RecordedEvent, TurnUndone
from domain.ports import EventStore
from service.export import begin_export, json_line
from service.importing import ImportRefused, import_export
from tests.contract.backends import open_backend
from tests.contract.test_event_store_contract import SAMPLES, UNICODE
from tests.strategies import EPOCH

STREAM = "4242"


def source_stream(stream: str = STREAM) -> list[RecordedEvent]:
    """Every event type, text in every script and control character, in causation batches of 1 to 4 events, at
    times with microseconds."""
    events: list[Event] = [
        *SAMPLES,
        QuestionAsked(text=UNICODE, sender_name=UNICODE),
        TurnUndone(question_version=6, reason="undo"),
    ]
    recorded = []
    for index, event in enumerate(events):
        version = index + 1
        recorded.append(
            RecordedEvent(
                stream=stream,
                version=version,
                recorded_at=EPOCH + timedelta(seconds=version * 61, microseconds=version * 7919 % 1_000_000),
                causation_id=f"tg:{version // 4}",
                event=event,
            )
        )
    return recorded


def file_of(events: Sequence[RecordedEvent]) -> bytes:
    """The JSON-lines export of these events."""
    return "".join(json_line(event) for event in events).encode()


def lines_of(data: bytes):
    """What `import_export` reads: a function opening the file anew."""
    return lambda: data.splitlines(keepends=True)


async def exported(store: EventStore, stream: str = STREAM, form: str = "jsonl") -> bytes:
    export = await begin_export(store, stream)
    return "".join([chunk async for chunk in export.chunks(form)]).encode()  # type: ignore[arg-type]


async def held(store: EventStore, stream: str = STREAM) -> list[RecordedEvent]:
    return [event async for event in store.read_forwards(stream)]


async def test_export_then_import_into_an_empty_store_then_export_gives_the_same_bytes(store: EventStore) -> None:
    original = file_of(source_stream())
    report = await import_export(store, lines_of(original))

    assert (report.written, report.held_before, report.in_file) == (len(source_stream()), 0, len(source_stream()))
    assert await held(store) == source_stream()
    assert await exported(store) == original


async def test_the_markdown_transcript_is_the_same_from_every_store(store: EventStore) -> None:
    from adapters.memory.store import MemoryEventStore

    reference = MemoryEventStore()
    await reference.import_recorded(source_stream())
    await store.import_recorded(source_stream())

    transcript = await exported(store, form="md")
    assert transcript == await exported(reference, form="md")
    assert "### Question" in transcript.decode() and "undone" in transcript.decode()


async def test_importing_the_same_file_again_writes_nothing(store: EventStore) -> None:
    original = file_of(source_stream())
    await import_export(store, lines_of(original))

    again = await import_export(store, lines_of(original))

    assert again.written == 0 and again.held_before == len(source_stream())
    assert await exported(store) == original


async def test_a_stream_holding_the_files_first_events_receives_the_rest(store: EventStore) -> None:
    events = source_stream()
    await store.import_recorded(events[:7])

    report = await import_export(store, lines_of(file_of(events)))

    assert (report.held_before, report.written) == (7, len(events) - 7)
    assert await exported(store) == file_of(events)


async def test_a_file_older_than_the_stream_writes_nothing(store: EventStore) -> None:
    events = source_stream()
    await store.import_recorded(events)

    report = await import_export(store, lines_of(file_of(events[:9])))

    assert (report.in_file, report.held_before, report.written) == (9, len(events), 0)
    assert await held(store) == events


@pytest.mark.parametrize("differs", ["event", "time", "causation"])
async def test_a_stream_holding_other_events_is_refused_and_left_as_it_was(store: EventStore, differs: str) -> None:
    events = source_stream()
    ours = events[:5]
    changed = {
        "event": {"event": QuestionAsked(text="something else")},
        "time": {"recorded_at": events[3].recorded_at + timedelta(microseconds=1)},
        "causation": {"causation_id": "tg:other"},
    }[differs]
    ours[3] = attrs.evolve(ours[3], **changed)
    await store.import_recorded(ours)

    with pytest.raises(ImportRefused, match=r"already holds other events: its version 4 differs from line 4"):
        await import_export(store, lines_of(file_of(events)))

    assert await held(store) == ours


async def test_as_user_imports_the_events_under_another_stream(store: EventStore) -> None:
    await store.import_recorded(source_stream())

    report = await import_export(store, lines_of(await exported(store)), as_stream="777")

    assert report.stream == "777" and report.written == len(source_stream())
    assert await held(store, "777") == source_stream("777")
    assert await exported(store, "777") == file_of(source_stream("777"))


class CountingReads:
    """A store whose forward reads count the events they have handed out."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.read = 0

    async def current_version(self, stream: str) -> int:
        return await self.store.current_version(stream)

    async def read_forwards(self, stream: str, from_version: int = 1, limit: int | None = None) -> AsyncIterator:
        async for event in self.store.read_forwards(stream, from_version, limit):
            self.read += 1
            yield event


@pytest.mark.parametrize("form", ["jsonl", "md"])
async def test_an_export_writes_each_event_out_before_the_later_pages_are_read(backend: str, form: str) -> None:
    async with open_backend(backend, page_size=4) as store:
        events = [attrs.evolve(event, stream=STREAM) for event in source_stream()]
        await store.import_recorded(events)
        counting = CountingReads(store)
        export = await begin_export(counting, STREAM)  # type: ignore[arg-type]
        reads_at_each_chunk = []
        async for _ in export.chunks(form):  # type: ignore[arg-type]
            reads_at_each_chunk.append(counting.read)

    passes = 2 if form == "md" else 1
    assert counting.read == passes * len(events)
    assert reads_at_each_chunk[1] < passes * len(events) - 4, "the export read the whole stream before writing"
    assert export.newest == len(events)
