"""/export: the chat's own stream as two documents, its JSON lines (what `convo import` restores) and a Markdown
transcript. In a group (or a forum topic: its own stream), only the chat's admins may ask.

A Bot API upload is one request, so each document is built whole, and must fit MAX_DOCUMENT: a stream too big for
that gets a reply saying so (the operator can still `convo export` it), and no document is sent.
"""

from __future__ import annotations

import structlog
from aiogram import Bot, Router
from aiogram.filters import Command
from aiogram.types import BufferedInputFile, Message

from adapters.telegram import replies
from adapters.telegram.admins import Admins
from adapters.telegram.handlers.common import may_change, said
from adapters.telegram.i18n import translated
from adapters.telegram.identity import stream_of_message
from service.conversations import ConversationService
from service.export import ExportTooBig, begin_export, gathered
from service.replay import StreamNotFound

router = Router(name=__name__)

MAX_DOCUMENT = 50_000_000
"""Bytes of the largest document sent: the Bot API lets a bot upload files of up to 50 MB."""


@router.message(Command("export"))
async def export(message: Message, bot: Bot, service: ConversationService, admins: Admins) -> None:
    """Send the chat's stream as `convo-<stream>.jsonl` and `convo-<stream>.md` (in a group, to admins only)."""
    if not await may_change(message.chat, message.from_user, bot, admins):
        await message.answer(translated(replies.EXPORT_ADMINS_ONLY))
        return
    stream = stream_of_message(message)
    try:
        exported = await begin_export(service.store, stream)
        data = await gathered(exported.json_lines(), MAX_DOCUMENT)
        transcript = await gathered(exported.markdown(), MAX_DOCUMENT)
    except StreamNotFound:
        said("export_empty")
        await message.answer(translated(replies.EXPORT_EMPTY))
        return
    except ExportTooBig:
        said("export_too_big")
        await message.answer(translated(replies.EXPORT_TOO_BIG, limit=MAX_DOCUMENT // 1_000_000))
        return
    name = f"convo-{stream.replace(':', '_')}"
    caption = translated(replies.EXPORT_CAPTION, events=exported.newest)
    await message.answer_document(BufferedInputFile(data, filename=f"{name}.jsonl"), caption=caption)
    await message.answer_document(BufferedInputFile(transcript, filename=f"{name}.md"))
    structlog.contextvars.bind_contextvars(exported_events=exported.newest, exported_bytes=len(data) + len(transcript))
    said("exported")
