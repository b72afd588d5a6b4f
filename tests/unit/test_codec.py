"""Events to documents and back: exact round trips, upcasting, and clear errors for malformed documents."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.codec import (
    SCHEMA_VERSIONS,
    event_from_document,
    event_to_document,
    recorded_from_document,
    recorded_to_document,
)
from domain.errors import MalformedDocument, UnknownEventType
from domain.events import EVENT_TYPES, UserRegistered
from tests.strategies import events, recorded_events


@given(events)
def test_every_event_round_trips_through_json(event):
    document = json.loads(json.dumps(event_to_document(event)))
    assert event_from_document(document) == event


@given(recorded_events)
def test_every_recorded_event_round_trips_through_json(recorded):
    document = json.loads(json.dumps(recorded_to_document(recorded)))
    assert recorded_from_document(document) == recorded


def test_every_event_type_has_a_schema_version():
    assert set(SCHEMA_VERSIONS) == {cls.__name__ for cls in EVENT_TYPES}


@given(st.integers(min_value=1), st.none() | st.text(), st.text())
def test_a_schema_1_user_registered_is_upcast(user_id, username, first_name):
    old = {
        "type": "UserRegistered",
        "schema": 1,
        "data": {"user_id": user_id, "username": username, "first_name": first_name},
    }
    assert event_from_document(old) == UserRegistered(
        user_id=user_id, username=username, first_name=first_name, language_code=None
    )


def test_an_unknown_type_is_named():
    with pytest.raises(UnknownEventType, match="'PizzaOrdered'"):
        event_from_document({"type": "PizzaOrdered", "schema": 1, "data": {}})


MALFORMED = [
    ([], "must be an object"),
    ({"schema": 1, "data": {}}, "no string 'type'"),
    ({"type": "QuestionAsked", "schema": 9, "data": {"text": "hi"}}, "unsupported schema 9"),
    ({"type": "QuestionAsked", "schema": True, "data": {"text": "hi"}}, "unsupported schema True"),
    ({"type": "QuestionAsked", "schema": 1, "data": "hi"}, "QuestionAsked.data must be an object"),
    ({"type": "QuestionAsked", "schema": 1, "data": {}}, "missing field 'text'"),
    ({"type": "QuestionAsked", "schema": 1, "data": {"text": 3}}, r"QuestionAsked.text: 3 is not str"),
    ({"type": "QuestionAsked", "schema": 1, "data": {"text": "a", "extra": 1}}, "unknown field"),
    ({"type": "ModeSelected", "schema": 1, "data": {"mode": "video"}}, "one of 'chat', 'image'"),
    ({"type": "AnswerFailed", "schema": 1, "data": {"kind": "oops", "message": "", "question_version": 1}}, "kind"),
    (
        {
            "type": "AnswerGiven",
            "schema": 1,
            "data": {
                "text": "a",
                "model": "m",
                "prompt_tokens": True,
                "completion_tokens": 1,
                "latency_ms": 1,
                "question_version": 1,
            },
        },
        "prompt_tokens",
    ),
]


@pytest.mark.parametrize(("document", "message"), MALFORMED)
def test_malformed_event_documents_are_rejected_clearly(document, message):
    with pytest.raises(MalformedDocument, match=message):
        event_from_document(document)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"version": 0}, "version must be 1 or more"),
        ({"version": "1"}, "version must be int"),
        ({"recorded_at": "yesterday"}, "not an ISO 8601 time"),
        ({"recorded_at": "2026-01-01T00:00:00"}, "no time zone"),
        ({"causation_id": None}, "causation_id must be str"),
        ({"stream": 5}, "stream must be str"),
    ],
)
def test_malformed_envelopes_are_rejected_clearly(change, message):
    good = {
        "stream": "1",
        "version": 1,
        "recorded_at": "2026-01-01T00:00:00+00:00",
        "causation_id": "tg:1",
        "event": {"type": "ConversationReset", "schema": 1, "data": {}},
    }
    recorded_from_document(good)
    with pytest.raises(MalformedDocument, match=message):
        recorded_from_document(good | change)
