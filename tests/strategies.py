"""Hypothesis strategies for convo's domain: texts, events, states and whole valid streams.

Valid streams are not assembled by hand: a strategy draws a script of user commands and model outcomes and runs
it through the real decider, so every generated stream is one the product could have written.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
from hypothesis import strategies as st

from domain.commands import (
    Ask,
    Command,
    EditQuestion,
    FailAnswer,
    FailDelivery,
    FailImage,
    FailTranscription,
    GiveAnswer,
    GiveImage,
    MarkDelivered,
    Redo,
    RequestImage,
    Reset,
    Say,
    SelectLanguage,
    SelectMode,
    SelectModel,
    SelectPersona,
    SelectVoiceReplies,
    Sender,
    SpeakAnswer,
    Start,
    Undo,
)
from domain.conversation import INITIAL, Pending, State, decide, evolve
from domain.errors import EmptyMessage
from domain.events import (
    FAILURE_KINDS,
    MODES,
    SOUND_KINDS,
    UNDO_REASONS,
    AnswerFailed,
    AnswerGiven,
    AnswerSpoken,
    ConversationReset,
    DeliveryFailed,
    Event,
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
    UserRegistered,
    VoiceRepliesSelected,
    VoiceTranscribed,
)
from domain.prompt import PromptPolicy
from domain.tail import StateTail, recent_turns

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)

texts = st.one_of(
    st.text(max_size=40),
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=200),
    st.sampled_from(["", " ", "\u200f\u200b", "שלום", "😀" * 3, "<b>", "**bold** `code`", "/start"]),
    st.integers(min_value=2_000, max_value=20_000).map(lambda n: "ü" * n),
    st.text(alphabet=st.characters(codec=None, min_codepoint=0, max_codepoint=0xDFFF), max_size=20),
)
"""Any Unicode text a user or a model could produce: empty, whitespace, RTL, emoji, astral, and huge; and what
no store can keep as it is (NUL, lone surrogates, as a stream cut in the middle of a pair leaves them)."""

visible_texts = texts.filter(lambda text: bool(text.strip()))
"""Texts the decider accepts as a question or prompt."""

small_ints = st.integers(min_value=0, max_value=10**6)
versions = st.integers(min_value=1, max_value=10**6)
failure_kinds = st.sampled_from(FAILURE_KINDS)
modes = st.sampled_from(MODES)

senders = st.builds(
    Sender,
    user_id=st.integers(min_value=1, max_value=2**52),
    username=st.none() | st.text(max_size=32),
    first_name=st.text(max_size=64),
    language_code=st.none() | st.sampled_from(["en", "ru", "pt-br", "fa"]),
)
"""Telegram users, with and without usernames."""

photos = st.builds(
    Photo,
    file_id=st.text(min_size=1, max_size=20),
    file_unique_id=st.text(min_size=1, max_size=12),
    width=st.integers(1, 2560),
    height=st.integers(1, 2560),
    size=small_ints,
    sha256=st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
)
"""Pictures as the log records them."""

file_texts = st.builds(
    FileText,
    name=st.text(max_size=30),
    mime_type=st.sampled_from(["text/plain", "application/pdf", "text/csv"]),
    size=small_ints,
    sha256=st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
    text=texts,
    dropped_chars=st.integers(0, 10**6),
)
"""Documents as the log records them."""

events: st.SearchStrategy[Event] = st.one_of(
    st.builds(
        UserRegistered,
        user_id=small_ints,
        username=st.none() | st.text(),
        first_name=st.text(),
        language_code=st.none() | st.text(),
    ),
    st.builds(ModeSelected, mode=modes, restated=st.booleans()),
    st.builds(
        QuestionAsked,
        text=texts,
        message_id=st.none() | small_ints,
        sender_name=st.none() | st.text(),
        photos=st.lists(photos, max_size=3).map(tuple),
        files=st.lists(file_texts, max_size=2).map(tuple),
    ),
    st.builds(VoiceRepliesSelected, on=st.booleans(), restated=st.booleans()),
    st.builds(
        PromptSettingsRecorded,
        persona=texts,
        budget=small_ints,
        lookback=small_ints,
        model=st.text(),
        vision_history=st.integers(0, 5),
        restated=st.booleans(),
    ),
    st.builds(
        VoiceTranscribed,
        text=texts,
        model=st.text(),
        duration_s=small_ints,
        file_unique_id=st.text(),
        kind=st.sampled_from(SOUND_KINDS),
        sender_id=st.none() | small_ints,
    ),
    st.builds(
        TranscriptionFailed,
        kind=failure_kinds,
        message=st.text(),
        model=st.text(),
        file_unique_id=st.text(),
        sender_id=st.none() | small_ints,
    ),
    st.builds(
        AnswerSpoken,
        question_version=versions,
        model=st.text(),
        voice=st.text(),
        characters=small_ints,
        parts=small_ints,
        asker_id=st.none() | small_ints,
    ),
    st.builds(PersonaSelected, name=st.text(), prompt=st.none() | texts, restated=st.booleans()),
    st.builds(ModelSelected, model=st.none() | st.text(), restated=st.booleans()),
    st.builds(LanguageSelected, language=st.none() | st.sampled_from(["de", "uk"]), restated=st.booleans()),
    st.builds(
        AnswerGiven,
        text=texts,
        model=st.text(),
        prompt_tokens=small_ints,
        completion_tokens=small_ints,
        latency_ms=small_ints,
        question_version=versions,
        reasoning=texts,
        stopped=st.booleans(),
    ),
    st.builds(AnswerFailed, kind=failure_kinds, message=st.text(), question_version=versions, reasoning=texts),
    st.builds(ImageRequested, prompt=texts),
    st.builds(
        ImageGenerated,
        image_ref=st.text(),
        model=st.text(),
        revised_prompt=st.none() | st.text(),
        request_version=versions,
    ),
    st.builds(ImageFailed, kind=failure_kinds, message=st.text(), request_version=versions),
    st.builds(ReplyDelivered, request_version=versions),
    st.builds(DeliveryFailed, request_version=versions, reason=st.text()),
    st.builds(TurnUndone, question_version=versions, reason=st.sampled_from(UNDO_REASONS)),
    st.just(ConversationReset()),
)
"""Any single event of every type, with arbitrary field values (not necessarily a valid stream)."""

recorded_events = st.builds(
    RecordedEvent,
    stream=st.text(min_size=1, max_size=30),
    version=versions,
    recorded_at=st.datetimes(timezones=st.just(UTC)),
    causation_id=st.text(max_size=40),
    event=events,
)
"""Any event in an arbitrary envelope."""

pendings = st.builds(
    Pending,
    st.sampled_from(["question", "image"]),
    versions,
    texts,
    st.text(),
    st.datetimes(timezones=st.just(UTC)),
)
"""Any request waiting for its outcome or for its delivery."""

states = st.builds(
    State,
    version=st.integers(min_value=0, max_value=10**6),
    mode=modes,
    mode_version=st.integers(min_value=0, max_value=10**6),
    persona_name=st.text(),
    persona_prompt=st.none() | st.text(),
    persona_version=st.integers(min_value=0, max_value=10**6),
    model=st.none() | st.text(),
    model_version=st.integers(min_value=0, max_value=10**6),
    pending=st.none() | pendings,
    undelivered=st.none() | pendings,
)
"""Any state, reachable or not: evolve must accept them all."""

policies = st.builds(
    PromptPolicy,
    persona=st.text(max_size=200),
    budget=st.integers(min_value=0, max_value=3_000),
    lookback=st.integers(min_value=1, max_value=400),
    vision_history=st.integers(min_value=0, max_value=3),
)
"""Prompt policies from starved to roomy, with short and long lookbacks, sending pictures of up to three turns."""


@attrs.frozen
class _Outcome:
    """A script step: whatever the models would do to the pending request."""

    succeed: bool
    text: str
    kind: Any
    model: str = "gpt-test"
    tokens: tuple[int, int, int] = (3, 5, 0)
    """Billed (prompt, completion, cached prompt) tokens; a failure bills them when its model is not empty."""
    picture: tuple[str, str] = ("1024x1024", "standard")
    """Billed (size, quality) of a picture."""


_BILLED_MODELS = st.sampled_from(["gpt-4o-mini", "gpt-4o-mini-2024-07-18", "o4-mini", "llama-local", "gpt-test"])
_TOKENS = st.tuples(st.integers(0, 10**6), st.integers(0, 10**5), st.integers(0, 10**6)).map(
    lambda t: (t[0], t[1], min(t[2], t[0]))
)
_PICTURES = st.sampled_from([("1024x1024", "standard"), ("1792x1024", "hd"), ("512x512", "standard")])
_OUTCOMES = st.builds(
    _Outcome, st.sampled_from([True, True, True, False]), texts, failure_kinds, _BILLED_MODELS, _TOKENS, _PICTURES
)


@attrs.frozen
class _Undo:
    """A script step: /undo, of the newest turn in the context (if any)."""


@attrs.frozen
class _Redo:
    """A script step: /redo, of the newest turn in the context (if any)."""


@attrs.frozen
class _Edit:
    """A script step: the user edits the latest question (if any) into `text`."""

    text: str


@attrs.frozen
class _Speak:
    """A script step: the newest answer was also spoken."""


@attrs.frozen
class _Delivery:
    """A script step: the reply for the request with an undelivered outcome reached the user."""


@attrs.frozen
class _Undeliverable:
    """A script step: Telegram refused the reply for the request with an undelivered outcome for good."""


_PERSONA_NAMES = st.sampled_from(["default", "concise", "custom"])
_NO_SENDER: Any = None
_SHAPINGS = st.builds(
    PromptSettingsRecorded,
    persona=st.sampled_from(["Be brief.", "You are a pirate.", "x" * 300]),
    budget=st.integers(min_value=0, max_value=3_000),
    lookback=st.integers(min_value=1, max_value=400),
    model=st.sampled_from(["m-1", "m-2"]),
    vision_history=st.integers(min_value=0, max_value=2),
)
"""Prompt settings as the operator may set them, from starved to roomy."""
_SHAPED_QUESTIONS = st.builds(Ask, sender=st.just(_NO_SENDER), text=texts, shaping=_SHAPINGS)
"""Questions asked under the operator's settings, recorded before them when they changed."""
_ATTACHED_QUESTIONS = st.builds(
    Ask,
    sender=st.just(_NO_SENDER),
    text=texts,
    photos=st.lists(photos, max_size=3).map(tuple),
    files=st.lists(file_texts, max_size=2).map(tuple),
)
"""Questions with pictures (an album: several) and documents."""
_SPOKEN_SAYS = st.builds(
    Say,
    sender=st.just(_NO_SENDER),
    text=texts,
    heard=st.builds(
        VoiceTranscribed,
        text=texts,
        model=st.just("whisper-1"),
        duration_s=st.integers(0, 600),
        file_unique_id=st.text(max_size=8),
        kind=st.sampled_from(SOUND_KINDS),
        sender_id=st.none() | small_ints,
    ),
)
"""Voice notes: the transcript said in the chat's mode."""
_DELIVERIES = st.sampled_from([(_Delivery(),), (_Delivery(),), (_Undeliverable(),), ()])
_STEPS = st.one_of(
    st.tuples(st.builds(Ask, sender=st.just(_NO_SENDER), text=texts), _OUTCOMES),
    st.tuples(st.builds(Ask, sender=st.just(_NO_SENDER), text=texts), _OUTCOMES, st.just(_Delivery())),
    st.tuples(st.builds(Ask, sender=st.just(_NO_SENDER), text=texts), _OUTCOMES, st.just(_Delivery())),
    st.tuples(st.builds(RequestImage, sender=st.just(_NO_SENDER), prompt=texts), _OUTCOMES, st.just(_Delivery())),
    st.tuples(st.builds(RequestImage, sender=st.just(_NO_SENDER), prompt=texts), _OUTCOMES),
    _DELIVERIES,
    st.tuples(st.builds(Ask, sender=st.just(_NO_SENDER), text=texts)),
    st.tuples(st.builds(RequestImage, sender=st.just(_NO_SENDER), prompt=texts)),
    st.tuples(st.builds(Reset, sender=st.just(_NO_SENDER))),
    st.tuples(st.builds(SelectMode, sender=st.just(_NO_SENDER), mode=modes)),
    st.tuples(st.builds(SelectPersona, sender=st.just(_NO_SENDER), name=_PERSONA_NAMES, prompt=st.none() | texts)),
    st.tuples(st.builds(SelectModel, sender=st.just(_NO_SENDER), model=st.none() | st.sampled_from(["m-1", "m-2"]))),
    st.tuples(
        st.builds(SelectLanguage, sender=st.just(_NO_SENDER), language=st.none() | st.sampled_from(["de", "tr"]))
    ),
    st.tuples(st.builds(Ask, sender=st.just(_NO_SENDER), text=texts, sender_name=st.sampled_from(["Ann", "Bob"]))),
    st.tuples(st.builds(Start, sender=st.just(_NO_SENDER))),
    st.tuples(_OUTCOMES),
    st.tuples(st.just(_Undo())),
    st.tuples(st.just(_Undo()), st.just(_Undo())),
    st.tuples(st.just(_Redo()), _OUTCOMES, st.just(_Delivery())),
    st.tuples(st.just(_Redo())),
    st.tuples(st.builds(_Edit, texts), _OUTCOMES, st.just(_Delivery())),
    st.tuples(_ATTACHED_QUESTIONS, _OUTCOMES, st.just(_Delivery())),
    st.tuples(_ATTACHED_QUESTIONS, _OUTCOMES, st.just(_Delivery())),
    st.tuples(_SHAPED_QUESTIONS, _OUTCOMES, st.just(_Delivery())),
    st.tuples(_SHAPED_QUESTIONS, _OUTCOMES, st.just(_Delivery())),
    st.tuples(_SPOKEN_SAYS, _OUTCOMES, st.just(_Delivery()), st.just(_Speak())),
    st.tuples(st.builds(SelectVoiceReplies, sender=st.just(_NO_SENDER), on=st.booleans())),
    st.tuples(
        st.builds(
            FailTranscription,
            sender=st.just(_NO_SENDER),
            kind=failure_kinds,
            message=st.text(max_size=10),
            model=st.just("whisper-1"),
            file_unique_id=st.text(max_size=8),
        )
    ),
)
"""Script steps: mostly a request with its outcome; sometimes a lone request, outcome, reset or mode switch."""


def _command_for(step: Any, state: State, sender: Sender, recorded: list[RecordedEvent]) -> Command | None:
    if isinstance(step, _Undo | _Redo | _Edit):
        return _turn_control(step, sender, recorded)
    if isinstance(step, _Outcome):
        return _outcome_command(step, state.pending)
    if isinstance(step, _Speak):
        answered = next((e for e in reversed(recorded) if isinstance(e.event, AnswerGiven)), None)
        if answered is None or not isinstance(answered.event, AnswerGiven):
            return None
        chars = len(answered.event.text)
        return SpeakAnswer(
            question_version=answered.event.question_version,
            model="gpt-4o-mini-tts",
            voice="alloy",
            characters=chars,
            parts=chars // 4096 + 1,
            asker_id=answered.event.asker_id,
        )
    if isinstance(step, _Delivery):
        return MarkDelivered(request_version=state.undelivered.version) if state.undelivered is not None else None
    if isinstance(step, _Undeliverable):
        refusal = "Forbidden: bot was blocked by the user"
        return (
            FailDelivery(request_version=state.undelivered.version, reason=refusal)
            if state.undelivered is not None
            else None
        )
    if hasattr(step, "sender"):
        return attrs.evolve(step, sender=sender)
    return step


def _turn_control(step: _Undo | _Redo | _Edit, sender: Sender, recorded: list[RecordedEvent]) -> Command | None:
    """What the service makes of /undo, /redo or an edit, from what the stream's context holds."""
    latest, newest_turn = recent_turns(recorded, lookback=10**9)
    if isinstance(step, _Edit):
        if latest is None:
            return None
        return EditQuestion(
            sender=sender,
            question_version=latest.version,
            answered=latest.answered,
            text=step.text,
            message_id=latest.message_id,
        )
    if isinstance(step, _Undo):
        return None if newest_turn is None else Undo(sender=sender, question_version=newest_turn.version)
    if latest is None or latest.undone:
        return None
    return Redo(
        sender=sender,
        question_version=latest.version,
        answered=latest.answered,
        text=latest.text,
        message_id=latest.message_id,
        sender_name=latest.sender_name,
        photos=latest.photos,
        files=latest.files,
    )


def _outcome_command(step: _Outcome, pending: Pending | None) -> Command | None:
    if pending is None:
        return None
    if pending.kind == "question":
        if step.succeed:
            return GiveAnswer(
                question_version=pending.version,
                text=step.text,
                model=step.model,
                prompt_tokens=step.tokens[0],
                completion_tokens=step.tokens[1],
                cached_tokens=step.tokens[2],
                latency_ms=42,
            )
        billed = step.kind == "content_refused"  # a refusal the server billed
        return FailAnswer(
            question_version=pending.version,
            kind=step.kind,
            message="failed",
            model=step.model if billed else "",
            prompt_tokens=step.tokens[0] if billed else 0,
            cached_tokens=step.tokens[2] if billed else 0,
        )
    if step.succeed:
        return GiveImage(
            request_version=pending.version,
            image_ref="https://example.test/x.png",
            model="dall-e-3" if step.model != "llama-local" else "dall-e-test",
            revised_prompt=None,
            size=step.picture[0],
            quality=step.picture[1],
        )
    return FailImage(request_version=pending.version, kind=step.kind, message="failed")


def run_script(
    steps: Sequence[Any], sender: Sender, stream: str = "42", tag: Callable[[int, str], str] | None = None
) -> list[RecordedEvent]:
    """Record what the decider makes of a script, as a store would (versions, times, causation ids)."""
    state = INITIAL
    recorded: list[RecordedEvent] = []
    for index, step in enumerate(steps):
        if tag is not None and isinstance(step, Ask | _Outcome | _Edit):
            step = attrs.evolve(step, text=tag(index, step.text))
        if tag is not None and isinstance(step, Say) and step.heard is not None:
            spoken = tag(index, step.text)
            step = attrs.evolve(step, text=spoken, heard=attrs.evolve(step.heard, text=spoken))
        if isinstance(step, Ask):
            step = attrs.evolve(step, message_id=index)
        command = _command_for(step, state, sender, recorded)
        if command is None:
            continue
        try:
            batch = decide(state, command)
        except EmptyMessage:
            continue
        for event in batch:
            version = state.version + 1
            item = RecordedEvent(
                stream=stream,
                version=version,
                recorded_at=EPOCH + timedelta(seconds=version),
                causation_id=f"tg:{index}",
                event=event,
            )
            recorded.append(item)
            state = evolve(state, item)
    return recorded


def streams(max_steps: int = 60, tagged: bool = False) -> st.SearchStrategy[list[RecordedEvent]]:
    """Valid streams: scripts of user commands (resets anywhere) and model outcomes (answers, failures, images).

    With `tagged`, every question and answer text starts with a unique marker, so tests can tell turns apart.
    """
    tag = (lambda index, text: f"[{index}] {text}") if tagged else None
    sizes = st.integers(min_value=1, max_value=max_steps)
    scripts = sizes.flatmap(lambda n: st.lists(_STEPS, min_size=n, max_size=n)).map(lambda groups: sum(groups, ()))
    return st.builds(lambda steps, sender: run_script(steps, sender, tag=tag), scripts, senders)


def tail_read(stream: Sequence[RecordedEvent]) -> tuple[State, int]:
    """The state a tail reader folds from the stream's newest events, and how many it read."""
    reader = StateTail()
    read = 0
    for recorded in reversed(stream):
        if reader.done:
            break
        reader.feed(recorded)
        read += 1
    return reader.state(), read
