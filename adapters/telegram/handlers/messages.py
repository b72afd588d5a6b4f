"""Plain messages: text by the chat's mode, and a clear rule for everything that is not text."""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.types import Message
from aiogram.utils.chat_action import ChatActionSender

from adapters.telegram import replies
from adapters.telegram.delivery import StreamingReply, send_plain
from adapters.telegram.handlers.common import deliver, log_outcome, said
from adapters.telegram.intake import Preview
from domain.conversation import has_visible_text
from service.conversations import ConversationService, Request

router = Router(name=__name__)

INDICATOR_AFTER = 0.25
"""Seconds before "typing…" (or "sending photo…") is shown: a reply quicker than that needs no indicator."""


@router.message(F.text)
async def text(
    message: Message,
    request: Request,
    bot: Bot,
    service: ConversationService,
    edit_interval: float,
    preview: Preview | None = None,
    addressed_text: str | None = None,
) -> None:
    """A question in chat mode (streamed back), a picture prompt in image mode."""
    content = addressed_text if addressed_text is not None else message.text or ""
    if not has_visible_text(content):
        said("empty")
        await send_plain(bot, message.chat.id, replies.EMPTY)
        return
    # The service decides by the mode it reads under the chat's turn; the mode it last saw only picks the
    # indicator shown meanwhile (read only for a chat it has not seen: a stale guess costs just the indicator).
    mode = service.last_known_mode(request.stream) or await service.mode(request.stream)
    drawing = mode == "image"
    indicator = ChatActionSender.upload_photo if drawing else ChatActionSender.typing
    reply = StreamingReply(bot, message.chat.id, message.message_id, edit_interval, preview)
    async with indicator(chat_id=message.chat.id, bot=bot, initial_sleep=INDICATOR_AFTER):
        outcome = await service.say(request, content, reply.update)
    log_outcome(outcome)
    await deliver(service, request.stream, outcome, lambda: reply.finish(outcome))


@router.message()
async def not_text(message: Message, bot: Bot) -> None:
    """Stickers, photos, voice, documents, locations, contacts, polls...: say what the bot understands."""
    said("not_text")
    await send_plain(bot, message.chat.id, replies.NOT_TEXT)


@router.edited_message()
async def edited(message: Message, bot: Bot) -> None:
    """Edits are not answered again; private chats are told to send a new message."""
    said("edited_ignored")
    if message.chat.type == "private":
        await send_plain(bot, message.chat.id, replies.EDITED)
