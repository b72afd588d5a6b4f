"""`/file PATH [question]` in `convo chat`: a local picture, sound or document, through the bot's own use cases.

A picture is asked about (its bytes held in memory for the model; the log keeps its hash), a sound is transcribed
once and said, and any other file is read as a document and cut to the prompt budget, as in Telegram.
"""

from __future__ import annotations

import asyncio
import hashlib
import mimetypes
import shlex
from pathlib import Path

from adapters.documents import Unreadable, read_text
from domain.events import FileText, Photo
from domain.ports import Sound, StopSignal, TextSoFar
from service.conversations import ConversationService, Request
from service.documents import FileDoesNotFit
from service.hearing import Note, NotHeard
from service.outcomes import Failed, Outcome

PICTURES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif"})
SOUNDS = frozenset({".ogg", ".oga", ".opus", ".mp3", ".mpga", ".m4a", ".wav", ".flac", ".webm", ".mp4"})
PHOTO_QUESTION = "What is in this picture?"
FILE_QUESTION = "Please read this file and tell me what it says, briefly."


class AttachmentError(Exception):
    """The file cannot be sent (missing, unreadable, too long for the budget); the message says why."""


def parse(rest: str) -> tuple[Path, str]:
    """The path and the question of `/file PATH [question]` (quote a path with spaces)."""
    words = shlex.split(rest)
    if not words:
        raise AttachmentError("usage: /file PATH [question]")
    return Path(words[0]).expanduser(), " ".join(words[1:])


async def send_file(
    service: ConversationService,
    request: Request,
    rest: str,
    on_text: TextSoFar | None,
    stop: StopSignal | None = None,
) -> tuple[str, Outcome]:
    """Send the file `/file` names; (what to show before the answer, the outcome). Once `stop` is set, the answer is
    what had arrived."""
    path, question = parse(rest)
    try:
        data = await asyncio.to_thread(path.read_bytes)
    except OSError as error:
        raise AttachmentError(f"cannot read {path}: {error.strerror or error}") from None
    digest = hashlib.sha256(data).hexdigest()
    suffix = path.suffix.lower()
    if suffix in PICTURES:
        photo = Photo(
            file_id=f"local:{path}", file_unique_id=digest[:32], width=0, height=0, size=len(data), sha256=digest
        )
        service.pictures.keep(photo, data)
        outcome = await service.say(request, question or PHOTO_QUESTION, on_text, stop, photos=(photo,))
        return f"(picture {path.name}, {len(data)} bytes)", outcome
    if suffix in SOUNDS:
        return await _sound(service, request, path, data, digest, on_text, stop)
    return await _document(service, request, path, data, digest, question or FILE_QUESTION, on_text, stop)


async def _sound(
    service: ConversationService,
    request: Request,
    path: Path,
    data: bytes,
    digest: str,
    on_text: TextSoFar | None,
    stop: StopSignal | None,
) -> tuple[str, Outcome]:
    mime_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"

    async def fetch() -> Sound:
        return Sound(data, path.name, mime_type)

    try:
        heard = await service.hear(request, Note(digest[:32], 0, "audio", fetch))
    except NotHeard as failed:
        failure = failed.failure
        return "", Failed(request="question", kind=failure.kind, message=failure.message, delivered=True)
    text = heard.transcript.text
    outcome = await service.say(request, text, on_text, stop, heard=heard)
    return f"(heard: “{text}”)", outcome


async def _document(
    service: ConversationService,
    request: Request,
    path: Path,
    data: bytes,
    digest: str,
    question: str,
    on_text: TextSoFar | None,
    stop: StopSignal | None,
) -> tuple[str, Outcome]:
    mime_type = mimetypes.guess_type(path.name)[0] or ""
    try:
        text = await asyncio.to_thread(read_text, path.name, mime_type, data)
    except Unreadable as unreadable:
        raise AttachmentError(str(unreadable)) from None
    whole = FileText(name=path.name, mime_type=mime_type, size=len(data), sha256=digest, text=text)
    try:
        read, budget = await service.fit_file(request.stream, question, whole)
    except FileDoesNotFit as no_room:
        raise AttachmentError(str(no_room)) from None
    shown = f"(file {path.name}: {len(read.text)} characters"
    if read.dropped_chars:
        shown += f"; {read.dropped_chars} more did not fit the prompt budget of {budget} tokens and were cut"
    outcome = await service.say(request, question, on_text, stop, files=(read,))
    return shown + ")", outcome
