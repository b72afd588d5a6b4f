"""The prompt: the persona, the conversation since the last reset, the question — cut to a token budget.

The persona is the chat's (its newest PersonaSelected before the question; a reset keeps it), else the policy's.
A question recorded with its sender's name (in a group) is put to the model as `Name: text`.

Rules, the same for the full fold here and the tail reader in `domain.tail`:
- a turn is a question with its answer; questions that failed, were abandoned or are still waiting are left out;
- an undone turn (/undo, /redo, an edited question) is left out, whenever its undoing was recorded;
- nothing before the last reset, and nothing older than `lookback` versions before the question, is included;
- whole turns are dropped oldest-first until the prompt fits the budget, so the kept turns are always the newest;
- a question that cannot fit with the persona alone raises QuestionTooLong;
- a question's documents are put to the model ahead of its text; its pictures are sent as pictures for the newest
  `vision_history` turns that have any (the question counts), and older ones become a `[photo]` mark.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Literal, TypeAlias

import attrs

from domain.errors import DomainError, QuestionTooLong
from domain.events import (
    AnswerGiven,
    ConversationReset,
    FileText,
    PersonaSelected,
    Photo,
    PromptSettingsRecorded,
    QuestionAsked,
    RecordedEvent,
    TurnUndone,
)

Role: TypeAlias = Literal["system", "user", "assistant"]
TokenCounter: TypeAlias = Callable[[str], int]

MESSAGE_OVERHEAD = 4
"""Tokens the chat format spends on each message besides its content (role and separators)."""

DEFAULT_PERSONA = "You are a helpful assistant that provides accurate information."

IMAGE_TOKENS = 765
"""Tokens a picture is counted as against the budget: what OpenAI bills a 1024x1024 picture in detail."""

PHOTO_MARK = "[photo]"
"""What stands for a picture the prompt no longer sends."""


@attrs.frozen
class ImagePart:
    """A picture of a prompt's message: which one, and its bytes once fetched (the fold never has them)."""

    photo: Photo
    """The picture as the log recorded it."""
    data: bytes | None = attrs.field(default=None, eq=False, repr=False)
    """Its bytes, filled in just before the model is asked."""


@attrs.frozen
class Message:
    """One chat message of a prompt."""

    role: Role
    """Who speaks: the system persona, the user or the assistant."""
    content: str
    """What is said."""
    images: tuple[ImagePart, ...] = ()
    """Pictures the user sent with it, sent as pictures."""


@attrs.frozen
class Turn:
    """A question and the answer it got."""

    question_version: int
    """Stream version of the question."""
    question: str
    """The question's text, as the model reads it (with its documents' text)."""
    answer: str
    """The answer's text."""
    photos: tuple[Photo, ...] = ()
    """Pictures sent with the question."""


@attrs.frozen
class PromptPolicy:
    """How prompts are built: who the assistant is and how much it may be sent."""

    persona: str = DEFAULT_PERSONA
    """The system message that opens every prompt."""
    budget: int = 3072
    """Most tokens a prompt may take, counted with the injected counter."""
    lookback: int = 2000
    """Most stream versions before the question a turn may lie; bounds the work of reading a long stream."""
    vision_history: int = 1
    """How many of the newest turns with pictures send them as pictures (0: none, for a model that cannot see)."""


_PIECE = re.compile(r"[A-Za-z]*[0-9][A-Za-z0-9]*|[^\W\d_]+|\d+|\n+|[^\S\n]+|[^\w\s]+")
"""Runs a BPE tokenizer treats alike: ASCII runs with digits (numbers, hex, ids), words of any script, other digits,
line breaks, other white space, and runs of punctuation or symbols."""
_CJK = re.compile("[\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\u3040-\u30ff]")
_DENSE = re.compile("[\u0590-\u0fff]")
"""Hebrew, Arabic, the Indic scripts, Thai, Tibetan: about one token per letter in OpenAI's vocabularies."""


def spoken(question: QuestionAsked) -> str:
    """A question as the model reads it: its documents first, then its text, prefixed with its sender's name where
    the group has several speakers."""
    said = f"{question.sender_name}: {question.text}" if question.sender_name else question.text
    return "".join(document_block(file) + "\n\n" for file in question.files) + said


def document_block(file: FileText) -> str:
    """A document's text as the model reads it, named, with a note saying what was cut."""
    cut = f"\n[{file.dropped_chars} more characters of this file were cut to fit]" if file.dropped_chars else ""
    return f'<file name="{file.name}">\n{file.text}{cut}\n</file>'


def turn_of(version: int, question: QuestionAsked, answer: str) -> Turn:
    """The turn a question recorded at `version` makes with its answer."""
    return Turn(version, spoken(question), answer, question.photos)


def with_persona(policy: PromptPolicy, persona: str | None) -> PromptPolicy:
    """The policy with the chat's persona in place of the default (None: the default stays)."""
    return policy if persona is None else attrs.evolve(policy, persona=persona)


def estimate_tokens(text: str) -> int:
    """A deterministic stand-in for a BPE tokenizer: never far below one, not far above one for any script.

    Measured against tiktoken's cl100k_base (`python -m bench.tokens`): English 1.12x, German 0.93x, Russian 1.17x,
    Chinese 1.02x, Japanese 1.04x, Arabic 1.06x, code 1.14x, hex 1.04x, digits 1.33x, emoji 1.15x. Digits and
    symbols are counted on the generous side, since other models' tokenizers split them finer still.
    """
    return sum(_piece_tokens(piece) for piece in _PIECE.findall(text))


def _piece_tokens(piece: str) -> int:
    first = piece[0]
    if piece.isascii() and first.isalnum() and not piece.isalpha():
        return math.ceil(len(piece) / 1.8)
    if first == "\n":
        return len(piece)
    if first.isspace():
        return 0 if len(piece) == 1 else math.ceil(len(piece) / 4)
    if first.isalpha() or first.isdigit():
        if piece.isascii():
            return 1 if len(piece) <= 6 else math.ceil(len(piece) / 4)
        cjk = len(_CJK.findall(piece))
        dense = len(_DENSE.findall(piece))
        ascii_letters = sum(1 for char in piece if char.isascii())
        other = len(piece) - cjk - dense - ascii_letters
        return max(1, math.ceil(cjk + dense / 1.1 + other / 1.8 + ascii_letters / 4))
    if piece.isascii():
        return math.ceil(len(piece) / 2)
    return max(1, math.ceil(len(piece.encode()) * 0.75))


def message_cost(content: str, count: TokenCounter) -> int:
    """Tokens one message takes in a prompt."""
    return count(content) + MESSAGE_OVERHEAD


def prompt_digest(messages: Iterable[Message]) -> str:
    """SHA-256 (hex) of a prompt: each message's role, content and the hashes of its pictures, in order. Recorded
    with each answer, it lets replay prove the prompt it rebuilds is the one that was sent."""
    shape = [[m.role, m.content, [image.photo.sha256 for image in m.images]] for m in messages]
    return hashlib.sha256(json.dumps(shape, ensure_ascii=False, separators=(",", ":")).encode()).hexdigest()


def shaped_policy(shaping: PromptSettingsRecorded, persona: str | None, budget: int = 0) -> PromptPolicy:
    """The policy a recorded shaping gives, with the chat's own persona (None: the shaping's) and the budget the
    prompt was actually folded to when it was recorded with the answer (0: the shaping's)."""
    return PromptPolicy(
        persona=shaping.persona if persona is None else persona,
        budget=budget or shaping.budget,
        lookback=shaping.lookback,
        vision_history=shaping.vision_history,
    )


def prompt_cost(messages: Iterable[Message], count: TokenCounter) -> int:
    """Tokens a whole prompt takes, its pictures counted as IMAGE_TOKENS each."""
    return sum(message_cost(message.content, count) + IMAGE_TOKENS * len(message.images) for message in messages)


def user_message(text: str, photos: Sequence[Photo], seeing: bool) -> Message:
    """A user's message: with its pictures when the model is to see them, else with a mark for each."""
    if seeing or not photos:
        return Message("user", text, tuple(ImagePart(photo) for photo in photos))
    return Message("user", " ".join([PHOTO_MARK] * len(photos)) + " " + text)


def user_cost(text: str, photos: Sequence[Photo], seeing: bool, count: TokenCounter) -> int:
    """Tokens a user's message takes in a prompt, its pictures counted as IMAGE_TOKENS each."""
    message = user_message(text, photos, seeing)
    return message_cost(message.content, count) + IMAGE_TOKENS * len(message.images)


def turn_cost(turn: Turn, count: TokenCounter, seeing: bool = False) -> int:
    """Tokens a turn (question and answer) takes in a prompt."""
    return user_cost(turn.question, turn.photos, seeing, count) + message_cost(turn.answer, count)


class Sight:
    """Which turns, newest first, still send their pictures: the newest `vision_history` that have any."""

    def __init__(self, vision_history: int) -> None:
        self._left = vision_history

    def sees(self, photos: Sequence[Photo]) -> bool:
        """Whether the next older message with these pictures sends them (a message without any sends none)."""
        if not photos or self._left <= 0:
            return False
        self._left -= 1
        return True


def history_budget(
    policy: PromptPolicy, question: str, count: TokenCounter, photos: Sequence[Photo] = (), seeing: bool = False
) -> int:
    """Tokens left for past turns once the persona and the question are in; raises QuestionTooLong if none."""
    fixed = message_cost(policy.persona, count) + user_cost(question, photos, seeing, count)
    if fixed > policy.budget:
        raise QuestionTooLong(fixed, policy.budget)
    return policy.budget - fixed


def newest_fitting(
    turns_newest_first: Iterable[Turn], budget: int, count: TokenCounter, sight: Sight | None = None
) -> list[Turn]:
    """The longest run of newest turns whose cost fits the budget, newest first."""
    sight = sight or Sight(0)
    kept: list[Turn] = []
    for turn in turns_newest_first:
        cost = turn_cost(turn, count, sight.sees(turn.photos))
        if cost > budget:
            break
        budget -= cost
        kept.append(turn)
    return kept


def assemble(
    policy: PromptPolicy, turns: Sequence[Turn], question: str, photos: Sequence[Photo] = ()
) -> tuple[Message, ...]:
    """The prompt's messages: persona, turns oldest-first as user/assistant pairs, the question last; the newest
    `vision_history` messages with pictures send them."""
    sight = Sight(policy.vision_history)
    newest_first = [user_message(question, photos, sight.sees(photos))]
    for turn in reversed(turns):
        asked = user_message(turn.question, turn.photos, sight.sees(turn.photos))
        newest_first += [Message("assistant", turn.answer), asked]
    return (Message("system", policy.persona), *reversed(newest_first))


def build_prompt(
    policy: PromptPolicy,
    turns: Sequence[Turn],
    question: str,
    count: TokenCounter = estimate_tokens,
    photos: Sequence[Photo] = (),
) -> tuple[Message, ...]:
    """The prompt for a question after these turns (oldest first), fitted to the policy's budget."""
    sight = Sight(policy.vision_history)
    budget = history_budget(policy, question, count, photos, sight.sees(photos))
    kept = newest_fitting(reversed(turns), budget, count, sight)
    return assemble(policy, kept[::-1], question, photos)


def conversation_turns(events: Iterable[RecordedEvent], before: int | None = None) -> list[Turn]:
    """Answered turns since the last reset and not undone, oldest first, among events older than version `before`."""
    questions: dict[int, QuestionAsked] = {}
    turns: list[Turn] = []
    undone: set[int] = set()
    for recorded in events:
        if before is not None and recorded.version >= before:
            break
        match recorded.event:
            case ConversationReset():
                questions.clear()
                turns.clear()
                undone.clear()
            case QuestionAsked():
                questions[recorded.version] = recorded.event
            case AnswerGiven(text=answer, question_version=asked) if asked in questions and asked not in undone:
                turns.append(turn_of(asked, questions.pop(asked), answer))
            case TurnUndone(question_version=asked):
                undone.add(asked)
                turns = [turn for turn in turns if turn.question_version != asked]
    return sorted(turns, key=lambda turn: turn.question_version)


def prompt_for(
    events: Sequence[RecordedEvent],
    question_version: int,
    policy: PromptPolicy,
    count: TokenCounter = estimate_tokens,
) -> tuple[Message, ...]:
    """The prompt for the question recorded at `question_version`, folded from the whole stream."""
    question = next((e.event for e in events if e.version == question_version), None)
    if not isinstance(question, QuestionAsked):
        raise DomainError(f"version {question_version} is not a question")
    floor = question_version - policy.lookback
    turns = [t for t in conversation_turns(events, before=question_version) if t.question_version > floor]
    chat_policy = with_persona(policy, persona_before(events, question_version))
    return build_prompt(chat_policy, turns, spoken(question), count, question.photos)


def persona_before(events: Iterable[RecordedEvent], version: int) -> str | None:
    """The chat's own system prompt as of the event at `version` (None: the operator's default)."""
    persona: str | None = None
    for recorded in events:
        if recorded.version >= version:
            break
        if isinstance(recorded.event, PersonaSelected):
            persona = recorded.event.prompt
    return persona


@attrs.frozen
class ModelPrompts:
    """How a prompt is folded for each chat model a chat may pick: the budget and the token count follow the model.

    The default model (None) folds with `policy` and `count`; another model with its own budget and counter where
    it has them, else the default's."""

    policy: PromptPolicy
    """Persona, budget and lookback of prompts to the default model."""
    count: TokenCounter = estimate_tokens
    """Counts tokens of prompts to the default model."""
    budgets: Mapping[str, int] = attrs.field(factory=dict)
    """The prompt budgets of the other models that have their own, by name."""
    counters: Mapping[str, TokenCounter] = attrs.field(factory=dict)
    """The token counters of the other models, by name."""

    def policy_for(self, model: str | None) -> PromptPolicy:
        """The policy of prompts to `model` (None: the default)."""
        budget = self.budgets.get(model) if model is not None else None
        return self.policy if budget is None else attrs.evolve(self.policy, budget=budget)

    def count_for(self, model: str | None) -> TokenCounter:
        """How a prompt to `model` (None: the default) is counted against its budget."""
        return self.counters.get(model, self.count) if model is not None else self.count
