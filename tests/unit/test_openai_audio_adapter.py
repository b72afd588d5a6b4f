"""The OpenAI audio adapters (transcription, speech) through the real openai client against the local fake API."""

from __future__ import annotations

import traceback
from collections.abc import Awaitable
from typing import Any

import openai
import pytest
from structlog.testing import capture_logs

from adapters.openai.audio import NO_WORDS, NOT_OPUS, OpenAISpeaker, OpenAITranscriber, is_ogg_opus
from adapters.openai.retry import RetryPolicy
from adapters.openai.settings import OpenAISettings, build_audio, build_client
from adapters.settings import ConfigError
from domain.ports import ModelFailure, Sound
from tests.doubles import media_samples
from tests.doubles.openai_server import FakeOpenAI

KEY = "sk-test-Secret0123456789abcdefXYZ"
FAST = RetryPolicy(attempts=4, total_seconds=5.0, base_delay=0.01, max_delay=0.05)
VOICE = Sound(media_samples.ogg_opus(2.5, seed="voice"), "voice.oga", "audio/ogg")
SAID = "Hello there, how are you today?"


@pytest.fixture
async def fake():
    async with FakeOpenAI(api_key=KEY) as server:
        yield server


@pytest.fixture(params=["aiohttp", "httpx"])
async def client(fake, request):
    """The client as build_client makes it (aiohttp transport), and with the SDK's default transport."""
    if request.param == "aiohttp":
        api = build_client(OpenAISettings(api_key=KEY, base_url=fake.base_url, timeout=5.0))
    else:
        api = openai.AsyncOpenAI(base_url=fake.base_url, api_key=KEY, max_retries=0, timeout=5.0)
    yield api
    await api.close()


def transcriber(client: openai.AsyncOpenAI, **options: Any) -> OpenAITranscriber:
    settings: dict[str, Any] = {"model": "whisper-1", "timeout": 2.0, "retry": FAST}
    return OpenAITranscriber(client, **(settings | options))


def speaker(client: openai.AsyncOpenAI, **options: Any) -> OpenAISpeaker:
    settings: dict[str, Any] = {"model": "gpt-4o-mini-tts", "voice": "alloy", "timeout": 2.0, "retry": FAST}
    return OpenAISpeaker(client, **(settings | options))


class Waits:
    """A retry policy's `sleep` that waits for nothing and remembers what it was asked to wait."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)


async def failure_of(awaitable: Awaitable[object]) -> ModelFailure:
    with pytest.raises(ModelFailure) as caught:
        await awaitable
    return caught.value


def calls(fake: FakeOpenAI, endpoint: str) -> int:
    """Requests that reached the endpoint, faults included."""
    return sum(1 for request in fake.requests if request.endpoint == endpoint)


# ---------------------------------------------------------------------------------------------- transcription


async def test_whisper_json_gives_the_words_and_the_billed_duration(fake, client):
    fake.set_transcript(" Hello there. ", duration=2.5)
    transcript = await transcriber(client).transcribe(VOICE)
    assert (transcript.text, transcript.model) == ("Hello there.", "whisper-1")
    assert transcript.duration_s == 3.0  # whisper-1 bills whole seconds, rounded up
    [record] = fake.transcriptions
    assert (record.model, record.response_format, record.filename, record.content_type) == (
        "whisper-1",
        "json",
        "voice.oga",
        "audio/ogg",
    )
    assert record.data == VOICE.data


async def test_gpt4o_transcribe_json_gives_the_words_without_a_duration(fake, client):
    fake.set_transcript("Bonjour.")
    model = transcriber(client, model="gpt-4o-mini-transcribe")
    transcript = await model.transcribe(VOICE)
    assert model.model == "gpt-4o-mini-transcribe"
    assert (transcript.text, transcript.model, transcript.duration_s) == ("Bonjour.", "gpt-4o-mini-transcribe", None)
    assert fake.transcriptions[0].model == "gpt-4o-mini-transcribe"


@pytest.mark.parametrize(
    ("body", "text", "duration"),
    [
        ({"text": " local words", "duration": 2.25, "language": "en"}, "local words", 2.25),  # verbose-like JSON
        ({"text": "bare"}, "bare", None),
        ("Plain words from whisper.cpp\n", "Plain words from whisper.cpp", None),  # text/plain
    ],
)
async def test_local_servers_answers_are_understood(fake, client, body, text, duration):
    fake.fail_next("error", endpoint="transcriptions", status=200, body=body)
    transcript = await transcriber(client, model="Systran/faster-whisper-small").transcribe(VOICE)
    assert (transcript.text, transcript.duration_s) == (text, duration)


async def test_a_server_error_then_success_is_one_transcript_from_two_calls(fake, client):
    fake.set_transcript("second time lucky")
    fake.fail_next("server_error", endpoint="transcriptions")
    transcript = await transcriber(client).transcribe(VOICE)
    assert transcript.text == "second time lucky"
    assert calls(fake, "transcriptions") == 2
    assert len(fake.transcriptions) == 1


async def test_a_rate_limit_is_retried_after_the_servers_wait(fake, client):
    fake.fail_next("rate_limit", endpoint="transcriptions", retry_after=0.05)
    waits = Waits()
    policy = RetryPolicy(attempts=3, total_seconds=5.0, random=lambda: 0.0, sleep=waits)
    transcript = await transcriber(client, retry=policy).transcribe(VOICE)
    assert transcript.text.startswith("transcript of ")
    assert waits.seconds == [pytest.approx(0.05)]
    assert calls(fake, "transcriptions") == 2


async def test_a_server_without_the_transcription_endpoint_is_unsupported_at_once(fake, client):
    fake.fail_always("not_found", endpoint="transcriptions")
    failure = await failure_of(transcriber(client).transcribe(VOICE))
    assert failure.kind == "unsupported"
    assert "OPENAI_BASE_URL" in failure.message
    assert calls(fake, "transcriptions") == 1


async def test_a_file_in_an_unknown_format_is_not_retried(fake, client):
    failure = await failure_of(transcriber(client).transcribe(Sound(b"not audio at all", "voice.ogg", "audio/ogg")))
    assert failure.kind == "upstream"
    assert "Invalid file format" in failure.message
    assert [record.status for record in fake.transcriptions] == [400]


async def test_hearing_no_words_is_an_upstream_failure_without_retry(fake, client):
    fake.set_transcript(" \n ")
    failure = await failure_of(transcriber(client).transcribe(VOICE))
    assert (failure.kind, failure.message) == ("upstream", NO_WORDS)
    assert len(fake.transcriptions) == 1


async def test_a_hanging_transcription_times_out_after_bounded_attempts(fake, client):
    fake.fail_always("hang", endpoint="transcriptions")
    policy = RetryPolicy(attempts=2, total_seconds=30.0, base_delay=0.01)
    failure = await failure_of(transcriber(client, timeout=0.3, retry=policy).transcribe(VOICE))
    assert failure.kind == "timeout"
    assert calls(fake, "transcriptions") == 2


# ---------------------------------------------------------------------------------------------- speech


async def test_speech_is_ogg_opus_in_the_voice_and_model_asked(fake, client):
    voice = speaker(client, model="tts-1", voice="nova")
    data = await voice.speak(SAID)
    assert (voice.model, voice.voice, voice.limit) == ("tts-1", "nova", 4096)
    assert data.startswith(b"OggS")
    assert is_ogg_opus(data)
    assert media_samples.audio_format(data) == "ogg"
    [record] = fake.speeches
    assert (record.model, record.voice, record.input, record.response_format) == ("tts-1", "nova", SAID, "opus")
    assert record.audio == data


@pytest.mark.parametrize("text", ["x" * 11, "", "   "])
async def test_speech_over_the_limit_or_blank_is_refused_before_any_call(fake, client, text):
    with pytest.raises(ValueError, match=r"at most 10 characters .* not 11$|nothing to speak"):
        await speaker(client, limit=10).speak(text)
    assert fake.requests == []


async def test_speech_up_to_the_limit_is_spoken(fake, client):
    assert is_ogg_opus(await speaker(client, limit=10).speak("x" * 10))


@pytest.mark.parametrize(
    "body",
    [
        "ID3\x04\x00\x00\x00\x00\x00\x00 an mp3 as a server that ignores response_format sends it",
        "RIFF\x24\x00\x00\x00WAVEfmt a wav",
        "OggS but Vorbis, not Opus",
    ],
)
async def test_speech_in_another_format_is_unsupported_without_retry(fake, client, body):
    fake.fail_next("error", endpoint="speech", status=200, body=body)
    failure = await failure_of(speaker(client).speak(SAID))
    assert (failure.kind, failure.message) == ("unsupported", NOT_OPUS)
    assert calls(fake, "speech") == 1


async def test_a_speech_server_error_is_retried(fake, client):
    fake.fail_next("overloaded", endpoint="speech")
    assert is_ogg_opus(await speaker(client).speak(SAID))
    assert calls(fake, "speech") == 2


async def test_a_server_without_the_speech_endpoint_is_unsupported_at_once(fake, client):
    fake.fail_always("not_found", endpoint="speech")
    failure = await failure_of(speaker(client).speak(SAID))
    assert failure.kind == "unsupported"
    assert calls(fake, "speech") == 1


async def test_an_unknown_voice_is_not_retried(fake, client):
    failure = await failure_of(speaker(client, voice="bob").speak(SAID))
    assert failure.kind == "upstream"
    assert [record.status for record in fake.speeches] == [400]


# ---------------------------------------------------------------------------------------------- secrets


@pytest.mark.parametrize("endpoint", ["transcriptions", "speech"])
@pytest.mark.parametrize(
    ("kind", "options"),
    [
        ("invalid_api_key", {}),
        ("error", {"status": 400, "message": f"bad key {KEY} sent as Authorization: Bearer {KEY}"}),
        ("error", {"status": 500, "message": f"upstream saw {KEY}"}),
        ("error", {"status": 429, "message": f"slow down, {KEY}", "code": "rate_limit_exceeded"}),
    ],
)
async def test_the_key_never_reaches_a_failure_or_a_log_line(fake, client, endpoint, kind, options):
    fake.fail_always(kind, endpoint=endpoint, **options)
    call = transcriber(client).transcribe(VOICE) if endpoint == "transcriptions" else speaker(client).speak(SAID)
    with capture_logs() as logs:
        failure = await failure_of(call)
    said = failure.message + repr(logs) + repr(failure.args) + "".join(traceback.format_exception(failure))
    assert KEY not in said
    assert "Secret0123" not in said


# ---------------------------------------------------------------------------------------------- settings


def test_audio_settings_defaults_and_variables():
    defaults = OpenAISettings.from_env({"OPENAI_API_KEY": KEY})
    assert (defaults.transcribe_model, defaults.speech_model, defaults.speech_voice) == (
        "gpt-4o-mini-transcribe",
        "gpt-4o-mini-tts",
        "alloy",
    )
    given = OpenAISettings.from_env(
        {
            "OPENAI_API_KEY": KEY,
            "CONVO_TRANSCRIBE_MODEL": "whisper-1",
            "CONVO_SPEECH_MODEL": "tts-1",
            "CONVO_SPEECH_VOICE": " nova ",
        }
    )
    assert (given.transcribe_model, given.speech_model, given.speech_voice) == ("whisper-1", "tts-1", "nova")
    blank = OpenAISettings.from_env({"OPENAI_API_KEY": KEY, "CONVO_SPEECH_VOICE": "  "})
    assert blank.speech_voice == "alloy"


@pytest.mark.parametrize("variable", ["CONVO_SPEECH_VOICE", "CONVO_SPEECH_MODEL", "CONVO_TRANSCRIBE_MODEL"])
def test_audio_names_must_be_one_word(variable):
    with pytest.raises(ConfigError, match=f"^{variable} must be one word") as raised:
        OpenAISettings.from_env({"OPENAI_API_KEY": KEY, variable: "en us"})
    assert KEY not in str(raised.value)
    with pytest.raises(ValueError, match="one word"):
        OpenAISettings(api_key=KEY, speech_voice="")


async def test_build_audio_uses_the_given_client_and_the_models_patience():
    settings = OpenAISettings.from_env(
        {
            "OPENAI_API_KEY": KEY,
            "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
            "CONVO_MODEL_TIMEOUT": "7",
            "CONVO_MODEL_RETRIES": "2",
            "CONVO_TRANSCRIBE_MODEL": "whisper-1",
            "CONVO_SPEECH_VOICE": "coral",
        }
    )
    client = build_client(settings)
    try:
        transcriber, speaker = build_audio(settings, client)
        assert transcriber._client is client
        assert speaker._client is client
        assert (transcriber.model, speaker.model, speaker.voice, speaker.limit) == (
            "whisper-1",
            "gpt-4o-mini-tts",
            "coral",
            4096,
        )
        assert transcriber._timeout == speaker._timeout == 7.0
        assert transcriber._retry == speaker._retry == RetryPolicy(attempts=2, total_seconds=90.0)
    finally:
        await client.close()
