"""The EventStore contract: every store (memory, sqlite, postgres, fauna) must pass every test here."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from domain.events import (
    EVENT_TYPES,
    AnswerFailed,
    AnswerGiven,
    AnswerSpoken,
    ConversationReset,
    DeliveryFailed,
    Event,
    FileText,
    ImageFailed,
    ImageGenerated,
    ImageRequested,
    LanguageSelected,
    ModelSelected,
    ModeSelected,
    PersonaSelected,
    Photo,
    PromptSettingsRecorded,
    QuestionAsked,
    RecordedEvent,
    ReplyDelivered,
    TranscriptionFailed,
    TurnUndone,
    UserRegistered,
    VoiceRepliesSelected,
    VoiceTranscribed,
)
from domain.ports import ConcurrencyConflict, EventStore
from tests.contract.backends import a_clock, open_backend

SAMPLES: tuple[Event, ...] = (
    UserRegistered(user_id=42, username="ann", first_name="Ann", language_code="en"),
    UserRegistered(user_id=2**52, username=None, first_name="", language_code=None),
    ModeSelected(mode="image"),
    ModeSelected(mode="chat", restated=True),
    QuestionAsked(text="What is 2+2?"),
    QuestionAsked(text="What is 3+3?", message_id=77, sender_name="Ann Lee"),
    PersonaSelected(name="custom", prompt="You answer in haiku."),
    PersonaSelected(name="default", prompt=None, restated=True),
    ModelSelected(model="gpt-4o-mini"),
    ModelSelected(model=None, restated=True),
    LanguageSelected(language="de"),
    LanguageSelected(language=None, restated=True),
    AnswerGiven(text="**4**", model="m-1", prompt_tokens=10, completion_tokens=1, latency_ms=250, question_version=5),
    AnswerGiven(
        text="4",
        model="r-1",
        prompt_tokens=9,
        completion_tokens=3,
        latency_ms=90,
        question_version=5,
        reasoning="two and two",
        stopped=True,
    ),
    AnswerFailed(kind="timeout", message="no answer in 60 s", question_version=5),
    ImageRequested(prompt="a cat"),
    ImageGenerated(image_ref="https://img.invalid/cat.png", model="i-1", revised_prompt="a cat", request_version=8),
    ImageGenerated(image_ref="sha256:" + "ab" * 32, model="i-1", revised_prompt=None, request_version=8),
    ImageFailed(kind="content_refused", message="refused", request_version=8),
    ReplyDelivered(request_version=8),
    DeliveryFailed(request_version=8, reason="Forbidden: bot was blocked by the user"),
    TurnUndone(question_version=5, reason="edit"),
    ConversationReset(),
    VoiceRepliesSelected(on=True),
    VoiceRepliesSelected(on=False, restated=True),
    VoiceTranscribed(text="what is this", model="whisper-1", duration_s=4, file_unique_id="AgADvoice", sender_id=42),
    TranscriptionFailed(kind="unsupported", message="no endpoint", model="whisper-1", file_unique_id="AgADx"),
    QuestionAsked(
        text="What is in this picture?",
        sender_id=42,
        photos=(
            Photo(file_id="AgACAgIA", file_unique_id="AQADphoto", width=1280, height=960, size=81234, sha256="ab" * 32),
            Photo(file_id="AgACAgIB", file_unique_id="AQADphot2", width=800, height=600, size=40000, sha256="cd" * 32),
        ),
        files=(
            FileText(
                name="report.pdf", mime_type="application/pdf", size=48000, sha256="ef" * 32, text="Q3", dropped_chars=9
            ),
        ),
    ),
    AnswerSpoken(question_version=5, model="gpt-4o-mini-tts", voice="alloy", characters=120, parts=1, asker_id=42),
    PromptSettingsRecorded(persona="You are a helpful assistant.", budget=3072, lookback=2000, model="gpt-4o-mini"),
    PromptSettingsRecorded(persona="Be brief.", budget=12000, lookback=50, model="m", vision_history=0, restated=True),
    AnswerGiven(
        text="ok",
        model="m",
        prompt_tokens=3,
        completion_tokens=1,
        latency_ms=5,
        question_version=5,
        prompt_digest="ab" * 32,
        prompt_budget=1536,
    ),
)

UNICODE = (
    "plain ASCII; "
    "controls \x01\x02\x07\x08\t\n\x0b\x0c\r\x1b\x1f\x7f\x80\x9f; "
    "RTL שלום עולם مرحبا بالعالم \u200f\u202e; "
    "emoji 😀👩‍👩‍👧🏳️‍🌈; "
    "astral 𝕳𝖊𝖑𝖑𝖔 𐍈 🀄 𠜎; "
    "combining e\u0301 \ufeff\u2028\u2029\u200b; "
    "quotes \"'\\ {}[]; "
)


async def read_all(iterator: AsyncIterator[RecordedEvent]) -> list[RecordedEvent]:
    return [event async for event in iterator]


async def versions(store: EventStore, stream: str) -> list[int]:
    return [event.version for event in await read_all(store.read_forwards(stream))]


def test_samples_cover_every_event_type() -> None:
    assert {type(event) for event in SAMPLES} == set(EVENT_TYPES)


async def test_every_event_type_round_trips(store: EventStore) -> None:
    recorded = await store.append("tg:1", SAMPLES, 0, "tg:update:1")

    assert [event.event for event in recorded] == list(SAMPLES)
    assert await read_all(store.read_forwards("tg:1")) == list(recorded)
    assert await read_all(store.read_backwards("tg:1")) == list(reversed(recorded))


async def test_versions_are_contiguous_from_one(store: EventStore) -> None:
    first = await store.append("s", SAMPLES[:3], 0, "c1")
    second = await store.append("s", SAMPLES[3:4], 3, "c2")
    third = await store.append("s", SAMPLES[4:], 4, "c3")

    assert [event.version for event in first + second + third] == list(range(1, len(SAMPLES) + 1))
    assert await versions(store, "s") == list(range(1, len(SAMPLES) + 1))
    assert await store.current_version("s") == len(SAMPLES)
    assert {event.causation_id for event in first} == {"c1"}
    assert all(event.stream == "s" for event in first + second + third)
    assert all(event.recorded_at.utcoffset() == timedelta(0) for event in first + second + third)


async def test_a_new_stream_is_at_version_zero_and_reads_nothing(store: EventStore) -> None:
    assert await store.current_version("nobody") == 0
    assert await read_all(store.read_forwards("nobody")) == []
    assert await read_all(store.read_backwards("nobody")) == []
    assert [name async for name in store.list_streams()] == []


@pytest.mark.parametrize("expected", [0, 1, 3, -1])
async def test_a_wrong_expected_version_conflicts_and_writes_nothing(store: EventStore, expected: int) -> None:
    before = await store.append("s", SAMPLES[:2], 0, "c1")

    with pytest.raises(ConcurrencyConflict) as raised:
        await store.append("s", SAMPLES[2:6], expected, "c2")

    assert raised.value.stream == "s"
    assert raised.value.expected == expected
    assert raised.value.actual in (None, 2)
    assert await read_all(store.read_forwards("s")) == list(before)
    assert await store.current_version("s") == 2
    again = await store.append("s", SAMPLES[2:6], 2, "c2")
    assert [event.version for event in again] == [3, 4, 5, 6]


async def test_a_repeated_causation_returns_the_first_batch_and_writes_nothing(store: EventStore) -> None:
    first = await store.append("s", SAMPLES[:2], 0, "tg:7")
    await store.append("s", SAMPLES[2:3], 2, "tg:8")

    for expected in (0, 2, 3, 99):
        assert await store.append("s", SAMPLES[5:9], expected, "tg:7") == first
    assert await store.append("s", [], 3, "tg:7") == first
    assert await store.append("s", [], 3, "unknown") == ()
    assert await store.current_version("s") == 3
    assert await versions(store, "s") == [1, 2, 3]


async def test_causation_ids_are_per_stream(store: EventStore) -> None:
    await store.append("a", SAMPLES[:2], 0, "same")
    other = await store.append("b", SAMPLES[2:3], 0, "same")

    assert [(event.stream, event.version) for event in other] == [("b", 1)]


async def test_reads_honour_limits_and_bounds(store: EventStore) -> None:
    for version in range(10):
        await store.append("s", [QuestionAsked(text=f"q{version + 1}")], version, f"c{version + 1}")

    async def forwards(from_version: int = 1, limit: int | None = None) -> list[int]:
        return [event.version for event in await read_all(store.read_forwards("s", from_version, limit))]

    async def backwards(before: int | None = None, limit: int | None = None) -> list[int]:
        return [event.version for event in await read_all(store.read_backwards("s", before, limit))]

    assert await forwards() == list(range(1, 11))
    assert await forwards(4) == list(range(4, 11))
    assert await forwards(4, 3) == [4, 5, 6]
    assert await forwards(9, 5) == [9, 10]
    assert await forwards(11) == []
    assert await forwards(1, 0) == []
    assert await backwards() == list(range(10, 0, -1))
    assert await backwards(limit=3) == [10, 9, 8]
    assert await backwards(before=5) == [4, 3, 2, 1]
    assert await backwards(before=5, limit=2) == [4, 3]
    assert await backwards(before=1) == []
    assert await backwards(before=99, limit=1) == [10]
    assert await backwards(limit=0) == []


@pytest.mark.slow
async def test_a_20000_event_stream_pages_both_ways(store: EventStore) -> None:
    total, batch = 20_000, 1_000
    for start in range(0, total, batch):
        chunk = [QuestionAsked(text=f"question {number}") for number in range(start + 1, start + batch + 1)]
        await store.append("long", chunk, start, f"bulk:{start}")

    forwards = await read_all(store.read_forwards("long"))
    backwards = await read_all(store.read_backwards("long"))

    assert [event.version for event in forwards] == list(range(1, total + 1))
    assert [event.event for event in forwards] == [QuestionAsked(text=f"question {n}") for n in range(1, total + 1)]
    assert backwards == forwards[::-1]
    middle = await read_all(store.read_forwards("long", from_version=499, limit=1_003))
    assert [event.version for event in middle] == list(range(499, 1_502))
    tail = await read_all(store.read_backwards("long", before=20_000, limit=1_001))
    assert [event.version for event in tail] == list(range(19_999, 18_998, -1))
    assert await store.current_version("long") == total
    again = await store.append("long", [QuestionAsked(text="late")], 0, "bulk:9000")
    assert [event.version for event in again] == list(range(9_001, 10_001))


async def test_large_and_unusual_text_round_trips(store: EventStore) -> None:
    big = (UNICODE * (100_000 // len(UNICODE) + 1))[:100_000]
    events: list[Event] = [
        QuestionAsked(text=big),
        AnswerGiven(
            text=big[::-1], model=UNICODE, prompt_tokens=0, completion_tokens=0, latency_ms=0, question_version=1
        ),
        UserRegistered(user_id=1, username=UNICODE, first_name="😀", language_code="he-IL"),
        ImageRequested(prompt=""),
    ]
    stream = "tg:ünïcødé-😀-שלום"

    recorded = await store.append(stream, events, 0, "tg:update:😀")

    assert [event.event for event in await read_all(store.read_forwards(stream))] == events
    assert await read_all(store.read_backwards(stream)) == list(reversed(recorded))
    assert [name async for name in store.list_streams()] == [stream]
    assert await store.append(stream, events[:1], 0, "tg:update:😀") == recorded


async def test_delete_leaves_nothing_behind(store: EventStore) -> None:
    await store.append("gone", SAMPLES[:2], 0, "c1")
    await store.append("gone", SAMPLES[2:4], 2, "c2")
    kept = await store.append("kept", SAMPLES[:1], 0, "c1")

    await store.delete_stream("gone")

    assert await read_all(store.read_forwards("gone")) == []
    assert await read_all(store.read_backwards("gone")) == []
    assert await store.current_version("gone") == 0
    assert [name async for name in store.list_streams()] == ["kept"]
    assert await store.append("gone", [], 0, "c1") == ()
    anew = await store.append("gone", SAMPLES[5:6], 0, "c1")
    assert [(event.version, event.event) for event in anew] == [(1, SAMPLES[5])]
    assert await read_all(store.read_forwards("kept")) == list(kept)
    await store.delete_stream("never-was")


async def test_list_streams_names_each_stream_once_in_a_stable_order(store: EventStore) -> None:
    names = [f"tg:{number}" for number in range(12)] + ["tg:ä", "tg:😀", "tg:A"]
    for name in names:
        await store.append(name, SAMPLES[:3], 0, "c")

    listed = [name async for name in store.list_streams()]

    assert sorted(listed) == sorted(names)
    assert [name async for name in store.list_streams()] == listed


async def test_list_streams_pages(backend: str, tmp_path: Path) -> None:
    async with open_backend(backend, tmp_path, page_size=3) as store:
        names = [f"s{number:02}" for number in range(10)]
        for name in reversed(names):
            await store.append(name, SAMPLES[:2], 0, "c")
        assert [name async for name in store.list_streams()] == names
        await store.delete_stream("s03")
        assert [name async for name in store.list_streams()] == names[:3] + names[4:]


async def test_small_pages_read_whole_streams(backend: str, tmp_path: Path) -> None:
    async with open_backend(backend, tmp_path, page_size=4) as store:
        await store.append("s", [QuestionAsked(text=str(n)) for n in range(1, 12)], 0, "c")
        assert await versions(store, "s") == list(range(1, 12))
        assert [e.version for e in await read_all(store.read_backwards("s", before=11, limit=9))] == list(
            range(10, 1, -1)
        )
        assert [e.version for e in await read_all(store.read_forwards("s", from_version=2, limit=8))] == list(
            range(2, 10)
        )


async def test_times_come_from_the_injected_clock(backend: str, tmp_path: Path) -> None:
    start = datetime(2030, 1, 2, 3, 4, 5, 678_901, tzinfo=timezone(timedelta(hours=2)))
    async with open_backend(backend, tmp_path, now=a_clock(start)) as store:
        first = await store.append("s", SAMPLES[:2], 0, "c1")
        second = await store.append("s", SAMPLES[2:3], 2, "c2")

        assert [event.recorded_at for event in first] == [start, start]
        assert [event.recorded_at for event in second] == [start + timedelta(seconds=1)]
        assert all(event.recorded_at.tzinfo == UTC for event in first + second)
        assert await read_all(store.read_forwards("s")) == list(first + second)


def _recorded(version: int, causation_id: str, event: Event, stream: str = "imp") -> RecordedEvent:
    moment = datetime(2001, 2, 3, 4, 5, 6, version * 1_001, tzinfo=UTC) + timedelta(days=version)
    return RecordedEvent(stream=stream, version=version, recorded_at=moment, causation_id=causation_id, event=event)


async def test_import_preserves_envelopes(store: EventStore) -> None:
    causations = ["a", "a", "b", "c", "c", "c"]
    history = [_recorded(v, c, SAMPLES[v]) for v, c in enumerate(causations, start=1)]

    await store.import_recorded(history[:5])
    await store.import_recorded(history[5:])
    await store.import_recorded([])

    assert await read_all(store.read_forwards("imp")) == history
    assert await store.current_version("imp") == 6
    assert await store.append("imp", SAMPLES[:1], 0, "c") == tuple(history[3:])
    assert await store.append("imp", SAMPLES[:1], 6, "a") == tuple(history[:2])
    appended = await store.append("imp", SAMPLES[:1], 6, "d")
    assert [event.version for event in appended] == [7]


@pytest.mark.parametrize("first_version", [1, 3, 5])
async def test_import_must_continue_the_stream(store: EventStore, first_version: int) -> None:
    await store.import_recorded(
        [_recorded(1, "a", SAMPLES[0]), _recorded(2, "a", SAMPLES[1]), _recorded(3, "b", SAMPLES[2])]
    )

    with pytest.raises(ConcurrencyConflict):
        await store.import_recorded(
            [_recorded(first_version, "z", SAMPLES[4]), _recorded(first_version + 1, "z", SAMPLES[5])]
        )

    assert await versions(store, "imp") == [1, 2, 3]
    assert await store.append("imp", [], 0, "z") == ()


async def test_racing_appenders_leave_no_gaps_and_every_loser_is_told(store: EventStore) -> None:
    conflicts = dict.fromkeys(range(50), 0)

    async def appender(number: int) -> None:
        expected = 0
        while True:
            try:
                await store.append("race", [QuestionAsked(text=f"q{number}")], expected, f"tg:{number}")
                return
            except ConcurrencyConflict:
                conflicts[number] += 1
                expected = await store.current_version("race")

    await asyncio.gather(*(appender(number) for number in range(50)))

    recorded = await read_all(store.read_forwards("race"))
    assert [event.version for event in recorded] == list(range(1, 51))
    assert sorted(event.causation_id for event in recorded) == sorted(f"tg:{number}" for number in range(50))
    assert sorted(event.event.text for event in recorded) == sorted(f"q{number}" for number in range(50))  # type: ignore[union-attr]
    told = [number for number, count in conflicts.items() if count]
    assert len(told) == 49
    assert recorded[0].causation_id not in {f"tg:{number}" for number in told}


async def test_racing_appends_of_one_causation_record_one_batch(store: EventStore) -> None:
    async def appender(number: int) -> tuple[RecordedEvent, ...]:
        batch: list[Event] = [
            QuestionAsked(text=f"q{number}"),
            AnswerFailed(kind="upstream", message="", question_version=1),
        ]
        return await store.append("same", batch, 0, "tg:update:1")

    results = await asyncio.gather(*(appender(number) for number in range(50)), return_exceptions=True)

    recorded = await read_all(store.read_forwards("same"))
    assert [event.version for event in recorded] == [1, 2]
    assert all(result == tuple(recorded) for result in results), [r for r in results if r != tuple(recorded)][:3]
