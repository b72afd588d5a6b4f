"""The one text rule: what every store and Telegram can hold."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from domain.text import storable

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
