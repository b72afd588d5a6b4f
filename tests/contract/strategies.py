"""Hypothesis strategies for events, one per event type, shared by the event store contract tests."""

from __future__ import annotations

from hypothesis import strategies as st

from domain.events import (
    EVENT_TYPES,
    FAILURE_KINDS,
    MODES,
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
    ReplyDelivered,
    UserRegistered,
)

texts = st.text(alphabet=st.characters(exclude_characters="\x00", exclude_categories=["Cs"]), max_size=40)
"""Any text a user or model could send: every Unicode plane, controls, RTL, emoji; no NUL, no lone surrogate."""

user_ids = st.integers(min_value=1, max_value=2**52)
"""Telegram user ids (they fit in 52 bits)."""

counts = st.integers(min_value=0, max_value=2**31 - 1)
"""Token counts and latencies."""

versions = st.integers(min_value=1, max_value=2**31 - 1)
"""Stream versions an outcome may point at."""

optional_texts = st.none() | texts
"""Text or nothing, for optional fields."""

failure_kinds = st.sampled_from(FAILURE_KINDS)
"""Any failure kind."""

EVENT_STRATEGIES: dict[type[Event], st.SearchStrategy[Event]] = {
    UserRegistered: st.builds(
        UserRegistered, user_id=user_ids, username=optional_texts, first_name=texts, language_code=optional_texts
    ),
    ModeSelected: st.builds(ModeSelected, mode=st.sampled_from(MODES), restated=st.booleans()),
    QuestionAsked: st.builds(QuestionAsked, text=texts),
    AnswerGiven: st.builds(
        AnswerGiven,
        text=texts,
        model=texts,
        prompt_tokens=counts,
        completion_tokens=counts,
        latency_ms=counts,
        question_version=versions,
    ),
    AnswerFailed: st.builds(AnswerFailed, kind=failure_kinds, message=texts, question_version=versions),
    ImageRequested: st.builds(ImageRequested, prompt=texts),
    ImageGenerated: st.builds(
        ImageGenerated, image_ref=texts, model=texts, revised_prompt=optional_texts, request_version=versions
    ),
    ImageFailed: st.builds(ImageFailed, kind=failure_kinds, message=texts, request_version=versions),
    ReplyDelivered: st.builds(ReplyDelivered, request_version=versions),
    DeliveryFailed: st.builds(DeliveryFailed, request_version=versions, reason=texts),
    ConversationReset: st.builds(ConversationReset),
}
"""One strategy per event type (a test checks every type in EVENT_TYPES has one)."""

events = st.one_of(*EVENT_STRATEGIES.values())
"""Any event."""

batches = st.lists(events, min_size=1, max_size=4)
"""What one append records: a few events."""

assert set(EVENT_STRATEGIES) == set(EVENT_TYPES), "every event type needs a strategy"
