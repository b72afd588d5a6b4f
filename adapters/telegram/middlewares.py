"""Outer middlewares, in the order they run: the sender's language, log context and the canonical line, access,
addressing, flood, the use-case request each message handler is given, and the chat's own language choice.
Each may end an update early; only a store outage reaches the intake (which tries the update again)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiogram import BaseMiddleware, Bot
from aiogram.dispatcher.middlewares.user_context import UserContextMiddleware
from aiogram.types import CallbackQuery, Chat, Message, TelegramObject, Update, User

from adapters.telegram import replies
from adapters.telegram.addressing import addressed_text
from adapters.telegram.errors import reply_to_failure, tell_store_down
from adapters.telegram.generations import interrupts
from adapters.telegram.i18n import speaking, translated
from adapters.telegram.identity import request_for, stream_of_message, thread_of_message
from adapters.telegram.ratelimit import RateLimiter
from adapters.telegram.tally import CountUpdate, not_counted, outcome_class, update_kind
from domain.ports import StoreError, StoreUnavailable
from service.conversations import ConversationService

log = structlog.get_logger("convo.updates")
Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class SendersLanguage(BaseMiddleware):
    """Whatever the bot says about an update is in its sender's Telegram language (English if it has none of ours),
    until the chat's own choice is known (`ChatsLanguage`)."""

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("event_from_user")
        with speaking(user.language_code if user is not None else None):
            return await handler(event, data)


class UpdateLog(BaseMiddleware):
    """Binds the update's ids to every log line and writes one canonical line per update; counts the update by
    kind and outcome class (`tally`)."""

    def __init__(self, count: CountUpdate = not_counted) -> None:
        self._count = count

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        assert isinstance(event, Update)
        user: User | None = data.get("event_from_user")
        chat: Chat | None = data.get("event_chat")
        kind = update_kind(event)
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(
            update_id=event.update_id,
            user_id=user.id if user else None,
            chat_id=chat.id if chat else None,
            kind=kind,
        )
        started = time.monotonic()
        try:
            result = await handler(event, data)
        except StoreUnavailable as error:
            structlog.contextvars.bind_contextvars(outcome="store_unavailable", attempt=data.get("attempt", 1))
            log.error("update_failed", latency_ms=_since(started), error=str(error))
            self._count(kind, outcome_class("store_unavailable"))
            told: set[int] = data.get("store_down_told", set())
            if event.update_id not in told:
                told.add(event.update_id)
                await tell_store_down(event, data["bot"])
            raise
        except Exception as error:
            outcome = await reply_to_failure(event, data["bot"], error)
            structlog.contextvars.bind_contextvars(outcome=outcome)
            if outcome in ("store_unavailable", "telegram_error"):
                log.error("update_failed", latency_ms=_since(started), error=str(error))
            else:
                log.exception("update_failed", latency_ms=_since(started))
            self._count(kind, outcome_class(outcome))
            return None
        outcome = str(structlog.contextvars.get_contextvars().get("outcome", "ignored"))
        structlog.contextvars.bind_contextvars(outcome=outcome)
        log.info("update_handled", latency_ms=_since(started))
        self._count(kind, outcome_class(outcome))
        return result


class AccessControl(BaseMiddleware):
    """Only allowlisted users get through (when an allowlist is set); others get one clear reply, and no events.
    With a group allowlist, only those groups are served, and any member of one is let in."""

    def __init__(self, allowed: frozenset[int] | None, allowed_chats: frozenset[int] | None = None) -> None:
        self._allowed = allowed
        self._allowed_chats = allowed_chats

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("event_from_user")
        assert isinstance(event, Update)
        if event.stopped_message_generation is not None:  # a Stop press names no user: a private chat is its user
            chat_id = event.stopped_message_generation.chat.id
            if self._allowed is None or chat_id in self._allowed:
                return await handler(event, data)
            return None
        if user is None or user.is_bot:
            structlog.contextvars.bind_contextvars(outcome="ignored_no_user" if user is None else "ignored_bot")
            return None
        chat: Chat | None = data.get("event_chat")
        if chat is not None and chat.type != "private" and self._allowed_chats is not None:
            if chat.id in self._allowed_chats:
                return await handler(event, data)
            structlog.contextvars.bind_contextvars(outcome="group_not_allowed")
            return None
        if self._allowed is None or user.id in self._allowed:
            return await handler(event, data)
        structlog.contextvars.bind_contextvars(outcome="denied")
        await _refuse(event, data["bot"], translated(replies.NOT_ALLOWED), private_only=True)
        return None


class Addressing(BaseMiddleware):
    """In groups, the bot only hears messages addressed to it: commands, mentions, replies to its messages."""

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        assert isinstance(event, Update)
        message = event.message
        if message is None or message.chat.type == "private":
            return await handler(event, data)
        me = await data["bot"].me()
        text = addressed_text(message, me)
        if text is None:
            structlog.contextvars.bind_contextvars(outcome="ignored_not_addressed")
            return None
        data["addressed_text"] = text
        return await handler(event, data)


class Flood(BaseMiddleware):
    """A per-user rate limit: a flood gets one "too fast" reply and is otherwise dropped unrecorded.

    The verdict is reached as the update arrives (`flood_wait`, see `flood_wait_on_arrival`), since updates of one
    chat wait for their turn; an update resumed after a restart, which carries none, is checked at its turn."""

    def __init__(self, limiter: RateLimiter) -> None:
        self._limiter = limiter

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("event_from_user")
        assert isinstance(event, Update)
        if user is None or interrupts(event):  # stopping an answer is never refused as a flood
            return await handler(event, data)
        wait = data["flood_wait"] if "flood_wait" in data else self._limiter.check(user.id)
        if wait <= 0:
            return await handler(event, data)
        structlog.contextvars.bind_contextvars(outcome="throttled")
        if self._limiter.first_refusal(user.id):
            await _refuse(event, data["bot"], translated(replies.TOO_FAST, seconds=max(1, round(wait))))
        return None


class Requests(BaseMiddleware):
    """Hands a user's message to its handler with the use-case `request` built once: stream, causation, sender."""

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        assert isinstance(event, Update)
        message = event.message or event.edited_message
        if message is not None and message.from_user is not None:
            data["request"] = request_for(message, event.update_id)
        return await handler(event, data)


class ChatsLanguage(BaseMiddleware):
    """A chat's /language choice, once the update is let in, outranks the sender's language.

    Read from the state this process last saw (one read for a chat it has not seen yet): a choice another worker
    recorded a moment ago is seen at this chat's next request. A store outage keeps the sender's language."""

    def __init__(self, service: ConversationService) -> None:
        self._service = service

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        assert isinstance(event, Update)
        stream = _stream_of_update(event)
        language = None
        if stream is not None:
            try:
                known = self._service.last_known_settings(stream) or await self._service.settings(stream)
                language = known.language
            except StoreError as error:
                log.warning("chat_language_unread", error=str(error))
        if language is None:
            return await handler(event, data)
        with speaking(language):
            return await handler(event, data)


def _stream_of_update(update: Update) -> str | None:
    message = update.message or update.edited_message
    if message is None and update.callback_query is not None and isinstance(update.callback_query.message, Message):
        message = update.callback_query.message
    return None if message is None else stream_of_message(message)


def flood_wait_on_arrival(limiter: RateLimiter) -> Callable[[Update], dict[str, Any]]:
    """The intake's arrival hook: how long the update's sender must still wait (0: not throttled)."""

    def verdict(update: Update) -> dict[str, Any]:
        user = UserContextMiddleware.resolve_event_context(update).user
        return {} if user is None or user.is_bot else {"flood_wait": limiter.check(user.id)}

    return verdict


async def _refuse(update: Update, bot: Bot, text: str, *, private_only: bool = False) -> None:
    if isinstance(update.callback_query, CallbackQuery):
        await update.callback_query.answer(text, show_alert=True)
        return
    message: Message | None = update.message
    if message is None or (private_only and message.chat.type != "private"):
        return
    await bot.send_message(message.chat.id, text, message_thread_id=thread_of_message(message))


def _since(started: float) -> int:
    return round((time.monotonic() - started) * 1000)
