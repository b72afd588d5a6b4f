"""Errors that escape a handler become a short reply and one log line; the polling loop never sees them."""

from __future__ import annotations

import structlog
from aiogram import Bot
from aiogram.exceptions import AiogramError, TelegramAPIError
from aiogram.types import Update

from adapters.telegram import replies
from domain.errors import EmptyMessage
from domain.ports import StoreUnavailable

log = structlog.get_logger("convo.updates")


async def reply_to_failure(update: Update, bot: Bot, error: Exception) -> str:
    """Tell the user what happened in one line (when there is a chat to tell); the outcome for the log line.

    A store outage is not told here: the update is tried again (see intake.py), and `tell_store_down` says so once.
    """
    if isinstance(error, StoreUnavailable):
        return "store_unavailable"
    if isinstance(error, EmptyMessage):
        text, outcome = replies.EMPTY, "empty"
    elif isinstance(error, TelegramAPIError):
        return "telegram_error"
    else:
        text, outcome = replies.INTERNAL, "internal_error"
    await _say(update, bot, text)
    return outcome


async def tell_store_down(update: Update, bot: Bot) -> None:
    """The update is kept and will be answered once the store is back: say so (messages only)."""
    if update.message is not None:
        await _say(update, bot, replies.STORE_DOWN)


async def _say(update: Update, bot: Bot, text: str) -> None:
    chat = _chat_id(update)
    if chat is None:
        return
    try:
        await bot.send_message(chat, text)
    except AiogramError as failure:
        log.warning("error_reply_failed", error=str(failure))


def _chat_id(update: Update) -> int | None:
    message = update.message or update.edited_message
    if message is not None:
        return message.chat.id
    query = update.callback_query
    if query is not None and query.message is not None:
        return query.message.chat.id
    return None
