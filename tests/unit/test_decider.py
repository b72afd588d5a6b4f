"""The decider's rules, by example and by property."""

from __future__ import annotations

import pytest
from hypothesis import given

from domain.commands import Ask, FailAnswer, GiveAnswer, RequestImage, Reset, Say, SelectMode, Sender, Start
from domain.conversation import INITIAL, MODE_HORIZON, decide, fold
from domain.errors import EmptyMessage
from domain.events import (
    AnswerFailed,
    ConversationReset,
    ImageRequested,
    ModeSelected,
    PromptSettingsRecorded,
    QuestionAsked,
    UserRegistered,
)
from tests.strategies import run_script, senders, streams, tail_read, texts

ADA = Sender(user_id=7, username=None, first_name="Ada", language_code="en")


def test_ask_from_an_unknown_user_registers_them_first():
    assert decide(INITIAL, Ask(sender=ADA, text="hi")) == (
        UserRegistered(user_id=7, username=None, first_name="Ada", language_code="en"),
        QuestionAsked(text="hi", sender_id=7),
    )


def test_start_for_a_registered_user_decides_nothing():
    state = fold(run_script([Start(sender=ADA)], ADA))
    assert state.registered
    assert decide(state, Start(sender=ADA)) == ()


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_blank_questions_and_prompts_are_refused(text):
    with pytest.raises(EmptyMessage):
        decide(INITIAL, Ask(sender=ADA, text=text))
    with pytest.raises(EmptyMessage):
        decide(INITIAL, RequestImage(sender=ADA, prompt=text))


def test_the_mode_is_folded_from_events():
    stream = run_script([SelectMode(sender=ADA, mode="image"), Ask(sender=ADA, text="hi"), Reset(sender=ADA)], ADA)
    assert fold(stream).mode == "image"
    assert decide(fold(stream), SelectMode(sender=ADA, mode="image")) == ()


def test_a_new_request_closes_an_unanswered_one():
    state = fold(run_script([Ask(sender=ADA, text="first")], ADA))
    assert decide(state, RequestImage(sender=ADA, prompt="cat")) == (
        AnswerFailed(kind="abandoned", message="superseded before the model answered", question_version=2),
        ImageRequested(prompt="cat", sender_id=7),
    )
    assert decide(state, Reset(sender=ADA))[-1] == ConversationReset()


def test_an_outcome_is_recorded_once():
    state = fold(run_script([Ask(sender=ADA, text="q")], ADA))
    answer = GiveAnswer(question_version=2, text="a", model="m", prompt_tokens=1, completion_tokens=1, latency_ms=1)
    assert len(decide(state, answer)) == 1
    answered = fold(run_script([Ask(sender=ADA, text="q"), answer], ADA))
    assert decide(answered, answer) == ()
    assert decide(answered, FailAnswer(question_version=2, kind="timeout", message="late")) == ()


def test_the_settings_are_restated_so_tail_reads_stay_short():
    shaping = PromptSettingsRecorded(persona="Be brief.", budget=3072, lookback=2000, model="m")
    stream = run_script(
        [SelectMode(sender=ADA, mode="image")]
        + [RequestImage(sender=ADA, prompt=f"p{i}", shaping=shaping) for i in range(MODE_HORIZON)],
        ADA,
    )
    restated = [e for e in stream if isinstance(e.event, ModeSelected) and e.event.restated]
    assert restated
    assert restated[0].event.mode == "image"
    tail_state, read = tail_read(stream)
    assert tail_state == fold(stream)
    assert read <= MODE_HORIZON + 7  # the mode, persona, model, language, voice and prompt settings restated together
    assert any(isinstance(e.event, PromptSettingsRecorded) and e.event.restated for e in stream)


@given(streams(), senders)
def test_every_user_command_on_a_registered_stream_keeps_it_registered(stream, sender):
    state = fold(stream)
    for command in (Start(sender=sender), Reset(sender=sender), SelectMode(sender=sender, mode="chat")):
        events = decide(state, command)
        if state.registered:
            assert not any(isinstance(e, UserRegistered) for e in events)
        else:
            assert events
            assert isinstance(events[0], UserRegistered)


@given(streams(), senders, texts)
def test_plain_text_means_what_the_mode_says(stream, sender, text):
    """`Say` is a question in chat mode and a picture prompt in image mode, decided on the folded state."""
    state = fold(stream)
    meant = RequestImage(sender=sender, prompt=text) if state.mode == "image" else Ask(sender=sender, text=text)
    try:
        expected = decide(state, meant)
    except EmptyMessage:
        with pytest.raises(EmptyMessage):
            decide(state, Say(sender=sender, text=text))
        return
    assert decide(state, Say(sender=sender, text=text)) == expected
