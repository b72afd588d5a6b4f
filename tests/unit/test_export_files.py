"""What an export file must be to be imported (each fault named with its line), and what the transcript shows."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from adapters.memory.store import MemoryEventStore
from domain.events import (
    AnswerFailed,
    AnswerGiven,
    ConversationReset,
    ImageRequested,
    QuestionAsked,
    RecordedEvent,
    ReplyDelivered,
    TurnUndone,
    UserRegistered,
)
from service import transcript
from service.export import ExportTooBig, begin_export, gathered, json_line
from service.importing import ImportRefused, InvalidExport, import_export, scan
from tests.strategies import EPOCH


def recorded(version: int, event, stream: str = "7", causation: str | None = None) -> RecordedEvent:
    return RecordedEvent(
        stream=stream,
        version=version,
        recorded_at=EPOCH + timedelta(seconds=version),
        causation_id=causation or f"tg:{version}",
        event=event,
    )


CONVERSATION = [
    recorded(1, UserRegistered(user_id=7, username="ada", first_name="Ada", language_code="en")),
    recorded(2, QuestionAsked(text="What is 2+2?")),
    recorded(
        3, AnswerGiven(text="**4**", model="m", prompt_tokens=1, completion_tokens=1, latency_ms=1, question_version=2)
    ),
]


def lines(*items: RecordedEvent | str) -> list[bytes]:
    return [(json_line(item) if isinstance(item, RecordedEvent) else item + "\n").encode() for item in items]


def document(item: RecordedEvent) -> dict:
    return json.loads(json_line(item))


@pytest.mark.parametrize(
    ("file", "message"),
    [
        (lines(CONVERSATION[0], "{not json"), r"^line 2: not JSON \(Expecting property name"),
        (lines(CONVERSATION[0], "[1, 2]"), r"^line 2: not a JSON object but list"),
        (lines(CONVERSATION[0], CONVERSATION[2]), r"^line 2: version 3 where 2 was expected"),
        (lines(CONVERSATION[1]), r"^line 1: version 2 where 1 was expected"),
        (lines(CONVERSATION[0], CONVERSATION[0]), r"^line 2: version 1 where 2 was expected"),
        (
            lines(CONVERSATION[0], recorded(2, QuestionAsked(text="hi"), stream="8")),
            r"^line 2: stream '8' after '7': a file holds one stream \(or use --as USER\)",
        ),
        (
            [*lines(CONVERSATION[0]), json.dumps(document(CONVERSATION[1]) | {"event": {"type": "Nope"}}).encode()],
            r"^line 2: event document has no string|^line 2: unknown event type 'Nope'",
        ),
        (
            [
                *lines(CONVERSATION[0]),
                json.dumps(
                    document(CONVERSATION[1]) | {"event": {"type": "Teleported", "schema": 1, "data": {}}}
                ).encode(),
            ],
            r"^line 2: unknown event type 'Teleported'",
        ),
        (
            [*lines(CONVERSATION[0]), json.dumps(document(CONVERSATION[1]) | {"extra": 1}).encode()],
            r"^line 2: unknown field\(s\) extra",
        ),
        ([*lines(CONVERSATION[0]), b"\xff\xfe{}\n"], r"^line 2: not UTF-8 text"),
        (
            lines(
                CONVERSATION[0],
                recorded(2, QuestionAsked(text="a"), causation="tg:x"),
                *[
                    recorded(3, QuestionAsked(text="b"), causation="tg:y"),
                    recorded(4, QuestionAsked(text="c"), causation="tg:x"),
                ],
            ),
            r"^line 4: causation id 'tg:x' starts a second batch",
        ),
    ],
)
def test_a_file_that_is_not_an_export_is_refused_naming_its_line(file: list[bytes], message: str) -> None:
    with pytest.raises(InvalidExport, match=message):
        scan(file)


async def test_a_refused_file_writes_nothing_even_when_its_fault_is_on_the_last_line() -> None:
    store = MemoryEventStore()
    file = [*lines(*CONVERSATION), b"{}\n"]

    with pytest.raises(InvalidExport, match=r"^line 4: "):
        await import_export(store, lambda: file)

    assert await store.current_version("7") == 0


async def test_an_empty_file_is_refused() -> None:
    with pytest.raises(ImportRefused, match="the file holds no events"):
        await import_export(MemoryEventStore(), lambda: [b"\n", b"  \n"])


def test_blank_lines_are_skipped_and_counted() -> None:
    assert scan([lines(CONVERSATION[0])[0], b"\n", *lines(*CONVERSATION[1:])]) == ("7", 3)


def test_as_user_takes_the_events_of_a_file_with_several_stream_ids() -> None:
    mixed = lines(CONVERSATION[0], recorded(2, QuestionAsked(text="hi"), stream="8"))

    assert scan(mixed, as_stream="9") == ("9", 2)


def test_a_json_string_may_hold_line_separators_that_are_not_newlines() -> None:
    strange = recorded(2, QuestionAsked(text="a\u2028b\u2029c\x85d\x1ce\r\nf"))
    file = b"".join(lines(CONVERSATION[0], strange))

    assert scan(file.split(b"\n")) == ("7", 2)
    assert file.count(b"\n") == 2


async def test_an_unknown_stream_is_not_exported() -> None:
    from service.replay import StreamNotFound

    with pytest.raises(StreamNotFound, match=r"convo replay --list"):
        await begin_export(MemoryEventStore(), "404")


async def test_a_document_too_big_to_send_is_refused_before_it_is_all_held() -> None:
    store = MemoryEventStore()
    await store.import_recorded(CONVERSATION)
    export = await begin_export(store, "7")
    whole = await gathered(export.json_lines(), limit=10_000)

    assert whole == b"".join(lines(*CONVERSATION))
    with pytest.raises(ExportTooBig):
        await gathered(export.json_lines(), limit=len(whole) - 1)


def test_text_people_wrote_reads_as_typed_not_as_markdown() -> None:
    said = transcript.escaped("# Title\n- item\n2. second\n*bold* _it_ `code` [link](x) <b>&amp; a|b ~~s~~ \\")

    assert said.split("\n") == [
        "\\# Title",
        "\\- item",
        "2\\. second",
        "\\*bold\\* \\_it\\_ \\`code\\` \\[link\\](x) \\<b\\>\\&amp; a\\|b \\~\\~s\\~\\~ \\\\",
    ]


def test_quoted_text_keeps_every_line_inside_the_quote() -> None:
    assert transcript.quoted("a\r\nb\rc\n\nd\x1be") == "> a\n> b\n> c\n>\n> d\ufffde"


def test_the_transcript_names_the_user_marks_undone_turns_resets_and_failures() -> None:
    events = [
        *CONVERSATION,
        recorded(4, ReplyDelivered(request_version=2)),
        recorded(5, TurnUndone(question_version=2, reason="undo")),
        recorded(6, ConversationReset()),
        recorded(7, ImageRequested(prompt="a *red* fox")),
        recorded(8, QuestionAsked(text="why?", sender_name="Bob [admin]")),
        recorded(9, AnswerFailed(kind="rate_limited", message="slow down", question_version=8)),
    ]
    undone = {2: "undo"}
    blocks = [transcript.event_block(event, undone) or "" for event in events]

    assert blocks[0] == "**User:** Ada (@ada) · Telegram id 7 · language en · v1 · 2026-01-01 00:00:01 UTC"
    assert blocks[1] == "### Question · v2 · 2026-01-01 00:00:02 UTC · *undone*\n\n> What is 2+2?"
    assert blocks[2] == "### Answer · v3 · 2026-01-01 00:00:03 UTC · m · *undone*\n\n> **4**"
    assert blocks[3] == ""
    assert blocks[4] == "*v5 · 2026-01-01 00:00:05 UTC · the turn of question v2 is undone*"
    assert "**Conversation reset** · v6" in blocks[5] and blocks[5].startswith("---\n\n")
    assert blocks[6] == "### Image requested · v7 · 2026-01-01 00:00:07 UTC\n\n> a \\*red\\* fox"
    assert "*Asked by Bob \\[admin\\]*" in blocks[7]
    assert blocks[8] == "**Answer failed** · v9 · 2026-01-01 00:00:09 UTC · rate limited: slow down"
