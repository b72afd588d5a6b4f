"""A local fake of the Telegram Bot API server (see ``tests/doubles/telegram_server.py``)."""

from __future__ import annotations

from .errors import ApiError
from .flood import FloodLimits
from .formatting import FormattedText, parse_html, parse_markdown, parse_markdown_v2, utf16_len
from .models import (
    ApiCall,
    CallbackAnswer,
    CallbackQueryRecord,
    Chat,
    ChatActionRecord,
    MessageVersion,
    StoredMessage,
    UploadedFile,
    User,
)
from .server import FakeTelegram
from .state import DEFAULT_TOKEN, ServerConfig, WebhookState
from .webhook import SECRET_HEADER

__all__ = [
    "DEFAULT_TOKEN",
    "SECRET_HEADER",
    "ApiCall",
    "ApiError",
    "CallbackAnswer",
    "CallbackQueryRecord",
    "Chat",
    "ChatActionRecord",
    "FakeTelegram",
    "FloodLimits",
    "FormattedText",
    "MessageVersion",
    "ServerConfig",
    "StoredMessage",
    "UploadedFile",
    "User",
    "WebhookState",
    "parse_html",
    "parse_markdown",
    "parse_markdown_v2",
    "utf16_len",
]
