"""Splitting long answers into Telegram-sized messages, plain or HTML, at the most natural boundary.

Cuts are planned on the visible text (what Telegram counts), measured in UTF-16 code units. The preferred
boundary is a blank line, then a line break, then the end of a sentence, then a space; a hard cut is the last
resort. The best boundary in the second half of the room left is taken; failing that, the best one anywhere.
A ``<pre>`` block that fits in one message is never cut; a longer one is cut like text, and each HTML part
reopens the tags that were open at its start and closes those still open at its end.
"""

from __future__ import annotations

import bisect
import itertools
import re
import unicodedata
from collections.abc import Sequence

from .markup import Markup, Tag, escape_text, read_markup, utf16_len

TELEGRAM_LIMIT = 4096
MIN_LIMIT = 2  # an astral character takes two UTF-16 code units and cannot be cut

Span = tuple[int, int]

_PARAGRAPH = re.compile(r"\n[^\S\n]*\n")
_LINE = re.compile(r"\n")
_SENTENCE = re.compile(r"[.!?…]+[\"'»”’)\]]*(?=\s)|[。！？]+")
_WORD = re.compile(r"\s")
_SOLID = re.compile(r"\S")
_JOINERS = frozenset({"\u200d", "\ufe0e", "\ufe0f"})
_SKIN_TONES = range(0x1F3FB, 0x1F400)


def split_message(text: str, limit: int = TELEGRAM_LIMIT) -> list[str]:
    """Split plain text into non-blank parts of at most ``limit`` UTF-16 code units each."""
    _check_limit(limit)
    if not text.strip():
        return []
    if utf16_len(text) <= limit:
        return [text]
    return [text[start:end] for start, end in plan_parts(text, limit)]


def split_html(html: str, limit: int = TELEGRAM_LIMIT) -> list[str]:
    """Split Telegram HTML into parts, each valid on its own, with at most ``limit`` units of visible text."""
    _check_limit(limit)
    markup = read_markup(html)
    if not markup.text.strip():
        return []
    if utf16_len(markup.text) <= limit:
        return [html]
    spans = plan_parts(markup.text, limit, pre_spans(markup))
    return [slice_markup(markup, start, end) for start, end in spans]


def plan_parts(text: str, limit: int, blocks: Sequence[Span] = ()) -> list[Span]:
    """The (start, end) spans of ``text`` to send: non-blank, within ``limit``, separated only by whitespace.

    ``blocks`` are code spans: one that fits is never cut, and inside any of them only line breaks are
    dropped at a cut, so indentation survives.
    """
    units = [0, *itertools.accumulate(utf16_len(char) for char in text)]
    atomic = [(start, end) for start, end in blocks if units[end] - units[start] <= limit]
    spans: list[Span] = []
    start = _skip_gap(text, 0, blocks)
    while (solid := _first_solid(text, start)) < len(text):
        if units[solid + 1] - units[start] > limit:
            start = solid  # whitespace fills the room before the next visible character: drop it
        stop = bisect.bisect_right(units, units[start] + limit) - 1
        cut = stop if stop == len(text) else _choose_cut(text, start, stop, solid, atomic, blocks)
        spans.append((start, len(text[start:cut].rstrip()) + start))
        start = _skip_gap(text, cut, blocks)
    return spans


def pre_spans(markup: Markup) -> list[Span]:
    """Visible-text spans of the outermost ``<pre>`` elements."""
    spans: list[Span] = []
    depth = 0
    opened = 0
    for offset, tag in markup.tags:
        if tag.name != "pre":
            continue
        if not tag.closing:
            opened = offset if depth == 0 else opened
            depth += 1
        elif depth:
            depth -= 1
            if depth == 0:
                spans.append((opened, offset))
    return spans


def slice_markup(markup: Markup, start: int, end: int) -> str:
    """The HTML for ``markup.text[start:end]``: tags open at ``start`` reopened, those open at ``end`` closed."""
    tags = markup.tags
    stack: list[Tag] = []
    index = 0
    while index < len(tags) and tags[index][0] <= start:
        _apply(stack, tags[index][1])
        index += 1
    out = [tag.raw for tag in stack]
    cursor = start
    while index < len(tags) and tags[index][0] < end:
        offset, tag = tags[index]
        out.append(escape_text(markup.text[cursor:offset]))
        if _apply(stack, tag):
            out.append(tag.raw)
        cursor = offset
        index += 1
    out.append(escape_text(markup.text[cursor:end]))
    out.extend(f"</{tag.name}>" for tag in reversed(stack))
    return "".join(out)


def _apply(stack: list[Tag], tag: Tag) -> bool:
    """Push a start tag or pop the element an end tag closes; False for an end tag that closes nothing."""
    if not tag.closing:
        stack.append(tag)
        return True
    for depth in range(len(stack) - 1, -1, -1):
        if stack[depth].name == tag.name:
            del stack[depth:]
            return True
    return False


def _choose_cut(text: str, start: int, stop: int, solid: int, atomic: Sequence[Span], blocks: Sequence[Span]) -> int:
    """Where the part starting at ``start`` ends (``stop`` is the furthest end that fits)."""
    levels = [
        [cut for cut in level if solid < cut and not _strictly_inside(cut, atomic)]
        for level in _candidates(text, start, stop, blocks)
    ]
    for floor in (start + (stop - start) // 2, solid):
        for level in levels:
            best = max((cut for cut in level if cut > floor), default=None)
            if best is not None:
                return best
    return _hard_cut(text, solid, stop)


def _candidates(text: str, start: int, stop: int, blocks: Sequence[Span]) -> list[list[int]]:
    """Possible ends in ``(start, stop]``, best kind first: paragraphs and code edges, lines, sentences, words."""
    endpos = min(len(text), stop + 1)  # one character more, so a boundary right after ``stop`` is seen

    def before(pattern: re.Pattern[str]) -> list[int]:
        """Ends just before each match of ``pattern``: the separator itself is dropped."""
        return [match.start() for match in pattern.finditer(text, start, endpos)]

    edges = [edge for span in blocks for edge in span if start < edge <= stop]
    sentences = [match.end() for match in _SENTENCE.finditer(text, start, endpos) if match.end() <= stop]
    return [edges + before(_PARAGRAPH), before(_LINE), sentences, before(_WORD)]


def _hard_cut(text: str, solid: int, stop: int) -> int:
    """The furthest end that fits, moved back so as not to break a character sequence (emoji, accents)."""
    for cut in range(stop, solid, -1):
        if not _binds(text, cut):
            return cut
    return stop


def _binds(text: str, cut: int) -> bool:
    """True when cutting before ``text[cut]`` would split a combining or joined character sequence."""
    if cut >= len(text):
        return False
    char = text[cut]
    return unicodedata.combining(char) > 0 or char in _JOINERS or ord(char) in _SKIN_TONES or text[cut - 1] == "\u200d"


def _skip_gap(text: str, pos: int, blocks: Sequence[Span]) -> int:
    """Skip the whitespace after a cut; inside a code block, only line breaks (indentation is kept)."""
    while pos < len(text) and text[pos].isspace():
        if text[pos] not in "\r\n" and _within(pos, blocks):
            break
        pos += 1
    return pos


def _first_solid(text: str, start: int) -> int:
    """Index of the first non-whitespace character at or after ``start`` (``len(text)`` if none)."""
    match = _SOLID.search(text, start)
    return match.start() if match else len(text)


def _within(pos: int, spans: Sequence[Span]) -> bool:
    """True when ``pos`` is a character position inside one of ``spans``."""
    return any(begin <= pos < end for begin, end in spans)


def _strictly_inside(cut: int, spans: Sequence[Span]) -> bool:
    """True when cutting at ``cut`` would split one of ``spans``."""
    return any(begin < cut < end for begin, end in spans)


def _check_limit(limit: int) -> None:
    """Reject limits too small to hold every character."""
    if limit < MIN_LIMIT:
        raise ValueError(f"limit must be at least {MIN_LIMIT} UTF-16 code units, got {limit}")
