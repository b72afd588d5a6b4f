"""Spoken answers cut into voice-note parts (adapters/telegram/speech.py): every part fits the speech model's limit,
nothing is lost or reordered, at most MAX_PARTS notes, cuts at sentence ends; and only the visible text is read."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.telegram.speech import MAX_PARTS, speech_parts, spoken_text

WORD_CHARS = "abcxyzÄéß0123456789,;:'-.!?…"
"""Characters of words: letters of a few scripts, digits and punctuation (sentence ends among them)."""
limits = st.integers(min_value=1, max_value=60)
"""Characters a speech model takes per call (the real one takes 4096; small limits make many cuts)."""
mosts = st.integers(min_value=1, max_value=6)
"""Most parts allowed."""
any_text = st.text(alphabet=st.sampled_from([*WORD_CHARS, " ", "\n", "\t", "\u00a0", "。"]), max_size=300)
"""Any text, long words and odd whitespace included."""


@st.composite
def spaced_texts(draw: st.DrawFn) -> tuple[str, int]:
    """A limit and a text of words no longer than it, separated by runs of ASCII spaces (so no word need be cut)."""
    limit = draw(limits)
    words = draw(st.lists(st.text(alphabet=WORD_CHARS, min_size=1, max_size=limit), max_size=40))
    gaps = draw(st.lists(st.sampled_from([" ", "  ", "   "]), min_size=len(words), max_size=len(words)))
    return "".join(word + gap for word, gap in zip(words, gaps, strict=True)), limit


def normalised(text: str) -> str:
    return " ".join(text.split())


@given(any_text, limits, mosts)
def test_every_part_fits_the_limit_is_trimmed_and_not_empty(text: str, limit: int, most: int) -> None:
    parts = speech_parts(text, limit, most)
    if parts is not None:
        assert all(0 < len(part) <= limit for part in parts)
        assert all(part == part.strip() for part in parts)


@given(any_text, limits, mosts)
def test_no_more_than_most_parts_else_none_and_none_only_when_more_are_needed(text: str, limit: int, most: int) -> None:
    parts = speech_parts(text, limit, most)
    unbounded = speech_parts(text, limit, most=len(text) + 1)
    assert unbounded is not None  # each part takes at least one character
    if len(unbounded) <= most:
        assert parts == unbounded
    else:
        assert parts is None


@given(any_text, limits)
def test_no_character_but_whitespace_is_lost_added_or_reordered(text: str, limit: int) -> None:
    parts = speech_parts(text, limit, most=len(text) + 1)
    assert parts is not None
    assert "".join("".join(parts).split()) == "".join(text.split())


@given(spaced_texts())
def test_words_that_fit_are_never_cut_so_the_parts_joined_are_the_text_with_whitespace_normalised(
    spaced: tuple[str, int],
) -> None:
    text, limit = spaced
    parts = speech_parts(text, limit, most=len(text) + 1)
    assert parts is not None
    assert normalised(" ".join(parts)) == normalised(text)


@given(any_text, limits)
def test_a_text_within_the_limit_is_one_part_and_a_blank_one_none(text: str, limit: int) -> None:
    stripped = text.strip()
    if len(stripped) <= limit:
        assert speech_parts(text, limit) == ([stripped] if stripped else [])


def test_the_default_is_at_most_three_parts() -> None:
    assert MAX_PARTS == 3
    assert speech_parts("one two three", 5) == ["one", "two", "three"]
    assert speech_parts("one two three four", 5) is None
    assert speech_parts("one two three four", 5, most=4) == ["one", "two", "three", "four"]


def test_a_cut_lands_at_the_last_sentence_end_in_the_second_half_of_the_window() -> None:
    text = "The first sentence is here. And then the second one goes on."
    assert speech_parts(text, 40) == ["The first sentence is here.", "And then the second one goes on."]
    assert speech_parts("Is it? Yes! It is. And the rest of it", 24) == ["Is it? Yes! It is.", "And the rest of it"]
    assert speech_parts("A list of things:\nand then more of it", 24) == ["A list of things:", "and then more of it"]


def test_a_sentence_end_in_the_first_half_of_the_window_is_passed_over_for_the_last_space() -> None:
    assert speech_parts("Hi. this goes on and on for a while", 20) == ["Hi. this goes on and", "on for a while"]


def test_a_word_longer_than_the_limit_is_cut_anywhere() -> None:
    assert speech_parts("abcdefghij", 4) == ["abcd", "efgh", "ij"]


def test_a_part_may_take_the_whole_limit_when_a_space_follows_it() -> None:
    # "aaa bbb" fits the limit of 7 and is followed by a space, but the window rest[:7] holds no space after it,
    # so the cut falls back to "aaa": four parts are needed instead of two, and the answer is not spoken at all.
    assert speech_parts("aaa bbb ccc ddd", 7, most=2) == ["aaa bbb", "ccc ddd"]


def test_cjk_sentences_are_cut_at_their_ends() -> None:
    # Chinese and Japanese put no space after 。！？, so the listed CJK ends never match: the cut is at the limit.
    assert speech_parts("你好世界。今天天气很好。", 8) == ["你好世界。", "今天天气很好。"]


@pytest.mark.parametrize("gap", ["\n", "\t", "\u00a0"])
def test_a_word_that_fits_is_not_cut_after_other_whitespace(gap: str) -> None:
    # The window "ab<gap>cde" has no ASCII space (and a newline only in its first half), so the word "cdefgh" is cut.
    assert speech_parts(f"ab{gap}cdefgh", 6) == ["ab", "cdefgh"]


def test_spoken_text_strips_emphasis_headings_and_quotes() -> None:
    assert spoken_text("**bold**, _italic_ and ~~struck~~") == "bold, italic and struck"
    assert spoken_text("# A heading\n\n> a quote") == "A heading\n\na quote"


def test_spoken_text_keeps_the_code_of_inline_code_and_fences() -> None:
    assert spoken_text("Run `ls -l` now.") == "Run ls -l now."
    fenced = spoken_text("Before.\n\n```python\nprint(1 < 2)\n```\n\nAfter.")
    assert fenced == "Before.\n\nprint(1 < 2)\n\nAfter."
    assert "```" not in fenced and "python" not in fenced


def test_spoken_text_keeps_the_text_of_links_but_not_their_addresses() -> None:
    spoken = spoken_text("See [the docs](https://example.org/docs) or ![a cat](https://example.org/cat.png).")
    assert spoken == "See the docs or a cat."


def test_spoken_text_decodes_what_markup_escapes() -> None:
    assert spoken_text("1 < 2 & 3 > 2") == "1 < 2 & 3 > 2"


@given(st.text(alphabet=st.sampled_from([*"abc xyz.,!?\n"]), max_size=200))
def test_spoken_text_of_text_without_markup_keeps_its_words(text: str) -> None:
    assert spoken_text(text).split() == text.split()
