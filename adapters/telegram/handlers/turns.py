"""Turn control: Stop and /cancel (the answer in flight), /redo, /undo, and edits of the latest question."""

from __future__ import annotations

import structlog
from aiogram import Bot, F, Router
from aiogram.filters import Command
from aiogram.types import Message, MessageGenerationStopped, Update

from adapters.telegram import replies
from adapters.telegram.addressing import addressed_text
from adapters.telegram.admins import Admins
from adapters.telegram.delivery import cut, send_plain
from adapters.telegram.handlers.common import answer_live, said
from adapters.telegram.i18n import translated
from adapters.telegram.identity import thread_of_message
from adapters.telegram.intake import Preview
from adapters.telegram.live import Generate, LiveAnswers
from domain.conversation import has_visible_text
from service.conversations import ConversationService, Request

router = Router(name=__name__)
log = structlog.get_logger(__name__)

QUOTED_CHARS = 200
"""Characters of an undone question quoted back to the user."""


@router.stopped_message_generation()
async def stop_pressed(stopped: MessageGenerationStopped, live: LiveAnswers) -> None:
    """The user pressed Stop on a draft: stop that answer (a finished or unknown one is ignored quietly)."""
    place = (stopped.chat.id, stopped.message_thread_id)
    said("stopped" if live.generations.stop_draft(place, stopped.draft_id) else "stop_ignored")


@router.message(Command("cancel"))
async def cancel(message: Message, bot: Bot, live: LiveAnswers, admins: Admins) -> None:
    """Stop the answer being written in this chat: the asker may, and in groups the chat's admins too."""
    running = live.generations.current((message.chat.id, thread_of_message(message)))
    if running is None:
        said("cancel_nothing")
        await message.answer(translated(replies.NOTHING_RUNNING))
        return
    user = message.from_user.id if message.from_user is not None else 0
    if user != running.asker and not await admins.may_change(bot, message.chat, user):
        said("cancel_refused")
        await message.answer(translated(replies.CANCEL_NOT_YOURS))
        return
    running.stop.set()
    said("cancelled")


@router.message(Command("undo"))
async def undo(message: Message, request: Request, service: ConversationService) -> None:
    """Take the newest turn out of later prompts, and say which."""
    undone = await service.undo(request)
    if undone is None:
        said("undo_nothing")
        await message.answer(translated(replies.NOTHING_TO_UNDO))
        return
    said("undone")
    await message.answer(translated(replies.UNDONE, question=cut(undone.text, QUOTED_CHARS)))


@router.message(Command("redo"))
async def redo(
    message: Message,
    event_update: Update,
    request: Request,
    bot: Bot,
    service: ConversationService,
    live: LiveAnswers,
    preview: Preview | None = None,
) -> None:
    """Answer the latest question again (a failed one too); the new answer takes the old one's place."""
    await _answer(
        message,
        event_update,
        request,
        bot,
        service,
        live,
        preview,
        lambda on_text, stop: service.redo(request, on_text, stop),
        translated(replies.NOTHING_TO_REDO),
    )


@router.edited_message(F.text)
async def edited(
    message: Message,
    event_update: Update,
    request: Request,
    bot: Bot,
    service: ConversationService,
    live: LiveAnswers,
    preview: Preview | None = None,
) -> None:
    """An edit of the latest question asks it again; edits of older messages are not answered again."""
    text = message.text or ""
    if message.chat.type != "private":
        text = addressed_text(message, await bot.me()) or ""
    if not has_visible_text(text):
        said("edited_ignored")
        return
    nothing = translated(replies.EDITED) if message.chat.type == "private" else None
    await _answer(
        message,
        event_update,
        request,
        bot,
        service,
        live,
        preview,
        lambda on_text, stop: service.edit(request, text, on_text, stop),
        nothing,
    )


@router.edited_message()
async def edited_other(message: Message, bot: Bot) -> None:
    """Edits of captions and media are not answered again; private chats are told to send a new message."""
    said("edited_ignored")
    if message.chat.type == "private":
        await send_plain(bot, message.chat.id, translated(replies.EDITED), thread=thread_of_message(message))


async def _answer(
    message: Message,
    update: Update,
    request: Request,
    bot: Bot,
    service: ConversationService,
    live: LiveAnswers,
    preview: Preview | None,
    generate: Generate,
    nothing: str | None,
) -> None:
    """Run a use case that may answer, streamed live; `nothing` is said when it had nothing to answer."""
    if await answer_live(message, update, request, bot, service, live, generate, preview) is not None:
        return
    said("nothing_to_answer")
    if nothing is not None:
        await send_plain(bot, message.chat.id, nothing, thread=thread_of_message(message))
