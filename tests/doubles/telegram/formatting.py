"""Message text formatting the way the Bot API does it.

Implements, from the documented behaviour of the real server (which delegates
to tdlib):

* ``parse_mode=HTML`` with the supported tags only, the four named entities
  plus numeric ones, and the real error texts (``Unsupported start tag "foo" at
  byte offset 0``, ``Can't find end tag corresponding to start tag "b"`` …).
  Like the real server, an ``&`` that does not start a known entity is kept as
  a literal character, it is *not* an error.
* not ``parse_mode=MarkdownV2`` or ``Markdown``: the bot sends HTML only, so the fake
  answers them with a 500 naming what it does not implement, rather than guess.
* UTF-16 lengths and offsets, trimming of surrounding whitespace and automatic
  detection of bot commands, mentions, hashtags, cashtags, e-mails and URLs.

Entities are plain Bot API ``MessageEntity`` dicts (``type``/``offset``/``length``
plus ``url``/``language``/``custom_emoji_id``) with offsets in UTF-16 code units.
"""

from __future__ import annotations

import re
from typing import Any

from .errors import bad_request
from .html_markup import decode_html_entity, parse_html
from .text import (
    ENTITY_TYPES,
    OPAQUE_TYPES,
    TRIM_CHARS,
    Entity,
    FormattedText,
    make_entity,
    normalize_link,
    sort_entities,
    utf8_offset,
    utf16_len,
)

__all__ = [
    "Entity",
    "FormattedText",
    "decode_html_entity",
    "detect_entities",
    "finalize",
    "normalize_link",
    "parse_html",
    "parse_text",
    "trim",
    "utf8_offset",
    "utf16_len",
    "validate_entities",
]

_URL_TLDS = "com|org|net|io|dev|ai|app|me|ru|co|uk|de|info|xyz|tv|fr|eu|us"
_DETECTORS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "url",
        re.compile(
            r"(?<![\w@/.])(?:(?:https?|tg|ton)://[^\s<>\"']+|www\.[^\s<>\"']+"
            rf"|(?:[A-Za-z0-9-]+\.)+(?:{_URL_TLDS})(?![\w-])(?:[/?#][^\s<>\"']*)?)",
            re.IGNORECASE,
        ),
    ),
    ("email", re.compile(r"(?<![\w.+-])[\w.+-]+@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}(?![\w.-])")),
    ("bot_command", re.compile(r"(?<![\w/<>])/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?(?![\w/<>])")),
    ("mention", re.compile(r"(?<![\w@])@[A-Za-z0-9_]{2,32}(?![\w@])")),
    ("hashtag", re.compile(r"(?<![\w#])#\w*[^\W\d_]\w*(?![\w#])")),
    ("cashtag", re.compile(r"(?<![\w$])\$[A-Z]{1,8}(?![\w$])")),
)


def detect_entities(text: str, existing: tuple[Entity, ...] = ()) -> list[Entity]:
    """Find the entities Telegram adds by itself (commands, mentions, URLs ...).

    Matches overlapping an opaque entity (code, pre, links) or an earlier match
    are skipped.
    """
    prefix = [0]
    for char in text:
        prefix.append(prefix[-1] + (2 if ord(char) > 0xFFFF else 1))
    taken = [(e["offset"], e["offset"] + e["length"]) for e in existing if e["type"] in OPAQUE_TYPES]
    found: list[Entity] = []
    for kind, pattern in _DETECTORS:
        for match in pattern.finditer(text):
            matched = match.group(0)
            stripped = matched.rstrip(".,;:!?)'\"") if kind == "url" else matched
            start, end = prefix[match.start()], prefix[match.start() + len(stripped)]
            if end <= start or any(start < stop and begin < end for begin, stop in taken):
                continue
            taken.append((start, end))
            found.append(make_entity(kind, start, end - start))
    return found


def trim(formatted: FormattedText) -> FormattedText:
    """Strip surrounding whitespace like Telegram, clipping entities accordingly."""
    text = formatted.text
    stripped = text.strip(TRIM_CHARS)
    if stripped == text:
        return formatted
    lead = utf16_len(text[: len(text) - len(text.lstrip(TRIM_CHARS))])
    total = utf16_len(stripped)
    entities: list[Entity] = []
    for entity in formatted.entities:
        start = max(0, entity["offset"] - lead)
        end = min(total, entity["offset"] - lead + entity["length"])
        if end > start:
            entities.append({**entity, "offset": start, "length": end - start})
    return FormattedText(stripped, tuple(entities))


def finalize(formatted: FormattedText) -> FormattedText:
    """Trim and add auto-detected entities: the text exactly as the message will hold it."""
    trimmed = trim(formatted)
    detected = detect_entities(trimmed.text, trimmed.entities)
    return FormattedText(trimmed.text, tuple(sort_entities([*trimmed.entities, *detected])))


def parse_text(text: str, parse_mode: str | None, entities: list[Entity] | None = None) -> FormattedText:
    """Apply ``parse_mode`` (or explicit ``entities``, which take precedence)."""
    if entities:
        return FormattedText(text, tuple(sort_entities(validate_entities(text, entities))))
    mode = (parse_mode or "").lower()
    if not mode:
        return FormattedText(text)
    if mode == "html":
        return parse_html(text)
    if mode in ("markdownv2", "markdown"):
        raise NotImplementedError(f"the fake Telegram parses parse_mode=HTML only, not {parse_mode}")
    raise bad_request("unsupported parse_mode")


def validate_entities(text: str, entities: list[Any]) -> list[Entity]:
    """Check caller-supplied ``entities`` roughly like the server; returns clean dicts."""
    length = utf16_len(text)
    clean: list[Entity] = []
    for raw in entities:
        if not isinstance(raw, dict):
            raise bad_request("can't parse entities JSON object")
        kind, offset, size = raw.get("type"), raw.get("offset"), raw.get("length")
        if kind not in ENTITY_TYPES:
            raise bad_request(f'can\'t parse MessageEntity: unsupported type "{kind}"')
        if not isinstance(offset, int) or not isinstance(size, int) or offset < 0 or size < 0:
            raise bad_request("can't parse MessageEntity: wrong offset or length")
        if size == 0 or offset >= length:
            continue
        clean.append({**raw, "offset": offset, "length": min(size, length - offset)})
    return clean
