"""A stream as a Markdown transcript people can read: who the user is, then each question and answer with its time.

Rendering is pure and one event at a time (`event_block`), so an export of any length is written as it is read.
What people wrote (questions, image prompts, personas, names) is escaped so that it reads as typed and never as
Markdown; answers are kept as the Markdown the model wrote. Both are quoted (`> `), so no text inside can break
the transcript's own headings. Bookkeeping (deliveries, the operator's prompt settings, restated settings) is
left out; undone turns, resets and failures are marked.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime

from domain.events import (
    AnswerFailed,
    AnswerGiven,
    AnswerSpoken,
    ConversationReset,
    DeliveryFailed,
    FileText,
    ImageFailed,
    ImageGenerated,
    ImageRequested,
    LanguageSelected,
    ModelSelected,
    ModeSelected,
    PersonaSelected,
    Photo,
    PromptSettingsRecorded,
    QuestionAsked,
    RecordedEvent,
    ReplyDelivered,
    TranscriptionFailed,
    TurnUndone,
    UndoReason,
    UserRegistered,
    VoiceRepliesSelected,
    VoiceTranscribed,
)

_ANYWHERE = re.compile(r"([\\`*_\[\]<>&|~])")
"""Characters that mean something to Markdown (or to its HTML) wherever they stand."""
_LINE_START = re.compile(r"^(\s*)([#=+-]|\d+[.)])")
"""What opens a heading, a rule, a list item or an ordered list item at the start of a line."""
_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
"""Control characters other than tab and newline: shown as U+FFFD, since no reader shows them usefully."""
_UNDONE = {"undo": "undone", "redo": "undone, answered again", "edit": "undone, the question was edited"}


def escaped(text: str) -> str:
    """Text shown as typed, never as Markdown: every significant character backslash-escaped, lines kept."""
    lines = []
    for line in _lines(text):
        line = _ANYWHERE.sub(r"\\\1", line)
        lines.append(_LINE_START.sub(_escape_opening, line))
    return "\n".join(lines)


def _lines(text: str) -> list[str]:
    """The text's lines (a carriage return ends one too), other control characters made visible."""
    return _CONTROLS.sub("\ufffd", text.replace("\r\n", "\n").replace("\r", "\n")).split("\n")


def _escape_opening(found: re.Match[str]) -> str:
    blank, opening = found.group(1), found.group(2)
    return f"{blank}{opening[:-1]}\\{opening[-1]}"


def inline(text: str) -> str:
    """Text for within a line (a name, a model, a reason): escaped, its line breaks made spaces."""
    return escaped(" ".join(_lines(text)))


def quoted(markdown: str) -> str:
    """A block quote of `markdown` (already escaped, or Markdown to keep), every line inside the quote."""
    return "\n".join(f"> {line}" if line.strip() else ">" for line in _lines(markdown))


def moment(when: datetime) -> str:
    """A recorded time as people read it: `2026-01-01 09:30:05 UTC`."""
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def header(stream: str, events: int) -> str:
    """The transcript's title and what it holds."""
    return f"# Conversation {inline(stream)}\n\n{events} events recorded, exported by convo. Times are in UTC."


def event_block(recorded: RecordedEvent, undone: Mapping[int, UndoReason]) -> str | None:
    """The Markdown of one event, or None for bookkeeping; `undone` maps each undone question's version to why."""
    event, when = recorded.event, f"v{recorded.version} · {moment(recorded.recorded_at)}"
    match event:
        case UserRegistered():
            return f"**User:** {_who(event)} · {when}"
        case QuestionAsked():
            return _question(event, when, undone.get(recorded.version))
        case AnswerGiven():
            title = f"### Answer · {when} · {inline(event.model)}{_undone_mark(undone.get(event.question_version))}"
            stopped = "\n\n*Stopped by the user: the answer is what had arrived by then.*" if event.stopped else ""
            return f"{title}\n\n{quoted(event.text) if event.text else '> *(empty)*'}{stopped}"
        case AnswerFailed():
            mark = _undone_mark(undone.get(event.question_version))
            return f"**Answer failed** · {when} · {_failure(event.kind, event.message)}{mark}"
        case ImageRequested():
            return f"### Image requested · {when}\n\n{quoted(escaped(event.prompt))}"
        case ImageGenerated():
            return f"**Image** · {when} · {inline(event.model)} · {_image_ref(event.image_ref)}"
        case ImageFailed():
            return f"**Image failed** · {when} · {_failure(event.kind, event.message)}"
        case VoiceTranscribed():
            sound = f"{event.kind.replace('_', ' ')} of {event.duration_s} s"
            return f"*{when} · {sound}, transcribed by {inline(event.model)}*"
        case TranscriptionFailed():
            return f"**Transcription failed** · {when} · {_failure(event.kind, event.message)}"
        case TurnUndone():
            return f"*{when} · the turn of question v{event.question_version} is {_UNDONE[event.reason]}*"
        case ConversationReset():
            return f"---\n\n**Conversation reset** · {when}: later answers do not see what came before.\n\n---"
        case DeliveryFailed():
            return f"**Not delivered** · {when} · the reply to v{event.request_version}: {inline(event.reason)}"
        case AnswerSpoken():
            return f"*{when} · the answer to v{event.question_version} was also spoken ({inline(event.voice)})*"
        case ModeSelected() | PersonaSelected() | ModelSelected() | LanguageSelected() | VoiceRepliesSelected():
            return None if event.restated else f"*{when} · {_setting(event)}*"
        case ReplyDelivered() | PromptSettingsRecorded():
            return None


def _who(event: UserRegistered) -> str:
    parts = [inline(event.first_name) or "(no name)"]
    if event.username:
        parts.append(f"(@{inline(event.username)})")
    described = " ".join(parts) + f" · Telegram id {event.user_id}"
    return described + (f" · language {inline(event.language_code)}" if event.language_code else "")


def _question(event: QuestionAsked, when: str, undone: UndoReason | None) -> str:
    lines = [f"### Question · {when}{_undone_mark(undone)}", ""]
    if event.sender_name:
        lines += [f"*Asked by {inline(event.sender_name)}*", ""]
    attached = [_photo(photo) for photo in event.photos] + [_file(file) for file in event.files]
    if attached:
        lines += ["Sent with it: " + ", ".join(attached), ""]
    lines.append(quoted(escaped(event.text)) if event.text else "> *(no text)*")
    return "\n".join(lines)


def _photo(photo: Photo) -> str:
    return f"a photo ({photo.width}×{photo.height})"


def _file(file: FileText) -> str:
    left_out = f", {file.dropped_chars} characters left out" if file.dropped_chars else ""
    return f"the file {inline(file.name)} ({file.size} bytes{left_out})"


def _undone_mark(reason: UndoReason | None) -> str:
    return "" if reason is None else f" · *{_UNDONE[reason]}*"


def _failure(kind: str, message: str) -> str:
    return f"{kind.replace('_', ' ')}: {inline(message)}" if message else kind.replace("_", " ")


def _image_ref(ref: str) -> str:
    if re.fullmatch(r"https?://[^\s<>`]+", ref):
        return f"<{ref}>"
    return f"`{ref.replace('`', '')}`"


def _setting(event: ModeSelected | PersonaSelected | ModelSelected | LanguageSelected | VoiceRepliesSelected) -> str:
    match event:
        case ModeSelected():
            return f"mode: {event.mode}"
        case PersonaSelected():
            shown = f"persona: {inline(event.name)}"
            return shown if event.prompt is None or event.name != "custom" else f"{shown} ({inline(event.prompt)})"
        case ModelSelected():
            return f"model: {inline(event.model) if event.model else 'the default'}"
        case LanguageSelected():
            return f"language: {inline(event.language) if event.language else 'automatic'}"
        case VoiceRepliesSelected():
            return f"voice answers: {'on' if event.on else 'off'}"
