"""Telegram's HTML subset as text: escaping, UTF-16 lengths, and reading markup back into visible text.

Reading follows the Bot API parser: every ``<`` that forms a tag is markup, the four named entities
(``&lt; &gt; &amp; &quot;``) and numeric references are decoded, and any other ``&`` is a literal character.
"""

from __future__ import annotations

import re

import attrs

_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_TAG = re.compile(r"<(/?)([^\s>]*)(?:\s(?:[^>\"']|\"[^\"]*\"|'[^']*')*)?>")
_ENTITY = re.compile(r"&(?:#([0-9]+)|#[xX]([0-9a-fA-F]+)|([A-Za-z]+));?")
_PLAIN_RUN = re.compile(r"[^<&]+")
_SURROGATE = re.compile("[\ud800-\udfff]")
_MAX_DECIMAL_DIGITS = 7  # Telegram ignores numeric references of ten or more characters
_MAX_HEX_DIGITS = 6


@attrs.frozen
class Tag:
    """One start or end tag of a Telegram HTML document."""

    name: str
    """Lower-cased tag name (``b``, ``pre``, ``a`` ...)."""
    closing: bool
    """True for ``</name>``."""
    raw: str
    """The tag exactly as written, attributes included; re-emitted when a split reopens it."""


@attrs.frozen
class Markup:
    """A Telegram HTML document read back: what the user sees, and where the tags sit in it."""

    text: str
    """The visible text: tags removed, entities decoded."""
    tags: tuple[tuple[int, Tag], ...]
    """Every tag in document order, with the offset in ``text`` of the character it precedes."""


def utf16_len(text: str) -> int:
    """Length of ``text`` as Telegram counts it: UTF-16 code units (astral characters count twice)."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def escape_text(text: str) -> str:
    """Escape ``&``, ``<`` and ``>`` so that ``text`` shows literally inside Telegram HTML."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def escape_attribute(value: str) -> str:
    """Escape a value for a double-quoted attribute (``&``, ``<``, ``>`` and ``"``)."""
    return escape_text(value).replace('"', "&quot;")


def scrub(text: str) -> str:
    """Replace lone surrogates (which Telegram rejects and UTF-8 cannot encode) with U+FFFD."""
    return _SURROGATE.sub("\ufffd", text)


def read_markup(html: str) -> Markup:
    """Split Telegram HTML into visible text and positioned tags (lenient: stray ``<`` is text)."""
    chars: list[str] = []
    length = 0
    tags: list[tuple[int, Tag]] = []
    pos = 0
    while pos < len(html):
        piece, tag, pos = _next_piece(html, pos)
        if tag is not None:
            tags.append((length, tag))
        else:
            chars.append(piece)
            length += len(piece)
    return Markup("".join(chars), tuple(tags))


def visible_text(html: str) -> str:
    """The text Telegram shows for ``html``: tags removed and entities decoded."""
    return read_markup(html).text


def _next_piece(html: str, pos: int) -> tuple[str, Tag | None, int]:
    """Read one tag, entity or plain run at ``pos``: (visible text, tag or None, next position)."""
    char = html[pos]
    if char == "<":
        match = _TAG.match(html, pos)
        if match is None:
            return "<", None, pos + 1
        tag = Tag(name=match.group(2).lower(), closing=bool(match.group(1)), raw=match.group(0))
        return "", tag, match.end()
    if char == "&":
        decoded, end = _decode_entity(html, pos)
        return decoded, None, end
    run = _PLAIN_RUN.match(html, pos)
    assert run is not None  # html[pos] is neither "<" nor "&"
    return run.group(0), None, run.end()


def _decode_entity(html: str, pos: int) -> tuple[str, int]:
    """Decode the entity at ``pos`` like Telegram does, or keep the ``&`` as a literal character."""
    match = _ENTITY.match(html, pos)
    if match is None:
        return "&", pos + 1
    decimal, hexadecimal, name = match.groups()
    if name is not None:
        decoded = _NAMED_ENTITIES.get(name)
    elif decimal is not None:
        decoded = _code_point(decimal, 10) if len(decimal) <= _MAX_DECIMAL_DIGITS else None
    else:
        decoded = _code_point(hexadecimal, 16) if len(hexadecimal) <= _MAX_HEX_DIGITS else None
    if decoded is None:
        return "&", pos + 1
    return decoded, match.end()


def _code_point(digits: str, base: int) -> str | None:
    """The character a numeric reference names, or None when Telegram would not decode it."""
    value = int(digits, base)
    return chr(value) if 0 < value < 0x10FFFF else None
