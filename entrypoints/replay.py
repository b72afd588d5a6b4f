"""The engine of `convo replay`: one chat's event log, the state after each event and every prompt that was sent.

`replay` reads a stream forwards and, for each answered question, rebuilds the prompt exactly as
`domain.prompt.prompt_for` folds it, together with what changed since the previous prompt (turns that fell out
of the budget or lookback window or were cleared by a reset, turns that came in, a changed persona). The
renderers turn a `Replay` into a rich table for people or into a JSON document for scripts; `list_streams`
summarises every stream for `convo replay --list`. Nothing here reads the environment, so no secret can leak.
"""

from __future__ import annotations

import bisect
import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeAlias

import attrs
from rich import box
from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from domain.codec import event_to_document
from domain.conversation import INITIAL, State, evolve
from domain.errors import DomainError
from domain.events import (
    AnswerFailed,
    AnswerGiven,
    ConversationReset,
    DeliveryFailed,
    Event,
    ImageFailed,
    ImageGenerated,
    ImageRequested,
    ModeSelected,
    QuestionAsked,
    RecordedEvent,
    ReplyDelivered,
    UserRegistered,
)
from domain.ports import EventStore
from domain.prompt import (
    Message,
    PromptPolicy,
    TokenCounter,
    Turn,
    assemble,
    conversation_turns,
    message_cost,
    prompt_for,
)

SUMMARY_CHARS = 32
"""Characters of a text shown in an event's one-line summary."""
CONTENT_CHARS = 400
"""Characters of a prompt message shown unless `full` is asked for."""
CONTENT_LINES = 6
"""Lines of a prompt message shown unless `full` is asked for."""
DIFF_CHARS = 96
"""Characters of a message shown on a diff line unless `full` is asked for."""
FIRST_WINDOW = 32
"""Events before a question first folded into its prompt; doubled until older events cannot matter."""

_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
"""Control characters (Cc), line and paragraph separators (Zl, Zp), the bidi embeddings, overrides and isolates
that would reorder the rest of a terminal line, and lone surrogates (Cs), which no terminal can be sent."""
_UNSAFE_IN_LINES = re.compile(r"(?![\n\t])" + _UNSAFE.pattern)
_NAMED_ESCAPES = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


class StreamNotFound(LookupError):
    """The store has no events for the stream asked for."""

    def __init__(self, stream: str) -> None:
        super().__init__(f"no events for stream {stream!r} (convo replay --list shows the streams)")
        self.stream = stream


@attrs.frozen
class PromptRecord:
    """The prompt an answered question was sent, and how it differs from the previous prompt of the stream."""

    question_version: int
    """Stream version of the question."""
    answer_version: int
    """Stream version of the AnswerGiven."""
    messages: tuple[Message, ...]
    """The prompt exactly as `prompt_for` folds it; empty when it could not be built (see `error`)."""
    added: tuple[Message, ...]
    """Messages of this prompt that the previous prompt did not hold, in prompt order."""
    dropped: tuple[Message, ...]
    """Messages of the previous prompt that this one no longer holds, in their old order."""
    tokens: int
    """Tokens the prompt takes, counted as the budget counts them."""
    error: str | None = None
    """Why no prompt could be built (the question alone overflows the budget, or the stream is malformed)."""

    @property
    def persona_changed(self) -> bool:
        """True when the system message differs from the previous prompt's."""
        roles = {message.role for message in self.added} & {message.role for message in self.dropped}
        return "system" in roles


@attrs.frozen
class Step:
    """One event of the replay with the state folded after it."""

    recorded: RecordedEvent
    """The event as the store recorded it."""
    state: State
    """The conversation state after this event."""
    prompt: PromptRecord | None = None
    """For an AnswerGiven: the prompt its question was sent."""


@attrs.frozen
class Replay:
    """A stream read forwards, event by event."""

    stream: str
    """The stream replayed."""
    steps: tuple[Step, ...]
    """Every event read, oldest first."""
    newest_version: int
    """The stream's current version (more than the last step's when the replay stopped at `at`)."""
    policy: PromptPolicy
    """The policy the prompts were folded with."""

    @property
    def prompts(self) -> tuple[PromptRecord, ...]:
        """The prompt records, in stream order."""
        return tuple(step.prompt for step in self.steps if step.prompt is not None)


@attrs.frozen
class StreamSummary:
    """One line of `convo replay --list`."""

    stream: str
    """The stream id (the Telegram chat id)."""
    events: int
    """Number of events, which is the stream's current version."""
    user_id: int | None
    """Telegram user id from the stream's UserRegistered, if it starts with one."""
    username: str | None
    """The @username (without @) registered, if any."""
    first_name: str | None
    """The first name registered, if the stream starts with a registration."""
    last_event_at: datetime
    """When the newest event was recorded (UTC)."""


# --------------------------------------------------------------------------------------------------- replaying


async def replay(
    store: EventStore, stream: str, policy: PromptPolicy, count: TokenCounter, at: int | None = None
) -> Replay:
    """The stream up to version `at` (all of it when None or beyond the end); raises StreamNotFound, ValueError."""
    if at is not None and at < 1:
        raise ValueError(f"--at must be a version of 1 or more, got {at}")
    events = [recorded async for recorded in store.read_forwards(stream, 1, limit=at)]
    if not events:
        raise StreamNotFound(stream)
    newest = await store.current_version(stream)
    return Replay(stream, tuple(_steps(events, policy, count)), max(newest, events[-1].version), policy)


def _steps(events: Sequence[RecordedEvent], policy: PromptPolicy, count: TokenCounter) -> Iterable[Step]:
    """Each event with the state after it and, for answers, the prompt diffed against the previous one."""
    state = INITIAL
    previous: _KeyedPrompt = ()
    for recorded in events:
        state = evolve(state, recorded)
        record = None
        if isinstance(recorded.event, AnswerGiven):
            record, previous = _prompt_record(events, recorded.version, recorded.event, policy, count, previous)
        yield Step(recorded, state, record)


_Key: TypeAlias = tuple[object, ...]
_KeyedPrompt: TypeAlias = tuple[tuple[_Key, Message], ...]


def _prompt_record(
    events: Sequence[RecordedEvent],
    answer_version: int,
    answer: AnswerGiven,
    policy: PromptPolicy,
    count: TokenCounter,
    previous: _KeyedPrompt,
) -> tuple[PromptRecord, _KeyedPrompt]:
    """The prompt an answer's question was sent, diffed against the previous built prompt; with the prompt the
    next one is diffed against (still the previous one when this prompt cannot be built)."""
    asked = answer.question_version
    try:
        messages, turns = _prompt(events, min(asked, answer_version), asked, policy, count)
    except DomainError as error:
        return PromptRecord(asked, answer_version, (), (), (), 0, str(error)), previous
    keyed = _keyed(messages, turns, asked)
    added, dropped = _diff(previous, keyed)
    tokens = sum(message_cost(message.content, count) for message in messages)
    return PromptRecord(asked, answer_version, messages, added, dropped, tokens), keyed


def _prompt(
    events: Sequence[RecordedEvent], last: int, asked: int, policy: PromptPolicy, count: TokenCounter
) -> tuple[tuple[Message, ...], list[Turn]]:
    """`prompt_for` over the events up to version `last`, and the turns it chose from, folding few events.

    `prompt_for` is handed the events just before the question, twice as many each time, until older events
    provably cannot change its result (see `_settled`) or the window reaches the policy's lookback floor, below
    which it uses nothing. So a long stream costs about the turns that fit the budget per answer, not its length.
    Raises what `prompt_for` raises.
    """
    floor = asked - max(policy.lookback, 1)
    stop = bisect.bisect_right(events, last, key=_version)
    size = FIRST_WINDOW
    while True:
        lowest = max(floor, asked - size)
        window = events[bisect.bisect_right(events, lowest, key=_version) : stop]
        messages = prompt_for(window, asked, policy, count)
        turns = conversation_turns(window, before=asked)
        if lowest == floor or _settled(window, messages, turns):
            return messages, turns
        size *= 2


def _settled(window: Sequence[RecordedEvent], messages: Sequence[Message], turns: Sequence[Turn]) -> bool:
    """True when no event older than the window can change its prompt: a reset in the window forgets them all,
    and once one of the window's turns did not fit the budget, no older turn is even considered."""
    kept = (len(messages) - 2) // 2
    return kept < len(turns) or any(isinstance(recorded.event, ConversationReset) for recorded in window)


def _version(recorded: RecordedEvent) -> int:
    """The sort key of a stream's events."""
    return recorded.version


def _keyed(messages: Sequence[Message], turns: Sequence[Turn], asked: int) -> _KeyedPrompt:
    """Each message named by where it came from, so the diff follows turns rather than equal texts.

    The prompt is the persona, the newest turns (a suffix of `turns`) and the question; should it ever not line up
    with the turns, messages are named by role, content and occurrence instead.
    """
    pairs = (len(messages) - 2) // 2
    kept = turns[len(turns) - pairs :] if pairs > 0 else []
    persona, question = messages[0].content, messages[-1].content
    expected = assemble(persona, kept, question)
    if tuple(messages) != expected:
        return _keyed_by_content(messages)
    turn_keys = [(role, turn.question_version) for turn in kept for role in ("user", "assistant")]
    keys: list[_Key] = [("system", persona), *turn_keys, ("user", asked)]
    return tuple(zip(keys, messages, strict=True))


def _keyed_by_content(messages: Sequence[Message]) -> _KeyedPrompt:
    """Messages named by role, content and how many equal messages came before (the persona as `_keyed` names it)."""
    seen: Counter[Message] = Counter()
    keyed: list[tuple[_Key, Message]] = []
    for message in messages:
        seen[message] += 1
        key = (message.role, message.content, seen[message])
        keyed.append((key[:2] if message.role == "system" else key, message))
    return tuple(keyed)


def _diff(old: _KeyedPrompt, new: _KeyedPrompt) -> tuple[tuple[Message, ...], tuple[Message, ...]]:
    """(added, dropped): messages only in the new prompt, in its order; only in the old one, in its order."""
    old_keys = {key for key, _ in old}
    new_keys = {key for key, _ in new}
    added = tuple(message for key, message in new if key not in old_keys)
    dropped = tuple(message for key, message in old if key not in new_keys)
    return added, dropped


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
        "error": record.error,
    }


def _messages_json(messages: Iterable[Message]) -> list[dict[str, str]]:
    """Messages as the chat API takes them."""
    return [{"role": message.role, "content": message.content} for message in messages]


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
            console.print(_event_table(rows, replay))
            console.print(_prompt_panel(step.prompt, replay.policy, full))
            rows = []
    if rows:
        console.print(_event_table(rows, replay))


def _heading(replay: Replay) -> Text:
    """Which stream, and which part of it, is shown."""
    last = replay.steps[-1].recorded.version if replay.steps else 0
    shown = f"{len(replay.steps)} events" if last == replay.newest_version else f"v1–v{last} of {replay.newest_version}"
    return Text.assemble(("stream ", "bold"), (safe(repr(replay.stream)), "bold cyan"), f" · {shown}")


def _event_table(steps: Sequence[Step], replay: Replay) -> Table:
    """A table of events; fixed widths keep the tables between prompts aligned with each other."""
    digits = max(3, len(str(replay.newest_version)))
    table = Table(box=box.SIMPLE_HEAD, expand=True, pad_edge=False)
    table.add_column("v", justify="right", width=digits, no_wrap=True)
    table.add_column("time (UTC)", width=20, no_wrap=True)
    table.add_column("type", width=17, no_wrap=True, style="bold")
    table.add_column("data", ratio=1, overflow="fold")
    table.add_column("state after", width=20, overflow="fold")
    for step in steps:
        recorded = step.recorded
        table.add_row(
            str(recorded.version),
            utc_seconds(recorded.recorded_at),
            type(recorded.event).__name__,
            Text(summary(recorded.event)),
            Text(state_summary(step.state), style="dim"),
        )
    return table


def _prompt_panel(record: PromptRecord, policy: PromptPolicy, full: bool) -> Panel:
    """The prompt sent for one question, message by message, then its diff to the previous prompt."""
    title = f"prompt for v{record.question_version} (answered at v{record.answer_version})"
    if record.error is not None:
        body = Text(f"not built: {safe(record.error)}", style="red")
        return Panel(body, title=title, title_align="left", box=box.ROUNDED, border_style="red")
    subtitle = f"{len(record.messages)} messages · {record.tokens}/{policy.budget} tokens"
    body = _messages_text(record.messages, full) + _diff_text(record, full)
    return Panel(body, title=title, subtitle=subtitle, title_align="left", subtitle_align="left")


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
    """One message of a diff on one line (escaped, cut unless `full`)."""
    shown = safe(message.content) if full else clip(message.content, DIFF_CHARS)
    return Text(f"{sign} {message.role}: {shown}", style=style)


# --------------------------------------------------------------------------------------------------- summaries


def summary(event: Event) -> str:
    """A one-line description of an event's data, texts cut and escaped (the type is shown separately)."""
    match event:
        case UserRegistered(user_id=user_id, username=username, first_name=first_name, language_code=language):
            handle = "no @username" if username is None else "@" + clip(username, SUMMARY_CHARS)
            return f'{user_id} {handle} "{clip(first_name, SUMMARY_CHARS)}" {clip(language or "no language", 16)}'
        case ModeSelected(mode=mode, restated=restated):
            return f"{mode} (restated)" if restated else mode
        case QuestionAsked(text=text) | ImageRequested(prompt=text):
            return quoted(text)
        case AnswerGiven():
            return _answer_summary(event)
        case AnswerFailed(kind=kind, message=message, question_version=version):
            return f"{kind} → v{version}: {clip(message, SUMMARY_CHARS)}"
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
    raise AssertionError(f"unknown event {event!r}")  # pragma: no cover - the match covers Event


def _answer_summary(event: AnswerGiven) -> str:
    """Model, billed tokens, latency, the question answered and the answer's start."""
    usage = f"{event.prompt_tokens}+{event.completion_tokens} tok {event.latency_ms} ms"
    return f"{clip(event.model, SUMMARY_CHARS)} {usage} → v{event.question_version} {quoted(event.text)}"


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


async def list_streams(store: EventStore) -> list[StreamSummary]:
    """Every stream with its size, registered user and last activity, reading two events of each.

    The ids are listed first and summarised after, so no store is asked to read while it pages through its list;
    a stream deleted in between is left out.
    """
    names = [stream async for stream in store.list_streams()]
    summaries = [await _stream_summary(store, stream) for stream in names]
    return [summary for summary in summaries if summary is not None]


async def _stream_summary(store: EventStore, stream: str) -> StreamSummary | None:
    """A stream's first event (the registration) and newest event (its version and time); None if it is gone."""
    first = [recorded async for recorded in store.read_forwards(stream, 1, limit=1)]
    newest = [recorded async for recorded in store.read_backwards(stream, limit=1)]
    if not first or not newest:
        return None
    user = first[0].event
    registered = user if isinstance(user, UserRegistered) else None
    return StreamSummary(
        stream=stream,
        events=newest[0].version,
        user_id=None if registered is None else registered.user_id,
        username=None if registered is None else registered.username,
        first_name=None if registered is None else registered.first_name,
        last_event_at=newest[0].recorded_at.astimezone(UTC),
    )


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
