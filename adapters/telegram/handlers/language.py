"""/language: which language the bot's own texts take in this chat (the model's answers are never translated).

`/language` lists the languages as buttons, the current one marked (anyone may look); `/language CODE` picks one
(`de`, `pt-BR`...), and `/language auto` goes back to each sender's Telegram language. In groups, picking is for
admins. The choice is a LanguageSelected event, so it holds on every worker and after restarts.
"""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message, User

from adapters.telegram import replies
from adapters.telegram.admins import Admins
from adapters.telegram.handlers.choices import MARK
from adapters.telegram.handlers.common import may_change, said
from adapters.telegram.i18n import LANGUAGES, NATIVE_NAMES, speaking, supported, translated
from adapters.telegram.identity import request_for_button
from service.conversations import ConversationService, Request

router = Router(name=__name__)
LANGUAGE = "language:"
AUTOMATIC = ("auto", "default")
"""What `/language` takes for "each sender's own language"."""


@router.message(Command("language"))
async def language(
    message: Message,
    command: CommandObject,
    request: Request,
    bot: Bot,
    service: ConversationService,
    admins: Admins,
) -> None:
    """List the languages, or pick one (`auto`: each sender's own)."""
    wanted = (command.args or "").strip()
    if not wanted:
        said("language_listed")
        current = (await service.settings(request.stream)).language
        await message.answer(_listing(current), reply_markup=_buttons(current))
        return
    automatic = wanted.lower() in AUTOMATIC
    chosen = None if automatic else supported(wanted)
    if chosen is None and not automatic:
        said("language_unknown")
        codes = ", ".join(LANGUAGES)
        await message.answer(translated(replies.LANGUAGE_UNKNOWN, code=wanted[:16], codes=codes + ", auto"))
        return
    if not await may_change(message.chat, message.from_user, bot, admins):
        await message.answer(translated(replies.ADMINS_ONLY))
        return
    await service.select_language(request, chosen)
    said("language_selected")
    with speaking(_spoken(chosen, message.from_user)):
        await message.answer(_confirmation(chosen))


@router.callback_query(F.data.startswith(LANGUAGE))
async def picked(query: CallbackQuery, bot: Bot, service: ConversationService, admins: Admins) -> None:
    """A language button: picks like the command, for whoever may change the chat."""
    message = query.message
    code = (query.data or "").removeprefix(LANGUAGE)
    chosen = None if code in AUTOMATIC else supported(code)
    if not isinstance(message, Message) or (chosen is None and code not in AUTOMATIC):
        await query.answer(translated(replies.STALE_BUTTON), show_alert=True)
        return
    if not await may_change(message.chat, query.from_user, bot, admins):
        await query.answer(translated(replies.ADMINS_ONLY), show_alert=True)
        return
    await service.select_language(request_for_button(query, message), chosen)
    said("language_selected")
    with speaking(_spoken(chosen, query.from_user)):
        await query.answer(_confirmation(chosen))
        await message.edit_text(_listing(chosen), reply_markup=_buttons(chosen))


def _spoken(chosen: str | None, user: User | None) -> str | None:
    """The language to confirm a choice in: the chosen one, or the user's own for `auto`."""
    return chosen if chosen is not None else (user.language_code if user is not None else None)


def _confirmation(chosen: str | None) -> str:
    if chosen is None:
        return translated(replies.LANGUAGE_AUTO)
    return translated(replies.LANGUAGE_SET, language=NATIVE_NAMES.get(chosen, chosen))


def _listing(current: str | None) -> str:
    title = translated(replies.LANGUAGE_AUTO_TITLE) if current is None else NATIVE_NAMES.get(current, current)
    return translated(replies.LANGUAGES, current=title)


def _buttons(current: str | None) -> InlineKeyboardMarkup:
    options = [("auto", translated(replies.LANGUAGE_AUTO_TITLE))] + [(code, NATIVE_NAMES[code]) for code in LANGUAGES]
    chosen = current or "auto"
    buttons = [
        InlineKeyboardButton(text=(MARK if code == chosen else "") + title, callback_data=LANGUAGE + code)
        for code, title in options
    ]
    return InlineKeyboardMarkup(inline_keyboard=[buttons[i : i + 2] for i in range(0, len(buttons), 2)])
