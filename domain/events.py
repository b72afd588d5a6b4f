"""What happened in a conversation: immutable facts, named in the past tense.

Every user action and every model outcome is one of these events. They are appended to a stream (one per
Telegram chat) and never changed; the state of a conversation and the prompt sent to the model are folds of them.
Ids and timestamps arrive as fields, made by adapters: nothing here reads a clock or makes an id.

Every text field of an event holds storable text (`domain.text.storable`): the rule is applied as the event is
built, so whatever writes or reads an event, in any store, holds text every store can keep.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, TypeAlias, get_args

import attrs

from domain.text import storable_fields

Mode: TypeAlias = Literal["chat", "image"]
MODES: tuple[Mode, ...] = get_args(Mode)

FailureKind: TypeAlias = Literal[
    "rate_limited",
    "timeout",
    "content_refused",
    "context_too_long",
    "auth",
    "upstream",
    "unsupported",
    "abandoned",
    "stopped",
    "over_budget",
    "no_vision",
]
FAILURE_KINDS: tuple[FailureKind, ...] = get_args(FailureKind)

UndoReason: TypeAlias = Literal["undo", "redo", "edit"]
UNDO_REASONS: tuple[UndoReason, ...] = get_args(UndoReason)

SoundKind: TypeAlias = Literal["voice", "audio", "video_note"]
SOUND_KINDS: tuple[SoundKind, ...] = get_args(SoundKind)


@attrs.frozen(kw_only=True, field_transformer=storable_fields)
class Photo:
    """A picture sent with a question: where to fetch it again and what it was, never its bytes."""

    file_id: str
    """Telegram's id to fetch the file with (getFile); it may stop working after a while."""
    file_unique_id: str
    """Telegram's lasting id of the file: the same picture has the same one."""
    width: int
    """Pixels across, of the size that was sent to the model."""
    height: int
    """Pixels down."""
    size: int
    """Bytes of the file."""
    sha256: str
    """SHA-256 of the bytes (hex), to tell whether a later fetch is the same picture."""


@attrs.frozen(kw_only=True, field_transformer=storable_fields)
class FileText:
    """A document sent with a question: its text is put to the model ahead of the question."""

    name: str
    """The file's name as the user sent it."""
    mime_type: str
    """Its type as Telegram reported it (or as guessed from the name)."""
    size: int
    """Bytes of the file."""
    sha256: str
    """SHA-256 of the bytes (hex)."""
    text: str
    """The text put to the model: the file's text, or its first part when the rest did not fit."""
    dropped_chars: int = 0
    """Characters of the file's text left out because they did not fit the prompt budget (0: none)."""


@attrs.frozen(kw_only=True, field_transformer=storable_fields)
class UserRegistered:
    """The first thing a stream records: who started talking to the bot."""

    user_id: int
    """Telegram user id: the only key a user is known by (usernames are optional and change)."""
    username: str | None
    """Telegram @username without the @, or None for the many users who have none."""
    first_name: str
    """Telegram first name, for greetings."""
    language_code: str | None
    """IETF language tag Telegram reports for the user's client, if any."""


@attrs.frozen(kw_only=True, field_transformer=storable_fields)
class ModeSelected:
    """What plain text means from now on: a question for the chat model or a prompt for the image model."""

    mode: Mode
    """`chat` or `image`."""
    restated: bool = False
    """True when the decider repeated the current mode so that tail reads never look far back for it."""


@attrs.frozen(kw_only=True, field_transformer=storable_fields)
class PersonaSelected:
    """Who the assistant is in this chat from now on: the system message of every later prompt (a reset keeps it)."""

    name: str
    """A preset's name, `custom` for a system prompt the chat wrote, or `default` for the operator's persona."""
    prompt: str | None
    """The system prompt; None for the operator's default (CONVO_PERSONA)."""
    restated: bool = False
    """True when the decider repeated the current persona so that tail reads never look far back for it."""


@attrs.frozen(kw_only=True, field_transformer=storable_fields)
class ModelSelected:
    """Which chat model answers in this chat from now on."""

    model: str | None
    """The model's name; None for the operator's default (the first of CONVO_MODELS)."""
    restated: bool = False
    """True when the decider repeated the current model so that tail reads never look far back for it."""


@attrs.frozen(kw_only=True, field_transformer=storable_fields)
class LanguageSelected:
    """Which language the bot's own texts take in this chat from now on (the model's answers are not translated)."""

    language: str | None
    """A language code the bot ships texts in (e.g. `de`); None to follow each user's Telegram language again."""
    restated: bool = False
    """True when the decider repeated the current language so that tail reads never look far back for it."""


@attrs.frozen(kw_only=True, field_transformer=storable_fields)
class PromptSettingsRecorded:
    """What shapes this chat's prompts from now on, as the operator set it: recorded before a question whenever it
    differs from what the stream last recorded, so that replay rebuilds every prompt from the log alone."""

    persona: str
    """The operator's default persona (CONVO_PERSONA); a chat's own PersonaSelected outranks it."""
    budget: int
    """The prompt budget of the model that answers here."""
    lookback: int
    """Most stream versions before a question that its prompt may draw on."""
    model: str
    """The model that answers here: the chat's pick, else the operator's default."""
    vision_history: int = 1
    """How many of the newest turns with pictures send them (0: the model is sent none)."""
    restated: bool = False
    """True when the decider repeated the current settings so that tail reads never look far back for them."""

    def same_as(self, other: PromptSettingsRecorded | None) -> bool:
        """Whether `other` holds the same settings (restated or not)."""
        return other is not None and attrs.evolve(other, restated=self.restated) == self


@attrs.frozen(kw_only=True, field_transformer=storable_fields)
class QuestionAsked:
    """A user's message for the chat model."""

    text: str
    """The message exactly as the user sent it."""
    message_id: int | None = None
    """The front end's id of the message that asked (Telegram's message_id), so an edit of it is recognised."""
    sender_name: str | None = None
    """Who asked, as a group shows them (first and last name), so the model can tell speakers apart; None in a
    private chat."""
    sender_id: int | None = None
    """Who asked (Telegram user id), charged for the answer; None in events recorded before askers were."""
    photos: tuple[Photo, ...] = ()
    """Pictures sent with the question (an album: several), put to a model that can see them."""
    files: tuple[FileText, ...] = ()
    """Documents sent with the question, whose text is put to the model ahead of it."""


@attrs.frozen(kw_only=True, field_transformer=storable_fields)
class VoiceTranscribed:
    """A voice, audio or video note made into text. The text is the user's message: the question or the image
    prompt recorded right after this, in the same batch."""

    text: str
    """The transcript."""
    model: str
    """The transcription model asked."""
    duration_s: int
    """Seconds of sound (as Telegram reported them), which is what transcription is billed by."""
    file_unique_id: str
    """Telegram's lasting id of the sound file, so the same file is never transcribed twice."""
    kind: SoundKind = "voice"
    """A `voice` note, an `audio` file or a `video_note`."""
    sender_id: int | None = None
    """Who sent it (Telegram user id), charged for the transcription."""


@attrs.frozen(kw_only=True, field_transformer=storable_fields)
class TranscriptionFailed:
    """A voice, audio or video note could not be made into text: nothing was put to the chat model."""

    kind: FailureKind
    """Why, as one of FAILURE_KINDS."""
    message: str
    """A short, secret-free description for logs and replay."""
    model: str
    """The transcription model asked."""
    file_unique_id: str
    """Telegram's lasting id of the sound file."""
    sender_id: int | None = None
    """Who sent it."""


@attrs.frozen(kw_only=True, field_transformer=storable_fields)
class VoiceRepliesSelected:
    """Whether answers in this chat are also sent as voice notes from now on (/voice on|off)."""

    on: bool
    """True: each answer is spoken too."""
    restated: bool = False
    """True when the decider repeated the current choice so that tail reads never look far back for it."""


@attrs.frozen(kw_only=True, field_transformer=storable_fields)
class AnswerSpoken:
    """An answer was also sent as voice notes made by the speech model."""

    question_version: int
    """Stream version of the QuestionAsked whose answer was spoken."""
    model: str
    """The speech model asked."""
    voice: str
    """The voice it spoke in."""
    characters: int
    """Characters spoken, which is what speech is billed by."""
    parts: int
    """Voice notes sent (an answer over the speech limit is spoken in parts)."""
    asker_id: int | None = None
    """Who asked, charged for the speech."""


@attrs.frozen(kw_only=True, field_transformer=storable_fields)
class AnswerGiven:
    """The chat model's answer to a question."""

    text: str
    """The answer exactly as the model produced it (Markdown, before any Telegram rendering)."""
    model: str
    """The model name the server reported (or the one asked for when it reported none)."""
    prompt_tokens: int
    """Prompt tokens the server billed, 0 when it did not say."""
    completion_tokens: int
    """Completion tokens the server billed, 0 when it did not say."""
    latency_ms: int
    """Milliseconds from sending the request to the last byte of the answer."""
    question_version: int
    """Stream version of the QuestionAsked this answers."""
    reasoning: str = ""
    """What a reasoning model thought before answering; shown in replay, never part of a prompt."""
    stopped: bool = False
    """True when the user stopped the answer: `text` is what had arrived by then."""
    cached_tokens: int = 0
    """Of the prompt tokens, those the server billed as served from its cache (0 when it did not say)."""
    reasoning_tokens: int = 0
    """Of the completion tokens, those a reasoning model spent thinking (0 when the server did not say)."""
    asker_id: int | None = None
    """Who asked (the request's sender id), charged for this call; None when the request did not record it."""
    prompt_digest: str = ""
    """SHA-256 of the messages sent (`domain.prompt.prompt_digest`); empty in answers recorded before digests."""
    prompt_budget: int = 0
    """The budget the prompt sent was folded to (less than the recorded one after a refit); 0 when not recorded."""


@attrs.frozen(kw_only=True, field_transformer=storable_fields)
class AnswerFailed:
    """The chat model gave no usable answer to a question; the question stays out of later prompts."""

    kind: FailureKind
    """Why, as one of FAILURE_KINDS."""
    message: str
    """A short, secret-free description for logs and replay."""
    question_version: int
    """Stream version of the QuestionAsked that failed."""
    reasoning: str = ""
    """What a reasoning model had thought when the answer was stopped before its first word."""
    model: str = ""
    """The model the server billed, when it billed this failed call; empty when nothing was billed."""
    prompt_tokens: int = 0
    """Prompt tokens billed for the failed call (0: none, or the server did not say)."""
    completion_tokens: int = 0
    """Completion tokens billed for the failed call."""
    cached_tokens: int = 0
    """Of the prompt tokens, those billed as served from the cache."""
    asker_id: int | None = None
    """Who asked (the request's sender id), charged for this call; None when the request did not record it."""
    prompt_digest: str = ""
    """SHA-256 of the messages sent, when a prompt was sent; empty when none was (or before digests)."""
    prompt_budget: int = 0
    """The budget the prompt sent was folded to; 0 when no prompt was sent or it was not recorded."""


@attrs.frozen(kw_only=True, field_transformer=storable_fields)
class ImageRequested:
    """A user's prompt for the image model."""

    prompt: str
    """The prompt exactly as the user sent it."""
    sender_id: int | None = None
    """Who asked (Telegram user id), charged for the picture; None in events recorded before askers were."""


@attrs.frozen(kw_only=True, field_transformer=storable_fields)
class ImageGenerated:
    """The image model produced an image."""

    image_ref: str
    """Where the image is: an https URL, or `sha256:<hex>` naming bytes the server returned inline."""
    model: str
    """The image model asked for."""
    revised_prompt: str | None
    """The prompt the model says it actually drew, when it rewrote the user's."""
    request_version: int
    """Stream version of the ImageRequested this answers."""
    size: str = "1024x1024"
    """The size billed (`WIDTHxHEIGHT`)."""
    quality: str = "standard"
    """The quality billed (`standard`, `hd`; what the server was asked for)."""
    count: int = 1
    """Pictures billed."""
    asker_id: int | None = None
    """Who asked (the request's sender id), charged for this call; None when the request did not record it."""


@attrs.frozen(kw_only=True, field_transformer=storable_fields)
class ImageFailed:
    """The image model produced no image."""

    kind: FailureKind
    """Why, as one of FAILURE_KINDS."""
    message: str
    """A short, secret-free description for logs and replay."""
    request_version: int
    """Stream version of the ImageRequested that failed."""


@attrs.frozen(kw_only=True, field_transformer=storable_fields)
class ReplyDelivered:
    """The user's chat received the outcome of a request (answer, picture or failure reply)."""

    request_version: int
    """Stream version of the QuestionAsked or ImageRequested whose outcome was delivered."""


@attrs.frozen(kw_only=True, field_transformer=storable_fields)
class DeliveryFailed:
    """Telegram refused the outcome of a request for good (the bot was blocked, the chat is gone): it is no longer
    owed, and is never sent again."""

    request_version: int
    """Stream version of the QuestionAsked or ImageRequested whose outcome could not be delivered."""
    reason: str
    """Telegram's description of the refusal."""


@attrs.frozen(kw_only=True, field_transformer=storable_fields)
class TurnUndone:
    """A turn (a question and its answer) leaves the context: later prompts no longer see it; the log keeps it."""

    question_version: int
    """Stream version of the QuestionAsked whose turn is undone."""
    reason: UndoReason
    """`undo` (the user took it back), `redo` (its answer is regenerated) or `edit` (the question was edited and
    is asked again)."""


@attrs.frozen(kw_only=True, field_transformer=storable_fields)
class ConversationReset:
    """The user asked to start over: nothing before this reaches a prompt again."""


Event: TypeAlias = (
    UserRegistered
    | ModeSelected
    | PersonaSelected
    | ModelSelected
    | LanguageSelected
    | PromptSettingsRecorded
    | VoiceRepliesSelected
    | VoiceTranscribed
    | TranscriptionFailed
    | QuestionAsked
    | AnswerGiven
    | AnswerFailed
    | ImageRequested
    | ImageGenerated
    | ImageFailed
    | ReplyDelivered
    | DeliveryFailed
    | AnswerSpoken
    | TurnUndone
    | ConversationReset
)
EVENT_TYPES: tuple[type[Event], ...] = (
    UserRegistered,
    ModeSelected,
    PersonaSelected,
    ModelSelected,
    LanguageSelected,
    PromptSettingsRecorded,
    VoiceRepliesSelected,
    VoiceTranscribed,
    TranscriptionFailed,
    QuestionAsked,
    AnswerGiven,
    AnswerFailed,
    ImageRequested,
    ImageGenerated,
    ImageFailed,
    ReplyDelivered,
    DeliveryFailed,
    AnswerSpoken,
    TurnUndone,
    ConversationReset,
)


@attrs.frozen(kw_only=True)
class RecordedEvent:
    """An event as a store recorded it: the event in its envelope."""

    stream: str
    """The stream (one per Telegram chat) the event belongs to."""
    version: int
    """Position in the stream: 1, 2, 3, ... with no gaps."""
    recorded_at: datetime
    """When the store recorded it, timezone-aware UTC."""
    causation_id: str
    """What caused it (e.g. `tg:<update_id>`); a stream records each causation id's batch once."""
    event: Event
    """The fact itself."""
