"""File identifiers, image sniffing and ``PhotoSize`` lists."""

from __future__ import annotations

import base64
import itertools
import struct
from typing import Any

import attrs

_PHOTO_STEPS = (90, 320, 800, 1280, 2560)
_DEFAULT_SIZE = (1280, 720)


@attrs.frozen
class StoredFile:
    """A file the server knows (uploaded by the bot or sent by a user)."""

    file_id: str
    file_unique_id: str
    kind: str
    size: int
    width: int = 0
    height: int = 0
    data: bytes | None = None
    source: str | None = None


class FileStore:
    """Issues Telegram-looking file ids and remembers them."""

    def __init__(self) -> None:
        self._counter = itertools.count(1)
        self.files: dict[str, StoredFile] = {}

    def add(self, kind: str, *, size: int = 0, width: int = 0, height: int = 0, **extra: Any) -> StoredFile:
        """Register a new file and return it."""
        number = next(self._counter)
        raw = struct.pack(">HQ", len(kind), number) + kind.encode()
        token = base64.urlsafe_b64encode(raw).decode().rstrip("=")
        stored = StoredFile(
            file_id=f"AgACAgIAAxkBAAI{token}",
            file_unique_id=f"AQAD{number:06d}",
            kind=kind,
            size=size,
            width=width,
            height=height,
            **extra,
        )
        self.files[stored.file_id] = stored
        return stored

    def get(self, file_id: str) -> StoredFile | None:
        """The file with that id, if the server issued it."""
        return self.files.get(file_id)

    def photo(self, width: int, height: int, size: int, **extra: Any) -> list[dict[str, Any]]:
        """A ``PhotoSize`` list (thumbnails first) for an image of ``width`` x ``height``."""
        sizes: list[dict[str, Any]] = []
        longest = max(width, height, 1)
        for step in _PHOTO_STEPS:
            scale = min(1.0, step / longest)
            scaled = (max(1, round(width * scale)), max(1, round(height * scale)))
            if sizes and (sizes[-1]["width"], sizes[-1]["height"]) == scaled:
                break
            approx = max(1, int(size * scale * scale)) if size else scaled[0] * scaled[1] // 10
            stored = self.add("photo", size=approx, width=scaled[0], height=scaled[1], **extra)
            sizes.append(photo_size(stored))
            if scale >= 1.0:
                break
        return sizes


def photo_size(stored: StoredFile) -> dict[str, Any]:
    """The Bot API ``PhotoSize`` for a stored image."""
    return {
        "file_id": stored.file_id,
        "file_unique_id": stored.file_unique_id,
        "file_size": stored.size,
        "width": stored.width,
        "height": stored.height,
    }


def image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height of a PNG, GIF, JPEG, WebP or BMP image; None if not an image."""
    for sniff in (_png_size, _gif_size, _jpeg_size, _webp_size, _bmp_size):
        size = sniff(data)
        if size is not None:
            return size
    return None


def default_image_size() -> tuple[int, int]:
    """Dimensions assumed for photos sent by URL or file id."""
    return _DEFAULT_SIZE


def _png_size(data: bytes) -> tuple[int, int] | None:
    if data[:8] != b"\x89PNG\r\n\x1a\n" or len(data) < 24:
        return None
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def _gif_size(data: bytes) -> tuple[int, int] | None:
    if data[:6] not in {b"GIF87a", b"GIF89a"} or len(data) < 10:
        return None
    width, height = struct.unpack("<HH", data[6:10])
    return int(width), int(height)


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    if data[:2] != b"\xff\xd8":
        return None
    pos = 2
    while pos + 9 < len(data):
        if data[pos] != 0xFF:
            pos += 1
            continue
        marker = data[pos + 1]
        if marker in {0xD8, 0x01} or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        length = struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in {0xC4, 0xC8, 0xCC}:
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return int(width), int(height)
        pos += 2 + length
    return (1, 1) if len(data) > 2 else None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP" or len(data) < 30:
        return None
    chunk = data[12:16]
    if chunk == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    if chunk == b"VP8L":
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 ":
        width, height = struct.unpack("<HH", data[26:30])
        return int(width) & 0x3FFF, int(height) & 0x3FFF
    return None


def _bmp_size(data: bytes) -> tuple[int, int] | None:
    if data[:2] != b"BM" or len(data) < 26:
        return None
    width, height = struct.unpack("<ii", data[18:26])
    return abs(int(width)), abs(int(height))
