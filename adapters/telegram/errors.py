"""Errors that escape a handler become a short reply and one log line; the polling loop never sees them."""

from __future__ import annotations

import structlog
from aiogram import Bot
from aiogram.dispatcher.middlewares.user_context import UserContextMiddleware
from aiogram.exceptions import AiogramError, TelegramAPIError
from aiogram.types import Update

from adapters.telegram import replies
from adapters.telegram.i18n import translated
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
    await _say(update, bot, translated(text))
    return outcome


async def tell_store_down(update: Update, bot: Bot) -> None:
    """The update is kept and will be answered once the store is back: say so (messages only)."""
    if update.message is not None:
        await _say(update, bot, translated(replies.STORE_DOWN))


async def _say(update: Update, bot: Bot, text: str) -> None:
    context = UserContextMiddleware.resolve_event_context(update)
    if context.chat is None or (update.message or update.edited_message or update.callback_query) is None:
        return
    try:
        await bot.send_message(context.chat.id, text, message_thread_id=context.thread_id)
    except AiogramError as failure:
        log.warning("error_reply_failed", error=str(failure))
