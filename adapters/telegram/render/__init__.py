"""Model answers (Markdown) to Telegram messages: safe ``parse_mode=HTML`` markup, split to Telegram's limit.

Pure functions, no I/O. ``markdown_to_telegram_html`` renders; ``split_html`` / ``split_message`` cut long
answers into parts of at most 4096 UTF-16 code units of visible text; ``plain_fallback`` is what to send
without ``parse_mode`` if Telegram still rejects the markup.
"""

from __future__ import annotations

from .markdown import markdown_to_telegram_html, plain_fallback
from .markup import escape_attribute, escape_text, utf16_len, visible_text
from .split import TELEGRAM_LIMIT, split_html, split_message

__all__ = [
    "TELEGRAM_LIMIT",
    "escape_attribute",
    "escape_text",
    "markdown_to_telegram_html",
    "plain_fallback",
    "split_html",
    "split_message",
    "utf16_len",
    "visible_text",
]
