"""What the outside world asks of a conversation: commands, named in the imperative."""

from __future__ import annotations

from typing import TypeAlias

import attrs

from domain.events import FailureKind, FileText, Mode, Photo, PromptSettingsRecorded, VoiceTranscribed
from domain.text import storable_fields


@attrs.frozen(kw_only=True, field_transformer=storable_fields)
class Sender:
    """The Telegram user behind a command."""

    user_id: int
    """Telegram user id."""
    username: str | None = None
    """Telegram @username without the @, if the user has one."""
    first_name: str = ""
    """Telegram first name."""
    language_code: str | None = None
    """IETF language tag of the user's client, if known."""


@attrs.frozen(kw_only=True, field_transformer=storable_fields)
class Start:
    """Say hello: registers the sender if the stream is new."""

    sender: Sender
    """Who sent /start."""
    shaping: PromptSettingsRecorded | None = None
    """What shapes prompts as the operator set it now, recorded first when the stream last recorded other."""


@attrs.frozen(kw_only=True, field_transformer=storable_fields)
class Ask:
    """Put a question to the chat model."""

    sender: Sender
    """Who asked."""
    text: str
    """The question."""
    message_id: int | None = None
    """The front end's id of the message that asked, if it has one."""
    sender_name: str | None = None
    """The asker's name as a group shows it; None in a private chat."""
    photos: tuple[Photo, ...] = ()
    """Pictures sent with it."""
    files: tuple[FileText, ...] = ()
    """Documents sent with it, with the text to put to the model."""
    heard: VoiceTranscribed | None = None
    """The transcript this text is, when the user spoke it (recorded right before the request)."""
    shaping: PromptSettingsRecorded | None = None
    """What shapes the prompt as the operator set it now, recorded first when the stream last recorded other."""


@attrs.frozen(kw_only=True, field_transformer=storable_fields)
class RequestImage:
    """Ask the image model for a picture."""

    sender: Sender
    """Who asked."""
    prompt: str
    """What to draw."""
    heard: VoiceTranscribed | None = None
    """The transcript this prompt is, when the user spoke it (recorded right before the request)."""
    shaping: PromptSettingsRecorded | None = None
    """What shapes prompts as the operator set it now, recorded first when the stream last recorded other."""


@attrs.frozen(kw_only=True, field_transformer=storable_fields)
class Say:
    """Plain text, whose meaning is the conversation's: a question in chat mode, a picture prompt in image mode."""

    sender: Sender
    """Who said it."""
    text: str
    """What they said."""
    message_id: int | None = None
    """The front end's id of the message, if it has one."""
    sender_name: str | None = None
    """The speaker's name as a group shows it; None in a private chat."""
    photos: tuple[Photo, ...] = ()
    """Pictures sent with it."""
    files: tuple[FileText, ...] = ()
    """Documents sent with it, with the text to put to the model."""
    heard: VoiceTranscribed | None = None
    """The transcript this text is, when the user spoke it (recorded right before the request)."""
    shaping: PromptSettingsRecorded | None = None
    """What shapes the prompt as the operator set it now, recorded first when the stream last recorded other."""


@attrs.frozen(kw_only=True, field_transformer=storable_fields)
class Reset:
    """Forget the conversation so far (the log keeps it; prompts no longer see it)."""

    sender: Sender
    """Who reset."""
    shaping: PromptSettingsRecorded | None = None
    """What shapes prompts as the operator set it now, recorded first when the stream last recorded other."""


@attrs.frozen(kw_only=True, field_transformer=storable_fields)
class SelectMode:
    """Make plain text mean chat questions or image prompts."""

    sender: Sender
    """Who switched."""
    mode: Mode
    """The new mode."""


@attrs.frozen(kw_only=True, field_transformer=storable_fields)
class SelectPersona:
    """Make a persona the system message of this chat's later prompts."""

    sender: Sender
    """Who chose it."""
    name: str
    """The preset's name, `custom`, or `default`."""
    prompt: str | None
    """The system prompt; None for the operator's default."""


@attrs.frozen(kw_only=True, field_transformer=storable_fields)
class SelectModel:
    """Make a chat model answer this chat's later questions."""

    sender: Sender
    """Who chose it."""
    model: str | None
    """The model's name; None for the operator's default."""


@attrs.frozen(kw_only=True, field_transformer=storable_fields)
class SelectLanguage:
    """Make the bot speak a language in this chat (its own texts; the model's answers are not translated)."""

    sender: Sender
    """Who chose it."""
    language: str | None
    """The language code; None to follow each user's Telegram language."""


@attrs.frozen(kw_only=True, field_transformer=storable_fields)
class SelectVoiceReplies:
    """Send each answer in this chat as a voice note too (on), or not (off)."""

    sender: Sender
    """Who chose."""
    on: bool
    """Whether answers are spoken."""


@attrs.frozen(kw_only=True, field_transformer=storable_fields)
class FailTranscription:
    """Record that a voice, audio or video note could not be made into text."""

    sender: Sender
    """Who sent it."""
    kind: FailureKind
    """Why."""
    message: str
    """A short, secret-free description."""
    model: str
    """The transcription model asked."""
    file_unique_id: str
    """Telegram's lasting id of the sound file."""
    shaping: PromptSettingsRecorded | None = None
    """What shapes prompts as the operator set it now, recorded first when the stream last recorded other."""


@attrs.frozen(kw_only=True, field_transformer=storable_fields)
class SpeakAnswer:
    """Record that an answer was also sent as voice notes."""

    question_version: int
    """Version of the question whose answer was spoken."""
    model: str
    """The speech model asked."""
    voice: str
    """The voice."""
    characters: int
    """Characters spoken."""
    parts: int
    """Voice notes sent."""
    asker_id: int | None = None
    """Who asked the question, charged for the speech."""


@attrs.frozen(kw_only=True, field_transformer=storable_fields)
class GiveAnswer:
    """Record the chat model's answer to the pending question."""

    question_version: int
    """Version of the question answered."""
    text: str
    """The answer."""
    model: str
    """Model that answered."""
    prompt_tokens: int
    """Billed prompt tokens."""
    completion_tokens: int
    """Billed completion tokens."""
    latency_ms: int
    """Time the call took."""
    reasoning: str = ""
    """What a reasoning model thought first, kept out of prompts."""
    stopped: bool = False
    """True when the user stopped the answer part way."""
    cached_tokens: int = 0
    """Of the prompt tokens, those billed as cached."""
    reasoning_tokens: int = 0
    """Of the completion tokens, those spent thinking."""
    prompt_digest: str = ""
    """SHA-256 of the messages sent (empty when no prompt was sent)."""
    prompt_budget: int = 0
    """The budget the prompt sent was folded to (0 when no prompt was sent)."""


@attrs.frozen(kw_only=True, field_transformer=storable_fields)
class FailAnswer:
    """Record that the pending question got no answer."""

    question_version: int
    """Version of the question."""
    kind: FailureKind
    """Why."""
    message: str
    """Short description."""
    reasoning: str = ""
    """What a reasoning model had thought, if the answer was stopped before its first word."""
    model: str = ""
    """The model billed, if the server billed the failed call."""
    prompt_tokens: int = 0
    """Prompt tokens billed for it."""
    completion_tokens: int = 0
    """Completion tokens billed for it."""
    cached_tokens: int = 0
    """Of the prompt tokens, those billed as cached."""
    prompt_digest: str = ""
    """SHA-256 of the messages sent (empty when no prompt was sent)."""
    prompt_budget: int = 0
    """The budget the prompt sent was folded to (0 when no prompt was sent)."""


@attrs.frozen(kw_only=True, field_transformer=storable_fields)
class GiveImage:
    """Record the image model's picture for the pending request."""

    request_version: int
    """Version of the image request."""
    image_ref: str
    """URL or `sha256:` reference of the picture."""
    model: str
    """Model that drew it."""
    revised_prompt: str | None
    """The prompt as the model rewrote it, if it did."""
    size: str = "1024x1024"
    """The size billed."""
    quality: str = "standard"
    """The quality billed."""
    count: int = 1
    """Pictures billed."""


@attrs.frozen(kw_only=True, field_transformer=storable_fields)
class FailImage:
    """Record that the pending image request got no picture."""

    request_version: int
    """Version of the request."""
    kind: FailureKind
    """Why."""
    message: str
    """Short description."""


@attrs.frozen(kw_only=True, field_transformer=storable_fields)
class MarkDelivered:
    """Record that the outcome of a request reached the user."""

    request_version: int
    """Version of the request whose outcome was delivered."""


@attrs.frozen(kw_only=True, field_transformer=storable_fields)
class FailDelivery:
    """Record that the outcome of a request can never reach the user."""

    request_version: int
    """Version of the request whose outcome Telegram refused for good."""
    reason: str
    """Telegram's description of the refusal."""


@attrs.frozen(kw_only=True, field_transformer=storable_fields)
class Undo:
    """Take the newest turn out of later prompts (the caller found it with `domain.tail.RecentTurns`)."""

    sender: Sender
    """Who undid."""
    question_version: int
    """Version of the question whose turn is undone."""
    shaping: PromptSettingsRecorded | None = None
    """What shapes prompts as the operator set it now, recorded first when the stream last recorded other."""


@attrs.frozen(kw_only=True, field_transformer=storable_fields)
class Redo:
    """Ask the latest question again, in place of its turn if it has one: the same prompt, a new answer."""

    sender: Sender
    """Who asked for it."""
    question_version: int
    """Version of the question asked again."""
    answered: bool
    """Whether that question's turn is in the context now (then it is replaced)."""
    text: str
    """The question's text, asked again."""
    message_id: int | None = None
    """The front end's id of the message that first asked it."""
    sender_name: str | None = None
    """Who first asked it, as the group showed them."""
    photos: tuple[Photo, ...] = ()
    """The pictures it was asked with."""
    files: tuple[FileText, ...] = ()
    """The documents it was asked with."""
    shaping: PromptSettingsRecorded | None = None
    """What shapes the prompt as the operator set it now, recorded first when the stream last recorded other."""


@attrs.frozen(kw_only=True, field_transformer=storable_fields)
class EditQuestion:
    """The user edited the latest question: its turn leaves the context and the new text is asked."""

    sender: Sender
    """Who edited."""
    question_version: int
    """Version of the question edited."""
    answered: bool
    """Whether that question's turn is in the context now (answered and not undone)."""
    text: str
    """The edited text."""
    message_id: int | None = None
    """The front end's id of the edited message."""
    sender_name: str | None = None
    """The editor's name as a group shows it; None in a private chat."""
    shaping: PromptSettingsRecorded | None = None
    """What shapes the prompt as the operator set it now, recorded first when the stream last recorded other."""


UserCommand: TypeAlias = (
    Start
    | Say
    | Ask
    | RequestImage
    | Reset
    | SelectMode
    | SelectPersona
    | SelectModel
    | SelectLanguage
    | SelectVoiceReplies
    | FailTranscription
    | Undo
    | Redo
    | EditQuestion
)
OutcomeCommand: TypeAlias = GiveAnswer | FailAnswer | GiveImage | FailImage | MarkDelivered | FailDelivery | SpeakAnswer
Command: TypeAlias = UserCommand | OutcomeCommand
