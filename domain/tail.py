"""Tail reading: state and prompt from the newest events alone, read backwards, stopping as early as possible.

A stream may hold 100,000 events; handling a message must not read them. Both readers here take events newest
first, one at a time, and say when they have seen enough; what they return equals the full fold of `domain.
conversation` and `domain.prompt` over the whole stream (the property tests hold them to that).
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from domain.conversation import Pending, State, pending_from, to_deliver
from domain.errors import DomainError
from domain.events import (
    AnswerFailed,
    AnswerGiven,
    ConversationReset,
    DeliveryFailed,
    FileText,
    ImageFailed,
    ImageGenerated,
    ImageRequested,
    LanguageSelected,
    Mode,
    ModelSelected,
    ModeSelected,
    PersonaSelected,
    Photo,
    PromptSettingsRecorded,
    QuestionAsked,
    RecordedEvent,
    ReplyDelivered,
    TurnUndone,
    VoiceRepliesSelected,
)
from domain.prompt import (
    Message,
    PromptPolicy,
    Sight,
    TokenCounter,
    Turn,
    assemble,
    conversation_turns,
    estimate_tokens,
    history_budget,
    spoken,
    turn_cost,
    turn_of,
)


class _Backwards:
    """Checks that events arrive newest first with no gaps."""

    def __init__(self, below: int | None) -> None:
        self._next: int | None = None if below is None else below - 1

    def check(self, recorded: RecordedEvent) -> None:
        if self._next is not None and recorded.version != self._next:
            raise DomainError(f"tail read expected version {self._next}, got {recorded.version}")
        self._next = recorded.version - 1


class StateTail:
    """Folds a stream read newest first into its State.

    Done once it knows each setting (the newest ModeSelected, PersonaSelected, ModelSelected, LanguageSelected,
    VoiceRepliesSelected and PromptSettingsRecorded, or the stream's start) and the newest request since the last
    reset. The decider restates each setting every MODE_HORIZON versions, so that is a short read.
    """

    def __init__(self) -> None:
        self._order = _Backwards(None)
        self._version = 0
        self._mode: Mode | None = None
        self._mode_version = 0
        self._persona: PersonaSelected | None = None
        self._persona_version = 0
        self._model: ModelSelected | None = None
        self._model_version = 0
        self._language: LanguageSelected | None = None
        self._language_version = 0
        self._voice: VoiceRepliesSelected | None = None
        self._voice_version = 0
        self._shaping: PromptSettingsRecorded | None = None
        self._shaping_version = 0
        self._at_start = False
        self._request_known = False
        self._pending: Pending | None = None
        self._undelivered: Pending | None = None
        self._settled: dict[tuple[str, int], bool] = {}
        self._delivered: set[int] = set()

    @property
    def done(self) -> bool:
        """True once older events cannot change the state."""
        settings = (self._mode, self._persona, self._model, self._language, self._voice, self._shaping)
        settings_known = all(setting is not None for setting in settings)
        return self._request_known and (settings_known or self._at_start)

    def feed(self, recorded: RecordedEvent) -> None:
        """Take the next older event."""
        self._order.check(recorded)
        self._version = self._version or recorded.version
        event = recorded.event
        if self._mode is None and isinstance(event, ModeSelected):
            self._mode, self._mode_version = event.mode, recorded.version
        if self._persona is None and isinstance(event, PersonaSelected):
            self._persona, self._persona_version = event, recorded.version
        if self._model is None and isinstance(event, ModelSelected):
            self._model, self._model_version = event, recorded.version
        if self._language is None and isinstance(event, LanguageSelected):
            self._language, self._language_version = event, recorded.version
        if self._voice is None and isinstance(event, VoiceRepliesSelected):
            self._voice, self._voice_version = event, recorded.version
        if self._shaping is None and isinstance(event, PromptSettingsRecorded):
            self._shaping, self._shaping_version = event, recorded.version
        if not self._request_known:
            self._track_request(recorded)
        if recorded.version == 1:
            self._at_start = self._request_known = True

    def _track_request(self, recorded: RecordedEvent) -> None:
        """Outcomes and deliveries are newer than their request, so they are known by the time it is reached."""
        event = recorded.event
        match event:
            case ConversationReset():
                self._request_known = True
            case AnswerGiven(question_version=asked) | AnswerFailed(question_version=asked):
                self._settled[("question", asked)] = to_deliver(event)
            case ImageGenerated(request_version=asked) | ImageFailed(request_version=asked):
                self._settled[("image", asked)] = to_deliver(event)
            case ReplyDelivered(request_version=asked) | DeliveryFailed(request_version=asked):
                self._delivered.add(asked)
            case QuestionAsked(text=text):
                self._reach_request(pending_from("question", recorded, text))
            case ImageRequested(prompt=prompt):
                self._reach_request(pending_from("image", recorded, prompt))

    def _reach_request(self, request: Pending) -> None:
        self._request_known = True
        to_deliver = self._settled.get((request.kind, request.version))
        if to_deliver is None:
            self._pending = request
        elif to_deliver and request.version not in self._delivered:
            self._undelivered = request

    def state(self) -> State:
        """The state; call when done or after the stream's oldest event (or none) was fed."""
        persona = self._persona or PersonaSelected(name="default", prompt=None)
        return State(
            version=self._version,
            mode=self._mode or "chat",
            mode_version=self._mode_version,
            persona_name=persona.name,
            persona_prompt=persona.prompt,
            persona_version=self._persona_version,
            model=self._model.model if self._model is not None else None,
            model_version=self._model_version,
            language=self._language.language if self._language is not None else None,
            language_version=self._language_version,
            voice_replies=self._voice.on if self._voice is not None else False,
            voice_replies_version=self._voice_version,
            shaping=self._shaping,
            shaping_version=self._shaping_version,
            pending=self._pending,
            undelivered=self._undelivered,
        )


class PromptTail:
    """Builds the prompt for a recorded question from the events before it, read newest first.

    Done at the last reset, at the policy's lookback, at the stream's start, or when the next older turn would
    not fit the budget.
    """

    def __init__(self, question: RecordedEvent, policy: PromptPolicy, count: TokenCounter = estimate_tokens) -> None:
        if not isinstance(question.event, QuestionAsked):
            raise DomainError(f"version {question.version} is not a question")
        self._question = spoken(question.event)
        self._photos = question.event.photos
        self._policy = policy
        self._count = count
        self._sight = Sight(policy.vision_history)
        self._budget = history_budget(policy, self._question, count, self._photos, self._sight.sees(self._photos))
        self._floor = question.version - policy.lookback
        self._order = _Backwards(question.version)
        self._answers: dict[int, str] = {}
        self._undone: set[int] = set()
        self._kept: list[Turn] = []
        self._done = question.version == 1

    @property
    def done(self) -> bool:
        """True once older events cannot change the prompt."""
        return self._done

    def feed(self, recorded: RecordedEvent) -> None:
        """Take the next older event."""
        if self._done:
            return
        self._order.check(recorded)
        if recorded.version <= self._floor:
            self._done = True
            return
        match recorded.event:
            case ConversationReset():
                self._done = True
            case AnswerGiven(text=answer, question_version=asked):
                self._answers[asked] = answer
            case TurnUndone(question_version=asked):
                self._undone.add(asked)
            case QuestionAsked() if recorded.version in self._answers and recorded.version not in self._undone:
                self._keep(turn_of(recorded.version, recorded.event, self._answers.pop(recorded.version)))
        if recorded.version == 1:
            self._done = True

    def _keep(self, turn: Turn) -> None:
        cost = turn_cost(turn, self._count, self._sight.sees(turn.photos))
        if cost > self._budget:
            self._done = True
            return
        self._budget -= cost
        self._kept.append(turn)

    @property
    def turns(self) -> tuple[Turn, ...]:
        """The turns the prompt keeps, oldest first."""
        return tuple(self._kept[::-1])

    def messages(self) -> tuple[Message, ...]:
        """The prompt; call when done or after the stream's oldest event was fed."""
        return assemble(self._policy, self._kept[::-1], self._question, self._photos)


@attrs.frozen
class AskedQuestion:
    """A question of the current context, as turn control needs it."""

    version: int
    """Stream version of the QuestionAsked."""
    text: str
    """The question's text."""
    message_id: int | None
    """The front end's id of the message that asked it."""
    answered: bool
    """Whether its turn is in the context: answered, and not undone."""
    undone: bool = False
    """Whether it was taken out of the context (by /undo, /redo or an edit)."""
    sender_name: str | None = None
    """Who asked it, as the group showed them."""
    photos: tuple[Photo, ...] = ()
    """The pictures it was asked with."""
    files: tuple[FileText, ...] = ()
    """The documents it was asked with."""


class RecentTurns:
    """Finds, reading newest first, what /undo, /redo and edits act on: the latest question since the last reset,
    and the newest turn still in the context. Never reads behind the last reset or further than `lookback`
    versions back (older turns are in no prompt anyway)."""

    def __init__(self, lookback: int) -> None:
        self._order = _Backwards(None)
        self._lookback = lookback
        self._floor: int | None = None
        self._answered: set[int] = set()
        self._undone: set[int] = set()
        self._latest: AskedQuestion | None = None
        self._newest_turn: AskedQuestion | None = None
        self._done = False

    @property
    def done(self) -> bool:
        """True once older events cannot change what was found."""
        return self._done

    @property
    def latest_question(self) -> AskedQuestion | None:
        """The newest question since the last reset, answered or not."""
        return self._latest

    @property
    def newest_turn(self) -> AskedQuestion | None:
        """The newest answered question whose turn is still in the context."""
        return self._newest_turn

    def feed(self, recorded: RecordedEvent) -> None:
        """Take the next older event."""
        if self._done:
            return
        self._order.check(recorded)
        if self._floor is None:
            self._floor = recorded.version - self._lookback
        if recorded.version <= self._floor:
            self._done = True
            return
        match recorded.event:
            case ConversationReset():
                self._done = True
            case AnswerGiven(question_version=asked):
                self._answered.add(asked)
            case TurnUndone(question_version=asked):
                self._undone.add(asked)
            case QuestionAsked(text=text, message_id=message_id, sender_name=name, photos=photos, files=files):
                undone = recorded.version in self._undone
                answered = recorded.version in self._answered and not undone
                question = AskedQuestion(recorded.version, text, message_id, answered, undone, name, photos, files)
                self._latest = self._latest or question
                if answered:
                    self._newest_turn = question
                    self._done = True
        if recorded.version == 1:
            self._done = True


def recent_turns(events: Sequence[RecordedEvent], lookback: int) -> tuple[AskedQuestion | None, AskedQuestion | None]:
    """What RecentTurns finds, folded forwards from the whole stream: (latest question, newest turn)."""
    if not events:
        return None, None
    floor = events[-1].version - lookback
    since_reset = [
        recorded
        for recorded in events
        if recorded.version > max(floor, _last_reset(events)) and isinstance(recorded.event, QuestionAsked)
    ]
    in_context = {turn.question_version for turn in conversation_turns(events)}
    undone = {recorded.event.question_version for recorded in events if isinstance(recorded.event, TurnUndone)}
    asked = [
        AskedQuestion(
            recorded.version,
            recorded.event.text,
            recorded.event.message_id,
            answered=recorded.version in in_context,
            undone=recorded.version in undone,
            sender_name=recorded.event.sender_name,
            photos=recorded.event.photos,
            files=recorded.event.files,
        )
        for recorded in since_reset
        if isinstance(recorded.event, QuestionAsked)
    ]
    answered = [question for question in asked if question.answered]
    return (asked[-1] if asked else None), (answered[-1] if answered else None)


def _last_reset(events: Sequence[RecordedEvent]) -> int:
    return max((recorded.version for recorded in events if isinstance(recorded.event, ConversationReset)), default=0)
