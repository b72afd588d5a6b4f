"""The decider's rules, by example and by property."""

from __future__ import annotations

import pytest
from hypothesis import given

from domain.commands import Ask, FailAnswer, GiveAnswer, RequestImage, Reset, SelectMode, Sender, Start
from domain.conversation import INITIAL, MODE_HORIZON, decide, fold
from domain.errors import EmptyMessage
from domain.events import AnswerFailed, ConversationReset, ImageRequested, ModeSelected, QuestionAsked, UserRegistered
from domain.tail import StateTail
from tests.strategies import run_script, senders, streams

ADA = Sender(7, None, "Ada", "en")


def test_ask_from_an_unknown_user_registers_them_first():
    assert decide(INITIAL, Ask(ADA, "hi")) == (UserRegistered(7, None, "Ada", "en"), QuestionAsked("hi"))


def test_start_for_a_registered_user_decides_nothing():
    state = fold(run_script([Start(ADA)], ADA))
    assert state.registered
    assert decide(state, Start(ADA)) == ()


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_blank_questions_and_prompts_are_refused(text):
    with pytest.raises(EmptyMessage):
        decide(INITIAL, Ask(ADA, text))
    with pytest.raises(EmptyMessage):
        decide(INITIAL, RequestImage(ADA, text))


def test_the_mode_is_folded_from_events():
    stream = run_script([SelectMode(ADA, "image"), Ask(ADA, "hi"), Reset(ADA)], ADA)
    assert fold(stream).mode == "image"
    assert decide(fold(stream), SelectMode(ADA, "image")) == ()


def test_a_new_request_closes_an_unanswered_one():
    state = fold(run_script([Ask(ADA, "first")], ADA))
    assert decide(state, RequestImage(ADA, "cat")) == (
        AnswerFailed("abandoned", "superseded before the model answered", 2),
        ImageRequested("cat"),
    )
    assert decide(state, Reset(ADA))[-1] == ConversationReset()


def test_an_outcome_is_recorded_once():
    state = fold(run_script([Ask(ADA, "q")], ADA))
    answer = GiveAnswer(2, "a", "m", 1, 1, 1)
    assert len(decide(state, answer)) == 1
    answered = fold(run_script([Ask(ADA, "q"), answer], ADA))
    assert decide(answered, answer) == ()
    assert decide(answered, FailAnswer(2, "timeout", "late")) == ()


def test_the_mode_is_restated_so_tail_reads_stay_short():
    stream = run_script([SelectMode(ADA, "image")] + [RequestImage(ADA, f"p{i}") for i in range(MODE_HORIZON)], ADA)
    restated = [e for e in stream if isinstance(e.event, ModeSelected) and e.event.restated]
    assert restated
    assert restated[0].event.mode == "image"
    reader = StateTail()
    read = 0
    for recorded in reversed(stream):
        if reader.done:
            break
        reader.feed(recorded)
        read += 1
    assert reader.state() == fold(stream)
    assert read <= MODE_HORIZON + 2


@given(streams(), senders)
def test_every_user_command_on_a_registered_stream_keeps_it_registered(stream, sender):
    state = fold(stream)
    for command in (Start(sender), Reset(sender), SelectMode(sender, "chat")):
        events = decide(state, command)
        if state.registered:
            assert not any(isinstance(e, UserRegistered) for e in events)
        else:
            assert events
            assert isinstance(events[0], UserRegistered)
