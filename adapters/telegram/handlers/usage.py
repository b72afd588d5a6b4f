"""/usage: what the sender used today and this month, and what is left of their budgets; in a group, its admins also
see the chat's month."""

from __future__ import annotations

from aiogram import Bot, Router
from aiogram.filters import Command
from aiogram.types import Message

from adapters.telegram import replies
from adapters.telegram.admins import Admins
from adapters.telegram.handlers.common import said
from adapters.telegram.i18n import translated
from domain.prices import usd
from service.budgets import Spending
from service.conversations import ConversationService, Request

router = Router(name=__name__)


@router.message(Command("usage"))
async def usage(message: Message, request: Request, bot: Bot, service: ConversationService, admins: Admins) -> None:
    """The sender's day and month (the chat's month too, for a group's admins)."""
    summary = await service.usage_summary(request)
    lines = [
        translated(replies.USAGE_TITLE),
        _line(replies.USAGE_DAY, summary.user_day),
        _line(replies.USAGE_MONTH, summary.user_month),
    ]
    user = message.from_user.id if message.from_user is not None else 0
    if message.chat.type != "private" and await admins.may_change(bot, message.chat, user):
        lines.append(_line(replies.USAGE_CHAT, summary.chat_month))
    said("usage")
    await message.answer("\n".join(lines))


def _line(text: str, spending: Spending) -> str:
    line = translated(text, tokens=spending.tokens, cost=usd(spending.cost))
    if spending.limit is None or spending.left is None:
        return line
    return line + " " + translated(replies.USAGE_LEFT, left=usd(spending.left), limit=usd(spending.limit))
