"""Who may change a chat (reset it, erase it, pick its persona or model, stop someone else's answer).

In a private chat, its user. In a group, the chat's administrators (`getChatMember` says `creator` or
`administrator`, remembered for ADMIN_TTL seconds) and the bot's operators (CONVO_ADMINS), who are admins everywhere.
"""

from __future__ import annotations

import time

import structlog
from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.types import Chat

log = structlog.get_logger(__name__)

ADMIN_TTL = 60.0
"""Seconds a chat member's status is remembered (a demoted admin loses the right within a minute)."""


class Admins:
    """Answers "may this user change this chat?", asking Telegram at most once a minute per member."""

    def __init__(self, operators: frozenset[int] = frozenset(), ttl: float = ADMIN_TTL) -> None:
        self._operators = operators
        self._ttl = ttl
        self._known: dict[tuple[int, int], tuple[bool, float]] = {}

    async def may_change(self, bot: Bot, chat: Chat, user_id: int) -> bool:
        """True for the user of a private chat, an operator, or an administrator of the group."""
        if chat.type == "private" or user_id in self._operators:
            return True
        now = time.monotonic()
        known = self._known.get((chat.id, user_id))
        if known is not None and known[1] > now:
            return known[0]
        try:
            member = await bot.get_chat_member(chat.id, user_id)
        except TelegramAPIError as error:
            log.warning("chat_member_unknown", chat_id=chat.id, error=error.message)
            return False
        admin = member.status in ("creator", "administrator")
        self._known[(chat.id, user_id)] = (admin, now + self._ttl)
        return admin
