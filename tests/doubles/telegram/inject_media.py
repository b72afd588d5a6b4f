"""Test helpers that make users send files: photos, albums, voice notes, music, video notes, documents.

Every injected file is stored with real bytes (the test's ``data``, or a deterministic sample made by
:mod:`tests.doubles.media_samples`: an Ogg/Opus voice note starting with ``OggS``, an MP3, an MP4, grey
JPEGs, a PDF...) so the bot can ``getFile`` and download it.  ``size`` declares the ``file_size`` without
changing the bytes served: ``size=25_000_000`` (and no ``data``) makes a file too big for bots to download.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

from tests.doubles import media_samples

from .files import MAX_DOWNLOAD_SIZE, StoredFile
from .inject import UpdateInjector
from .models import Chat, StoredMessage, User

_SNIFFED_MIME = {"ogg": "audio/ogg", "mp3": "audio/mpeg", "mp4": "audio/mp4", "wav": "audio/wav"}


class MediaInjector(UpdateInjector):
    """Mixin of :class:`FakeTelegram`: the "a user sends a file" helpers."""

    _album_ids = itertools.count(13_579_246_801_357_901)

    def send_sticker(
        self, user: User, emoji: str = "👍", chat: Chat | None = None, *, thread: int | None = None
    ) -> StoredMessage:
        """A static 512x512 sticker."""
        stored = self.state.files.add("sticker", size=24_000, width=512, height=512, mime_type="image/webp")
        sticker = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": emoji,
            "set_name": "FakeStickers",
            "file_size": stored.size,
        }
        return self.send_content(user, {"sticker": sticker}, chat, thread=thread)

    def send_photo(
        self,
        user: User,
        caption: str | None = None,
        chat: Chat | None = None,
        *,
        width: int = 1280,
        height: int = 960,
        data: bytes | None = None,
        media_group_id: str | None = None,
        thread: int | None = None,
    ) -> StoredMessage:
        """A photo: ``PhotoSize`` entries of 90/320/800/1280/2560 px sides (as far as the image goes), each a
        downloadable file of its own.  The largest serves ``data`` (whose own dimensions, when it is an image,
        replace ``width`` / ``height``); the others, and all of them without ``data``, grey JPEGs of their
        size.  Photos of one album share a ``media_group_id`` (see :meth:`send_album`)."""
        if data is not None:
            width, height = media_samples.image_size(data) or (width, height)
        sizes = self.state.files.photo(width, height, data=data)
        for size in sizes:
            self.state.photo_sets[size["file_id"]] = sizes
        content: dict[str, Any] = {"photo": sizes}
        if media_group_id is not None:
            content["media_group_id"] = media_group_id
        return self.send_content(user, content, chat, caption=caption, thread=thread)

    def send_album(
        self,
        user: User,
        photos: int | Sequence[bytes] = 2,
        caption: str | None = None,
        chat: Chat | None = None,
        *,
        media_group_id: str | None = None,
        thread: int | None = None,
    ) -> list[StoredMessage]:
        """An album: ``photos`` (a count, or the images' bytes) as separate messages and updates sharing one
        ``media_group_id``; the caption, as clients send it, is on the first only."""
        group = media_group_id or str(next(self._album_ids))
        images: list[bytes | None] = [None] * photos if isinstance(photos, int) else list(photos)
        return [
            self.send_photo(
                user, caption if index == 0 else None, chat, data=image, media_group_id=group, thread=thread
            )
            for index, image in enumerate(images)
        ]

    def send_voice(
        self,
        user: User,
        duration: int = 3,
        chat: Chat | None = None,
        *,
        data: bytes | None = None,
        size: int | None = None,
        mime_type: str | None = None,
        caption: str | None = None,
        thread: int | None = None,
    ) -> StoredMessage:
        """A voice note: ``data``, or an Ogg/Opus stream of ``duration`` seconds (about 4 kB a second)."""
        stored = self._new_file(
            "voice", data, size, lambda: media_samples.ogg_opus(duration, seed=self._seed()), mime_type, "audio/ogg"
        )
        voice = {"duration": duration, **_file_fields(stored, with_name=False)}
        return self.send_content(user, {"voice": voice}, chat, caption=caption, thread=thread)

    def send_audio(
        self,
        user: User,
        duration: int = 5,
        chat: Chat | None = None,
        *,
        data: bytes | None = None,
        size: int | None = None,
        title: str | None = "Sample track",
        performer: str | None = None,
        file_name: str = "track.mp3",
        mime_type: str = "audio/mpeg",
        caption: str | None = None,
        thread: int | None = None,
    ) -> StoredMessage:
        """A music file (``audio``): ``data``, or an MP3 of ``duration`` seconds."""
        stored = self._new_file(
            "audio", data, size, lambda: media_samples.mp3(duration, seed=self._seed()), mime_type, mime_type, file_name
        )
        audio: dict[str, Any] = {"duration": duration}
        audio.update({key: value for key, value in (("performer", performer), ("title", title)) if value})
        audio.update(_file_fields(stored))
        return self.send_content(user, {"audio": audio}, chat, caption=caption, thread=thread)

    def send_video_note(
        self,
        user: User,
        duration: int = 5,
        chat: Chat | None = None,
        *,
        length: int = 240,
        data: bytes | None = None,
        size: int | None = None,
        thread: int | None = None,
    ) -> StoredMessage:
        """A round video message (``video_note``, ``length`` px square): ``data``, or an MP4 of ``duration``."""
        stored = self._new_file(
            "video_note", data, size, lambda: media_samples.mp4(duration, seed=self._seed()), "video/mp4", "video/mp4"
        )
        note = {"duration": duration, "length": length, **_file_fields(stored, with_name=False, with_mime=False)}
        return self.send_content(user, {"video_note": note}, chat, thread=thread)

    def send_document(
        self,
        user: User,
        file_name: str = "report.pdf",
        mime_type: str = "application/pdf",
        caption: str | None = None,
        chat: Chat | None = None,
        *,
        data: bytes | None = None,
        size: int | None = None,
        media_group_id: str | None = None,
        thread: int | None = None,
    ) -> StoredMessage:
        """A document: ``data``, or a sample fitting ``mime_type`` (a PDF, text, JPEG, Ogg, MP3 or filler)."""
        stored = self._new_file(
            "document",
            data,
            size,
            lambda: sample_document(file_name, mime_type, self._seed()),
            mime_type,
            mime_type,
            file_name,
        )
        content: dict[str, Any] = {"document": _file_fields(stored)}
        if media_group_id is not None:
            content["media_group_id"] = media_group_id
        return self.send_content(user, content, chat, caption=caption, thread=thread)

    # ------------------------------------------------------------------ helpers
    def _seed(self) -> str:
        return f"file-{len(self.state.files.files) + 1}"

    def _new_file(
        self,
        kind: str,
        data: bytes | None,
        size: int | None,
        make: Callable[[], bytes],
        mime_type: str | None,
        default_mime: str,
        file_name: str | None = None,
    ) -> StoredFile:
        if data is None and (size is None or size <= MAX_DOWNLOAD_SIZE):
            data = make()
        sniffed = _SNIFFED_MIME.get(media_samples.audio_format(data or b"") or "") if kind == "voice" else None
        mime = mime_type or sniffed or default_mime
        return self.state.files.add(kind, data=data, size=size, mime_type=mime, file_name=file_name)


def _file_fields(stored: StoredFile, *, with_name: bool = True, with_mime: bool = True) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if with_name and stored.file_name:
        fields["file_name"] = stored.file_name
    if with_mime and stored.mime_type:
        fields["mime_type"] = stored.mime_type
    fields.update({"file_id": stored.file_id, "file_unique_id": stored.file_unique_id, "file_size": stored.size})
    return fields


def sample_document(file_name: str, mime_type: str, seed: str = "") -> bytes:
    """Plausible bytes for a document of ``mime_type``."""
    if mime_type == "application/pdf":
        return media_samples.pdf(f"{file_name} ({seed})")
    if mime_type.startswith("text/") or mime_type in {"application/json", "application/xml"}:
        return f"Contents of {file_name} ({seed})\n".encode()
    if mime_type.startswith("image/"):
        return media_samples.jpeg(640, 480, seed=seed)
    if mime_type in {"audio/ogg", "audio/opus"}:
        return media_samples.ogg_opus(3, seed=seed)
    if mime_type == "audio/mpeg":
        return media_samples.mp3(3, seed=seed)
    return media_samples.filler(48_000, seed)
