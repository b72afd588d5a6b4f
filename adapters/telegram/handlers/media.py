"""Voice, audio and video notes, photos and documents: each becomes the user's message, recorded as events.

- A note is transcribed once (service.hear) and its transcript is said in the chat's mode; the user sees it quoted.
- A photo is sent to the model with its caption as the question (the largest size within CONVO_VISION_MAX_SIDE), an
  album's photos together (`albums`);
  the log keeps its file id, size and hash, never its bytes. With vision off, or for a model whose server refused
  pictures, the bot says so and records nothing.
- A text file or a PDF is read, cut to what the chat's prompt budget leaves (saying so), and put to the model ahead
  of its caption. Other files get a reply naming what the bot reads.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import deque

import attrs
from aiogram import Bot, F, Router
from aiogram.types import Audio, Message, PhotoSize, Update, VideoNote, Voice
from aiogram.utils.chat_action import ChatActionSender

from adapters.documents import MAX_TEXT_BYTES, Unreadable, read_text
from adapters.telegram import replies
from adapters.telegram.albums import album_photos
from adapters.telegram.delivery import cut, send_plain
from adapters.telegram.files import TelegramFiles, largest_within, too_big
from adapters.telegram.handlers.common import answer_live, said
from adapters.telegram.i18n import translated
from adapters.telegram.identity import thread_of_message
from adapters.telegram.intake import Preview
from adapters.telegram.live import INDICATOR_AFTER, LiveAnswers
from adapters.telegram.speech import Speech
from domain.events import FileText, Photo, SoundKind
from domain.ports import FileGone, Sound
from service.conversations import ConversationService, Request
from service.documents import FileDoesNotFit
from service.hearing import Note, NotHeard

router = Router(name=__name__)

PICTURE_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "image/gif"})
"""Documents that are pictures the chat model takes."""
_DECLINED_ALBUMS: deque[str] = deque(maxlen=256)
"""Albums whose first photo was declined (vision off, or a model that refuses pictures): the rest are not."""
TRANSCRIPT_SHOWN = 300
"""Most characters of a transcript quoted back to the user."""


@attrs.frozen
class MediaOptions:
    """How pictures are sent to the model."""

    max_side: int = 1536
    """The longest side, in pixels, of the photo size sent (CONVO_VISION_MAX_SIDE)."""


@router.message(F.voice | F.audio | F.video_note)
async def note(
    message: Message,
    event_update: Update,
    request: Request,
    bot: Bot,
    service: ConversationService,
    live: LiveAnswers,
    files: TelegramFiles,
    speech: Speech,
    preview: Preview | None = None,
) -> None:
    """Transcribe (once), show the transcript, then answer it as if typed."""
    kind, sound = _sound_of(message)
    if too_big(sound.file_size):
        await _reply(bot, message, "too_big", translated(replies.TOO_BIG))
        return
    heard_note = Note(sound.file_unique_id, sound.duration, kind, lambda: _download_sound(files, kind, sound))
    listening = ChatActionSender.typing(
        chat_id=message.chat.id, bot=bot, initial_sleep=INDICATOR_AFTER, message_thread_id=thread_of_message(message)
    )
    try:
        async with listening:
            heard = await service.hear(request, heard_note)
    except NotHeard as failed:
        await _reply(bot, message, f"not_heard_{failed.failure.kind}", _not_heard(failed))
        return
    text = heard.transcript.text
    if heard.causation_id != request.causation_id:
        quoted = translated(replies.TRANSCRIPT, text=cut(text, TRANSCRIPT_SHOWN))
        await send_plain(bot, message.chat.id, quoted, reply_to=message.message_id, thread=thread_of_message(message))
    recorded_here = heard.causation_id in (None, request.causation_id)
    mode = service.last_known_mode(request.stream) or await service.mode(request.stream)
    outcome = await answer_live(
        message,
        event_update,
        request,
        bot,
        service,
        live,
        lambda on_text, stop: service.say(request, text, on_text, stop, heard=heard if recorded_here else None),
        preview,
        drawing=mode == "image",
    )
    await speech.after(bot, message, request, service, outcome)


@router.message(F.photo)
async def photo(
    message: Message,
    event_update: Update,
    request: Request,
    bot: Bot,
    service: ConversationService,
    live: LiveAnswers,
    files: TelegramFiles,
    speech: Speech,
    media: MediaOptions,
    preview: Preview | None = None,
    addressed_text: str | None = None,
) -> None:
    """A question about a picture (an album's pictures): its caption (without the bot's @mention), or a default
    question."""
    group = message.media_group_id
    if group is not None and group in _DECLINED_ALBUMS:
        said("album_part_declined")  # the album's first photo was declined, and said so
        return
    sizes = [largest_within(message.photo or [], media.max_side)]
    caption = _caption(message, addressed_text)
    if group is not None:
        if await service.asked_with_photo(request.stream, sizes[0].file_unique_id):
            said("album_part_asked")  # the album's first photo asked about this one too
            return
        inbox = service.store.inbox(str(bot.id))
        others, their_caption = await album_photos(inbox, request.stream, group, event_update.update_id)
        sizes += [largest_within(part, media.max_side) for part in others]
        caption = caption or their_caption
    pictures = Pictures(message, event_update, request, bot, service, live, files, speech, preview)
    await pictures.ask(sizes, caption)


@attrs.frozen
class Pictures:
    """What asking about pictures needs of the update being handled."""

    message: Message
    update: Update
    request: Request
    bot: Bot
    service: ConversationService
    live: LiveAnswers
    files: TelegramFiles
    speech: Speech
    preview: Preview | None

    async def ask(self, sizes: list[PhotoSize], caption: str) -> None:
        """Fetch the pictures and put the question about them, unless the chat's model is not sent pictures."""
        message, request, bot, service = self.message, self.request, self.bot, self.service
        refusal = await _vision_refusal(service, request.stream)
        if refusal is not None:
            if message.media_group_id is not None:
                _DECLINED_ALBUMS.append(message.media_group_id)
            await _reply(bot, message, "vision_declined", refusal)
            return
        try:
            seen = tuple([await _photo(self.files, service, size) for size in sizes])
        except FileGone:
            await _reply(bot, message, "file_gone", translated(replies.FILE_GONE))
            return
        question = caption or translated(replies.PHOTO_QUESTION)
        outcome = await answer_live(
            message,
            self.update,
            request,
            bot,
            service,
            self.live,
            lambda on_text, stop: service.say(request, question, on_text, stop, photos=seen),
            self.preview,
        )
        await self.speech.after(bot, message, request, service, outcome)


@router.message(F.document)
async def document(
    message: Message,
    event_update: Update,
    request: Request,
    bot: Bot,
    service: ConversationService,
    live: LiveAnswers,
    files: TelegramFiles,
    speech: Speech,
    preview: Preview | None = None,
    addressed_text: str | None = None,
) -> None:
    """A question about a text file or a PDF: its caption (without the bot's @mention), or a request to summarise
    it."""
    sent = message.document
    assert sent is not None
    name = sent.file_name or "file"
    if too_big(sent.file_size):
        await _reply(bot, message, "too_big", translated(replies.TOO_BIG))
        return
    if (sent.mime_type or "") in PICTURE_TYPES:  # a picture sent as a file (uncompressed): a photo all the same
        size = PhotoSize(file_id=sent.file_id, file_unique_id=sent.file_unique_id, width=0, height=0)
        pictures = Pictures(message, event_update, request, bot, service, live, files, speech, preview)
        await pictures.ask([size], _caption(message, addressed_text))
        return
    try:
        data = await files.read(sent.file_id)
        text = await asyncio.to_thread(read_text, name, sent.mime_type, data)
    except FileGone:
        await _reply(bot, message, "file_gone", translated(replies.FILE_GONE))
        return
    except Unreadable as unreadable:
        await _reply(bot, message, f"file_{unreadable.reason}", _unreadable(unreadable))
        return
    question = _caption(message, addressed_text) or translated(replies.FILE_QUESTION)
    whole = FileText(
        name=name, mime_type=sent.mime_type or "", size=len(data), sha256=hashlib.sha256(data).hexdigest(), text=text
    )
    try:
        read, budget = await service.fit_file(request.stream, question, whole)
    except FileDoesNotFit as no_room:
        await _reply(bot, message, "file_no_room", translated(replies.FILE_NO_ROOM, budget=no_room.budget))
        return
    if read.dropped_chars:
        percent = max(1, len(read.text) * 100 // len(text))
        note_cut = translated(replies.FILE_CUT, percent=percent, name=name, budget=budget)
        await send_plain(bot, message.chat.id, note_cut, reply_to=message.message_id, thread=thread_of_message(message))
    outcome = await answer_live(
        message,
        event_update,
        request,
        bot,
        service,
        live,
        lambda on_text, stop: service.say(request, question, on_text, stop, files=(read,)),
        preview,
    )
    await speech.after(bot, message, request, service, outcome)


async def _photo(files: TelegramFiles, service: ConversationService, size: PhotoSize) -> Photo:
    """One photo size fetched, named for the log, its bytes kept for the model. Raises FileGone."""
    data = await files.read(size.file_id)
    seen = Photo(
        file_id=size.file_id,
        file_unique_id=size.file_unique_id,
        width=size.width,
        height=size.height,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )
    service.pictures.keep(seen, data)
    return seen


def _caption(message: Message, addressed_text: str | None) -> str:
    """The caption as the question: in a group, without the @mention that addressed the bot."""
    return (addressed_text if addressed_text is not None else message.caption or "").strip()


def _sound_of(message: Message) -> tuple[SoundKind, Voice | Audio | VideoNote]:
    if message.voice is not None:
        return "voice", message.voice
    if message.audio is not None:
        return "audio", message.audio
    assert message.video_note is not None
    return "video_note", message.video_note


_FORMATS = {
    "voice": ("voice.oga", "audio/ogg"),
    "audio": ("audio.mp3", "audio/mpeg"),
    "video_note": ("note.mp4", "video/mp4"),
}


async def _download_sound(files: TelegramFiles, kind: SoundKind, sound: Voice | Audio | VideoNote) -> Sound:
    """The note's bytes, named as transcription servers recognise them."""
    filename, mime_type = _FORMATS[kind]
    if isinstance(sound, Audio) and sound.file_name:
        filename = sound.file_name
    reported = getattr(sound, "mime_type", None)
    return Sound(await files.read(sound.file_id), filename, reported or mime_type)


def _not_heard(failed: NotHeard) -> str:
    failure = failed.failure
    if failure.kind == "unsupported":
        return translated(replies.NO_TRANSCRIPTION)
    if failure.kind == "over_budget":
        return replies.failure("over_budget", detail=failure.message)
    if "no words" in failure.message:
        return translated(replies.HEARD_NOTHING)
    return translated(replies.NOT_HEARD)


async def _vision_refusal(service: ConversationService, stream: str) -> str | None:
    """Why pictures cannot be asked about in this chat now, or None."""
    vision = service.vision
    if vision.mode == "off":
        return translated(replies.VISION_OFF)
    state = service.last_known_settings(stream) or await service.settings(stream)
    model = state.model or service.chat_model
    return None if vision.sees(model) else translated(replies.NO_VISION, model=model)


def _unreadable(unreadable: Unreadable) -> str:
    match unreadable.reason:
        case "too_much" if unreadable.unit == "pages":
            return translated(replies.FILE_TOO_MUCH, limit=f"{unreadable.limit} pages")
        case "too_much":
            return translated(replies.FILE_TOO_MUCH, limit=f"{MAX_TEXT_BYTES // 1_000_000} MB")
        case "no_text":
            return translated(replies.FILE_NO_TEXT)
        case "encoding":
            return translated(replies.FILE_ENCODING)
        case "broken":
            return translated(replies.FILE_BROKEN)
        case _:
            return translated(replies.NOT_READABLE)


async def _reply(bot: Bot, message: Message, outcome: str, text: str) -> None:
    said(outcome)
    await send_plain(bot, message.chat.id, text, reply_to=message.message_id, thread=thread_of_message(message))
