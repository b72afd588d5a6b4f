"""``parse_mode=HTML`` exactly as the Bot API parses it (tags, entities, error texts).

Like the real server, an ``&`` that does not start a known entity is kept as a
literal character (it is *not* an error), while any ``<`` must open a supported
tag.
"""

from __future__ import annotations

import attrs

from .errors import parse_error
from .text import (
    SPACE_CHARS,
    Entity,
    FormattedText,
    TextBuilder,
    make_entity,
    normalize_link,
    sort_entities,
    utf8_offset,
)

_HTML_TAGS = frozenset(
    {"a", "b", "strong", "i", "em", "s", "strike", "del", "u", "ins"}
    | {"tg-spoiler", "tg-emoji", "span", "pre", "code", "blockquote"}
)
_SIMPLE_HTML_TYPES = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
}
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_SURROGATE_ERROR = (
    "Text contains invalid Unicode characters after decoding HTML entities, check for unmatched surrogate code units"
)


@attrs.define
class _OpenTag:
    name: str
    attributes: dict[str, str]
    utf16_start: int
    char_start: int


class _HtmlParser:
    """One-pass HTML subset parser mirroring the Bot API rules and error texts."""

    def __init__(self, source: str) -> None:
        self.src = source
        self.pos = 0
        self.out = TextBuilder()
        self.stack: list[_OpenTag] = []
        self.entities: list[Entity] = []
        self.saw_surrogate = False

    def parse(self) -> FormattedText:
        while self.pos < len(self.src):
            char = self.src[self.pos]
            if char == "&" and self._try_entity():
                continue
            if char != "<":
                self.out.add(char)
                self.pos += 1
                continue
            begin = self.pos
            self.pos += 1
            if self._peek() == "/":
                self._end_tag(begin)
            else:
                self._start_tag(begin)
        if self.stack:
            raise parse_error(f'Can\'t find end tag corresponding to start tag "{self.stack[-1].name}"')
        if self.saw_surrogate:
            raise parse_error(_SURROGATE_ERROR)
        return FormattedText(self.out.text(), tuple(_clean_html_entities(self.entities)))

    # -- low level helpers
    def _peek(self, ahead: int = 0) -> str:
        index = self.pos + ahead
        return self.src[index] if index < len(self.src) else ""

    def _at_end(self) -> bool:
        return self.pos >= len(self.src)

    def _skip_spaces(self) -> None:
        while not self._at_end() and self.src[self.pos] in SPACE_CHARS:
            self.pos += 1

    def _read_until(self, stop: str) -> str:
        start = self.pos
        while not self._at_end() and self.src[self.pos] not in SPACE_CHARS and self.src[self.pos] not in stop:
            self.pos += 1
        return self.src[start : self.pos]

    def _offset(self, index: int) -> int:
        return utf8_offset(self.src, index)

    # -- character entities
    def _try_entity(self) -> bool:
        decoded, end = decode_html_entity(self.src, self.pos)
        if decoded is None:
            return False
        if 0xD800 <= ord(decoded) <= 0xDFFF:
            self.saw_surrogate = True
        self.out.add(decoded)
        self.pos = end
        return True

    # -- tags
    def _start_tag(self, begin: int) -> None:
        name = self._read_until(">").lower()
        if self._at_end():
            raise parse_error(f"Unclosed start tag at byte offset {self._offset(begin)}")
        if name not in _HTML_TAGS:
            raise parse_error(f'Unsupported start tag "{name}" at byte offset {self._offset(begin)}')
        attributes = self._attributes(name, begin)
        self.pos += 1  # the closing '>'
        if name == "span" and attributes.get("class") != "tg-spoiler":
            raise parse_error(f'Tag "span" must have class "tg-spoiler" at byte offset {self._offset(begin)}')
        self.stack.append(_OpenTag(name, attributes, self.out.utf16, len(self.out.chars)))

    def _attributes(self, tag: str, begin: int) -> dict[str, str]:
        attributes: dict[str, str] = {}
        while True:
            self._skip_spaces()
            if self._at_end():
                raise parse_error(f"Unclosed start tag at byte offset {self._offset(begin)}")
            if self.src[self.pos] == ">":
                return attributes
            name = self._read_until("=>").lower()
            if not name:
                raise parse_error(f'Empty attribute name in the tag "{tag}" at byte offset {self._offset(begin)}')
            self._skip_spaces()
            if self._peek() != "=":
                attributes[name] = ""
                continue
            self.pos += 1
            self._skip_spaces()
            if self._at_end():
                raise parse_error(f'Unclosed start tag "{tag}" at byte offset {self._offset(begin)}')
            attributes[name] = self._attribute_value(begin)

    def _attribute_value(self, begin: int) -> str:
        quote = self.src[self.pos]
        if quote in "'\"":
            self.pos += 1
            value: list[str] = []
            while not self._at_end() and self.src[self.pos] != quote:
                decoded, end = decode_html_entity(self.src, self.pos) if self.src[self.pos] == "&" else (None, 0)
                if decoded is not None:
                    value.append(decoded)
                    self.pos = end
                    continue
                value.append(self.src[self.pos])
                self.pos += 1
            if self._at_end():
                raise parse_error(f"Unclosed start tag at byte offset {self._offset(begin)}")
            self.pos += 1
            return "".join(value)
        token_start = self.pos
        while not self._at_end() and _is_name_token_char(self.src[self.pos]):
            self.pos += 1
        if not self._at_end() and self.src[self.pos] not in SPACE_CHARS and self.src[self.pos] != ">":
            raise parse_error(f"Unexpected end of name token at byte offset {self._offset(token_start)}")
        return self.src[token_start : self.pos].lower()

    def _end_tag(self, begin: int) -> None:
        if not self.stack:
            raise parse_error(f"Unexpected end tag at byte offset {self._offset(begin)}")
        self.pos += 1  # the '/'
        name = self._read_until(">").lower()
        self._skip_spaces()
        if self._peek() != ">":
            raise parse_error(f"Unclosed end tag at byte offset {self._offset(begin)}")
        self.pos += 1
        top = self.stack[-1]
        if name and name != top.name:
            offset = self._offset(begin)
            raise parse_error(f'Unmatched end tag at byte offset {offset}, expected "</{top.name}>", found "</{name}>"')
        self.stack.pop()
        if self.out.utf16 > top.utf16_start:
            self._close_entity(top)

    def _close_entity(self, tag: _OpenTag) -> None:
        offset, length = tag.utf16_start, self.out.utf16 - tag.utf16_start
        if tag.name in _SIMPLE_HTML_TYPES:
            self.entities.append(make_entity(_SIMPLE_HTML_TYPES[tag.name], offset, length))
        elif tag.name == "a":
            self._close_link(tag, offset, length)
        elif tag.name == "tg-emoji":
            emoji_id = tag.attributes.get("emoji-id", "")
            if not emoji_id.isdigit() or int(emoji_id) == 0:
                raise parse_error("Invalid custom emoji identifier specified")
            self.entities.append(make_entity("custom_emoji", offset, length, custom_emoji_id=emoji_id))
        elif tag.name == "blockquote":
            kind = "expandable_blockquote" if "expandable" in tag.attributes else "blockquote"
            self.entities.append(make_entity(kind, offset, length))
        elif tag.name == "pre":
            self._close_pre(offset, length)
        else:
            self._close_code(tag, offset, length)

    def _close_link(self, tag: _OpenTag, offset: int, length: int) -> None:
        url = tag.attributes.get("href") or self.out.since(tag.char_start)
        checked = normalize_link(url)
        if checked is not None:
            self.entities.append(make_entity("text_link", offset, length, url=checked))

    def _close_pre(self, offset: int, length: int) -> None:
        last = self.entities[-1] if self.entities else None
        if (
            last
            and last["type"] == "code"
            and (last["offset"], last["length"]) == (offset, length)
            and last.get("language")
        ):
            last["type"] = "pre"
            return
        self.entities.append(make_entity("pre", offset, length))

    def _close_code(self, tag: _OpenTag, offset: int, length: int) -> None:
        css_class = tag.attributes.get("class", "")
        language = css_class[len("language-") :] if css_class.startswith("language-") else ""
        last = self.entities[-1] if self.entities else None
        if last and last["type"] == "pre" and (last["offset"], last["length"]) == (offset, length) and language:
            last["language"] = language
            return
        self.entities.append(make_entity("code", offset, length, language=language or None))


def _is_name_token_char(char: str) -> bool:
    return (char.isascii() and char.isalnum()) or char in ".-"


def decode_html_entity(text: str, pos: int) -> tuple[str | None, int]:
    """Decode ``&lt;``/``&#123;``/``&#x1F600;`` at ``pos``; ``(None, pos)`` if it is a literal ``&``."""
    end = pos + 1
    if end < len(text) and text[end] == "#":
        end += 1
        is_hex = end < len(text) and text[end] in "xX"
        if is_hex:
            end += 1
        digits_start = end
        allowed = "0123456789abcdefABCDEF" if is_hex else "0123456789"
        while end < len(text) and text[end] in allowed:
            end += 1
        if end == digits_start or end - pos >= 10:
            return None, pos
        code = int(text[digits_start:end], 16 if is_hex else 10)
        if code == 0 or code >= 0x10FFFF:
            return None, pos
        decoded = chr(code)
    else:
        while end < len(text) and text[end].isascii() and text[end].isalpha():
            end += 1
        named = _NAMED_ENTITIES.get(text[pos + 1 : end])
        if named is None:
            return None, pos
        decoded = named
    if end < len(text) and text[end] == ";":
        end += 1
    return decoded, end


def _clean_html_entities(entities: list[Entity]) -> list[Entity]:
    """Drop helper keys and entities nested in ``pre`` (pre can't contain others)."""
    for entity in entities:
        if entity["type"] == "code":
            entity.pop("language", None)
    pres = [entity for entity in entities if entity["type"] == "pre"]
    kept = [entity for entity in entities if entity["type"] == "pre" or not _inside_any(entity, pres)]
    return sort_entities(kept)


def _inside_any(entity: Entity, containers: list[Entity]) -> bool:
    start, end = entity["offset"], entity["offset"] + entity["length"]
    return any(box["offset"] <= start and end <= box["offset"] + box["length"] for box in containers)


def parse_html(source: str) -> FormattedText:
    """Parse Bot API HTML; raises ``ApiError`` (``can't parse entities: ...``)."""
    return _HtmlParser(source).parse()
