"""/persona and /model: list the choices as buttons (anyone), or pick one (in groups, admins only).

`/persona` lists the presets, the current one marked; `/persona NAME` picks a preset, `/persona default` goes back
to the operator's persona, and `/persona <any other text>` makes that text the chat's system prompt. `/model`
lists CONVO_MODELS; `/model NAME` picks one of them. A button press picks like the command.
"""

from __future__ import annotations

import attrs
from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from adapters.telegram import replies
from adapters.telegram.admins import Admins
from adapters.telegram.handlers.common import may_change, said
from adapters.telegram.i18n import translated
from adapters.telegram.identity import request_for_button
from service.conversations import ConversationService, Request
from service.personas import CUSTOM, DEFAULT, NAME, Personas

router = Router(name=__name__)
PERSONA, MODEL = "persona:", "model:"
MARK = "✅ "


@attrs.frozen
class Choices:
    """What a chat may pick from."""

    personas: Personas = attrs.field(factory=Personas)
    """The persona presets."""
    models: tuple[str, ...] = ("gpt-3.5-turbo",)
    """The chat models, the default first."""


@router.message(Command("persona"))
async def persona(
    message: Message,
    command: CommandObject,
    request: Request,
    bot: Bot,
    service: ConversationService,
    choices: Choices,
    admins: Admins,
) -> None:
    """List the personas, or pick one (a preset's name, `default`, or a system prompt of one's own)."""
    wanted = (command.args or "").strip()
    if not wanted:
        said("persona_listed")
        current = (await service.settings(request.stream)).persona_name
        await message.answer(
            translated(replies.PERSONAS, current=current), reply_markup=_persona_buttons(choices, current)
        )
        return
    if not await may_change(message.chat, message.from_user, bot, admins):
        await message.answer(translated(replies.ADMINS_ONLY))
        return
    preset = choices.personas.find(wanted) if NAME.match(wanted.lower()) else None
    if wanted.lower() == DEFAULT:
        await service.select_persona(request, DEFAULT, None)
        text = translated(replies.PERSONA_DEFAULT)
    elif preset is not None:
        await service.select_persona(request, preset.name, preset.prompt)
        text = translated(replies.PERSONA_SET, title=translated(preset.title))
    elif len(wanted) > choices.personas.max_chars:
        said("persona_too_long")
        await message.answer(translated(replies.PERSONA_TOO_LONG, limit=choices.personas.max_chars))
        return
    else:
        await service.select_persona(request, CUSTOM, wanted)
        text = translated(replies.PERSONA_CUSTOM)
    said("persona_selected")
    await message.answer(text)


@router.message(Command("model"))
async def model(
    message: Message,
    command: CommandObject,
    request: Request,
    bot: Bot,
    service: ConversationService,
    choices: Choices,
    admins: Admins,
) -> None:
    """List the models, or pick one of them."""
    wanted = (command.args or "").strip()
    current = (await service.settings(request.stream)).model or choices.models[0]
    if not wanted:
        said("model_listed")
        await message.answer(translated(replies.MODELS, current=current), reply_markup=_model_buttons(choices, current))
        return
    if wanted not in choices.models:
        said("model_unknown")
        await message.answer(translated(replies.MODEL_UNKNOWN, model=wanted[:64], models=", ".join(choices.models)))
        return
    if not await may_change(message.chat, message.from_user, bot, admins):
        await message.answer(translated(replies.ADMINS_ONLY))
        return
    await service.select_model(request, None if wanted == choices.models[0] else wanted)
    said("model_selected")
    await message.answer(translated(replies.MODEL_SET, model=wanted))


@router.callback_query(F.data.startswith(PERSONA) | F.data.startswith(MODEL))
async def picked(
    query: CallbackQuery, bot: Bot, service: ConversationService, choices: Choices, admins: Admins
) -> None:
    """A persona or model button: picks like the command, for whoever may change the chat."""
    message = query.message
    data = query.data or ""
    if not isinstance(message, Message):
        await query.answer(translated(replies.STALE_BUTTON), show_alert=True)
        return
    if not await may_change(message.chat, query.from_user, bot, admins):
        await query.answer(translated(replies.ADMINS_ONLY), show_alert=True)
        return
    request = request_for_button(query, message)
    if data.startswith(PERSONA):
        name = data.removeprefix(PERSONA)
        preset = choices.personas.find(name)
        if name != DEFAULT and preset is None:
            await query.answer(translated(replies.STALE_BUTTON), show_alert=True)
            return
        await service.select_persona(request, name, preset.prompt if preset is not None else None)
        said("persona_selected")
        await query.answer()
        await message.edit_text(
            translated(replies.PERSONAS, current=name), reply_markup=_persona_buttons(choices, name)
        )
        return
    index = data.removeprefix(MODEL)
    if not index.isdigit() or int(index) >= len(choices.models):
        await query.answer(translated(replies.STALE_BUTTON), show_alert=True)
        return
    chosen = choices.models[int(index)]
    await service.select_model(request, None if int(index) == 0 else chosen)
    said("model_selected")
    await query.answer()
    await message.edit_text(translated(replies.MODELS, current=chosen), reply_markup=_model_buttons(choices, chosen))


def _persona_buttons(choices: Choices, current: str) -> InlineKeyboardMarkup:
    presets = [(DEFAULT, replies.PERSONA_DEFAULT_TITLE)] + [(p.name, p.title) for p in choices.personas.presets]
    buttons = [
        InlineKeyboardButton(text=(MARK if name == current else "") + translated(title), callback_data=PERSONA + name)
        for name, title in presets
    ]
    return InlineKeyboardMarkup(inline_keyboard=[buttons[i : i + 2] for i in range(0, len(buttons), 2)])


def _model_buttons(choices: Choices, current: str) -> InlineKeyboardMarkup:
    buttons = [
        InlineKeyboardButton(text=(MARK if name == current else "") + name[:60], callback_data=f"{MODEL}{index}")
        for index, name in enumerate(choices.models)
    ]
    return InlineKeyboardMarkup(inline_keyboard=[[button] for button in buttons])
