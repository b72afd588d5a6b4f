"""Reading a conversation without changing it: its unfinished request and its newest turns."""

from __future__ import annotations

from domain.conversation import Pending, State
from domain.events import QuestionAsked
from domain.ports import EventStore
from domain.prompt import Turn, conversation_turns


def unfinished(state: State) -> Pending | None:
    """The request still owed to the user: waiting for a result, or for its result to be sent."""
    return state.pending or state.undelivered


async def history(store: EventStore, stream: str, limit: int = 10) -> list[Turn]:
    """The newest answered turns since the last reset, oldest first (for /history)."""
    window = [recorded async for recorded in store.read_backwards(stream, limit=limit * 4 + 8)]
    return conversation_turns(reversed(window))[-limit:]


async def asked_with_photo(store: EventStore, stream: str, file_unique_id: str, window: int = 64) -> bool:
    """Whether one of the stream's newest questions was asked with this picture (an album's later photo, taken in
    by the question its first photo asked)."""
    async for recorded in store.read_backwards(stream, limit=window):
        event = recorded.event
        if isinstance(event, QuestionAsked) and any(p.file_unique_id == file_unique_id for p in event.photos):
            return True
    return False
