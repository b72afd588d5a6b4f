"""Errors that escape a handler become a short reply and one log line; the polling loop never sees them."""

from __future__ import annotations

import structlog
from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.types import Update

from adapters.telegram import replies
from domain.errors import EmptyMessage
from domain.ports import StoreUnavailable

log = structlog.get_logger("convo.updates")


async def reply_to_failure(update: Update, bot: Bot, error: Exception) -> str:
    """Tell the user what happened in one line (when there is a chat to tell); the outcome for the log line."""
    if isinstance(error, StoreUnavailable):
        text, outcome = replies.STORE_DOWN, "store_unavailable"
    elif isinstance(error, EmptyMessage):
        text, outcome = replies.EMPTY, "empty"
    elif isinstance(error, TelegramAPIError):
        return "telegram_error"
    else:
        text, outcome = replies.INTERNAL, "internal_error"
    chat = _chat_id(update)
    if chat is not None:
        try:
            await bot.send_message(chat, text)
        except TelegramAPIError as failure:
            log.warning("error_reply_failed", error=failure.message)
    return outcome


def _chat_id(update: Update) -> int | None:
    message = update.message or update.edited_message
    if message is not None:
        return message.chat.id
    query = update.callback_query
    if query is not None and query.message is not None:
        return query.message.chat.id
    return None
