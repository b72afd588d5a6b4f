"""Errors that escape a handler become a short reply and one log line; the polling loop never sees them."""

from __future__ import annotations

import structlog
from aiogram import Bot, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.types import ErrorEvent

from adapters.telegram import replies
from domain.errors import EmptyMessage
from domain.ports import StoreUnavailable

router = Router(name=__name__)
log = structlog.get_logger(__name__)


@router.errors()
async def on_error(event: ErrorEvent, bot: Bot) -> None:
    """Tell the user what happened in one line; log the cause."""
    error = event.exception
    if isinstance(error, StoreUnavailable):
        text, outcome = replies.STORE_DOWN, "store_unavailable"
        log.error("store_unavailable", error=str(error))
    elif isinstance(error, EmptyMessage):
        text, outcome = replies.EMPTY, "empty"
    else:
        text, outcome = replies.INTERNAL, "internal_error"
        log.error("handler_failed", exc_info=error)
    structlog.contextvars.bind_contextvars(outcome=outcome)
    chat = _chat_id(event)
    if chat is None:
        return
    try:
        await bot.send_message(chat, text)
    except TelegramAPIError as failure:
        log.warning("error_reply_failed", error=failure.message)


def _chat_id(event: ErrorEvent) -> int | None:
    update = event.update
    message = update.message or update.edited_message
    if message is not None:
        return message.chat.id
    query = update.callback_query
    if query is not None and query.message is not None:
        return query.message.chat.id
    return None
