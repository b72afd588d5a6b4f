"""Hypothesis strategies for events, one per event type, shared by the event store contract tests.

`texts` is the text the system hands a store (what `domain.text.storable` leaves unchanged), hostile pieces
included; `any_texts` is any `str` at all, NUL, lone surrogates and strings of megabytes included, which a store
must hold exactly or refuse with a port error.
"""

from __future__ import annotations

from hypothesis import strategies as st

from domain.events import (
    EVENT_TYPES,
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
    ReplyDelivered,
    TranscriptionFailed,
    TurnUndone,
    UserRegistered,
    VoiceRepliesSelected,
    VoiceTranscribed,
)

HOSTILE = (
    "\u202e",  # right-to-left override
    "\u200f",  # right-to-left mark
    "שלום مرحبا",
    "😀",
    "👩\u200d👩\u200d👧",  # joined by zero-width joiners
    "🏳️\u200d🌈",
    "e\u0301",  # a combining accent
    "\ufeff",  # byte order mark
    "\u2028\u2029\u0085",  # line and paragraph separators
    "\x1b[31m\x07\x7f",  # terminal escape, bell, delete
    "\U0010ffff\U000e0001",  # the last code point, a tag character
    "\"\\u0000'",  # quotes and an escaped NUL, as JSON would write one
    "%s %(x)s ? :name $1 {}",  # placeholders of every SQL driver
    "'; DROP TABLE events; --",
)
"""Pieces of text that break naive encoding, escaping, display or SQL."""

texts = st.lists(
    st.text(alphabet=st.characters(exclude_characters="\x00", exclude_categories=["Cs"]), max_size=12)
    | st.sampled_from(HOSTILE),
    max_size=5,
).map("".join)
"""Any text a user or model could send: every Unicode plane, controls, RTL, emoji, hostile pieces; no NUL, no lone
surrogate (`domain.text.storable` leaves it unchanged)."""

huge_texts = st.builds(
    lambda piece, size: (piece * size)[:size], texts.filter(bool), st.sampled_from([70_000, 300_000])
)
"""Text far beyond a page, a packet or an index entry: 70,000 or 300,000 characters (up to a megabyte in UTF-8)."""

unstorable_texts = st.builds(
    lambda before, odd, after: before + odd + after,
    texts,
    st.sampled_from(["\x00", "\udc80", "\ud83d", "\ud83d\ude00", "\udfff\ud800"]),
    texts,
)
"""Text that no store need hold: a NUL, a lone surrogate, a surrogate pair kept as two code points."""

any_keys = texts | unstorable_texts
"""Any `str` but a huge one, for stream names, causation ids and chats (see `huge_texts` in the contract suite)."""

any_texts = st.one_of(texts, huge_texts, unstorable_texts)
"""Any `str` at all."""

user_ids = st.integers(min_value=1, max_value=2**52)
"""Telegram user ids (they fit in 52 bits)."""

counts = st.integers(min_value=0, max_value=2**31 - 1)
"""Token counts and latencies."""

versions = st.integers(min_value=1, max_value=2**31 - 1)
"""Stream versions an outcome may point at."""

EXTREME_VERSIONS = (2**31, 2**53 + 1, 2**62, 2**63 - 1, 2**63, 2**64, 10**40, -1, -(2**31), -(2**63), -(2**63) - 1)
"""Versions no stream reaches, beyond every integer width a database has, and below zero."""

any_versions = st.integers(min_value=-1, max_value=12) | st.sampled_from(EXTREME_VERSIONS) | st.integers()
"""A version an operation may be given: near a small stream's, or anywhere at all."""

failure_kinds = st.sampled_from(FAILURE_KINDS)
"""Any failure kind."""


def event_strategies(texts: st.SearchStrategy[str]) -> dict[type[Event], st.SearchStrategy[Event]]:
    """One strategy per event type, its text fields drawn from `texts`."""
    optional_texts = st.none() | texts
    return {
        UserRegistered: st.builds(
            UserRegistered, user_id=user_ids, username=optional_texts, first_name=texts, language_code=optional_texts
        ),
        ModeSelected: st.builds(ModeSelected, mode=st.sampled_from(MODES), restated=st.booleans()),
        QuestionAsked: st.builds(
            QuestionAsked,
            text=texts,
            message_id=st.none() | counts,
            sender_name=optional_texts,
            photos=st.lists(
                st.builds(
                    Photo,
                    file_id=texts,
                    file_unique_id=texts,
                    width=counts,
                    height=counts,
                    size=counts,
                    sha256=texts,
                ),
                max_size=2,
            ).map(tuple),
            files=st.lists(
                st.builds(
                    FileText, name=texts, mime_type=texts, size=counts, sha256=texts, text=texts, dropped_chars=counts
                ),
                max_size=2,
            ).map(tuple),
        ),
        VoiceRepliesSelected: st.builds(VoiceRepliesSelected, on=st.booleans(), restated=st.booleans()),
        PromptSettingsRecorded: st.builds(
            PromptSettingsRecorded,
            persona=texts,
            budget=counts,
            lookback=counts,
            model=texts,
            vision_history=counts,
            restated=st.booleans(),
        ),
        VoiceTranscribed: st.builds(
            VoiceTranscribed,
            text=texts,
            model=texts,
            duration_s=counts,
            file_unique_id=texts,
            kind=st.sampled_from(SOUND_KINDS),
            sender_id=st.none() | user_ids,
        ),
        TranscriptionFailed: st.builds(
            TranscriptionFailed,
            kind=failure_kinds,
            message=texts,
            model=texts,
            file_unique_id=texts,
            sender_id=st.none() | user_ids,
        ),
        AnswerSpoken: st.builds(
            AnswerSpoken,
            question_version=versions,
            model=texts,
            voice=texts,
            characters=counts,
            parts=counts,
            asker_id=st.none() | user_ids,
        ),
        PersonaSelected: st.builds(PersonaSelected, name=texts, prompt=optional_texts, restated=st.booleans()),
        ModelSelected: st.builds(ModelSelected, model=optional_texts, restated=st.booleans()),
        LanguageSelected: st.builds(LanguageSelected, language=optional_texts, restated=st.booleans()),
        AnswerGiven: st.builds(
            AnswerGiven,
            text=texts,
            model=texts,
            prompt_tokens=counts,
            completion_tokens=counts,
            latency_ms=counts,
            question_version=versions,
            reasoning=texts,
            stopped=st.booleans(),
        ),
        AnswerFailed: st.builds(
            AnswerFailed, kind=failure_kinds, message=texts, question_version=versions, reasoning=texts
        ),
        ImageRequested: st.builds(ImageRequested, prompt=texts),
        ImageGenerated: st.builds(
            ImageGenerated, image_ref=texts, model=texts, revised_prompt=optional_texts, request_version=versions
        ),
        ImageFailed: st.builds(ImageFailed, kind=failure_kinds, message=texts, request_version=versions),
        ReplyDelivered: st.builds(ReplyDelivered, request_version=versions),
        DeliveryFailed: st.builds(DeliveryFailed, request_version=versions, reason=texts),
        TurnUndone: st.builds(TurnUndone, question_version=versions, reason=st.sampled_from(UNDO_REASONS)),
        ConversationReset: st.builds(ConversationReset),
    }


EVENT_STRATEGIES = event_strategies(texts)
"""One strategy per event type (a test checks every type in EVENT_TYPES has one)."""

events = st.one_of(*EVENT_STRATEGIES.values())
"""Any event."""

any_events = st.one_of(*event_strategies(any_texts).values())
"""Any event, its text any `str` at all."""

batches = st.lists(events, min_size=1, max_size=4)
"""What one append records: a few events."""

assert set(EVENT_STRATEGIES) == set(EVENT_TYPES), "every event type needs a strategy"
