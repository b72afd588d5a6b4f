"""The one text rule: what every store and Telegram can hold."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from domain.codec import event_to_document
from domain.events import Event
from domain.text import storable
from tests.strategies import events

ANY_CODE_POINTS = st.text(alphabet=st.characters(codec=None, min_codepoint=0, max_codepoint=0x10FFFF))


@given(ANY_CODE_POINTS)
def test_storable_text_encodes_as_utf8_without_nul(text: str) -> None:
    result = storable(text)
    result.encode("utf-8")
    assert "\x00" not in result


@given(st.text())
def test_text_that_was_already_storable_is_unchanged(text: str) -> None:
    clean = text.replace("\x00", "")
    if all(not "\ud800" <= char <= "\udfff" for char in clean):
        assert storable(clean) == clean


def test_a_surrogate_pair_split_across_stream_chunks_is_joined_and_a_lone_one_replaced() -> None:
    chunks = ["smile \ud83d", "\ude00 done", " lone \udc80"]
    assert storable("".join(chunks)) == "smile 😀 done lone \ufffd"


@given(events)
def test_every_event_holds_text_every_store_can_keep(event: Event) -> None:
    """However an event is built (here: from arbitrary text, lone surrogates and NUL included), its document
    encodes as UTF-8 without NUL, so no store can refuse it."""
    encoded = json.dumps(event_to_document(event), ensure_ascii=False).encode("utf-8")
    assert b"\\u0000" not in encoded and b"\x00" not in encoded
