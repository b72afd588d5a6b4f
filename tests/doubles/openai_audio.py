"""Audio endpoints of the fake OpenAI server: speech to text and text to speech.

``POST /v1/audio/transcriptions`` (multipart/form-data)
    ``file`` and ``model`` are required.  The file needs a name with a supported extension (else
    ``Unrecognized file format. Supported formats: [...]``, as the API says to an unnamed upload) and bytes of
    a supported container: Ogg, MP3, WAV, FLAC, MP4/M4A or WebM by their magic bytes (else ``Invalid file format.
    Supported formats: ['flac', 'm4a', 'mp3', 'mp4', 'mpeg', 'mpga', 'oga', 'ogg', 'wav', 'webm']``).  A request
    body over 25 MiB is refused with 413 ``Maximum content size limit (26214400) exceeded (N bytes read)``
    (``fake.max_upload_bytes`` lowers the limit); audio under 0.1 s with 400 ``audio_too_short``.
    ``response_format``: ``json`` (default), ``text``, ``srt``, ``vtt``, ``verbose_json``; models named
    ``*transcribe*`` (gpt-4o-transcribe, gpt-4o-mini-transcribe...) take ``json`` and ``text`` only (400
    ``response_format 'verbose_json' is not compatible with model '...'. Use 'json' or 'text' instead.``).
    ``json`` is ``{"text", "usage"}``: ``usage`` is ``{"type": "tokens", "input_tokens", "input_token_details":
    {"text_tokens", "audio_tokens"}, "output_tokens", "total_tokens"}`` for ``*transcribe*`` models (10 audio
    tokens a second, the prompt's tokens as text tokens) and ``{"type": "duration", "seconds"}`` (whole seconds,
    rounded up) for the others, as whisper-1 bills; ``verbose_json`` adds ``task``, ``language`` (the English
    name of ``language``, default ``english``), ``duration``, ``segments`` (one) and, with
    ``timestamp_granularities[]=word``, ``words``.
    The transcript is ``fake.set_transcript(text_or_callable)`` / ``fake.queue_transcripts(...)``, else
    ``"transcript of <first 8 hex digits of the sha-256 of the file>"``.  The duration is read from the file
    (Ogg granule position, MP3 frames, WAV/FLAC/MP4 headers; else 4000 bytes a second) unless
    ``fake.set_transcript(..., duration=seconds)`` fixes it.

``POST /v1/audio/speech`` (JSON)
    ``model``, ``input`` (at most 4096 characters) and ``voice`` (alloy, ash, ballad, coral, echo, fable, nova,
    onyx, sage, shimmer, verse, marin, cedar) are required; ``response_format`` mp3 (default), opus, aac, flac,
    wav or pcm; ``speed`` 0.25..4.0; ``instructions``.  Bad values get the API's validation messages (a Python
    list of pydantic errors as the ``message``).  The answer is audio of the right container and
    ``Content-Type`` (``opus``: an Ogg/Opus stream, ``audio/opus``) lasting ``words / 2.5 / speed`` seconds.

Faults use the chat fault queue with ``endpoint="transcriptions"`` or ``endpoint="speech"``:
``fake.fail_next("server_error", endpoint="transcriptions")`` (500), ``"rate_limit"`` (429), ``"hang"``,
``"slow"``, ``"not_found"`` (404 ``Invalid URL (POST /v1/audio/transcriptions)``, a server without the route),
``"malformed"`` (half a JSON body)...

Records: ``fake.transcriptions`` (:class:`Transcription`: model, response_format, filename, size, data,
language, prompt, ..., status, text) and ``fake.speeches`` (:class:`Speech`: model, voice, input,
response_format, speed, instructions, audio, status) hold the requests that got past fault injection, answered
or refused; every request is also in ``fake.requests`` (endpoint ``transcriptions`` / ``speech``), where a
multipart body is recorded as its text fields plus ``{"file": {"filename", "content_type", "size"}}``.
"""

from __future__ import annotations

import hashlib
import inspect
import math
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP
from typing import TYPE_CHECKING, Any, Final, TypeAlias

from aiohttp import web

from tests.doubles import media_samples
from tests.doubles.openai_wire import ApiError, JSONDict, count_tokens, dumps, invalid_value, missing_param

if TYPE_CHECKING:
    from tests.doubles.openai_server import _Call

TRANSCRIPTIONS_PATH: Final = "/v1/audio/transcriptions"
SPEECH_PATH: Final = "/v1/audio/speech"
MAX_UPLOAD_BYTES: Final = 26_214_400
SUPPORTED_EXTENSIONS: Final = ("flac", "m4a", "mp3", "mp4", "mpeg", "mpga", "oga", "ogg", "wav", "webm")
TRANSCRIPTION_FORMATS: Final = ("json", "text", "srt", "verbose_json", "vtt")
TOKEN_FORMATS: Final = ("json", "text")
"""All ``*transcribe*`` models answer."""
SPEECH_FORMATS: Final = {
    "mp3": "audio/mpeg",
    "opus": "audio/opus",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
}
VOICES: Final = ("nova", "shimmer", "echo", "onyx", "fable", "alloy", "ash", "sage", "coral")
NEWER_VOICES: Final = ("ballad", "verse", "marin", "cedar")
MAX_SPEECH_INPUT: Final = 4096
MIN_AUDIO_SECONDS: Final = 0.1
AUDIO_TOKENS_PER_SECOND: Final = 10
SPOKEN_WORDS_PER_SECOND: Final = 2.5
LANGUAGES: Final = {
    "en": "english",
    "de": "german",
    "es": "spanish",
    "fr": "french",
    "it": "italian",
    "ja": "japanese",
    "pt": "portuguese",
    "ru": "russian",
    "uk": "ukrainian",
    "zh": "chinese",
}


# --------------------------------------------------------------------------------------------- multipart


@dataclass(frozen=True)
class FormFile:
    """A file part of a multipart form."""

    filename: str | None
    content_type: str | None
    data: bytes


@dataclass
class Form:
    """A parsed multipart/form-data body: text fields (repeatable) and file parts."""

    fields: dict[str, list[str]] = field(default_factory=dict)
    files: dict[str, FormFile] = field(default_factory=dict)

    def get(self, name: str) -> str | None:
        """The last value of text field ``name``."""
        values = self.fields.get(name)
        return values[-1] if values else None

    def summary(self) -> JSONDict:
        """The fields as JSON (repeated ones as lists) plus ``{name: {filename, content_type, size}}`` per file."""
        out: JSONDict = {name: values[0] if len(values) == 1 else values for name, values in self.fields.items()}
        for name, upload in self.files.items():
            out[name] = {"filename": upload.filename, "content_type": upload.content_type, "size": len(upload.data)}
        return out


def parse_form(body: bytes, content_type: str) -> Form:
    """Parse a multipart/form-data ``body`` (the request's full ``Content-Type`` gives the boundary)."""
    header = Message()
    header["Content-Type"] = content_type
    boundary = header.get_param("boundary")
    form = Form()
    if not isinstance(boundary, str) or not boundary:
        return form
    for chunk in body.split(b"--" + boundary.encode())[1:]:
        if chunk.startswith(b"--"):
            break
        head, _, data = chunk.partition(b"\r\n\r\n")
        part = BytesParser(policy=HTTP).parsebytes(head.strip(b"\r\n") + b"\r\n\r\n")
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        data = data.removesuffix(b"\r\n")
        filename = part.get_filename()
        if filename is None and "filename" not in str(part.get("content-disposition", "")):
            form.fields.setdefault(name, []).append(data.decode("utf-8", "replace"))
        else:
            form.files[name] = FormFile(filename, part.get("content-type"), data)
    return form


# --------------------------------------------------------------------------------------------- records


@dataclass
class Transcription:
    """One ``POST /v1/audio/transcriptions`` that got past fault injection."""

    model: str | None
    response_format: str
    filename: str | None
    content_type: str | None
    data: bytes
    language: str | None
    prompt: str | None
    temperature: str | None
    fields: JSONDict
    status: int | None = None
    text: str | None = None
    """The transcript answered (None when refused)."""
    duration: float | None = None

    @property
    def size(self) -> int:
        """Bytes of the uploaded file."""
        return len(self.data)

    @property
    def ok(self) -> bool:
        """True when answered 200."""
        return self.status == 200


@dataclass
class Speech:
    """One ``POST /v1/audio/speech`` that got past fault injection."""

    model: str | None
    voice: Any
    input: Any
    response_format: str
    speed: Any
    instructions: Any
    status: int | None = None
    audio: bytes = b""
    """The audio answered (empty when refused)."""
    content_type: str | None = None

    @property
    def ok(self) -> bool:
        """True when answered 200."""
        return self.status == 200


Transcript: TypeAlias = str | Callable[[Transcription], str | Awaitable[str]]
"""A fixed transcript, or a callable computing it from the :class:`Transcription` (sync or async)."""


# --------------------------------------------------------------------------------------------- the mixin


class AudioMixin:
    """The audio endpoints and their controls, mixed into :class:`~tests.doubles.openai_server.FakeOpenAI`."""

    if TYPE_CHECKING:

        async def _begin(self, request: web.Request, endpoint: str) -> _Call | web.StreamResponse: ...

    def _init_audio(self) -> None:
        self.max_upload_bytes = MAX_UPLOAD_BYTES
        self._transcriptions: list[Transcription] = []
        self._speeches: list[Speech] = []
        self._transcript: Transcript | None = None
        self._queued_transcripts: deque[Transcript] = deque()
        self._audio_duration: float | None = None

    def _reset_audio(self) -> None:
        self._init_audio()

    def _clear_audio_records(self) -> None:
        self._transcriptions.clear()
        self._speeches.clear()

    # ---------------------------------------------------------------- controls and records

    @property
    def transcriptions(self) -> list[Transcription]:
        """Transcription requests that got past fault injection, oldest first."""
        return list(self._transcriptions)

    @property
    def speeches(self) -> list[Speech]:
        """Speech requests that got past fault injection, oldest first."""
        return list(self._speeches)

    def set_transcript(self, transcript: Transcript | None, *, duration: float | None = None) -> None:
        """Answer every transcription with ``transcript`` (None: the default ``transcript of <sha>``) and, if
        given, report ``duration`` seconds instead of reading it from the file."""
        self._transcript = transcript
        self._audio_duration = duration

    def queue_transcripts(self, *transcripts: Transcript) -> None:
        """Use these transcripts, one per transcription, before the persistent one."""
        self._queued_transcripts.extend(transcripts)

    # ---------------------------------------------------------------- POST /v1/audio/transcriptions

    async def _handle_transcription(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        if len(body) > self.max_upload_bytes:
            message = f"Maximum content size limit ({self.max_upload_bytes}) exceeded ({len(body)} bytes read)"
            return ApiError(413, message, type="server_error").response()
        begun = await self._begin(request, "transcriptions")
        if isinstance(begun, web.StreamResponse):
            return begun
        form = parse_form(body, request.headers.get("Content-Type", ""))
        entry = _transcription_entry(form)
        self._transcriptions.append(entry)
        error = _check_transcription(form, entry)
        if error is None:
            fixed = self._audio_duration
            entry.duration = fixed if fixed is not None else media_samples.audio_duration(entry.data)
            if entry.duration < MIN_AUDIO_SECONDS:
                error = _too_short()
        if error is not None:
            entry.status = error.status
            return error.response()
        entry.text = await self._next_transcript(entry)
        entry.status = 200
        return _transcription_response(entry, form, malformed=begun.kind == "malformed")

    async def _next_transcript(self, entry: Transcription) -> str:
        transcript = self._queued_transcripts.popleft() if self._queued_transcripts else self._transcript
        if transcript is None:
            return "transcript of " + hashlib.sha256(entry.data).hexdigest()[:8]
        result = transcript if isinstance(transcript, str) else transcript(entry)
        if inspect.isawaitable(result):
            result = await result
        return str(result)

    # ---------------------------------------------------------------- POST /v1/audio/speech

    async def _handle_speech(self, request: web.Request) -> web.StreamResponse:
        begun = await self._begin(request, "speech")
        if isinstance(begun, web.StreamResponse):
            return begun
        body = begun.body
        entry = Speech(
            model=body.get("model"),
            voice=body.get("voice"),
            input=body.get("input"),
            response_format=str(body.get("response_format") or "mp3"),
            speed=body.get("speed"),
            instructions=body.get("instructions"),
        )
        self._speeches.append(entry)
        error = _check_speech(body)
        if error is not None:
            entry.status = error.status
            return error.response()
        speed = float(entry.speed) if entry.speed is not None else 1.0
        seconds = max(0.5, count_tokens(str(entry.input)) / SPOKEN_WORDS_PER_SECOND / speed)
        entry.audio = render_speech(entry.response_format, seconds, seed=str(entry.input))
        entry.content_type = SPEECH_FORMATS[entry.response_format]
        entry.status = 200
        if begun.kind == "malformed":
            return web.Response(body=entry.audio[: len(entry.audio) // 2], content_type=entry.content_type)
        return web.Response(body=entry.audio, content_type=entry.content_type)


# --------------------------------------------------------------------------------------------- transcriptions


def _transcription_entry(form: Form) -> Transcription:
    upload = form.files.get("file")
    return Transcription(
        model=form.get("model"),
        response_format=form.get("response_format") or "json",
        filename=upload.filename if upload else None,
        content_type=upload.content_type if upload else None,
        data=upload.data if upload else b"",
        language=form.get("language"),
        prompt=form.get("prompt"),
        temperature=form.get("temperature"),
        fields=form.summary(),
    )


def is_token_billed(model: str) -> bool:
    """gpt-4o-transcribe and its kin: json/text only, billed in tokens."""
    return "transcribe" in model


def _check_transcription(form: Form, entry: Transcription) -> ApiError | None:
    if "file" not in form.files:
        return missing_param("file")
    if not entry.model:
        return missing_param("model")
    fmt = entry.response_format
    if fmt not in TRANSCRIPTION_FORMATS:
        return invalid_value("response_format", fmt, TRANSCRIPTION_FORMATS)
    if is_token_billed(entry.model) and fmt not in TOKEN_FORMATS:
        message = f"response_format '{fmt}' is not compatible with model '{entry.model}'. Use 'json' or 'text' instead."
        return ApiError(400, message, param="response_format", code="unsupported_value")
    _, dot, extension = (entry.filename or "").rpartition(".")
    if not dot or extension.lower() not in SUPPORTED_EXTENSIONS:
        return _format_error("Unrecognized")
    if media_samples.audio_format(entry.data) is None:
        return _format_error("Invalid")
    return None


def _format_error(adjective: str) -> ApiError:
    return ApiError(400, f"{adjective} file format. Supported formats: {list(SUPPORTED_EXTENSIONS)}")


def _too_short() -> ApiError:
    message = f"Audio file is too short. Minimum audio length is {MIN_AUDIO_SECONDS} seconds."
    return ApiError(400, message, param="file", code="audio_too_short")


def _usage(entry: Transcription) -> JSONDict:
    seconds = entry.duration or 0.0
    if not is_token_billed(entry.model or ""):
        return {"type": "duration", "seconds": math.ceil(seconds)}
    audio = math.ceil(seconds * AUDIO_TOKENS_PER_SECOND)
    text = count_tokens(entry.prompt or "")
    output = count_tokens(entry.text or "")
    return {
        "type": "tokens",
        "input_tokens": audio + text,
        "input_token_details": {"text_tokens": text, "audio_tokens": audio},
        "output_tokens": output,
        "total_tokens": audio + text + output,
    }


def _transcription_response(entry: Transcription, form: Form, *, malformed: bool) -> web.Response:
    text, seconds = entry.text or "", entry.duration or 0.0
    fmt = entry.response_format
    if fmt == "text":
        return web.Response(text=text + "\n", content_type="text/plain")
    if fmt in ("srt", "vtt"):
        return web.Response(text=_subtitles(fmt, text, seconds), content_type="text/plain")
    payload: JSONDict = {"text": text, "usage": _usage(entry)}
    if fmt == "verbose_json":
        payload = _verbose(entry, form.fields.get("timestamp_granularities[]", []))
    body = dumps(payload)
    if malformed:
        return web.Response(body=body[: len(body) // 2].encode(), content_type="application/json")
    return web.Response(text=body, content_type="application/json")


def _verbose(entry: Transcription, granularities: list[str]) -> JSONDict:
    text, seconds = entry.text or "", round(entry.duration or 0.0, 2)
    payload: JSONDict = {
        "task": "transcribe",
        "language": LANGUAGES.get((entry.language or "en").lower(), entry.language or "english"),
        "duration": seconds,
        "text": text,
        "segments": [
            {
                "id": 0,
                "seek": 0,
                "start": 0.0,
                "end": seconds,
                "text": " " + text,
                "tokens": list(range(50364, 50364 + count_tokens(text))),
                "temperature": 0.0,
                "avg_logprob": -0.25,
                "compression_ratio": 1.0,
                "no_speech_prob": 0.01,
            }
        ],
        "usage": _usage(entry),
    }
    if "word" in granularities:
        words = text.split()
        step = seconds / max(1, len(words))
        payload["words"] = [
            {"word": word, "start": round(i * step, 2), "end": round((i + 1) * step, 2)} for i, word in enumerate(words)
        ]
    return payload


def _subtitles(fmt: str, text: str, seconds: float) -> str:
    def stamp(value: float, separator: str) -> str:
        millis = round(value * 1000)
        hours, rest = divmod(millis, 3_600_000)
        minutes, rest = divmod(rest, 60_000)
        return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}{separator}{rest % 1000:03d}"

    if fmt == "srt":
        return f"1\n{stamp(0, ',')} --> {stamp(seconds, ',')}\n{text}\n\n"
    return f"WEBVTT\n\n{stamp(0, '.')} --> {stamp(seconds, '.')}\n{text}\n\n"


# --------------------------------------------------------------------------------------------- speech


def _validation_error(kind: str, field_name: str, message: str, value: Any, ctx: JSONDict | None = None) -> ApiError:
    """The API's speech validation answer: a printed list of pydantic errors as the ``message``."""
    error: JSONDict = {"type": kind, "loc": ("body", field_name), "msg": message, "input": value}
    if ctx is not None:
        error["ctx"] = ctx
    return ApiError(400, repr([error]))


def _enum_error(field_name: str, value: Any, allowed: tuple[str, ...]) -> ApiError:
    expected = ", ".join(f"'{item}'" for item in allowed[:-1]) + f" or '{allowed[-1]}'"
    return _validation_error("enum", field_name, f"Input should be {expected}", value, {"expected": expected})


def _check_speech(body: JSONDict) -> ApiError | None:
    for name in ("model", "input", "voice"):
        if body.get(name) is None:
            return missing_param(name)
    text = body["input"]
    if not isinstance(text, str):
        return _validation_error("string_type", "input", "Input should be a valid string", text)
    if len(text) > MAX_SPEECH_INPUT:
        message = f"String should have at most {MAX_SPEECH_INPUT} characters"
        return _validation_error("string_too_long", "input", message, text, {"max_length": MAX_SPEECH_INPUT})
    voice = body["voice"]
    if voice not in VOICES + NEWER_VOICES and not (isinstance(voice, dict) and isinstance(voice.get("id"), str)):
        return _enum_error("voice", voice, VOICES + NEWER_VOICES)
    fmt = body.get("response_format", "mp3")
    if fmt not in SPEECH_FORMATS:
        return _enum_error("response_format", fmt, tuple(SPEECH_FORMATS))
    return _check_speed(body.get("speed"))


def _check_speed(speed: Any) -> ApiError | None:
    if speed is None:
        return None
    if isinstance(speed, bool) or not isinstance(speed, int | float):
        return _validation_error("float_type", "speed", "Input should be a valid number", speed)
    if speed < 0.25:
        return _validation_error(
            "greater_than_equal", "speed", "Input should be greater than or equal to 0.25", speed, {"ge": 0.25}
        )
    if speed > 4.0:
        return _validation_error(
            "less_than_equal", "speed", "Input should be less than or equal to 4", speed, {"le": 4.0}
        )
    return None


def render_speech(response_format: str, seconds: float, *, seed: str = "") -> bytes:
    """Audio of ``seconds`` in a speech ``response_format`` (pcm: raw 24 kHz 16-bit mono)."""
    if response_format == "opus":
        return media_samples.ogg_opus(seconds, seed=seed)
    if response_format == "aac":
        return media_samples.aac(seconds)
    if response_format == "flac":
        return media_samples.flac(seconds)
    if response_format == "wav":
        return media_samples.wav(seconds)
    if response_format == "pcm":
        return media_samples.pcm(seconds)
    return media_samples.mp3(seconds, seed=seed)
