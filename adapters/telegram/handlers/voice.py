"""/voice on|off: whether answers in this chat also come as voice notes (a VoiceRepliesSelected event, so the choice
holds on every worker and after restarts). In groups, switching is for admins; anyone may ask what it is."""

from __future__ import annotations

from aiogram import Bot, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message

from adapters.telegram import replies
from adapters.telegram.admins import Admins
from adapters.telegram.handlers.common import may_change, said
from adapters.telegram.i18n import translated
from service.conversations import ConversationService, Request

router = Router(name=__name__)
_SWITCH = {"on": True, "off": False}


@router.message(Command("voice"))
async def voice(
    message: Message, command: CommandObject, request: Request, bot: Bot, service: ConversationService, admins: Admins
) -> None:
    """Switch spoken answers on or off; without `on` or `off`, say which it is."""
    wanted = _SWITCH.get((command.args or "").strip().lower())
    if wanted is None:
        said("voice_shown")
        on = (await service.settings(request.stream)).voice_replies
        state = translated(replies.VOICE_STATE_ON if on else replies.VOICE_STATE_OFF)
        await message.answer(translated(replies.VOICE_USAGE, state=state))
        return
    if not await may_change(message.chat, message.from_user, bot, admins):
        await message.answer(translated(replies.ADMINS_ONLY))
        return
    await service.select_voice_replies(request, wanted)
    said("voice_on" if wanted else "voice_off")
    await message.answer(translated(replies.VOICE_ON if wanted else replies.VOICE_OFF))
