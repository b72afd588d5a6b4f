"""The fake OpenAI server's audio endpoints, driven by the real ``openai.AsyncOpenAI`` client."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import openai
import pytest

from tests.doubles import media_samples
from tests.doubles.openai_audio import Transcription
from tests.doubles.openai_server import FakeOpenAI

API_KEY = "test-key"
FORMATS = "['flac', 'm4a', 'mp3', 'mp4', 'mpeg', 'mpga', 'oga', 'ogg', 'wav', 'webm']"
VOICE = media_samples.ogg_opus(3, seed="hello")


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI(api_key=API_KEY) as server:
        yield server


@pytest.fixture
async def client(fake: FakeOpenAI) -> AsyncIterator[openai.AsyncOpenAI]:
    api = openai.AsyncOpenAI(base_url=fake.base_url, api_key=API_KEY, max_retries=0, timeout=5.0)
    yield api
    await api.close()


async def transcribe(client: openai.AsyncOpenAI, **kwargs: Any) -> Any:
    kwargs.setdefault("model", "whisper-1")
    kwargs.setdefault("file", ("voice.oga", VOICE, "audio/ogg"))
    return await client.audio.transcriptions.create(**kwargs)


async def speak(client: openai.AsyncOpenAI, **kwargs: Any) -> bytes:
    kwargs.setdefault("model", "gpt-4o-mini-tts")
    kwargs.setdefault("voice", "alloy")
    kwargs.setdefault("input", "Hello there, how are you today?")
    response = await client.audio.speech.create(**kwargs)
    return response.content


async def error_of(call: Callable[[], Any]) -> tuple[int, dict[str, Any]]:
    with pytest.raises(openai.APIStatusError) as raised:
        await call()
    body = raised.value.body
    assert isinstance(body, dict)
    return raised.value.status_code, body


# --------------------------------------------------------------------------- transcriptions


async def test_whisper_json_answer_and_record(client: openai.AsyncOpenAI, fake: FakeOpenAI) -> None:
    result = await transcribe(client, language="en", prompt="a greeting", temperature=0.2)
    assert result.text == "transcript of " + hashlib.sha256(VOICE).hexdigest()[:8]
    assert result.usage is not None
    assert result.usage.model_dump() == {"type": "duration", "seconds": 3.0}
    [record] = fake.transcriptions
    assert (record.model, record.response_format, record.filename, record.size) == (
        "whisper-1",
        "json",
        "voice.oga",
        len(VOICE),
    )
    assert (record.language, record.prompt, record.temperature, record.content_type) == (
        "en",
        "a greeting",
        "0.2",
        "audio/ogg",
    )
    assert record.data == VOICE
    assert (record.status, record.text) == (200, result.text)
    assert record.duration == pytest.approx(3.0)
    assert fake.requests[-1].endpoint == "transcriptions"
    assert fake.requests[-1].body["file"] == {"filename": "voice.oga", "content_type": "audio/ogg", "size": len(VOICE)}
    assert fake.requests[-1].model == "whisper-1"


async def test_gpt4o_transcribe_bills_tokens_and_takes_json_or_text_only(client: openai.AsyncOpenAI) -> None:
    fake_text = await transcribe(client, model="gpt-4o-mini-transcribe", prompt="Hi there")
    assert fake_text.usage is not None
    assert fake_text.usage.model_dump() == {
        "type": "tokens",
        "input_tokens": 32,
        "input_token_details": {"text_tokens": 2, "audio_tokens": 30},
        "output_tokens": 3,
        "total_tokens": 35,
    }
    as_text = await transcribe(client, model="gpt-4o-transcribe", response_format="text")
    assert as_text == fake_text.text + "\n"
    status, body = await error_of(lambda: transcribe(client, model="gpt-4o-transcribe", response_format="verbose_json"))
    assert status == 400
    assert body == {
        "message": "response_format 'verbose_json' is not compatible with model 'gpt-4o-transcribe'. "
        "Use 'json' or 'text' instead.",
        "type": "invalid_request_error",
        "param": "response_format",
        "code": "unsupported_value",
    }


async def test_verbose_json_reads_the_duration_from_the_file(client: openai.AsyncOpenAI, fake: FakeOpenAI) -> None:
    fake.set_transcript("hello big world")
    result = await transcribe(
        client,
        file=("speech.mp3", media_samples.mp3(5), "audio/mpeg"),
        response_format="verbose_json",
        language="de",
        timestamp_granularities=["word", "segment"],
    )
    assert (result.text, result.language) == ("hello big world", "german")
    assert result.duration == pytest.approx(5.0, abs=0.05)
    assert result.segments is not None
    assert [(s.start, s.end, s.text) for s in result.segments] == [(0.0, result.duration, " hello big world")]
    assert result.words is not None
    assert [word.word for word in result.words] == ["hello", "big", "world"]
    assert result.words[-1].end == pytest.approx(result.duration)
    assert result.usage is not None
    assert result.usage.seconds == 5


async def test_text_srt_and_vtt_bodies(client: openai.AsyncOpenAI, fake: FakeOpenAI) -> None:
    fake.set_transcript("Good morning.", duration=61.5)
    assert await transcribe(client, response_format="text") == "Good morning.\n"
    assert await transcribe(client, response_format="srt") == "1\n00:00:00,000 --> 00:01:01,500\nGood morning.\n\n"
    assert await transcribe(client, response_format="vtt") == (
        "WEBVTT\n\n00:00:00.000 --> 00:01:01.500\nGood morning.\n\n"
    )


async def test_transcripts_can_be_queued_or_computed(client: openai.AsyncOpenAI, fake: FakeOpenAI) -> None:
    def by_size(record: Transcription) -> str:
        return f"{record.size} bytes from {record.filename}"

    async def slowly(record: Transcription) -> str:
        await asyncio.sleep(0)
        return record.model or ""

    fake.set_transcript(by_size)
    fake.queue_transcripts("first", slowly)
    assert (await transcribe(client)).text == "first"
    assert (await transcribe(client)).text == "whisper-1"
    assert (await transcribe(client)).text == f"{len(VOICE)} bytes from voice.oga"
    fake.reset()
    assert (await transcribe(client)).text.startswith("transcript of ")
    assert len(fake.transcriptions) == 1


async def test_files_of_unknown_format_are_refused(client: openai.AsyncOpenAI, fake: FakeOpenAI) -> None:
    invalid = await error_of(lambda: transcribe(client, file=("voice.ogg", b"this is not audio", "audio/ogg")))
    assert invalid == (
        400,
        {
            "message": f"Invalid file format. Supported formats: {FORMATS}",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        },
    )
    unnamed = await error_of(lambda: transcribe(client, file=VOICE))  # httpx names it "upload"
    assert unnamed[1]["message"] == f"Unrecognized file format. Supported formats: {FORMATS}"
    opus = await error_of(lambda: transcribe(client, file=("voice.opus", VOICE)))
    assert opus[1]["message"].startswith("Unrecognized file format.")
    for name, data in [
        ("a.wav", media_samples.wav(1)),
        ("a.flac", media_samples.flac(1)),
        ("a.m4a", media_samples.mp4(1)),
        ("a.webm", b"\x1a\x45\xdf\xa3" + bytes(4000)),
    ]:
        assert (await transcribe(client, file=(name, data))).text
    assert [record.status for record in fake.transcriptions] == [400, 400, 400, 200, 200, 200, 200]


async def test_missing_parameters_and_too_short_audio(client: openai.AsyncOpenAI, fake: FakeOpenAI) -> None:
    async def post(**fields: Any) -> tuple[int, dict[str, Any]]:
        return await error_of(
            lambda: client.post(
                "/audio/transcriptions",
                cast_to=object,
                body=fields,
                files=[("file", ("a.ogg", VOICE))] if fields.pop("with_file", True) else [],
                options={"headers": {"Content-Type": "multipart/form-data"}},
            )
        )

    no_file = await post(model="whisper-1", with_file=False)
    assert no_file == (
        400,
        {
            "message": "Missing required parameter: 'file'.",
            "type": "invalid_request_error",
            "param": "file",
            "code": "missing_required_parameter",
        },
    )
    assert (await post())[1]["param"] == "model"
    assert (await post(model="whisper-1", response_format="xml"))[1]["code"] == "invalid_value"
    short = await error_of(lambda: transcribe(client, file=("a.ogg", media_samples.ogg_opus(0.02))))
    assert short[1] == {
        "message": "Audio file is too short. Minimum audio length is 0.1 seconds.",
        "type": "invalid_request_error",
        "param": "file",
        "code": "audio_too_short",
    }


async def test_uploads_over_the_size_limit_get_413(client: openai.AsyncOpenAI, fake: FakeOpenAI) -> None:
    assert fake.max_upload_bytes == 26_214_400
    fake.max_upload_bytes = 4_000
    status, body = await error_of(lambda: transcribe(client))
    assert status == 413
    assert body["type"] == "server_error"
    assert body["message"].startswith("Maximum content size limit (4000) exceeded (")
    assert fake.transcriptions == []


@pytest.mark.parametrize(
    ("kind", "options", "status"),
    [("server_error", {}, 500), ("rate_limit", {"retry_after": 2}, 429), ("not_found", {}, 404)],
)
async def test_transcription_faults(
    client: openai.AsyncOpenAI, fake: FakeOpenAI, kind: str, options: dict[str, Any], status: int
) -> None:
    fake.fail_next(kind, endpoint="transcriptions", **options)
    failed = await error_of(lambda: transcribe(client))
    assert failed[0] == status
    if kind == "not_found":
        assert failed[1]["message"] == "Invalid URL (POST /v1/audio/transcriptions)"
    if kind == "rate_limit":
        assert "whisper-1" in failed[1]["message"]
    assert (await transcribe(client)).text
    assert [record.fault for record in fake.requests] == [kind, None]
    assert len(fake.transcriptions) == 1


async def test_a_hanging_transcription_times_out(fake: FakeOpenAI) -> None:
    fake.fail_next("hang", endpoint="transcriptions")
    async with openai.AsyncOpenAI(base_url=fake.base_url, api_key=API_KEY, max_retries=0, timeout=0.3) as api:
        with pytest.raises(openai.APITimeoutError):
            await transcribe(api)
    await fake.wait_until_idle()
    assert fake.requests[-1].disconnected


async def test_a_server_without_audio_endpoints(client: openai.AsyncOpenAI, fake: FakeOpenAI) -> None:
    fake.fail_always("not_found", endpoint="transcriptions")
    fake.fail_always("not_found", endpoint="speech")
    for call in (lambda: transcribe(client), lambda: speak(client)):
        assert (await error_of(call))[0] == 404
    fake.clear_faults()
    assert (await transcribe(client)).text


async def test_a_malformed_transcription_body(client: openai.AsyncOpenAI, fake: FakeOpenAI) -> None:
    fake.fail_next("malformed", endpoint="transcriptions")
    with pytest.raises((json.JSONDecodeError, openai.APIResponseValidationError)):
        await transcribe(client)


# --------------------------------------------------------------------------- speech


@pytest.mark.parametrize(
    ("response_format", "content_type", "audio_format"),
    [
        ("mp3", "audio/mpeg", "mp3"),
        ("opus", "audio/opus", "ogg"),
        ("wav", "audio/wav", "wav"),
        ("flac", "audio/flac", "flac"),
        ("aac", "audio/aac", None),
        ("pcm", "audio/pcm", None),
    ],
)
async def test_speech_formats(
    client: openai.AsyncOpenAI, fake: FakeOpenAI, response_format: str, content_type: str, audio_format: str | None
) -> None:
    response = await client.audio.speech.create(
        model="tts-1",
        voice="nova",
        input="one two three four five",
        response_format=response_format,  # type: ignore[arg-type]
    )
    data = response.content
    assert response.response.headers["content-type"] == content_type
    assert media_samples.audio_format(data) == audio_format
    if audio_format is not None:
        assert media_samples.audio_duration(data) == pytest.approx(2.0, abs=0.05)  # five words at 2.5 a second
    if response_format == "pcm":
        assert len(data) == 2 * 24_000 * 2
    [record] = fake.speeches
    assert (record.model, record.voice, record.input, record.response_format) == (
        "tts-1",
        "nova",
        "one two three four five",
        response_format,
    )
    assert (record.status, record.audio, record.content_type) == (200, data, content_type)


async def test_opus_speech_is_an_ogg_stream(client: openai.AsyncOpenAI, fake: FakeOpenAI) -> None:
    data = await speak(client, response_format="opus", speed=2.0, instructions="cheerful")
    assert data.startswith(b"OggS")
    assert b"OpusHead" in data[:64]
    assert media_samples.audio_duration(data) == pytest.approx(8 / 2.5 / 2.0, abs=0.02)  # 6 words, 2 marks
    assert (fake.speeches[0].speed, fake.speeches[0].instructions) == (2.0, "cheerful")
    assert (await speak(client)).startswith(b"ID3")  # mp3 by default


async def test_speech_validation_errors(client: openai.AsyncOpenAI, fake: FakeOpenAI) -> None:
    too_long = await error_of(lambda: speak(client, input="x" * 4097))
    assert too_long[0] == 400
    assert too_long[1]["message"].startswith(
        "[{'type': 'string_too_long', 'loc': ('body', 'input'), 'msg': 'String should have at most 4096 characters'"
    )
    assert (await speak(client, input="x" * 4096)).startswith(b"ID3")
    voice = await error_of(lambda: speak(client, voice="bob"))
    assert voice[1]["message"].startswith("[{'type': 'enum', 'loc': ('body', 'voice'), 'msg': \"Input should be 'nova'")
    assert "'coral'" in voice[1]["message"]
    assert (voice[1]["type"], voice[1]["param"], voice[1]["code"]) == ("invalid_request_error", None, None)
    missing = await error_of(
        lambda: client.post("/audio/speech", cast_to=object, body={"model": "tts-1", "input": "hi"})
    )
    assert missing[1]["message"] == "Missing required parameter: 'voice'."
    fmt = await error_of(lambda: speak(client, response_format="ogg"))
    assert "Input should be 'mp3', 'opus', 'aac', 'flac', 'wav' or 'pcm'" in fmt[1]["message"]
    speed = await error_of(lambda: speak(client, speed=4.5))
    assert "less than or equal to 4" in speed[1]["message"]
    assert [record.status for record in fake.speeches] == [400, 200, 400, 400, 400, 400]


async def test_speech_faults(client: openai.AsyncOpenAI, fake: FakeOpenAI) -> None:
    fake.fail_next("server_error", endpoint="speech")
    assert (await error_of(lambda: speak(client)))[0] == 500
    assert fake.speeches == []
    assert (await speak(client)).startswith(b"ID3")


# --------------------------------------------------------------------------- sample files


@pytest.mark.parametrize(
    ("make", "fmt", "seconds"),
    [
        (lambda: media_samples.ogg_opus(2.5), "ogg", 2.5),
        (lambda: media_samples.mp3(4), "mp3", 4.0),
        (lambda: media_samples.wav(1.5), "wav", 1.5),
        (lambda: media_samples.flac(3), "flac", 3.0),
        (lambda: media_samples.mp4(6), "mp4", 6.0),
        (lambda: b"\x1a\x45\xdf\xa3" + bytes(7996), "webm", 2.0),
    ],
)
def test_sample_files_read_back(make: Callable[[], bytes], fmt: str, seconds: float) -> None:
    data = make()
    assert media_samples.audio_format(data) == fmt
    assert media_samples.audio_duration(data) == pytest.approx(seconds, abs=0.03)


def test_ogg_pages_carry_valid_crcs() -> None:
    data = media_samples.ogg_opus(1.2, seed="crc")
    pages = [b"OggS" + page for page in data.split(b"OggS")[1:]]
    assert len(pages) == 4
    for page in pages:
        zeroed = page[:22] + b"\0\0\0\0" + page[26:]
        assert int.from_bytes(page[22:26], "little") == media_samples.ogg_crc(zeroed)
