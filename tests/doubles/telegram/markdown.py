"""``parse_mode=MarkdownV2`` (strict, with the real error texts) and legacy ``Markdown``."""

from __future__ import annotations

import re
from typing import Any

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

_MDV2_RESERVED = frozenset("_*[]()~`>#+-=|{}.!\n")
_MD_TYPE_NAMES = {
    "bold": "Bold",
    "italic": "Italic",
    "underline": "Underline",
    "strikethrough": "Strikethrough",
    "spoiler": "Spoiler",
    "code": "Code",
    "pre": "Pre",
    "text_link": "TextUrl",
    "custom_emoji": "CustomEmoji",
    "blockquote": "BlockQuote",
}


@attrs.define
class _MdOpen:
    kind: str
    language: str
    utf16_start: int
    byte_offset: int
    char_start: int
    expandable: bool = False

    @property
    def display_name(self) -> str:
        if self.kind == "pre" and self.language:
            return "PreCode"
        return _MD_TYPE_NAMES[self.kind]


class _MarkdownV2Parser:
    """MarkdownV2 parser following the Bot API rules, error texts included."""

    def __init__(self, source: str) -> None:
        self.src = source
        self.pos = 0
        self.out = TextBuilder()
        self.stack: list[_MdOpen] = []
        self.entities: list[Entity] = []
        self.in_blockquote = False
        self.byte_at = [0]
        for char in source:
            self.byte_at.append(self.byte_at[-1] + len(char.encode("utf-8", "surrogatepass")))

    def parse(self) -> FormattedText:
        while self.pos < len(self.src):
            self._step()
        if self.in_blockquote and self.stack and self.stack[-1].kind == "blockquote":
            self._finish_blockquote(self.stack.pop())
        if self.stack:
            top = self.stack[-1]
            raise parse_error(f"Can't find end of {top.display_name} entity at byte offset {top.byte_offset}")
        return FormattedText(self.out.text(), tuple(sort_entities(self.entities)))

    def _char(self, ahead: int = 0) -> str:
        index = self.pos + ahead
        return self.src[index] if index < len(self.src) else ""

    def _step(self) -> None:
        char, following = self._char(), self._char(1)
        if char == "\\" and following and 0 < ord(following) <= 126:
            self.out.add(following)
            self.pos += 2
            return
        in_code = bool(self.stack) and self.stack[-1].kind in {"code", "pre"}
        if char not in ("`" if in_code else _MDV2_RESERVED):
            self.out.add(char)
            self.pos += 1
            return
        if self._expandable_marker():
            return
        if self._is_entity_end(char, following):
            self._close()
        else:
            self._open()

    def _expandable_marker(self) -> bool:
        """``||`` ending the last line of a blockquote makes it expandable."""
        if not (self.in_blockquote and self.stack and self.stack[-1].kind == "blockquote"):
            return False
        if self.src[self.pos : self.pos + 2] != "||" or self._char(2) not in {"", "\n"}:
            return False
        self.stack[-1].expandable = True
        self.pos += 2
        return True

    def _is_entity_end(self, char: str, following: str) -> bool:
        if not self.stack:
            return False
        if self.in_blockquote and char == "\n" and following != ">":
            return True
        kind = self.stack[-1].kind
        if kind == "italic":
            return char == "_" and following != "_"
        if kind == "underline":
            return char == "_" and following == "_"
        if kind == "spoiler":
            return char == "|" and following == "|"
        if kind == "pre":
            return self.src[self.pos : self.pos + 3] == "```"
        closing = {"bold": "*", "code": "`", "strikethrough": "~", "text_link": "]", "custom_emoji": "]"}
        return closing.get(kind) == char

    def _reserved(self, char: str) -> Exception:
        return parse_error(f"Character '{char}' is reserved and must be escaped with the preceding '\\'")

    def _open(self) -> None:
        start = self.pos
        char, following = self._char(), self._char(1)
        language = ""
        expandable = False
        if char == "\n":
            self._newline()
            return
        if char == "*" and self._line_start() and self.src[self.pos : self.pos + 3] == "**>" and not self.in_blockquote:
            kind, expandable, self.pos = "blockquote", True, self.pos + 3
            self.in_blockquote = True
        elif char == "_":
            kind = "underline" if following == "_" else "italic"
            self.pos += 2 if following == "_" else 1
        elif char in "*~[":
            kind = {"*": "bold", "~": "strikethrough", "[": "text_link"}[char]
            self.pos += 1
        elif char == "|" and following == "|":
            kind, self.pos = "spoiler", self.pos + 2
        elif char == "`":
            kind, language = self._open_code()
        elif char == "!" and following == "[":
            kind, self.pos = "custom_emoji", self.pos + 2
        elif char == ">" and self.pos == 0:
            kind, self.pos = "blockquote", self.pos + 1
            self.in_blockquote = True
        else:
            raise self._reserved(char)
        self.stack.append(_MdOpen(kind, language, self.out.utf16, self.byte_at[start], len(self.out.chars), expandable))

    def _line_start(self) -> bool:
        return self.pos == 0 or self.src[self.pos - 1] == "\n"

    def _newline(self) -> None:
        self.out.add("\n")
        self.pos += 1
        if self._char() == ">":
            self.pos += 1
            if not self.in_blockquote:
                self.in_blockquote = True
                opened = _MdOpen("blockquote", "", self.out.utf16, self.byte_at[self.pos - 1], len(self.out.chars))
                self.stack.append(opened)

    def _open_code(self) -> tuple[str, str]:
        if self.src[self.pos : self.pos + 3] != "```":
            self.pos += 1
            return "code", ""
        self.pos, language = pre_header(self.src, self.pos + 3)
        return "pre", language

    def _close(self) -> None:
        top = self.stack[-1]
        char = self._char()
        if char == "\n" and top.kind != "blockquote":
            raise parse_error(f"Can't find end of {top.display_name} entity at byte offset {top.byte_offset}")
        self.stack.pop()
        if top.kind == "blockquote":
            self.out.add("\n")
            self.pos += 1
            self._finish_blockquote(top)
            return
        extra: dict[str, Any] = {}
        widths = {"underline": 2, "spoiler": 2, "pre": 3}
        self.pos += widths.get(top.kind, 1)
        if top.kind == "text_link":
            url = self._link_target(top)
            if url is None:
                return
            extra["url"] = url
        elif top.kind == "custom_emoji":
            extra["custom_emoji_id"] = self._custom_emoji_id()
        elif top.kind == "pre" and top.language:
            extra["language"] = top.language
        if self.out.utf16 > top.utf16_start:
            self.entities.append(make_entity(top.kind, top.utf16_start, self.out.utf16 - top.utf16_start, **extra))

    def _finish_blockquote(self, top: _MdOpen) -> None:
        self.in_blockquote = False
        length = self.out.utf16 - top.utf16_start
        if length > 0:
            kind = "expandable_blockquote" if top.expandable else "blockquote"
            self.entities.append(make_entity(kind, top.utf16_start, length))

    def _read_url(self, error: str) -> str:
        """Read ``(url)`` right after ``]``; backslash escapes are honoured."""
        self.pos += 1  # '('
        begin = self.pos
        chars: list[str] = []
        while self.pos < len(self.src) and self.src[self.pos] != ")":
            following = self._char(1)
            if self.src[self.pos] == "\\" and following and 0 < ord(following) <= 126:
                chars.append(following)
                self.pos += 2
                continue
            chars.append(self.src[self.pos])
            self.pos += 1
        if self.pos >= len(self.src):
            raise parse_error(f"{error} at byte offset {self.byte_at[begin]}")
        self.pos += 1
        return "".join(chars)

    def _link_target(self, top: _MdOpen) -> str | None:
        inline = self._char() == "("
        url = self._read_url("Can't find end of a URL") if inline else self.out.since(top.char_start)
        return normalize_link(url)

    def _custom_emoji_id(self) -> str:
        if self._char() != "(":
            raise parse_error("Custom emoji entity must contain a tg://emoji URL")
        url = self._read_url("Can't find end of a custom emoji URL")
        match = re.fullmatch(r"tg://emoji\?id=(\d+)", url)
        if match is None or int(match.group(1)) == 0:
            raise parse_error("Invalid custom emoji identifier specified")
        return match.group(1)


def parse_markdown_v2(source: str) -> FormattedText:
    """Parse Bot API MarkdownV2; raises ``ApiError`` with the real reason texts."""
    return _MarkdownV2Parser(source).parse()


# --------------------------------------------------------------------------- legacy Markdown


def parse_markdown(source: str) -> FormattedText:
    """Legacy ``Markdown``: ``*bold*``, ``_italic_``, ``[text](url)``, `` `code` ``, pre blocks.

    Lenient like the real server: only an entity that never ends is an error.
    """
    out = TextBuilder()
    entities: list[Entity] = []
    pos = 0
    while pos < len(source):
        char = source[pos]
        following = source[pos + 1] if pos + 1 < len(source) else ""
        if char == "\\" and following in {"_", "*", "`", "["}:
            out.add(following)
            pos += 2
            continue
        if char not in "_*`[":
            out.add(char)
            pos += 1
            continue
        pos = _markdown_entity(source, pos, out, entities)
    return FormattedText(out.text(), tuple(sort_entities(entities)))


def pre_header(source: str, pos: int) -> tuple[int, str]:
    """After an opening triple backtick: read an optional language, skip one line break."""
    language = ""
    end = pos
    while end < len(source) and source[end] not in SPACE_CHARS and source[end] != "`":
        end += 1
    if end != pos and end < len(source) and source[end] != "`":
        language, pos = source[pos:end], end
    if pos < len(source) and source[pos] in "\r\n":
        following = source[pos + 1] if pos + 1 < len(source) else ""
        pos += 2 if following in {"\r", "\n"} and following != source[pos] else 1
    return pos, language


def _legacy_link(source: str, pos: int, text: str) -> tuple[int, str | None]:
    """``[text](url)`` or ``[url]``: ``pos`` is at ``]``; returns the position of the last char used."""
    url = text
    if source[pos + 1 : pos + 2] == "(":
        close = source.find(")", pos + 2)
        close = len(source) if close < 0 else close
        url, pos = source[pos + 2 : close], close
    return pos, normalize_link(url)


def _markdown_entity(source: str, begin: int, out: TextBuilder, entities: list[Entity]) -> int:
    """Parse one legacy-Markdown entity starting at ``begin``; returns the next position."""
    char = source[begin]
    end_char = "]" if char == "[" else char
    is_pre = char == "`" and source[begin + 1 : begin + 3] == "``"
    pos, language = pre_header(source, begin + 3) if is_pre else (begin + 1, "")
    start16, char_start = out.utf16, len(out.chars)
    while pos < len(source) and (source[pos] != end_char or (is_pre and source[pos + 1 : pos + 3] != "``")):
        out.add(source[pos])
        pos += 1
    if pos >= len(source):
        offset = utf8_offset(source, begin)
        raise parse_error(f"Can't find end of the entity starting at byte offset {offset}")
    length = out.utf16 - start16
    if char == "[":
        pos, url = _legacy_link(source, pos, out.since(char_start))
        if length and url:
            entities.append(make_entity("text_link", start16, length, url=url))
        return pos + 1
    if length:
        kinds = {"_": "italic", "*": "bold", "`": "pre" if is_pre else "code"}
        entities.append(make_entity(kinds[char], start16, length, language=language or None))
    return pos + (3 if is_pre else 1)
