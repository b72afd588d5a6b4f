"""The conversation decider: initial state, `evolve`, `decide` — pure functions over events.

The state holds only what deciding needs (version, the chat's settings: mode, persona and model, the request
waiting for the model); the conversation's text lives in the events and is folded into a prompt by
`domain.prompt`. Nothing here is remembered elsewhere: the settings are always folded from the log, so they
survive restarts and are the same on every worker.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Literal

import attrs

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
from domain.errors import EmptyMessage
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
    Mode,
    ModelSelected,
    ModeSelected,
    PersonaSelected,
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

MODE_HORIZON = 200
"""A stream restates a setting (mode, persona, model) when it was last stated this many versions ago, so a tail
read finds it soon."""


@attrs.frozen
class Pending:
    """A request recorded but not yet answered by the model."""

    kind: Literal["question", "image"]
    """Which model it waits for."""
    version: int
    """Stream version of the request."""
    text: str
    """The question or the image prompt."""
    causation_id: str
    """What caused the request (the Telegram update), so a redelivered update finds its own request."""
    recorded_at: datetime
    """When the request was recorded: a request long pending was abandoned by a process that died."""
    asker_id: int | None = None
    """Who asked (the request's sender), whom its outcome is charged to."""


@attrs.frozen
class State:
    """What deciding needs to know about a stream."""

    version: int = 0
    """Version of the newest event folded; 0 for a stream with no events (an unregistered user)."""
    mode: Mode = "chat"
    """What plain text means now."""
    mode_version: int = 0
    """Version of the event that last stated the mode; 0 while it is the default."""
    persona_name: str = "default"
    """The persona's name: a preset's, `custom`, or `default`."""
    persona_prompt: str | None = None
    """The chat's system prompt; None for the operator's default."""
    persona_version: int = 0
    """Version of the event that last stated the persona; 0 while it was never stated."""
    model: str | None = None
    """The chat's model; None for the operator's default."""
    model_version: int = 0
    """Version of the event that last stated the model; 0 while it was never stated."""
    language: str | None = None
    """The language of the bot's own texts here; None to follow each user's Telegram language."""
    language_version: int = 0
    """Version of the event that last stated the language; 0 while it was never stated."""
    voice_replies: bool = False
    """Whether answers here are spoken too (/voice)."""
    voice_replies_version: int = 0
    """Version of the event that last stated it; 0 while it was never stated."""
    shaping: PromptSettingsRecorded | None = None
    """What shapes prompts here as last recorded (None: never recorded, in streams older than the record)."""
    shaping_version: int = 0
    """Version of the event that last stated it; 0 while it was never stated."""
    pending: Pending | None = None
    """The newest request since the last reset, while it has no outcome."""
    undelivered: Pending | None = None
    """The newest request since the last reset once it has an outcome the user has not been sent yet."""

    @property
    def registered(self) -> bool:
        """Every stream starts with UserRegistered, so any event at all means registered."""
        return self.version > 0


INITIAL = State()


def evolve(state: State, recorded: RecordedEvent) -> State:
    """The state after one more event. Total: any event applies to any state."""
    state = attrs.evolve(state, version=recorded.version)
    match recorded.event:
        case ModeSelected(mode=mode):
            return attrs.evolve(state, mode=mode, mode_version=recorded.version)
        case PersonaSelected(name=name, prompt=prompt):
            return attrs.evolve(state, persona_name=name, persona_prompt=prompt, persona_version=recorded.version)
        case ModelSelected(model=model):
            return attrs.evolve(state, model=model, model_version=recorded.version)
        case LanguageSelected(language=language):
            return attrs.evolve(state, language=language, language_version=recorded.version)
        case VoiceRepliesSelected(on=on):
            return attrs.evolve(state, voice_replies=on, voice_replies_version=recorded.version)
        case PromptSettingsRecorded():
            return attrs.evolve(state, shaping=recorded.event, shaping_version=recorded.version)
        case QuestionAsked(text=text):
            return attrs.evolve(state, pending=pending_from("question", recorded, text), undelivered=None)
        case ImageRequested(prompt=prompt):
            return attrs.evolve(state, pending=pending_from("image", recorded, prompt), undelivered=None)
        case AnswerGiven(question_version=request) | AnswerFailed(question_version=request):
            return _settle(state, "question", request, to_deliver(recorded.event))
        case ImageGenerated(request_version=request) | ImageFailed(request_version=request):
            return _settle(state, "image", request, to_deliver(recorded.event))
        case ReplyDelivered(request_version=request) | DeliveryFailed(request_version=request):
            if state.undelivered is not None and state.undelivered.version == request:
                return attrs.evolve(state, undelivered=None)
            return state
        case ConversationReset():
            return attrs.evolve(state, pending=None, undelivered=None)
        case _:
            return state


def fold(events: Iterable[RecordedEvent], state: State = INITIAL) -> State:
    """The state after every event, in order."""
    for recorded in events:
        state = evolve(state, recorded)
    return state


def decide(state: State, command: Command) -> tuple[Event, ...]:
    """The events a command produces in this state (possibly none); raises EmptyMessage for blank text."""
    match command:
        case Start(sender=sender):
            return (*_register(state, sender), *_shaped(state, command.shaping))
        case Say(sender=sender, text=text, heard=heard):
            meant: Command = (
                RequestImage(sender=sender, prompt=text, heard=heard)
                if state.mode == "image" and not (command.photos or command.files)
                else Ask(
                    sender=sender,
                    text=text,
                    message_id=command.message_id,
                    sender_name=command.sender_name,
                    photos=command.photos,
                    files=command.files,
                    heard=heard,
                    shaping=command.shaping,
                )
            )
            return decide(state, meant)
        case Ask(sender=sender, text=text, message_id=message_id, sender_name=name):
            _require_text(text)
            asked = QuestionAsked(
                text=text,
                message_id=message_id,
                sender_name=name,
                sender_id=sender.user_id,
                photos=command.photos,
                files=command.files,
            )
            return (*_preamble(state, sender, command.shaping), *_abandon(state), *_heard(command.heard), asked)
        case Undo(sender=sender, question_version=asked):
            taken_back = TurnUndone(question_version=asked, reason="undo")
            return (*_preamble(state, sender, command.shaping), *_abandon(state), taken_back)
        case Redo(sender=sender, question_version=asked, answered=answered, text=text, message_id=message_id):
            undone = (TurnUndone(question_version=asked, reason="redo"),) if answered else ()
            again = QuestionAsked(
                text=text,
                message_id=message_id,
                sender_name=command.sender_name,
                sender_id=sender.user_id,
                photos=command.photos,
                files=command.files,
            )
            return (*_preamble(state, sender, command.shaping), *_abandon(state), *undone, again)
        case EditQuestion(sender=sender, question_version=asked, answered=answered, text=text):
            _require_text(text)
            undone = (TurnUndone(question_version=asked, reason="edit"),) if answered else ()
            asked_again = QuestionAsked(
                text=text, message_id=command.message_id, sender_name=command.sender_name, sender_id=sender.user_id
            )
            return (*_preamble(state, sender, command.shaping), *_abandon(state), *undone, asked_again)
        case RequestImage(sender=sender, prompt=prompt):
            _require_text(prompt)
            return (
                *_preamble(state, sender, command.shaping),
                *_abandon(state),
                *_heard(command.heard),
                ImageRequested(prompt=prompt, sender_id=sender.user_id),
            )
        case Reset(sender=sender):
            return (*_preamble(state, sender, command.shaping), *_abandon(state), ConversationReset())
        case SelectMode(sender=sender, mode=mode):
            if state.registered and mode == state.mode:
                return ()
            return (*_register(state, sender), ModeSelected(mode=mode))
        case SelectPersona(sender=sender, name=name, prompt=prompt):
            if state.registered and (name, prompt) == (state.persona_name, state.persona_prompt):
                return ()
            return (*_register(state, sender), PersonaSelected(name=name, prompt=prompt))
        case SelectModel(sender=sender, model=model):
            if state.registered and model == state.model:
                return ()
            return (*_register(state, sender), ModelSelected(model=model))
        case SelectLanguage(sender=sender, language=language):
            if state.registered and language == state.language:
                return ()
            return (*_register(state, sender), LanguageSelected(language=language))
        case SelectVoiceReplies(sender=sender, on=on):
            if state.registered and on == state.voice_replies:
                return ()
            return (*_register(state, sender), VoiceRepliesSelected(on=on))
        case FailTranscription(sender=sender):
            failed = TranscriptionFailed(
                kind=command.kind,
                message=command.message,
                model=command.model,
                file_unique_id=command.file_unique_id,
                sender_id=sender.user_id,
            )
            return (*_preamble(state, sender, command.shaping), failed)
        case _:
            return _decide_outcome(state, command)


def _decide_outcome(state: State, command: Command) -> tuple[Event, ...]:
    """An outcome is recorded only for the request still pending: a second answer to one question is dropped."""
    pending = state.pending
    match command:
        case GiveAnswer() if _waits(pending, "question", command.question_version):
            return (
                AnswerGiven(
                    text=command.text,
                    model=command.model,
                    prompt_tokens=command.prompt_tokens,
                    completion_tokens=command.completion_tokens,
                    latency_ms=command.latency_ms,
                    question_version=command.question_version,
                    reasoning=command.reasoning,
                    stopped=command.stopped,
                    cached_tokens=command.cached_tokens,
                    reasoning_tokens=command.reasoning_tokens,
                    asker_id=_asker(pending),
                    prompt_digest=command.prompt_digest,
                    prompt_budget=command.prompt_budget,
                ),
            )
        case FailAnswer() if _waits(pending, "question", command.question_version):
            return (
                AnswerFailed(
                    kind=command.kind,
                    message=command.message,
                    question_version=command.question_version,
                    reasoning=command.reasoning,
                    model=command.model,
                    prompt_tokens=command.prompt_tokens,
                    completion_tokens=command.completion_tokens,
                    cached_tokens=command.cached_tokens,
                    asker_id=_asker(pending),
                    prompt_digest=command.prompt_digest,
                    prompt_budget=command.prompt_budget,
                ),
            )
        case GiveImage() if _waits(pending, "image", command.request_version):
            return (
                ImageGenerated(
                    image_ref=command.image_ref,
                    model=command.model,
                    revised_prompt=command.revised_prompt,
                    request_version=command.request_version,
                    size=command.size,
                    quality=command.quality,
                    count=command.count,
                    asker_id=_asker(pending),
                ),
            )
        case FailImage() if _waits(pending, "image", command.request_version):
            return (ImageFailed(kind=command.kind, message=command.message, request_version=command.request_version),)
        case SpeakAnswer():
            spoken = AnswerSpoken(
                question_version=command.question_version,
                model=command.model,
                voice=command.voice,
                characters=command.characters,
                parts=command.parts,
                asker_id=command.asker_id,
            )
            return (spoken,) if state.registered else ()
        case MarkDelivered(request_version=request):
            return (ReplyDelivered(request_version=request),) if _owed(state, request) else ()
        case FailDelivery(request_version=request, reason=reason):
            return (DeliveryFailed(request_version=request, reason=reason),) if _owed(state, request) else ()
        case _:
            return ()


def _asker(pending: Pending | None) -> int | None:
    return None if pending is None else pending.asker_id


def _owed(state: State, request: int) -> bool:
    """Whether the user is still owed the outcome of this request."""
    return state.undelivered is not None and state.undelivered.version == request


def pending_from(kind: Literal["question", "image"], recorded: RecordedEvent, text: str) -> Pending:
    """The pending request a recorded question or image request opens."""
    asker = recorded.event.sender_id if isinstance(recorded.event, QuestionAsked | ImageRequested) else None
    return Pending(kind, recorded.version, text, recorded.causation_id, recorded.recorded_at, asker)


def _settle(state: State, kind: str, request: int, to_deliver: bool) -> State:
    if _waits(state.pending, kind, request):
        return attrs.evolve(state, pending=None, undelivered=state.pending if to_deliver else None)
    return state


def to_deliver(outcome: Event) -> bool:
    """Every outcome is sent to the user, except the closing of a request superseded by a newer one."""
    return not isinstance(outcome, AnswerFailed | ImageFailed) or outcome.kind != "abandoned"


def _waits(pending: Pending | None, kind: str, version: int) -> bool:
    return pending is not None and pending.kind == kind and pending.version == version


def _preamble(state: State, sender: Sender, shaping: PromptSettingsRecorded | None = None) -> tuple[Event, ...]:
    """Registration for a new stream; each setting restated when its last statement is far back; the prompt
    settings recorded when they changed."""
    if not state.registered:
        return (*_register(state, sender), *_shaped(state, shaping))
    far = state.version - MODE_HORIZON
    restated: list[Event] = []
    if state.mode_version <= far:
        restated.append(ModeSelected(mode=state.mode, restated=True))
    if state.persona_version <= far:
        restated.append(PersonaSelected(name=state.persona_name, prompt=state.persona_prompt, restated=True))
    if state.model_version <= far:
        restated.append(ModelSelected(model=state.model, restated=True))
    if state.language_version <= far:
        restated.append(LanguageSelected(language=state.language, restated=True))
    if state.voice_replies_version <= far:
        restated.append(VoiceRepliesSelected(on=state.voice_replies, restated=True))
    changed = _shaped(state, shaping)
    if state.shaping is not None and state.shaping_version <= far and not changed:
        restated.append(attrs.evolve(state.shaping, restated=True))
    return (*restated, *changed)


def _shaped(state: State, shaping: PromptSettingsRecorded | None) -> tuple[Event, ...]:
    """The prompt settings a question is asked under, recorded when the stream last recorded other ones."""
    if shaping is None or shaping.same_as(state.shaping):
        return ()
    return (attrs.evolve(shaping, restated=False),)


def _heard(transcript: VoiceTranscribed | None) -> tuple[Event, ...]:
    """The transcript a spoken request is, recorded right before it."""
    return () if transcript is None else (transcript,)


def _register(state: State, sender: Sender) -> tuple[Event, ...]:
    if state.registered:
        return ()
    return (
        UserRegistered(
            user_id=sender.user_id,
            username=sender.username,
            first_name=sender.first_name,
            language_code=sender.language_code,
        ),
    )


def _abandon(state: State) -> tuple[Event, ...]:
    """A new request or a reset closes a request that never got an outcome, so the log says what became of it."""
    pending = state.pending
    if pending is None:
        return ()
    message = "superseded before the model answered"
    if pending.kind == "question":
        return (AnswerFailed(kind="abandoned", message=message, question_version=pending.version),)
    return (ImageFailed(kind="abandoned", message=message, request_version=pending.version),)


_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))


def has_visible_text(text: str) -> bool:
    """False for text that shows nothing: empty, whitespace, zero-width characters."""
    return bool(text.translate(_INVISIBLE).strip())


def _require_text(text: str) -> None:
    if not has_visible_text(text):
        raise EmptyMessage("the message has no text")
