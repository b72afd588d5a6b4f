"""Files users send, read through the Bot API's getFile, which serves bots files of at most 20 MB."""

from __future__ import annotations

import io
from collections.abc import Sequence

import aiohttp
from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramNetworkError
from aiogram.types import PhotoSize

from domain.ports import FileGone

DOWNLOAD_LIMIT = 20 * 1024 * 1024
"""The largest file the Bot API lets a bot download."""


class TelegramFiles:
    """A FileSource over one bot's getFile."""

    def __init__(self, bot: Bot, timeout: int = 60) -> None:
        self._bot = bot
        self._timeout = timeout

    async def read(self, file_id: str) -> bytes:
        """The file's bytes. Raises FileGone when Telegram no longer serves it (or cannot be reached)."""
        try:
            file = await self._bot.get_file(file_id)
            if not file.file_path:
                raise FileGone("Telegram gave no path for the file")
            buffer = io.BytesIO()
            await self._bot.download_file(file.file_path, buffer, timeout=self._timeout)
        except (TelegramAPIError, TelegramNetworkError, aiohttp.ClientError, TimeoutError) as error:
            raise FileGone(getattr(error, "message", None) or type(error).__name__) from None
        return buffer.getvalue()


def too_big(size: int | None) -> bool:
    """Whether a file is over what a bot may download (a size Telegram did not report is tried)."""
    return size is not None and size > DOWNLOAD_LIMIT


def largest_within(sizes: Sequence[PhotoSize], max_side: int) -> PhotoSize:
    """The largest of a photo's sizes whose longer side is at most `max_side`, else the smallest one."""
    within = [size for size in sizes if max(size.width, size.height) <= max_side]
    if within:
        return max(within, key=lambda size: size.width * size.height)
    return min(sizes, key=lambda size: size.width * size.height)
