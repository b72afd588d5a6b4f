"""Albums: the photos of one `media_group_id` arrive as separate updates, and become one question.

Telegram hands an album's photos over together, and the intake admits every update to the inbox before any is
handled, so when the first photo's turn comes the others are already in the inbox (it waits up to ALBUM_WAIT for
stragglers). The first photo asks the question with all of them; each later photo, when its turn comes, finds its
picture in that question and asks nothing.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from aiogram.types import PhotoSize

from domain.ports import Inbox

ALBUM_WAIT = 1.0
"""Most seconds the first photo of an album waits for the rest to reach the inbox."""
QUIET = 0.3
"""Seconds with no new photo after which the album is taken as complete."""


async def album_photos(inbox: Inbox, chat: str, group: str, own_update: int) -> tuple[list[list[PhotoSize]], str]:
    """The photo sizes of the album's other photos (in the order they were sent) and the first caption among them."""
    deadline = time.monotonic() + ALBUM_WAIT
    found: dict[int, dict[str, Any]] = {}
    quiet_since = time.monotonic()
    while True:
        for entry in await inbox.unfinished(chat):
            message = _message(entry.payload)
            theirs = entry.update_id != own_update and entry.update_id not in found
            if theirs and message.get("media_group_id") == group and message.get("photo"):
                found[entry.update_id] = message
                quiet_since = time.monotonic()
        now = time.monotonic()
        if now >= deadline or now - quiet_since >= QUIET:
            break
        await asyncio.sleep(0.1)
    ordered = sorted(found.values(), key=lambda message: int(message.get("message_id", 0)))
    sizes = [[PhotoSize.model_validate(size) for size in message["photo"]] for message in ordered]
    caption = next((str(message["caption"]) for message in ordered if message.get("caption")), "")
    return sizes, caption


def _message(payload: str) -> dict[str, Any]:
    try:
        update = json.loads(payload)
    except ValueError:
        return {}
    message = update.get("message") if isinstance(update, dict) else None
    return message if isinstance(message, dict) else {}
