"""/forget: erase the chat's stream, after a confirmation button only the asking user can press."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from adapters.telegram import replies
from adapters.telegram.handlers.common import said
from adapters.telegram.identity import stream_of
from service.conversations import ConversationService

router = Router(name=__name__)
PREFIX = "forget:"


@router.message(Command("forget"))
async def ask_to_forget(message: Message) -> None:
    """Ask for confirmation with two buttons bound to this user."""
    assert message.from_user is not None
    user = message.from_user.id
    keyboard = InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(text=replies.FORGET_BUTTON_YES, callback_data=f"{PREFIX}yes:{user}"),
                InlineKeyboardButton(text=replies.FORGET_BUTTON_NO, callback_data=f"{PREFIX}no:{user}"),
            ]
        ]
    )
    said("forget_asked")
    await message.answer(replies.FORGET_CONFIRM, reply_markup=keyboard)


@router.callback_query(F.data.startswith(PREFIX))
async def confirm_forget(query: CallbackQuery, service: ConversationService) -> None:
    """Erase on "yes" from the user who asked; anything else (forged, stale, someone else's) changes nothing."""
    answer, _, owner = (query.data or "")[len(PREFIX) :].partition(":")
    message = query.message
    if answer not in ("yes", "no") or owner != str(query.from_user.id) or not isinstance(message, Message):
        said("forget_refused")
        await query.answer(replies.STALE_BUTTON, show_alert=True)
        return
    if answer == "yes":
        await service.forget(stream_of(message.chat))
    said("forgotten" if answer == "yes" else "forget_cancelled")
    await query.answer()
    await message.edit_text(replies.FORGET_DONE if answer == "yes" else replies.FORGET_CANCELLED)


@router.callback_query()
async def unknown_button(query: CallbackQuery) -> None:
    """Buttons with data this bot never made."""
    said("button_refused")
    await query.answer(replies.STALE_BUTTON, show_alert=True)
