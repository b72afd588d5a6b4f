"""Pictures in prompts: which models are sent them, and their bytes, fetched again only when needed.

The log names each picture (Telegram's file id and a SHA-256 of its bytes), never holds it. Just before a model is
asked, the pictures its prompt keeps are filled in: from a small in-process cache (the handler that received a
photo leaves its bytes there), else fetched again through the file source. A picture that cannot be fetched, or
no longer hashes the same, leaves its message with its text only, and the gap is logged.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence
from typing import Literal, TypeAlias

import attrs
import structlog

from domain.events import Photo
from domain.ports import FileGone, FileSource
from domain.prompt import ImagePart, Message

log = structlog.get_logger(__name__)

VisionMode: TypeAlias = Literal["auto", "on", "off"]


class Vision:
    """Whether a model is sent pictures: `on` always, `off` never, `auto` until its server refuses them once."""

    def __init__(self, mode: VisionMode = "auto", history: int = 1) -> None:
        self.mode: VisionMode = mode
        self.history = history
        """How many of the newest turns with pictures send them."""
        self._blind: set[str] = set()

    def sees(self, model: str) -> bool:
        """Whether pictures are sent to this model."""
        return self.mode == "on" or (self.mode == "auto" and model not in self._blind)

    def history_for(self, model: str) -> int:
        """The prompt policy's `vision_history` for this model (0 for a model not sent pictures)."""
        return self.history if self.sees(model) else 0

    def refused(self, model: str) -> None:
        """The model's server refused a picture: in `auto`, it is sent none again in this process."""
        if self.mode == "auto" and model not in self._blind:
            self._blind.add(model)
            log.warning("vision_unsupported", model=model, hint="set CONVO_VISION=off to stop trying")


class Pictures:
    """The bytes of the pictures prompts send, kept for a while and fetched again when gone from memory."""

    def __init__(self, source: FileSource | None = None, keep_bytes: int = 32 * 1024 * 1024) -> None:
        self._source = source
        self._keep_bytes = keep_bytes
        self._kept: OrderedDict[str, bytes] = OrderedDict()

    def attach(self, source: FileSource) -> None:
        """Fetch pictures no longer in memory from `source` (the front end, once it is built)."""
        self._source = source

    def keep(self, photo: Photo, data: bytes) -> None:
        """Hold a picture just received, so asking the model about it does not fetch it again."""
        self._kept[photo.sha256] = data
        self._kept.move_to_end(photo.sha256)
        while sum(len(kept) for kept in self._kept.values()) > self._keep_bytes and len(self._kept) > 1:
            self._kept.popitem(last=False)

    async def filled(self, prompt: Sequence[Message]) -> tuple[Message, ...]:
        """The prompt with every picture's bytes in place; a picture that cannot be had is left out."""
        return tuple([await self._filled(message) if message.images else message for message in prompt])

    async def _filled(self, message: Message) -> Message:
        parts = [await self._part(image.photo) for image in message.images]
        return attrs.evolve(message, images=tuple(part for part in parts if part is not None))

    async def _part(self, photo: Photo) -> ImagePart | None:
        data = self._kept.get(photo.sha256)
        if data is None:
            data = await self._fetch(photo)
        return None if data is None else ImagePart(photo, data)

    async def _fetch(self, photo: Photo) -> bytes | None:
        if self._source is None:
            log.warning("photo_gone", file_unique_id=photo.file_unique_id, reason="no file source")
            return None
        try:
            data = await self._source.read(photo.file_id)
        except FileGone as gone:
            log.warning("photo_gone", file_unique_id=photo.file_unique_id, reason=str(gone))
            return None
        if hashlib.sha256(data).hexdigest() != photo.sha256:
            log.warning("photo_gone", file_unique_id=photo.file_unique_id, reason="the file's bytes changed")
            return None
        self.keep(photo, data)
        return data
