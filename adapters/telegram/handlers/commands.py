"""Commands: /start, /help, /chat, /image [prompt], /reset, and unknown ones."""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.types import Message
from aiogram.utils.chat_action import ChatActionSender

from adapters.telegram import replies
from adapters.telegram.admins import Admins
from adapters.telegram.delivery import send_outcome, send_plain
from adapters.telegram.handlers.common import deliver, log_outcome, said
from adapters.telegram.i18n import translated
from adapters.telegram.identity import thread_of_message
from service.conversations import ConversationService, Request

router = Router(name=__name__)


@router.message(CommandStart())
async def start(message: Message, request: Request, service: ConversationService) -> None:
    """Register the user if new, then welcome them."""
    started = await service.start(request)
    first_name = message.from_user.first_name if message.from_user else None
    said("registered" if started.new_user else "welcomed_back")
    if started.new_user:
        await message.answer(replies.welcome(first_name))
    else:
        await message.answer(replies.welcome_back(first_name, started.mode))


@router.message(Command("help"))
async def help_(message: Message) -> None:
    """List the commands."""
    said("help")
    await message.answer(translated(replies.HELP))


@router.message(Command("chat"))
async def chat_mode(message: Message, request: Request, service: ConversationService) -> None:
    """Switch to chat mode."""
    await service.select_mode(request, "chat")
    said("mode_chat")
    await message.answer(translated(replies.CHAT_MODE))


@router.message(Command("image"))
async def image(
    message: Message,
    command: CommandObject,
    request: Request,
    bot: Bot,
    service: ConversationService,
) -> None:
    """With a prompt: one picture now. Without: switch to image mode."""
    prompt = (command.args or "").strip()
    if not prompt:
        await service.select_mode(request, "image")
        said("mode_image")
        await message.answer(translated(replies.IMAGE_MODE))
        return
    thread = thread_of_message(message)
    async with ChatActionSender.upload_photo(chat_id=message.chat.id, bot=bot, message_thread_id=thread):
        outcome = await service.request_image(request, prompt)
    log_outcome(outcome)
    await deliver(
        service,
        request.stream,
        outcome,
        lambda: send_outcome(bot, message.chat.id, outcome, reply_to=message.message_id, thread=thread),
    )


@router.message(Command("reset"))
async def reset(message: Message, request: Request, bot: Bot, service: ConversationService, admins: Admins) -> None:
    """Start the conversation over (in a group, for its admins)."""
    if message.from_user is None or not await admins.may_change(bot, message.chat, message.from_user.id):
        said("admins_only")
        await message.answer(translated(replies.ADMINS_ONLY))
        return
    await service.reset(request)
    said("reset")
    await message.answer(translated(replies.RESET_DONE))


@router.message(F.text.startswith("/"), ~F.text.startswith("//"))
async def unknown_command(message: Message, bot: Bot) -> None:
    """A command this bot does not have (commands for other bots never reach here in groups)."""
    word = (message.text or "/").split(maxsplit=1)[0]
    name, _, target = word.partition("@")
    me = await bot.me()
    if target and target.lower() != (me.username or "").lower():
        said("ignored_other_bot")
        return
    said("unknown_command")
    await send_plain(
        bot, message.chat.id, translated(replies.UNKNOWN_COMMAND, command=name[:64]), thread=thread_of_message(message)
    )
