"""Sending files: ``sendVoice``, ``sendAudio`` and ``sendDocument``.

Each takes its file as a multipart upload (field ``voice`` / ``audio`` / ``document``, or ``attach://<part>``),
a ``file_id`` the server issued (of the same type: else ``can't use file of type Photo as VoiceNote``) or an
``http(s)`` URL (``FakeTelegram.break_url`` makes one fail), plus ``caption`` / ``parse_mode`` /
``caption_entities``, ``reply_parameters`` or ``reply_to_message_id``, ``message_thread_id`` and
``reply_markup``; checks run in ``sendPhoto``'s order.  The sent message is stored as the bot's, with the
upload (bytes, file name, content type) in ``StoredMessage.upload`` and the bytes downloadable by the
``file_id`` in the answer.

``voice``: ``duration`` is the parameter's (0 when absent: the server does not measure the audio);
``mime_type`` comes from the bytes (Ogg ``audio/ogg``, MP3 ``audio/mpeg``, MP4/M4A ``audio/mp4``), else the
upload's content type.  Telegram clients play a voice note only for OGG/Opus, MP3 and M4A; the fake keeps any
bytes.  ``audio`` adds ``performer``, ``title`` and ``file_name``; ``document`` keeps the upload's file name
and a MIME type guessed from it.  An upload over ``MAX_UPLOAD_SIZE`` (50 MB, what a bot may send) is refused as
the real server refuses it: ``413 Request Entity Too Large``.
"""

from __future__ import annotations

import mimetypes
import re
from typing import Any

from tests.doubles import media_samples

from .api_messages import final_caption, formatted_input, reply_target
from .errors import ApiError, bad_request
from .files import TYPE_NAMES, StoredFile
from .markup import parse_reply_markup
from .models import UploadedFile
from .params import Params
from .registry import api_method
from .state import BotState

MAX_UPLOAD_SIZE = 50 * 1024 * 1024
"""Bytes of the largest file a bot may upload."""
_SNIFFED_AUDIO = {"ogg": "audio/ogg", "mp3": "audio/mpeg", "mp4": "audio/mp4"}
_DEFAULT_NAMES = {"voice": "voice.oga", "audio": "audio.mp3", "document": "document"}


@api_method("sendVoice")
async def send_voice(state: BotState, params: Params) -> Any:
    """Send an audio file as a voice note."""
    return await _send_file(state, params, "voice")


@api_method("sendAudio")
async def send_audio(state: BotState, params: Params) -> Any:
    """Send an audio file as music."""
    return await _send_file(state, params, "audio")


@api_method("sendDocument")
async def send_document(state: BotState, params: Params) -> Any:
    """Send a general file."""
    return await _send_file(state, params, "document")


async def _send_file(state: BotState, params: Params, kind: str) -> Any:
    upload = params.file(kind)
    reference = params.text(kind).strip()
    if upload is None and (not reference or reference.startswith("attach://")):
        raise bad_request(f"there is no {kind} in the request")
    formatted = formatted_input(params, "caption", "caption_entities")
    markup = parse_reply_markup(params)
    chat = state.resolve_chat(params)
    topic = state.requested_topic(chat, params)
    state.check_can_send(chat)
    target = reply_target(state, chat, params)
    caption = final_caption(state, formatted)
    stored = _uploaded(state, kind, upload) if upload is not None else _referenced(state, kind, reference)
    state.flood.check(chat)
    message = state.new_bot_message(
        chat,
        caption=caption.text or None,
        caption_entities=caption.entities,
        content={kind: media_object(stored, params)},
        reply_markup=markup,
        upload=upload,
        **state.placement(chat, topic, target, explicit=topic is not None),
    )
    state.notify()
    return message.to_api()


def _uploaded(state: BotState, kind: str, upload: UploadedFile) -> StoredFile:
    if not upload.data:
        raise bad_request("file must be non-empty")
    if upload.size > MAX_UPLOAD_SIZE:
        raise ApiError(413, "Request Entity Too Large")
    name = upload.filename or _DEFAULT_NAMES[kind]
    return state.files.add(kind, data=upload.data, mime_type=_mime_type(kind, upload, name), file_name=name)


def _mime_type(kind: str, upload: UploadedFile, name: str) -> str:
    sniffed = _SNIFFED_AUDIO.get(media_samples.audio_format(upload.data) or "")
    if kind != "document" and sniffed:
        return sniffed
    declared = upload.content_type if upload.content_type not in (None, "application/octet-stream") else None
    return declared or mimetypes.guess_type(name)[0] or "application/octet-stream"


def _referenced(state: BotState, kind: str, reference: str) -> StoredFile:
    stored = state.files.get(reference)
    if stored is not None:
        if stored.kind != kind:
            raise bad_request(f"can't use file of type {TYPE_NAMES.get(stored.kind, 'Document')} as {TYPE_NAMES[kind]}")
        return stored
    if not re.match(r"^https?://\S+$", reference, re.IGNORECASE):
        raise bad_request("wrong file identifier/HTTP URL specified")
    if reference in state.broken_urls:
        raise bad_request("failed to get HTTP URL content")
    name = reference.rstrip("/").rpartition("/")[2] or _DEFAULT_NAMES[kind]
    data = media_samples.mp3(3, seed=reference) if kind == "audio" else media_samples.ogg_opus(3, seed=reference)
    if kind == "document":
        data = media_samples.filler(48_000, reference)
    mime = mimetypes.guess_type(name)[0] or ("audio/ogg" if kind == "voice" else "application/octet-stream")
    return state.files.add(kind, data=data, mime_type=mime, file_name=name, source=reference)


def media_object(stored: StoredFile, params: Params) -> dict[str, Any]:
    """The ``Voice`` / ``Audio`` / ``Document`` object of a sent file."""
    found: dict[str, Any] = {}
    if stored.kind in {"voice", "audio"}:
        found["duration"] = params.integer("duration", low=0)
    if stored.kind == "audio":
        found.update({key: params.text(key) for key in ("performer", "title") if params.has(key)})
    if stored.kind in {"audio", "document"} and stored.file_name:
        found["file_name"] = stored.file_name
    if stored.mime_type:
        found["mime_type"] = stored.mime_type
    found.update({"file_id": stored.file_id, "file_unique_id": stored.file_unique_id, "file_size": stored.size})
    return found
