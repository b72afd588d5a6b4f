"""Voice, audio and video notes (ConversationService.hear, then say(heard=...)): a file is downloaded and
transcribed once, its transcript recorded with the question it becomes and billed by its seconds; a redelivered or
forwarded note is answered from the log; a note that cannot be heard is recorded as such and never reaches the chat
model."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from adapters.memory.store import MemoryEventStore
from domain.commands import Sender
from domain.events import (
    AnswerGiven,
    Event,
    PromptSettingsRecorded,
    QuestionAsked,
    RecordedEvent,
    SoundKind,
    TranscriptionFailed,
    UserRegistered,
    VoiceTranscribed,
)
from domain.ports import EventStore, ModelFailure, Sound, Transcript
from domain.prices import AudioPrice, ChatPrice, PriceTable
from domain.prompt import PromptPolicy
from domain.usage import LedgerKey, fold_ledger
from service.budgets import BudgetLimits, parse_refusal
from service.conversations import ConversationService, Request
from service.hearing import Heard, Note, NotHeard
from service.outcomes import Answered, Failed
from service.usage_report import chat_of_stream
from tests.fakes import FakeChatModel, FakeImageModel

ANN = Sender(user_id=7, first_name="Ann")
NOW = datetime(2026, 12, 31, 23, 0, tzinfo=UTC)
PRICES = PriceTable(
    chat={"fake-chat": ChatPrice(Decimal(0), Decimal(0))},
    audio={"fake-whisper": AudioPrice(per_minute=Decimal(60))},  # 1 USD a second
)


class FakeTranscriber:
    """A Transcriber that hears a scripted text (or fails), recording every sound it was sent."""

    def __init__(self, text: str = "  what is a fox  ", model: str = "fake-whisper") -> None:
        self.text = text
        self._model = model
        self.duration_s: float | None = None
        self.sounds: list[Sound] = []
        self.failure: ModelFailure | None = None

    @property
    def model(self) -> str:
        return self._model

    async def transcribe(self, sound: Sound) -> Transcript:
        self.sounds.append(sound)
        if self.failure is not None:
            raise self.failure
        return Transcript(self.text, self._model, self.duration_s)


class Download:
    """A note's download, counting how often the file was fetched."""

    def __init__(self, data: bytes = b"OggS voice") -> None:
        self.sound = Sound(data, "voice.oga", "audio/ogg")
        self.calls = 0

    async def __call__(self) -> Sound:
        self.calls += 1
        return self.sound


def note_of(download: Download, file_unique_id: str = "voice-1", seconds: int = 3, kind: SoundKind = "voice") -> Note:
    return Note(file_unique_id, seconds, kind, download)


def req(update: int, stream: str = "7", sender: Sender = ANN) -> Request:
    return Request(stream, f"tg:{update}", sender)


def build(
    store: EventStore,
    chat: FakeChatModel,
    transcriber: FakeTranscriber | None,
    spending: BudgetLimits | None = None,
) -> ConversationService:
    return ConversationService(
        store,
        chat,
        FakeImageModel(),
        PromptPolicy(),
        transcriber=transcriber,
        prices=PRICES,
        spending=spending,
        now=lambda: NOW,
    )


async def events_of(store: EventStore, stream: str = "7") -> list[RecordedEvent]:
    return [recorded async for recorded in store.read_forwards(stream)]


def without_registration(recorded: list[RecordedEvent]) -> list[Event]:
    """The events, without the registration and the prompt settings recorded before the first question."""
    return [item.event for item in recorded if not isinstance(item.event, UserRegistered | PromptSettingsRecorded)]


@pytest.fixture
def chat() -> FakeChatModel:
    return FakeChatModel()


@pytest.fixture
def transcriber() -> FakeTranscriber:
    return FakeTranscriber()


async def test_the_first_hearing_downloads_and_transcribes_once_and_records_nothing_yet(
    store: EventStore, chat: FakeChatModel, transcriber: FakeTranscriber
) -> None:
    download = Download()
    service = build(store, chat, transcriber)
    heard = await service.hear(req(1), note_of(download, kind="video_note"))
    assert download.calls == 1
    assert transcriber.sounds == [download.sound]
    assert heard == Heard(
        VoiceTranscribed(
            text="what is a fox",
            model="fake-whisper",
            duration_s=3,
            file_unique_id="voice-1",
            kind="video_note",
            sender_id=7,
        ),
        None,
    )
    assert await events_of(store) == []  # recorded with the request it becomes, by say(heard=...)
    assert chat.prompts == []


async def test_without_reported_seconds_the_transcription_models_count_is_used(
    store: EventStore, chat: FakeChatModel, transcriber: FakeTranscriber
) -> None:
    transcriber.duration_s = 4.6
    heard = await build(store, chat, transcriber).hear(req(1), note_of(Download(), seconds=0))
    assert heard.transcript.duration_s == 5


async def test_the_transcript_and_its_question_are_recorded_in_one_batch_and_answered(
    store: EventStore, chat: FakeChatModel, transcriber: FakeTranscriber
) -> None:
    service = build(store, chat, transcriber)
    heard = await service.hear(req(1), note_of(Download()))
    outcome = await service.say(req(1), heard.transcript.text, heard=heard)
    assert isinstance(outcome, Answered) and outcome.text == "echo: what is a fox"
    recorded = await events_of(store)
    events = without_registration(recorded)
    assert [type(event) for event in events] == [VoiceTranscribed, QuestionAsked, AnswerGiven]
    transcript, question = events[0], events[1]
    assert transcript == heard.transcript
    assert isinstance(question, QuestionAsked) and question.text == "what is a fox" and question.sender_id == 7
    by_type = {type(item.event): item for item in recorded}
    heard_at, asked_at = by_type[VoiceTranscribed], by_type[QuestionAsked]
    assert heard_at.causation_id == asked_at.causation_id == "tg:1"
    assert asked_at.version == heard_at.version + 1
    assert [message.content for message in chat.prompts[-1]][-1] == "what is a fox"


async def test_a_redelivered_note_is_heard_from_the_log_and_its_answer_replayed(
    store: EventStore, chat: FakeChatModel, transcriber: FakeTranscriber
) -> None:
    download = Download()
    service = build(store, chat, transcriber)
    first = await service.hear(req(1), note_of(download))
    await service.say(req(1), first.transcript.text, heard=first)
    before = await events_of(store)

    again = await service.hear(req(1), note_of(download))
    assert (download.calls, len(transcriber.sounds)) == (1, 1)
    assert again == Heard(first.transcript, "tg:1")  # this very update recorded it: a redelivery
    replayed = await service.say(req(1), again.transcript.text, heard=again)
    assert isinstance(replayed, Answered) and replayed.replayed and replayed.text == "echo: what is a fox"
    assert len(chat.prompts) == 1
    assert await events_of(store) == before


async def test_a_forwarded_note_is_heard_from_the_log_and_asked_again_without_a_second_transcript(
    store: EventStore, chat: FakeChatModel, transcriber: FakeTranscriber
) -> None:
    service = build(store, chat, transcriber)
    first = await service.hear(req(1), note_of(Download()))
    await service.say(req(1), first.transcript.text, heard=first)

    download = Download()
    forwarded = await service.hear(req(2), note_of(download))
    assert download.calls == 0 and len(transcriber.sounds) == 1
    assert forwarded == Heard(first.transcript, "tg:1")  # another update recorded it: the same file forwarded
    # As the handler does: the transcript was recorded by tg:1, so tg:2 records its question only.
    outcome = await service.say(req(2), forwarded.transcript.text)
    assert isinstance(outcome, Answered) and not outcome.replayed
    kinds = [type(event) for event in without_registration(await events_of(store))]
    assert (kinds.count(VoiceTranscribed), kinds.count(QuestionAsked), kinds.count(AnswerGiven)) == (1, 2, 2)


async def test_another_file_is_transcribed_even_after_one_was_heard(
    store: EventStore, chat: FakeChatModel, transcriber: FakeTranscriber
) -> None:
    service = build(store, chat, transcriber)
    first = await service.hear(req(1), note_of(Download()))
    await service.say(req(1), first.transcript.text, heard=first)
    other = await service.hear(req(2), note_of(Download(), file_unique_id="voice-2"))
    assert other.causation_id is None and other.transcript.file_unique_id == "voice-2"
    assert len(transcriber.sounds) == 2


async def test_a_note_heard_in_another_chat_is_transcribed_again(
    store: EventStore, chat: FakeChatModel, transcriber: FakeTranscriber
) -> None:
    service = build(store, chat, transcriber)
    first = await service.hear(req(1, stream="7"), note_of(Download()))
    await service.say(req(1, stream="7"), first.transcript.text, heard=first)
    elsewhere = await service.hear(req(2, stream="-100"), note_of(Download()))
    assert elsewhere.causation_id is None and len(transcriber.sounds) == 2


async def test_a_failed_transcription_is_recorded_and_nothing_reaches_the_chat_model(
    store: EventStore, chat: FakeChatModel, transcriber: FakeTranscriber
) -> None:
    transcriber.failure = ModelFailure("timeout", "the transcription server timed out")
    download = Download()
    service = build(store, chat, transcriber)
    with pytest.raises(NotHeard) as raised:
        await service.hear(req(1), note_of(download))
    assert raised.value.failure.kind == "timeout"
    assert download.calls == 1 and len(transcriber.sounds) == 1
    assert chat.prompts == []
    recorded = await events_of(store)
    assert without_registration(recorded) == [
        TranscriptionFailed(
            kind="timeout",
            message="the transcription server timed out",
            model="fake-whisper",
            file_unique_id="voice-1",
            sender_id=7,
        )
    ]
    assert {item.causation_id for item in recorded} == {"tg:1"}


async def test_a_failure_is_no_transcript_so_the_note_sent_again_is_transcribed_again(
    store: EventStore, chat: FakeChatModel, transcriber: FakeTranscriber
) -> None:
    transcriber.failure = ModelFailure("upstream", "502 Bad Gateway")
    service = build(store, chat, transcriber)
    with pytest.raises(NotHeard):
        await service.hear(req(1), note_of(Download()))
    transcriber.failure = None
    heard = await service.hear(req(2), note_of(Download()))
    assert heard.causation_id is None and heard.transcript.text == "what is a fox"
    assert len(transcriber.sounds) == 2


async def test_without_a_transcription_model_a_note_is_not_heard_nor_downloaded(
    store: EventStore, chat: FakeChatModel
) -> None:
    download = Download()
    service = build(store, chat, None)
    with pytest.raises(NotHeard) as raised:
        await service.hear(req(1), note_of(download, kind="audio"))
    assert raised.value.failure.kind == "unsupported"
    assert download.calls == 0 and chat.prompts == []
    failed = without_registration(await events_of(store))
    assert len(failed) == 1 and isinstance(failed[0], TranscriptionFailed)
    assert (failed[0].kind, failed[0].model, failed[0].file_unique_id) == ("unsupported", "", "voice-1")


async def test_an_asker_over_budget_is_not_heard_and_the_model_not_called(
    chat: FakeChatModel, transcriber: FakeTranscriber
) -> None:
    store = MemoryEventStore(now=lambda: NOW)
    service = build(store, chat, transcriber, BudgetLimits(user_day=Decimal(5)))
    first = await service.hear(req(1), note_of(Download(), seconds=6))
    refused = await service.say(req(1), first.transcript.text, heard=first)
    # Recorded with its question, the transcript's 6 USD already pass the cap: the question itself is refused.
    assert isinstance(refused, Failed) and refused.kind == "over_budget"

    download = Download()
    with pytest.raises(NotHeard) as raised:
        await service.hear(req(2), note_of(download, file_unique_id="voice-2"))
    assert raised.value.failure.kind == "over_budget"
    assert parse_refusal(raised.value.failure.message) == ("user_day", "5", "2027-01-01 00:00 UTC")
    assert download.calls == 0 and len(transcriber.sounds) == 1 and chat.prompts == []
    last = (await events_of(store))[-1]
    assert isinstance(last.event, TranscriptionFailed) and last.causation_id == "tg:2"
    assert (last.event.kind, last.event.file_unique_id, last.event.sender_id) == ("over_budget", "voice-2", 7)


async def test_a_note_already_heard_is_answered_from_the_log_even_over_budget(chat: FakeChatModel) -> None:
    transcriber = FakeTranscriber()
    store = MemoryEventStore(now=lambda: NOW)
    service = build(store, chat, transcriber, BudgetLimits(user_day=Decimal(1)))
    first = await service.hear(req(1), note_of(Download(), seconds=6))
    await service.say(req(1), first.transcript.text, heard=first)
    again = await service.hear(req(1), note_of(Download(), seconds=6))  # a redelivery costs nothing more
    assert again == Heard(first.transcript, "tg:1")


async def test_the_seconds_heard_are_billed_to_the_sender_and_their_chat_once(
    store: EventStore, chat: FakeChatModel, transcriber: FakeTranscriber
) -> None:
    stream = "-100:5"  # a forum topic of chat -100
    service = build(store, chat, transcriber)
    first = await service.hear(req(1, stream), note_of(Download(), seconds=6))
    await service.say(req(1, stream), first.transcript.text, heard=first)
    forwarded = await service.hear(req(2, stream), note_of(Download(), seconds=6))
    await service.say(req(2, stream), forwarded.transcript.text)

    recorded = await events_of(store, stream)
    at = next(item.recorded_at for item in recorded if isinstance(item.event, VoiceTranscribed))
    day, month = at.strftime("%Y-%m-%d"), at.strftime("%Y-%m")
    ledger = fold_ledger(recorded, chat_of_stream)
    assert {key: quantity for key, quantity in ledger.items() if key.unit == "audio_second"} == {
        LedgerKey(scope, holder, period, when, "fake-whisper", "audio_second"): 6
        for scope, holder in (("user", "7"), ("chat", "-100"), ("total", ""))
        for period, when in (("day", day), ("month", month))
    }
    await service.usage.catch_up()
    assert (await service.usage.quantities("user", "7", "day", day))[("fake-whisper", "audio_second")] == 6
    assert await service.usage.spent("user", "7", "month", month) == Decimal(6)


async def test_a_redelivered_update_whose_failure_was_recorded_pays_for_no_unrecorded_transcription(
    store: EventStore, chat: FakeChatModel, transcriber: FakeTranscriber
) -> None:
    service = build(store, chat, transcriber)
    transcriber.failure = ModelFailure("timeout", "the transcription server timed out")
    with pytest.raises(NotHeard):
        await service.hear(req(1), note_of(Download()))
    transcriber.failure = None
    # tg:1 is delivered again (the process died before Telegram was told it was handled), as the handler runs it:
    try:
        heard = await service.hear(req(1), note_of(Download()))
    except NotHeard:
        pass
    else:
        await service.say(req(1), heard.transcript.text, heard=heard)
    # Either the model is not asked again, or what it heard is recorded (and so billed): never a paid call lost.
    transcribed = [item for item in await events_of(store) if isinstance(item.event, VoiceTranscribed)]
    assert len(transcriber.sounds) == 1 or transcribed
