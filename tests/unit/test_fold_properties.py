"""Properties of the fold, the prompt and the tail readers, over every valid stream hypothesis can find."""

from __future__ import annotations

from collections.abc import Sequence

import attrs
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from domain.commands import (
    Ask,
    GiveAnswer,
    Redo,
    RequestImage,
    SelectLanguage,
    SelectMode,
    SelectModel,
    SelectPersona,
    SelectVoiceReplies,
    Sender,
    Undo,
)
from domain.conversation import INITIAL, MODE_HORIZON, decide, evolve, fold, has_visible_text
from domain.errors import QuestionTooLong
from domain.events import (
    ConversationReset,
    ImageRequested,
    ModeSelected,
    PersonaSelected,
    Photo,
    PromptSettingsRecorded,
    QuestionAsked,
    RecordedEvent,
    TurnUndone,
)
from domain.prompt import (
    PHOTO_MARK,
    Message,
    PromptPolicy,
    build_prompt,
    conversation_turns,
    estimate_tokens,
    message_cost,
    persona_before,
    prompt_cost,
    prompt_for,
    spoken,
    user_cost,
    user_message,
    with_persona,
)
from domain.tail import PromptTail, RecentTurns, StateTail, recent_turns
from tests.strategies import EPOCH, policies, recorded_events, states, streams, tail_read, visible_texts


def questions_in(stream: Sequence[RecordedEvent]) -> list[RecordedEvent]:
    return [e for e in stream if isinstance(e.event, QuestionAsked)]


def tail_prompt(stream: Sequence[RecordedEvent], question: RecordedEvent, policy: PromptPolicy) -> tuple[Message, ...]:
    """The tail reader's prompt, with the persona the bot takes from the state folded up to the question."""
    persona = fold(stream[: question.version - 1]).persona_prompt
    reader = PromptTail(question, with_persona(policy, persona))
    for recorded in reversed(stream[: question.version - 1]):
        if reader.done:
            break
        reader.feed(recorded)
    return reader.messages()


def prompt_or_none(stream, version, policy):
    try:
        return prompt_for(stream, version, policy)
    except QuestionTooLong:
        return None


@given(states, recorded_events)
def test_evolve_is_total_and_changes_only_what_its_event_concerns(state, recorded):
    after = evolve(state, recorded)  # total: any event applies to any state, reachable or not
    event = recorded.event
    assert after.version == recorded.version
    if isinstance(event, ModeSelected):
        assert (after.mode, after.mode_version) == (event.mode, recorded.version)
    else:
        assert (after.mode, after.mode_version) == (state.mode, state.mode_version)
    if isinstance(event, QuestionAsked | ImageRequested):
        assert after.pending is not None
        assert (after.pending.version, after.pending.causation_id) == (recorded.version, recorded.causation_id)
        assert after.undelivered is None
    else:
        assert after.pending in (state.pending, None)  # only a request opens one
        assert after.undelivered in (state.undelivered, state.pending, None)  # an outcome makes the pending owed


@given(streams())
def test_fold_is_deterministic(stream):
    assert fold(stream) == fold(list(stream))


@given(streams(), st.data())
def test_folding_in_two_parts_equals_folding_at_once(stream, data):
    split = data.draw(st.integers(min_value=0, max_value=len(stream)))
    assert fold(stream[split:], fold(stream[:split])) == fold(stream)


@given(streams(tagged=True), policies)
def test_nothing_before_the_last_reset_reaches_a_prompt(stream, policy):
    for question in questions_in(stream):
        prompt = prompt_or_none(stream, question.version, policy)
        if prompt is None:
            continue
        resets = [e.version for e in stream[: question.version] if isinstance(e.event, ConversationReset)]
        if not resets:
            continue
        before_reset = {_text(e) for e in stream[: resets[-1]] if _text(e) is not None}
        assert not before_reset & {m.content for m in prompt[1:]}


@given(streams(), policies)
def test_prompt_shape_is_persona_then_alternating_turns_then_question(stream, policy):
    for question in questions_in(stream):
        prompt = prompt_or_none(stream, question.version, policy)
        if prompt is None:
            continue
        assert prompt[0] == Message("system", with_persona(policy, persona_before(stream, question.version)).persona)
        assert [m.role for m in prompt[1:]] == ["user", "assistant"] * ((len(prompt) - 2) // 2) + ["user"]
        seeing = policy.vision_history > 0
        assert prompt[-1] == user_message(spoken(question.event), question.event.photos, seeing)


@given(streams(), policies)
def test_kept_turns_are_the_newest_and_fit_the_budget(stream, policy):
    for question in questions_in(stream):
        prompt = prompt_or_none(stream, question.version, policy)
        if prompt is None:
            persona = with_persona(policy, persona_before(stream, question.version)).persona
            seeing = policy.vision_history > 0
            asked = user_cost(spoken(question.event), question.event.photos, seeing, estimate_tokens)
            assert message_cost(persona, estimate_tokens) + asked > policy.budget
            continue
        assert prompt_cost(prompt, estimate_tokens) <= policy.budget
        floor = question.version - policy.lookback
        eligible = [t for t in conversation_turns(stream, before=question.version) if t.question_version > floor]
        kept = list(zip(prompt[1:-1:2], prompt[2:-1:2], strict=True))
        newest = eligible[len(eligible) - len(kept) :] if kept else []
        assert len(kept) == len(newest)
        for (user, assistant), turn in zip(kept, newest, strict=True):
            assert user == user_message(turn.question, turn.photos, seeing=bool(user.images))
            assert assistant.content == turn.answer


@given(streams(max_steps=60), policies)
def test_documents_reach_the_prompt_ahead_of_the_question(stream, policy):
    """What replay shows the model was sent: each document's text, in order, then the question's own text."""
    for question in questions_in(stream):
        prompt = prompt_or_none(stream, question.version, policy)
        if prompt is None:
            continue
        asked = prompt[-1].content
        at = 0
        for file in question.event.files:
            found = asked.find(file.text, at)
            assert found >= 0
            at = found + len(file.text)
        assert asked.endswith(question.event.text)


@given(st.lists(st.booleans(), min_size=1, max_size=8), st.integers(min_value=0, max_value=4))
def test_only_the_newest_turns_with_pictures_send_them(with_photo, vision_history):
    """Turns with and without a picture, all fitting a roomy budget: exactly the newest `vision_history` turns with
    a picture (the question counts) send it, every older one a mark, for the full fold and the tail read alike."""
    photo = Photo(file_id="f", file_unique_id="u", width=1, height=1, size=1, sha256="0" * 64)
    stream: list[RecordedEvent] = []
    for n, has_photo in enumerate(with_photo):
        stream = _record(stream, Ask(sender=SENDER, text=f"q{n}", photos=(photo,) if has_photo else ()))
        asked = stream[-1].version
        stream = _record(
            stream,
            GiveAnswer(
                question_version=asked, text=f"a{n}", model="m", prompt_tokens=1, completion_tokens=1, latency_ms=1
            ),
        )
    question = stream[-2]
    policy = PromptPolicy(budget=100_000, vision_history=vision_history)
    prompt = prompt_for(stream, question.version, policy)
    assert tail_prompt(stream, question, policy) == prompt
    users = [message for message in prompt if message.role == "user"]
    assert [bool(message.images) for message in users] == [
        has_photo and with_photo[index + 1 :].count(True) < vision_history for index, has_photo in enumerate(with_photo)
    ]
    assert all(
        message.content.startswith(PHOTO_MARK)
        for message, seen in zip(users, with_photo, strict=True)
        if seen and not message.images
    )


@given(streams(max_steps=60), policies)
def test_pictures_are_sent_for_the_newest_turns_that_have_them_only(stream, policy):
    """The newest `vision_history` user messages with pictures send them; every older one sends a mark instead."""
    for question in questions_in(stream):
        prompt = prompt_or_none(stream, question.version, policy)
        if prompt is None:
            continue
        users = [message for message in prompt if message.role == "user"]
        with_pictures = [message for message in users if message.images or message.content.startswith(PHOTO_MARK)]
        seeing = [bool(message.images) for message in reversed(with_pictures)]
        allowed = min(policy.vision_history, len(seeing))
        assert seeing == [True] * allowed + [False] * (len(seeing) - allowed)


@given(streams(max_steps=80), policies)
def test_tail_read_prompt_equals_full_fold_prompt(stream, policy):
    for question in questions_in(stream):
        full = prompt_or_none(stream, question.version, policy)
        if full is None:
            continue
        assert tail_prompt(stream, question, policy) == full


@given(streams(max_steps=80))
def test_tail_read_state_equals_full_fold_state(stream):
    """At every length of the stream (a delivery record, say, matters only until the next request)."""
    state = INITIAL
    for cut in range(len(stream) + 1):
        if cut:
            state = evolve(state, stream[cut - 1])
        reader = StateTail()
        for recorded in reversed(stream[:cut]):
            if reader.done:
                break
            reader.feed(recorded)
        assert reader.state() == state


_SOMEONE = Sender(user_id=7)
_SETTINGS = st.sampled_from(
    [
        SelectMode(sender=_SOMEONE, mode="image"),
        SelectPersona(sender=_SOMEONE, name="custom", prompt="Speak like a sailor."),
        SelectModel(sender=_SOMEONE, model="m-far"),
        SelectLanguage(sender=_SOMEONE, language="uk"),
        SelectVoiceReplies(sender=_SOMEONE, on=True),
    ]
)


@settings(max_examples=25, deadline=None)
@given(streams(max_steps=20), _SETTINGS, st.integers(min_value=0, max_value=30))
def test_a_setting_far_back_is_restated_and_found_by_a_short_tail_read(stream, setting, beyond):
    """A setting stated once and then buried under more than MODE_HORIZON events is still known to a tail read
    that stops within the horizon (the decider restates every setting), and the read equals the full fold."""
    shaping = PromptSettingsRecorded(persona="Be brief.", budget=3000, lookback=400, model="m-far")
    requests = [RequestImage(sender=_SOMEONE, prompt=f"p{i}", shaping=shaping) for i in range(MODE_HORIZON + beyond)]
    recorded = _record(stream, setting, *requests)
    state = fold(recorded)
    tail_state, read = tail_read(recorded)
    assert tail_state == state
    assert read <= MODE_HORIZON + 7  # six settings restated together, and the request they precede
    assert state.shaping is not None and state.shaping.same_as(shaping)
    known = {
        "mode": state.mode,
        "prompt": state.persona_prompt,
        "model": state.model,
        "language": state.language,
        "on": state.voice_replies,
    }
    field = next(name for name in known if hasattr(setting, name))
    assert known[field] == getattr(setting, field)


@given(streams(max_steps=80), st.integers(min_value=1, max_value=400))
def test_tail_read_recent_turns_equal_full_fold(stream, lookback):
    """What /undo, /redo and edits act on, read from the tail, at every length of the stream."""
    for cut in range(len(stream) + 1):
        reader = RecentTurns(lookback)
        for recorded in reversed(stream[:cut]):
            if reader.done:
                break
            reader.feed(recorded)
        assert (reader.latest_question, reader.newest_turn) == recent_turns(stream[:cut], lookback)


@given(streams(tagged=True), policies, visible_texts)
def test_undo_then_ask_equals_the_prompt_without_the_undone_turn(stream, policy, question):
    _, newest = recent_turns(stream, lookback=10**9)
    assume(newest is not None and has_visible_text(question))
    assert newest is not None
    turns = conversation_turns(stream)
    after = _record(stream, Undo(sender=SENDER, question_version=newest.version), Ask(sender=SENDER, text=question))
    asked = after[-1]
    assert [e.event for e in after if isinstance(e.event, TurnUndone)][-1].question_version == newest.version
    floor = asked.version - policy.lookback
    kept = [t for t in turns if t.question_version != newest.version and t.question_version > floor]
    try:
        expected = build_prompt(with_persona(policy, fold(stream).persona_prompt), kept, asked.event.text)
    except QuestionTooLong:
        return
    assert prompt_for(after, asked.version, policy) == expected
    assert tail_prompt(after, asked, policy) == expected


@given(streams(tagged=True), policies)
def test_redo_asks_with_the_prompt_the_old_answer_had(stream, policy):
    """Of the latest question, answered or failed; its old turn, if it had one, leaves the context. (An /undo or a
    new persona since then changed the context on purpose: that redo sees the context as it is now.)"""
    latest, _ = recent_turns(stream, lookback=10**9)
    assume(latest is not None and not latest.undone)
    assert latest is not None
    assume(not any(isinstance(e.event, TurnUndone | PersonaSelected) for e in stream[latest.version :]))
    roomy = attrs.evolve(policy, lookback=10**9)
    redo = Redo(
        sender=SENDER,
        question_version=latest.version,
        answered=latest.answered,
        text=latest.text,
        sender_name=latest.sender_name,
        photos=latest.photos,
        files=latest.files,
    )
    after = _record(stream, redo)
    redone = after[-1]
    assert isinstance(redone.event, QuestionAsked)
    try:
        original = prompt_for(stream, latest.version, roomy)
    except QuestionTooLong:
        return
    assert prompt_for(after, redone.version, roomy) == original
    assert tail_prompt(after, redone, roomy) == original
    assert latest.version not in {t.question_version for t in conversation_turns(after)}


SENDER = Sender(user_id=1)


def _record(stream: list[RecordedEvent], *commands) -> list[RecordedEvent]:
    """The stream with what the decider makes of the commands appended, as a store would record it."""
    recorded = list(stream)
    state = fold(recorded)
    for command in commands:
        for event in decide(state, command):
            item = RecordedEvent(
                stream="42",
                version=state.version + 1,
                recorded_at=EPOCH,
                causation_id=f"tg:x{state.version}",
                event=event,
            )
            recorded.append(item)
            state = evolve(state, item)
    return recorded


def _text(recorded: RecordedEvent) -> str | None:
    return getattr(recorded.event, "text", None)
