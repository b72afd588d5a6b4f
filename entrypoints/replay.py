"""What `convo replay` prints: a replay (`service.replay`) as a rich table for people or a JSON document for
scripts, and the stream list. Only rendering lives here; terminal-unsafe characters are escaped."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import attrs
from rich import box
from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from domain.codec import event_to_document
from domain.conversation import State
from domain.events import (
    AnswerFailed,
    AnswerGiven,
    AnswerSpoken,
    ConversationReset,
    DeliveryFailed,
    Event,
    ImageFailed,
    ImageGenerated,
    ImageRequested,
    LanguageSelected,
    ModelSelected,
    ModeSelected,
    PersonaSelected,
    PromptSettingsRecorded,
    QuestionAsked,
    ReplyDelivered,
    TranscriptionFailed,
    TurnUndone,
    UserRegistered,
    VoiceRepliesSelected,
    VoiceTranscribed,
)
from domain.prompt import Message
from service.replay import PromptRecord, Replay, Step, StreamSummary

SUMMARY_CHARS = 32
"""Characters of a text shown in an event's one-line summary."""
CONTENT_CHARS = 400
"""Characters of a prompt message shown unless `full` is asked for."""
CONTENT_LINES = 6
"""Lines of a prompt message shown unless `full` is asked for."""
DIFF_CHARS = 96
"""Characters of a message shown on a diff line unless `full` is asked for."""

_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
"""Control characters (Cc), line and paragraph separators (Zl, Zp), the bidi embeddings, overrides and isolates
that would reorder the rest of a terminal line, and lone surrogates (Cs), which no terminal can be sent."""
_UNSAFE_IN_LINES = re.compile(r"(?![\n\t])" + _UNSAFE.pattern)
_NAMED_ESCAPES = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


# --------------------------------------------------------------------------------------------------- replaying


# --------------------------------------------------------------------------------------------------- JSON


def replay_json(replay: Replay) -> dict[str, Any]:
    """The replay as a JSON-compatible document: `{"stream", "events": [...], "prompts": [...]}`."""
    return {
        "stream": replay.stream,
        "newest_version": replay.newest_version,
        "events": [_event_json(step) for step in replay.steps],
        "prompts": [_prompt_json(record) for record in replay.prompts],
    }


def json_text(document: dict[str, Any]) -> str:
    """A document as `--json` prints it."""
    return json.dumps(document, ensure_ascii=False, indent=2)


def _event_json(step: Step) -> dict[str, Any]:
    """One event: version, type, time, its data as `domain.codec` writes it, causation and state after it."""
    recorded = step.recorded
    document = event_to_document(recorded.event)
    return {
        "version": recorded.version,
        "type": document["type"],
        "recorded_at": recorded.recorded_at.astimezone(UTC).isoformat(),
        "data": document["data"],
        "causation_id": recorded.causation_id,
        "undone": step.undone,
        "state": _state_json(step.state),
    }


def _state_json(state: State) -> dict[str, Any]:
    """The folded state: mode, the request waiting for a model, and the one whose reply is not yet sent."""
    pending, undelivered = state.pending, state.undelivered
    waiting = None if pending is None else {"kind": pending.kind, "version": pending.version, "text": pending.text}
    unsent = None if undelivered is None else {"kind": undelivered.kind, "version": undelivered.version}
    return {"mode": state.mode, "pending": waiting, "undelivered": unsent}


def _prompt_json(record: PromptRecord) -> dict[str, Any]:
    """One prompt with its diff; `error` is null unless the prompt could not be built."""
    return {
        "question_version": record.question_version,
        "answer_version": record.answer_version,
        "messages": _messages_json(record.messages),
        "added": _messages_json(record.added),
        "dropped": _messages_json(record.dropped),
        "tokens": record.tokens,
        "budget": record.budget,
        "error": record.error,
        "verification": record.verification,
        "failed": record.failed,
    }


def _messages_json(messages: Iterable[Message]) -> list[dict[str, Any]]:
    """Messages as the chat API takes them; a message with pictures names them in `images` (never their bytes)."""
    return [_message_json(message) for message in messages]


def _message_json(message: Message) -> dict[str, Any]:
    shown: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.images:
        shown["images"] = [attrs.asdict(image.photo) for image in message.images]
    return shown


# --------------------------------------------------------------------------------------------------- table


def render_table(replay: Replay, console: Console, *, full: bool = False) -> None:
    """Print the replay for people: events with the state after each, and after each answer its prompt and diff.

    Long texts are cut (with a note saying how much) unless `full`; control characters are always shown escaped.
    """
    console.print(_heading(replay))
    rows: list[Step] = []
    for step in replay.steps:
        rows.append(step)
        if step.prompt is not None:
            console.print(_event_table(rows, replay, console.width))
            console.print(_prompt_panel(step.prompt, full))
            rows = []
    if rows:
        console.print(_event_table(rows, replay, console.width))


def _heading(replay: Replay) -> Text:
    """Which stream, and which part of it, is shown."""
    last = replay.steps[-1].recorded.version if replay.steps else 0
    shown = f"{len(replay.steps)} events" if last == replay.newest_version else f"v1–v{last} of {replay.newest_version}"
    return Text.assemble(("stream ", "bold"), (safe(repr(replay.stream)), "bold cyan"), f" · {shown}")


NARROW = 120
"""Below this many columns the time and the state go under each event's data, which keeps most of the width."""


def _event_table(steps: Sequence[Step], replay: Replay, width: int = 160) -> Table:
    """A table of events; fixed widths keep the tables between prompts aligned with each other. On a narrow
    console the time and the state after each event are a dim second line of its data."""
    digits = max(3, len(str(replay.newest_version)))
    narrow = width < NARROW
    table = Table(box=box.SIMPLE_HEAD, expand=True, pad_edge=False)
    table.add_column("v", justify="right", width=digits, no_wrap=True)
    if not narrow:
        table.add_column("time (UTC)", width=20, no_wrap=True)
    table.add_column("type", width=17 if not narrow else 14, overflow="fold", style="bold")
    table.add_column("data" if not narrow else "data · time (UTC) · state after", ratio=1, overflow="fold")
    if not narrow:
        table.add_column("state after", width=20, overflow="fold")
    for step in steps:
        recorded = step.recorded
        data = Text(summary(recorded.event) + ("" if step.undone is None else f" [undone: {step.undone}]"))
        state = Text(state_summary(step.state), style="dim")
        when = utc_seconds(recorded.recorded_at)
        kind = type(recorded.event).__name__
        if narrow:
            data.append(f"\n{when} · ", style="dim").append_text(state)
            table.add_row(str(recorded.version), kind, data)
        else:
            table.add_row(str(recorded.version), when, kind, data, state)
    return table


def _prompt_panel(record: PromptRecord, full: bool) -> Panel:
    """The prompt sent for one question, message by message, then its diff to the previous prompt."""
    outcome = (
        f"failed at v{record.answer_version}: {record.failed}"
        if record.failed
        else f"answered at v{record.answer_version}"
    )
    title = f"prompt for v{record.question_version} ({outcome})"
    if record.error is not None:
        body = Text(f"not built: {safe(record.error)}", style="red")
        return Panel(body, title=title, title_align="left", box=box.ROUNDED, border_style="red")
    subtitle = (
        f"{len(record.messages)} messages · {record.tokens}/{record.budget} tokens · {_VERIFIED[record.verification]}"
    )
    body = _messages_text(record.messages, full) + _diff_text(record, full)
    border = "red" if record.verification == "differs" or record.failed else ""
    return Panel(body, title=title, subtitle=subtitle, title_align="left", subtitle_align="left", border_style=border)


_VERIFIED = {
    "verified": "verified against the digest sent",
    "differs": "DIFFERS from the digest sent",
    "unrecorded": "unverified: nothing recorded to check",
}


_ROLE_WIDTH = len("assistant: ")
_ROLE_STYLES = {"system": "magenta", "user": "cyan", "assistant": "green"}


def _messages_text(messages: Sequence[Message], full: bool) -> Text:
    """`role: content` paragraphs, the content's own lines indented under it, cut unless `full`.

    One Text rather than a grid: a prompt may hold hundreds of messages, and rich measures grids cell by cell.
    """
    text = Text()
    indent = Text("\n" + " " * _ROLE_WIDTH)
    for message in messages:
        text.append(f"{message.role}:".ljust(_ROLE_WIDTH), style=_ROLE_STYLES[message.role])
        for image in message.images:
            photo = image.photo
            text.append(f"[picture {photo.width}x{photo.height} sha256:{clip(photo.sha256, 12)}]", style="magenta")
            text.append_text(indent)
        text.append_text(indent.join(_content(message.content, full).split("\n", allow_blank=True)))
        text.append("\n")
    return text


def _content(content: str, full: bool) -> Text:
    """A message's content, newlines kept, other control characters escaped, cut with a note unless `full`."""
    if full:
        return Text(safe(content, keep_newlines=True))
    head = "\n".join(content.split("\n", CONTENT_LINES)[:CONTENT_LINES])
    shown, used = _cut(head, CONTENT_CHARS, keep_newlines=True)
    text = Text(shown)
    if used < len(content):
        text.append(f" … [+{len(content) - used:,} chars; --full shows all]", style="dim italic")
    return text


def _diff_text(record: PromptRecord, full: bool) -> Text:
    """`- role: text` for each dropped and `+ role: text` for each added message (cut unless `full`)."""
    heading = Text("\nchanges since the previous prompt: ", style="bold")
    if not record.dropped and record.added == record.messages:
        return heading + Text("none before it, every message is new", style="dim")
    if not record.dropped and not record.added:
        return heading + Text("none", style="dim")
    if record.persona_changed:
        heading.append("the persona changed", style="bold yellow")
    lines = [_diff_line("-", "red", message, full) for message in record.dropped]
    lines += [_diff_line("+", "green", message, full) for message in record.added]
    return Text("\n").join([heading, *lines])


def _diff_line(sign: str, style: str, message: Message, full: bool) -> Text:
    """One message of a diff on one line (escaped, cut unless `full`), its pictures named."""
    shown = safe(message.content) if full else clip(message.content, DIFF_CHARS)
    pictures = "".join(f"[picture sha256:{clip(image.photo.sha256, 12)}] " for image in message.images)
    return Text(f"{sign} {message.role}: {pictures}{shown}", style=style)


# --------------------------------------------------------------------------------------------------- summaries


def summary(event: Event) -> str:
    """A one-line description of an event's data, texts cut and escaped (the type is shown separately)."""
    match event:
        case UserRegistered(user_id=user_id, username=username, first_name=first_name, language_code=language):
            handle = "no @username" if username is None else "@" + clip(username, SUMMARY_CHARS)
            return f'{user_id} {handle} "{clip(first_name, SUMMARY_CHARS)}" {clip(language or "no language", 16)}'
        case ModeSelected(mode=mode, restated=restated):
            return f"{mode} (restated)" if restated else mode
        case PersonaSelected(name=name, prompt=prompt, restated=restated):
            chosen = clip(name, SUMMARY_CHARS) + " " + ("(the default persona)" if prompt is None else quoted(prompt))
            return f"{chosen} (restated)" if restated else chosen
        case ModelSelected(model=model, restated=restated):
            chosen = "the default model" if model is None else clip(model, SUMMARY_CHARS)
            return f"{chosen} (restated)" if restated else chosen
        case LanguageSelected(language=language, restated=restated):
            chosen = "each user's own language" if language is None else clip(language, 16)
            return f"{chosen} (restated)" if restated else chosen
        case PromptSettingsRecorded(restated=restated):
            shaped = (
                f"{clip(event.model, SUMMARY_CHARS)} budget {event.budget} lookback {event.lookback} "
                f"pictures of {event.vision_history} turn(s), persona {quoted(event.persona)}"
            )
            return f"{shaped} (restated)" if restated else shaped
        case VoiceRepliesSelected(on=on, restated=restated):
            chosen = "answers spoken too" if on else "answers in text only"
            return f"{chosen} (restated)" if restated else chosen
        case VoiceTranscribed(text=text, model=model, duration_s=seconds, kind=kind):
            return f"{kind} {seconds} s by {clip(model, SUMMARY_CHARS)}: {quoted(text)}"
        case TranscriptionFailed(kind=kind, message=message, model=model):
            return f"{kind} ({clip(model, SUMMARY_CHARS)}): {clip(message, SUMMARY_CHARS)}"
        case AnswerSpoken(question_version=version, model=model, voice=voice, characters=chars, parts=parts):
            speaker = f"{clip(model, SUMMARY_CHARS)}/{clip(voice, 20)}"
            return f"the answer to v{version}: {chars:,} chars in {parts} voice note(s) by {speaker}"
        case QuestionAsked():
            return _question_summary(event)
        case ImageRequested(prompt=text):
            return quoted(text)
        case AnswerGiven():
            return _answer_summary(event)
        case AnswerFailed(kind=kind, message=message, question_version=version, reasoning=reasoning):
            thought = f" reasoning {quoted(reasoning)}" if reasoning else ""
            return f"{kind} → v{version}: {clip(message, SUMMARY_CHARS)}{thought}"
        case ImageGenerated(image_ref=ref, model=model, revised_prompt=revised, request_version=version):
            rewritten = "" if revised is None else f" revised {quoted(revised)}"
            return f"{clip(model, SUMMARY_CHARS)} {clip(ref, SUMMARY_CHARS)} → v{version}{rewritten}"
        case ImageFailed(kind=kind, message=message, request_version=version):
            return f"{kind} → v{version}: {clip(message, SUMMARY_CHARS)}"
        case ReplyDelivered(request_version=version):
            return f"the reply to v{version} reached the user"
        case DeliveryFailed(request_version=version, reason=reason):
            return f"the reply to v{version} could not be delivered: {clip(reason, SUMMARY_CHARS)}"
        case ConversationReset():
            return "earlier turns leave the prompt"
        case TurnUndone(question_version=version, reason=reason):
            return f"the turn of v{version} leaves the prompt ({reason})"
    raise AssertionError(f"unknown event {event!r}")  # pragma: no cover - the match covers Event


def _question_summary(event: QuestionAsked) -> str:
    """The question, who asked it in a group, and what came with it: pictures and documents."""
    said = quoted(event.text)
    if event.sender_name:
        said = f"{clip(event.sender_name, SUMMARY_CHARS)}: {said}"
    pictures = [f"[photo {p.width}x{p.height} sha256:{clip(p.sha256, 12)}]" for p in event.photos]
    files = [
        f"[file {clip(f.name, SUMMARY_CHARS)} {len(f.text):,} chars"
        + (f", {f.dropped_chars:,} cut]" if f.dropped_chars else "]")
        for f in event.files
    ]
    return " ".join([*pictures, *files, said])


def _dropped_note(dropped: int) -> str:
    return f", {dropped:,} cut" if dropped else ""


def _answer_summary(event: AnswerGiven) -> str:
    """Model, billed tokens, latency, the question answered and the answer's start."""
    if event.prompt_tokens:
        usage = f"{event.prompt_tokens}+{event.completion_tokens} tok {event.latency_ms} ms"
    else:  # a prompt is never 0 tokens: the server reported no usage
        usage = f"tokens unknown {event.latency_ms} ms"
    stopped = " stopped" if event.stopped else ""
    thought = f" reasoning {quoted(event.reasoning)}" if event.reasoning else ""
    return (
        f"{clip(event.model, SUMMARY_CHARS)} {usage}{stopped} → v{event.question_version} {quoted(event.text)}{thought}"
    )


def state_summary(state: State) -> str:
    """The mode and the request waiting for a model (the event at that version says which model)."""
    pending, undelivered = state.pending, state.undelivered
    if pending is not None:
        return f"{state.mode} · awaits v{pending.version}"
    if undelivered is not None:
        return f"{state.mode} · reply to v{undelivered.version} unsent"
    return f"{state.mode} · idle"


def quoted(text: str) -> str:
    """`"start of the text…" (N chars)`, escaped and cut to SUMMARY_CHARS."""
    return f'"{clip(text, SUMMARY_CHARS)}" ({len(text):,} chars)'


def utc_seconds(moment: datetime) -> str:
    """ISO 8601 in UTC to the second, with a Z."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


# --------------------------------------------------------------------------------------------------- escaping


def clip(text: str, limit: int, *, keep_newlines: bool = False) -> str:
    """`text` escaped (see `safe`) and cut to at most `limit` shown characters plus a `…` when cut."""
    shown, used = _cut(text, limit, keep_newlines)
    return shown if used == len(text) else shown + "…"


def _cut(text: str, limit: int, keep_newlines: bool) -> tuple[str, int]:
    """The escaped start of `text` that fits in `limit` characters, and how many characters of `text` it shows."""
    head = text[:limit]
    if not _unsafe(keep_newlines).search(head):
        return head, len(head)
    pieces: list[str] = []
    length = 0
    for used, char in enumerate(head):
        piece = _escape(char, keep_newlines)
        if length + len(piece) > limit:
            return "".join(pieces), used
        pieces.append(piece)
        length += len(piece)
    return "".join(pieces), len(head)


def safe(text: str, *, keep_newlines: bool = False) -> str:
    """`text` with control characters, line separators, bidi overrides and lone surrogates shown as escapes."""
    return _unsafe(keep_newlines).sub(lambda found: _escape(found.group(), keep_newlines), text)


def _escape(char: str, keep_newlines: bool) -> str:
    """One character as printed: itself, or a backslash escape when printing it raw could garble the terminal."""
    if not _unsafe(keep_newlines).match(char):
        return char
    code = ord(char)
    return _NAMED_ESCAPES.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def _unsafe(keep_newlines: bool) -> re.Pattern[str]:
    """The characters to escape: all of `_UNSAFE`, or all but newline and tab."""
    return _UNSAFE_IN_LINES if keep_newlines else _UNSAFE


# --------------------------------------------------------------------------------------------------- streams


def streams_json(summaries: Sequence[StreamSummary]) -> dict[str, Any]:
    """The stream list as a JSON-compatible document: `{"streams": [{stream, events, user_id, ...}]}`."""
    return {
        "streams": [
            {
                "stream": item.stream,
                "events": item.events,
                "user_id": item.user_id,
                "username": item.username,
                "first_name": item.first_name,
                "last_event_at": item.last_event_at.isoformat(),
            }
            for item in summaries
        ]
    }


def render_stream_list(summaries: Sequence[StreamSummary], console: Console) -> None:
    """Print the stream list as a table (or say there are no streams)."""
    if not summaries:
        console.print("no streams: the store holds no events")
        return
    table = Table(box=box.SIMPLE_HEAD, title=f"{len(summaries)} streams", title_justify="left")
    table.add_column("stream", overflow="fold")
    table.add_column("events", justify="right")
    table.add_column("user id", justify="right")
    table.add_column("username", overflow="fold")
    table.add_column("first name", overflow="fold")
    table.add_column("last event (UTC)", no_wrap=True)
    for item in summaries:
        table.add_row(
            Text(safe(item.stream)),
            str(item.events),
            "—" if item.user_id is None else str(item.user_id),
            Text("—" if item.username is None else "@" + clip(item.username, SUMMARY_CHARS)),
            Text("—" if item.first_name is None else clip(item.first_name, SUMMARY_CHARS)),
            utc_seconds(item.last_event_at),
        )
    console.print(table)
