"""The Transcriber and Speaker ports over the OpenAI audio API (`POST /audio/transcriptions`, `POST /audio/speech`).

Both work with OpenAI (`gpt-4o-mini-transcribe`, `whisper-1`, `gpt-4o-mini-tts`, `tts-1`) and with local servers
that serve the same routes (speaches / faster-whisper-server, whisper.cpp's server with `--inference-path
/v1/audio/transcriptions`). A transcription answer may be the SDK's `Transcription`, a bare JSON object or plain
text; its duration is read from `duration` (verbose_json) or from a `{"type": "duration", "seconds": N}` usage
(whisper-1), else left unknown. Speech is asked for as `opus` and must come back as an Ogg/Opus stream, since a
Telegram voice note needs one: servers that ignore `response_format` and send MP3 or WAV are `unsupported`.
Retries are the shared RetryPolicy's; a server without the route is `unsupported` (errors.classify).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping

from openai import AsyncOpenAI

from adapters.openai.errors import IncompleteAnswer
from adapters.openai.retry import RetryPolicy
from domain.ports import ModelFailure, Sound, Transcript

SPEECH_LIMIT = 4096
"""Most characters OpenAI's speech endpoint takes in one call."""
NO_WORDS = "the transcription model heard no words"
"""The failure message for a transcript with nothing in it."""
NOT_OPUS = "the speech server did not send OGG/Opus audio (Telegram voice notes need it)"
"""The failure message for speech in another format."""
_OGG_PAGE = b"OggS"
_OPUS_HEAD = b"OpusHead"
_FIRST_PAGE = 512
"""Bytes in which an Ogg/Opus stream's identification header must appear."""


class OpenAITranscriber:
    """A Transcriber backed by `client.audio.transcriptions.create` (the client is built with `max_retries=0`)."""

    def __init__(
        self,
        client: AsyncOpenAI,
        model: str = "gpt-4o-mini-transcribe",
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
    ) -> None:
        self._client = client
        self._model = model
        self._timeout = timeout
        self._retry = retry or RetryPolicy()

    @property
    def model(self) -> str:
        """The transcription model asked."""
        return self._model

    async def transcribe(self, sound: Sound) -> Transcript:
        """The words in the sound. Raises ModelFailure (`upstream` when no words were heard, not retried)."""
        return await self._retry.call(
            lambda left: self._transcribe(sound, left), operation="transcription", secrets=_secrets(self._client)
        )

    async def _transcribe(self, sound: Sound, left: float) -> Transcript:
        """One attempt."""
        budget = min(self._timeout, left)
        async with asyncio.timeout(budget):
            response: object = await self._client.audio.transcriptions.create(
                model=self._model,
                file=(sound.filename, sound.data, sound.mime_type),
                response_format="json",
                timeout=budget,
            )
        text = _text(response)
        if not text:
            raise ModelFailure("upstream", NO_WORDS)
        return Transcript(text, self._model, _duration(response))


class OpenAISpeaker:
    """A Speaker backed by `client.audio.speech.create`, asking for Ogg/Opus (the client has `max_retries=0`)."""

    def __init__(
        self,
        client: AsyncOpenAI,
        model: str = "gpt-4o-mini-tts",
        voice: str = "alloy",
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        limit: int = SPEECH_LIMIT,
    ) -> None:
        if limit < 1:
            raise ValueError("a speaker must be able to say at least one character")
        self._client = client
        self._model = model
        self._voice = voice
        self._timeout = timeout
        self._retry = retry or RetryPolicy()
        self._limit = limit

    @property
    def model(self) -> str:
        """The speech model asked."""
        return self._model

    @property
    def voice(self) -> str:
        """The voice it speaks in."""
        return self._voice

    @property
    def limit(self) -> int:
        """Most characters one call may speak."""
        return self._limit

    async def speak(self, text: str) -> bytes:
        """OGG/Opus audio of the text. ValueError for a blank text or one over `limit` characters (the caller
        splits it; no request is made); ModelFailure when the call fails (`unsupported` for another format)."""
        if not text.strip():
            raise ValueError("there is nothing to speak")
        if len(text) > self._limit:
            raise ValueError(f"at most {self._limit} characters can be spoken in one call, not {len(text)}")
        return await self._retry.call(
            lambda left: self._speak(text, left), operation="speech", secrets=_secrets(self._client)
        )

    async def _speak(self, text: str, left: float) -> bytes:
        """One attempt."""
        budget = min(self._timeout, left)
        async with asyncio.timeout(budget):
            response = await self._client.audio.speech.create(
                model=self._model, voice=self._voice, input=text, response_format="opus", timeout=budget
            )
            data = await response.aread()
        if not data:
            raise IncompleteAnswer("the speech server sent no audio")
        if not is_ogg_opus(data):
            raise ModelFailure("unsupported", NOT_OPUS)
        return data


def is_ogg_opus(data: bytes) -> bool:
    """Whether the bytes begin an Ogg stream whose first page carries an Opus identification header."""
    return data.startswith(_OGG_PAGE) and _OPUS_HEAD in data[:_FIRST_PAGE]


def _secrets(client: AsyncOpenAI) -> tuple[str, ...]:
    """The client's API key, to be scrubbed from failure messages."""
    key = getattr(client, "api_key", None)
    return (key,) if isinstance(key, str) else ()


def _field(value: object, name: str) -> object:
    """A field of a JSON object as the SDK parsed it: a model's attribute or a dict's key; None when absent."""
    if isinstance(value, Mapping):
        return value.get(name)
    return getattr(value, name, None)


def _text(response: object) -> str:
    """The transcript's words, stripped; plain text is taken as the transcript itself."""
    text = response if isinstance(response, str) else _field(response, "text")
    if not isinstance(text, str):
        raise IncompleteAnswer("the transcription server sent no text")
    return text.strip()


def _duration(response: object) -> float | None:
    """Seconds of sound, from verbose_json's `duration` or a duration usage (whisper-1); None when not said."""
    if isinstance(response, str):
        return None
    usage = _field(response, "usage")
    seconds = _field(usage, "seconds") if _field(usage, "type") == "duration" else None
    for value in (_field(response, "duration"), seconds):
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value >= 0:
            return float(value)
    return None
