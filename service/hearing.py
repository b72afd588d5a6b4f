"""Voice, audio and video notes made into text once: a file already heard is never sent to the model again.

A note's transcript is recorded (VoiceTranscribed) in the same batch as the request it becomes, so before any
call the stream's recent log is searched for the same file (Telegram's lasting `file_unique_id`): a redelivered
update, a restart half-way, or the same note forwarded again finds its transcript there. Only a process killed
during the transcription call itself asks again, as the answer never reached the log.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import attrs

from domain.events import SoundKind, TranscriptionFailed, VoiceTranscribed
from domain.ports import EventStore, ModelFailure, Sound, Transcriber


@attrs.frozen
class Note:
    """A voice, audio or video note as the front end received it; its bytes are fetched only if needed."""

    file_unique_id: str
    """Telegram's lasting id of the file."""
    duration_s: int
    """Seconds of sound, as the front end reported them."""
    kind: SoundKind
    """`voice`, `audio` or `video_note`."""
    fetch: Callable[[], Awaitable[Sound]] = attrs.field(eq=False, repr=False)
    """Downloads the file."""


@attrs.frozen
class Heard:
    """A note's transcript, and whether this very update recorded it before (a redelivery)."""

    transcript: VoiceTranscribed
    """What was heard (recorded with the request, or to be)."""
    causation_id: str | None
    """The update that first recorded it; None when it is new."""


class NotHeard(Exception):
    """A note could not be made into text; the failure is recorded and nothing reaches the chat model."""

    def __init__(self, failure: ModelFailure) -> None:
        super().__init__(failure.message)
        self.failure = failure


async def heard_before(
    store: EventStore, stream: str, file_unique_id: str, causation_id: str, lookback: int
) -> Heard | None:
    """The newest transcript of the same file among the stream's last `lookback` events, if any. Raises NotHeard
    when this very update recorded that the file could not be transcribed (a redelivery pays for no second try:
    its batch is written, and nothing else would be recorded)."""
    async for recorded in store.read_backwards(stream, limit=lookback):
        event = recorded.event
        if isinstance(event, VoiceTranscribed) and event.file_unique_id == file_unique_id:
            return Heard(event, recorded.causation_id)
        if (
            isinstance(event, TranscriptionFailed)
            and recorded.causation_id == causation_id
            and event.file_unique_id == file_unique_id
        ):
            raise NotHeard(ModelFailure(event.kind, event.message))
    return None


async def transcribe(transcriber: Transcriber | None, note: Note, sender_id: int) -> VoiceTranscribed:
    """The note heard by the transcription model. Raises ModelFailure."""
    if transcriber is None:
        raise ModelFailure("unsupported", "no transcription model is configured")
    sound = await note.fetch()
    transcript = await transcriber.transcribe(sound)
    return VoiceTranscribed(
        text=transcript.text.strip(),
        model=transcript.model,
        duration_s=note.duration_s or round(transcript.duration_s or 0),
        file_unique_id=note.file_unique_id,
        kind=note.kind,
        sender_id=sender_id,
    )


def failed_on(transcriber: Transcriber | None) -> str:
    """The model a failed transcription names."""
    return transcriber.model if transcriber is not None else ""
