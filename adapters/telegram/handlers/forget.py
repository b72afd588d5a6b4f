"""/forget: erase the chat's stream, after a confirmation button only the asking user can press.

A button's data is signed with a key derived from the bot token, and a press counts only on the confirmation
message that carries that very button: a crafted `forget:yes:<id>` callback, or one claimed to come from another
message, erases nothing.
"""

from __future__ import annotations

import hashlib
import hmac

from aiogram import Bot, F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from adapters.telegram import replies
from adapters.telegram.admins import Admins
from adapters.telegram.handlers.common import said
from adapters.telegram.i18n import translated
from adapters.telegram.identity import stream_of_message
from service.conversations import ConversationService

router = Router(name=__name__)
PREFIX = "forget:"


def button_data(bot: Bot, answer: str, user: int, chat: int) -> str:
    """`forget:<answer>:<user>:<signature>`, signed for this bot, user and chat (at most 64 bytes)."""
    key = hashlib.sha256(f"convo-forget:{bot.token}".encode()).digest()
    signature = hmac.new(key, f"{answer}:{user}:{chat}".encode(), hashlib.sha256).hexdigest()[:20]
    return f"{PREFIX}{answer}:{user}:{signature}"


@router.message(Command("forget"))
async def ask_to_forget(message: Message, bot: Bot, admins: Admins) -> None:
    """Ask for confirmation with two buttons bound to this user (in a group, only an admin may ask)."""
    assert message.from_user is not None
    user, chat = message.from_user.id, message.chat.id
    if not await admins.may_change(bot, message.chat, user):
        said("admins_only")
        await message.answer(translated(replies.ADMINS_ONLY))
        return
    keyboard = InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=translated(replies.FORGET_BUTTON_YES), callback_data=button_data(bot, "yes", user, chat)
                ),
                InlineKeyboardButton(
                    text=translated(replies.FORGET_BUTTON_NO), callback_data=button_data(bot, "no", user, chat)
                ),
            ]
        ]
    )
    said("forget_asked")
    await message.answer(translated(replies.FORGET_CONFIRM), reply_markup=keyboard)


def _carries(message: Message, data: str) -> bool:
    """Whether the message shows a button with exactly this data."""
    markup = message.reply_markup
    rows = markup.inline_keyboard if markup is not None else []
    return any(button.callback_data == data for row in rows for button in row)


@router.callback_query(F.data.startswith(PREFIX))
async def confirm_forget(query: CallbackQuery, bot: Bot, service: ConversationService) -> None:
    """Erase on "yes" from the user who asked; anything else (forged, stale, someone else's) changes nothing."""
    data = query.data or ""
    answer = data[len(PREFIX) :].partition(":")[0]
    message = query.message
    if (
        answer not in ("yes", "no")
        or not isinstance(message, Message)
        or not hmac.compare_digest(data, button_data(bot, answer, query.from_user.id, message.chat.id))
        or not _carries(message, data)
    ):
        said("forget_refused")
        await query.answer(translated(replies.STALE_BUTTON), show_alert=True)
        return
    if answer == "yes":
        await service.forget(stream_of_message(message))
    said("forgotten" if answer == "yes" else "forget_cancelled")
    await query.answer()
    await message.edit_text(translated(replies.FORGET_DONE if answer == "yes" else replies.FORGET_CANCELLED))


@router.callback_query()
async def unknown_button(query: CallbackQuery) -> None:
    """Buttons with data this bot never made."""
    said("button_refused")
    await query.answer(translated(replies.STALE_BUTTON), show_alert=True)
