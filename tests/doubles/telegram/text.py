"""Shared building blocks of Bot API text formatting.

Entities are plain Bot API ``MessageEntity`` dicts (``type``/``offset``/``length``
plus ``url``/``language``/``custom_emoji_id``); offsets and lengths are in
UTF-16 code units, as Telegram counts them.
"""

from __future__ import annotations

import re
from typing import Any

import attrs

Entity = dict[str, Any]

SPACE_CHARS = " \t\r\n\v\f\0"
TRIM_CHARS = " \t\r\n\v\f"
ENTITY_TYPES = frozenset(
    {"mention", "hashtag", "cashtag", "bot_command", "url", "email", "phone_number"}
    | {"bold", "italic", "underline", "strikethrough", "spoiler", "blockquote", "expandable_blockquote"}
    | {"code", "pre", "text_link", "text_mention", "custom_emoji"}
)
# Entities whose text can't contain an auto-detected entity.
OPAQUE_TYPES = frozenset({"code", "pre", "text_link", "text_mention", "custom_emoji"})


@attrs.frozen
class FormattedText:
    """Plain text plus its entities (offsets in UTF-16 code units)."""

    text: str
    entities: tuple[Entity, ...] = ()

    @property
    def utf16_length(self) -> int:
        """Length as Telegram counts it."""
        return utf16_len(self.text)

    def entity_list(self) -> list[Entity]:
        """Entities as fresh dicts, ready for JSON."""
        return [dict(entity) for entity in self.entities]


def utf16_len(text: str) -> int:
    """Number of UTF-16 code units of ``text`` (astral characters count twice)."""
    return len(text) + sum(1 for char in text if ord(char) > 0xFFFF)


def utf8_offset(text: str, index: int) -> int:
    """Byte offset of ``text[index]`` in the UTF-8 encoding (used in error texts)."""
    return len(text[:index].encode("utf-8", "surrogatepass"))


def make_entity(kind: str, offset: int, length: int, **extra: Any) -> Entity:
    """A Bot API ``MessageEntity`` dict."""
    entity: Entity = {"type": kind, "offset": offset, "length": length}
    entity.update({key: value for key, value in extra.items() if value is not None})
    return entity


def sort_entities(entities: list[Entity]) -> list[Entity]:
    """Order by offset, outer (longer) entities first, like the server does."""
    return sorted(entities, key=lambda entity: (entity["offset"], -entity["length"]))


class TextBuilder:
    """Accumulates output characters while tracking the UTF-16 length."""

    def __init__(self) -> None:
        self.chars: list[str] = []
        self.utf16 = 0

    def add(self, char: str) -> None:
        self.chars.append(char)
        self.utf16 += 2 if ord(char) > 0xFFFF else 1

    def since(self, start: int) -> str:
        return "".join(self.chars[start:])

    def text(self) -> str:
        return "".join(self.chars)


def normalize_link(url: str) -> str | None:
    """Validate a link the way tdlib's ``get_checked_link`` roughly does.

    Returns the normalized URL (``telegram.org`` -> ``http://telegram.org/``) or
    ``None`` when Telegram would silently drop the entity.
    """
    if not url or any(char.isspace() for char in url):
        return None
    match = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*):", url)
    if match is None:
        return _normalize_http(f"http://{url}")
    scheme = match.group(1).lower()
    if scheme in {"http", "https"}:
        return _normalize_http(scheme + url[len(scheme) :])
    if scheme in {"tg", "ton"} and len(url) > len(scheme) + 1:
        return url
    return None


def _normalize_http(url: str) -> str | None:
    match = re.match(r"^(https?://)([^/?#]*)(.*)$", url, re.IGNORECASE)
    if match is None:
        return None
    scheme, authority, rest = match.groups()
    host = authority.rsplit("@", 1)[-1].split(":", 1)[0]
    if not re.fullmatch(r"[A-Za-z0-9\-._~\u0080-\uffff]+", host or "-") or not host:
        return None
    if "." not in host and host.lower() != "localhost":
        return None
    if not rest.startswith("/"):
        rest = "/" + rest
    return f"{scheme.lower()}{authority}{rest}"
