"""Text every store, every codec and Telegram can hold: the one rule, applied where text enters the system."""

from __future__ import annotations

import re
from typing import Any

import attrs

_SURROGATE = re.compile("[\ud800-\udfff]")


def storable(text: str) -> str:
    """The text with NUL characters dropped (PostgreSQL's JSONB refuses them) and every lone UTF-16 surrogate
    replaced by U+FFFD (no UTF-8 encoder accepts one). A surrogate pair split across two pieces of a streamed
    answer, and so held as two code points, is joined back into its character."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    if _SURROGATE.search(text) is None:
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def storable_fields(cls: type, fields: list[attrs.Attribute[Any]]) -> list[attrs.Attribute[Any]]:
    """An attrs field transformer: every `str` (or `str | None`) field converts what it is given with `storable`.
    Events and commands use it, so no text that a store cannot keep ever enters the domain."""
    return [
        field.evolve(converter=_storable_or_none) if str(field.type) in ("str", "str | None") else field
        for field in fields
    ]


def _storable_or_none(text: str | None) -> str | None:
    return None if text is None else storable(text)
