"""The answers being generated in this process, one per chat at most, so that Stop and /cancel can reach them.

A Stop press (`stopped_message_generation`) or a /cancel must act on the answer in flight at once, so the intake
hands these updates to their handler without waiting for the chat's turn (`interrupts`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeAlias

import attrs
from aiogram.types import Update

Place: TypeAlias = tuple[int, int | None]
"""A chat id and its forum topic (None outside topics): where an answer is written."""


@attrs.frozen
class Generation:
    """An answer being generated."""

    place: Place
    """The chat it is for, and its forum topic (None outside topics)."""
    draft_id: int
    """Its draft id (the one a Stop press names)."""
    asker: int
    """The user who asked (who, with the chat's admins, may /cancel it in a group)."""
    stop: asyncio.Event = attrs.field(factory=asyncio.Event, eq=False)
    """Set to stop it."""


class Generations:
    """The answers being generated in this process, by chat."""

    def __init__(self) -> None:
        self._running: dict[Place, Generation] = {}

    @contextmanager
    def running(self, place: Place, draft_id: int, asker: int) -> Iterator[asyncio.Event]:
        """Register an answer while the block generates it; yields the event that stops it."""
        generation = Generation(place, draft_id, asker)
        self._running[place] = generation
        try:
            yield generation.stop
        finally:
            if self._running.get(place) is generation:
                del self._running[place]

    def current(self, place: Place) -> Generation | None:
        """The answer being generated for the chat (or topic), if any."""
        return self._running.get(place)

    def stop_draft(self, place: Place, draft_id: int) -> bool:
        """Stop the answer there if it is the one with this draft; False for a finished or unknown draft."""
        generation = self._running.get(place)
        if generation is None or generation.draft_id != draft_id:
            return False
        generation.stop.set()
        return True


def interrupts(update: Update) -> bool:
    """Whether the update stops an answer (a Stop press, a /cancel), and so must not wait for the chat's turn."""
    if update.stopped_message_generation is not None:
        return True
    text = update.message.text if update.message is not None else None
    if not text or not text.startswith("/"):
        return False
    return text.split(maxsplit=1)[0].partition("@")[0].lower() == "/cancel"
