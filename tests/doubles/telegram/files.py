"""Files the server knows: identifiers, bytes, download paths, ``PhotoSize`` lists and ``File`` objects.

Every file gets a Telegram-looking ``file_id`` / ``file_unique_id`` and a ``file_path`` in the folder
Telegram uses for its kind (``voice/file_3.oga``, ``photos/file_7.jpg``, ``documents/file_9.pdf``...), served
at ``GET /file/bot<token>/<file_path>``.  A file's bytes are the uploaded or injected ones; a file the fake
never had bytes for (a sticker) serves deterministic filler of its declared size.  ``size`` may declare more
than the bytes held (``size=25_000_000`` without data): such a file is too big for ``getFile``.
"""

from __future__ import annotations

import base64
import itertools
import mimetypes
import struct
from collections import Counter
from typing import Any

import attrs

from tests.doubles import media_samples
from tests.doubles.media_samples import image_size

__all__ = ["MAX_DOWNLOAD_SIZE", "FileStore", "StoredFile", "default_image_size", "image_size", "photo_size"]

MAX_DOWNLOAD_SIZE = 20 * 1024 * 1024
"""Bots download files of up to 20 MB (``getFile`` answers ``file is too big`` above)."""

_PHOTO_STEPS = (90, 320, 800, 1280, 2560)
_DEFAULT_SIZE = (1280, 720)
_FOLDERS = {
    "photo": ("photos", "jpg"),
    "voice": ("voice", "oga"),
    "audio": ("music", "mp3"),
    "document": ("documents", ""),
    "video_note": ("video_notes", "mp4"),
    "video": ("videos", "mp4"),
    "animation": ("animations", "mp4"),
    "sticker": ("stickers", "webp"),
}
TYPE_NAMES = {
    "photo": "Photo",
    "voice": "VoiceNote",
    "audio": "Audio",
    "document": "Document",
    "video_note": "VideoNote",
    "video": "Video",
    "animation": "Animation",
    "sticker": "Sticker",
}
"""tdlib's names of file types, as in ``can't use file of type Photo as VoiceNote``."""


@attrs.frozen
class StoredFile:
    """A file the server knows (uploaded by the bot or sent by a user)."""

    file_id: str
    file_unique_id: str
    kind: str
    size: int
    """The ``file_size`` Telegram reports (may exceed ``len(data)`` when declared)."""
    width: int = 0
    height: int = 0
    data: bytes | None = None
    source: str | None = None
    mime_type: str | None = None
    file_name: str | None = None
    file_path: str = ""

    @property
    def content(self) -> bytes:
        """The bytes a download serves: ``data``, or filler of ``size`` bytes for a file without data."""
        return self.data if self.data is not None else media_samples.filler(self.size, self.file_unique_id)

    def to_file(self) -> dict[str, Any]:
        """The Bot API ``File`` object ``getFile`` returns."""
        found: dict[str, Any] = {"file_id": self.file_id, "file_unique_id": self.file_unique_id}
        if self.size:
            found["file_size"] = self.size
        found["file_path"] = self.file_path
        return found


class FileStore:
    """Issues Telegram-looking file ids, keeps the files' bytes and counts their downloads."""

    def __init__(self) -> None:
        self._counter = itertools.count(1)
        self.files: dict[str, StoredFile] = {}
        self.by_path: dict[str, StoredFile] = {}
        self.downloads: Counter[str] = Counter()
        """file_id -> downloads served."""
        self.unavailable: set[str] = set()
        """file ids ``getFile`` answers ``wrong file_id or the file is temporarily unavailable`` for."""

    def add(
        self,
        kind: str,
        *,
        data: bytes | None = None,
        size: int | None = None,
        width: int = 0,
        height: int = 0,
        mime_type: str | None = None,
        file_name: str | None = None,
        source: str | None = None,
    ) -> StoredFile:
        """Register a new file and return it (``size`` defaults to ``len(data)``)."""
        number = next(self._counter)
        raw = struct.pack(">HQ", len(kind), number) + kind.encode()
        token = base64.urlsafe_b64encode(raw).decode().rstrip("=")
        stored = StoredFile(
            file_id=f"AgACAgIAAxkBAAI{token}",
            file_unique_id=f"AQAD{number:06d}",
            kind=kind,
            size=size if size is not None else len(data or b""),
            width=width,
            height=height,
            data=data,
            source=source,
            mime_type=mime_type,
            file_name=file_name,
            file_path=_file_path(kind, number, file_name, mime_type),
        )
        self.files[stored.file_id] = stored
        self.by_path[stored.file_path] = stored
        return stored

    def get(self, file_id: str) -> StoredFile | None:
        """The file with that id, if the server issued it."""
        return self.files.get(file_id)

    def downloadable(self, stored: StoredFile) -> bool:
        """True if ``getFile`` hands out the file (not too big, not made unavailable)."""
        return stored.size <= MAX_DOWNLOAD_SIZE and stored.file_id not in self.unavailable

    def photo(
        self, width: int, height: int, *, data: bytes | None = None, source: str | None = None
    ) -> list[dict[str, Any]]:
        """A ``PhotoSize`` list (thumbnails first) for an image of ``width`` x ``height``.

        Like Telegram: the sides scale to 90, 320, 800, 1280 and 2560 pixels (never up), one file each.  The
        largest size serves ``data`` when given; the others (and all without ``data``) serve grey JPEGs of
        their own dimensions.
        """
        dimensions: list[tuple[int, int]] = []
        longest = max(width, height, 1)
        for step in _PHOTO_STEPS:
            scale = min(1.0, step / longest)
            scaled = (max(1, round(width * scale)), max(1, round(height * scale)))
            if dimensions and dimensions[-1] == scaled:
                break
            dimensions.append(scaled)
            if scale >= 1.0:
                break
        sizes: list[dict[str, Any]] = []
        for index, (side_x, side_y) in enumerate(dimensions):
            largest = index == len(dimensions) - 1
            blob = (
                data if largest and data is not None else media_samples.jpeg(side_x, side_y, seed=f"p{len(self.files)}")
            )
            mime = f"image/{media_samples.image_format(blob or b'') or 'jpeg'}"
            stored = self.add("photo", data=blob, width=side_x, height=side_y, mime_type=mime, source=source)
            sizes.append(photo_size(stored))
        return sizes


def _file_path(kind: str, number: int, file_name: str | None, mime_type: str | None) -> str:
    folder, extension = _FOLDERS.get(kind, (kind + "s", ""))
    if kind == "document":
        _, dot, suffix = (file_name or "").rpartition(".")
        guessed = mimetypes.guess_extension(mime_type or "") or ""
        extension = suffix if dot and suffix else guessed.lstrip(".")
    return f"{folder}/file_{number}" + (f".{extension}" if extension else "")


def photo_size(stored: StoredFile) -> dict[str, Any]:
    """The Bot API ``PhotoSize`` for a stored image."""
    return {
        "file_id": stored.file_id,
        "file_unique_id": stored.file_unique_id,
        "file_size": stored.size,
        "width": stored.width,
        "height": stored.height,
    }


def default_image_size() -> tuple[int, int]:
    """Dimensions assumed for photos sent by URL or file id."""
    return _DEFAULT_SIZE
